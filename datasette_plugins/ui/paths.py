"""The UI's own URLs: call pages, raw stage bodies, session pages, the stylesheet.

Every page lives under `/-/interlock/<database>/...`; path parts are tilde-encoded as
Datasette does for table names, so any call or session id round-trips.
"""

from __future__ import annotations

from datasette.app import Datasette
from datasette.utils import tilde_encode

PREFIX = "/-/interlock"
STYLESHEET = f"{PREFIX}/interlock.css"

CALL_ROUTE = rf"^{PREFIX}/(?P<database>[^/]+)/calls/(?P<call_id>[^/]+)$"
RAW_ROUTE = (
    rf"^{PREFIX}/(?P<database>[^/]+)/calls/(?P<call_id>[^/]+)/(?P<stage>[a-z_]+)\.(?P<kind>json|raw|headers\.json)$"
)
SESSION_ROUTE = rf"^{PREFIX}/(?P<database>[^/]+)/sessions/(?P<session_id>[^/]+)$"
STYLESHEET_ROUTE = rf"^{STYLESHEET}$"


def call_url(datasette: Datasette, database: str, call_id: str) -> str:
    return datasette.urls.path(f"{PREFIX}/{tilde_encode(database)}/calls/{tilde_encode(call_id)}")


def raw_url(datasette: Datasette, database: str, call_id: str, stage: str, kind: str) -> str:
    """`kind` is "json" (the parsed body), "raw" (exact bytes: SSE) or "headers.json"."""
    return call_url(datasette, database, call_id) + f"/{stage}.{kind}"


def session_url(datasette: Datasette, database: str, session_id: str) -> str:
    return datasette.urls.path(f"{PREFIX}/{tilde_encode(database)}/sessions/{tilde_encode(session_id)}")
