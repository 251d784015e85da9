"""The UI's own URLs: call pages, raw stage bodies, session pages, backtests, budgets, alerts,
the stylesheet.

Every page lives under `/-/interlock/<database>/...`; path parts are tilde-encoded as
Datasette does for table names, so any call or session id round-trips.
"""

from __future__ import annotations

from urllib.parse import urlencode

from datasette.app import Datasette
from datasette.utils import tilde_encode

PREFIX = "/-/interlock"
STYLESHEET = f"{PREFIX}/interlock.css"

CALL_ROUTE = rf"^{PREFIX}/(?P<database>[^/]+)/calls/(?P<call_id>[^/]+)$"
RAW_ROUTE = (
    rf"^{PREFIX}/(?P<database>[^/]+)/calls/(?P<call_id>[^/]+)/(?P<stage>[a-z_]+)\.(?P<kind>json|raw|headers\.json)$"
)
SESSION_ROUTE = rf"^{PREFIX}/(?P<database>[^/]+)/sessions/(?P<session_id>[^/]+)$"
BACKTESTS_ROUTE = rf"^{PREFIX}/(?P<database>[^/]+)/backtests$"
BACKTEST_COMPARE_ROUTE = rf"^{PREFIX}/(?P<database>[^/]+)/backtests/compare$"
BACKTEST_ROUTE = rf"^{PREFIX}/(?P<database>[^/]+)/backtests/(?P<run_id>[^/]+)$"
BACKTEST_CALL_ROUTE = rf"^{PREFIX}/(?P<database>[^/]+)/backtests/(?P<run_id>[^/]+)/calls/(?P<call_id>[^/]+)$"
BUDGETS_ROUTE = rf"^{PREFIX}/(?P<database>[^/]+)/budgets$"
ALERTS_ROUTE = rf"^{PREFIX}/(?P<database>[^/]+)/alerts$"
STYLESHEET_ROUTE = rf"^{STYLESHEET}$"


def call_url(datasette: Datasette, database: str, call_id: str) -> str:
    return datasette.urls.path(f"{PREFIX}/{tilde_encode(database)}/calls/{tilde_encode(call_id)}")


def raw_url(datasette: Datasette, database: str, call_id: str, stage: str, kind: str) -> str:
    """`kind` is "json" (the parsed body), "raw" (exact bytes: SSE) or "headers.json"."""
    return call_url(datasette, database, call_id) + f"/{stage}.{kind}"


def session_url(datasette: Datasette, database: str, session_id: str) -> str:
    return datasette.urls.path(f"{PREFIX}/{tilde_encode(database)}/sessions/{tilde_encode(session_id)}")


def backtests_url(datasette: Datasette, database: str) -> str:
    return datasette.urls.path(f"{PREFIX}/{tilde_encode(database)}/backtests")


def budgets_url(datasette: Datasette, database: str) -> str:
    return datasette.urls.path(f"{PREFIX}/{tilde_encode(database)}/budgets")


def alerts_url(datasette: Datasette, database: str, **filters: str) -> str:
    """The Alerts page, narrowed by `filters` (`rule`, `scope_key`) when given."""
    url = datasette.urls.path(f"{PREFIX}/{tilde_encode(database)}/alerts")
    return url + "?" + urlencode(filters) if filters else url


def backtest_url(datasette: Datasette, database: str, run_id: str) -> str:
    return backtests_url(datasette, database) + f"/{tilde_encode(run_id)}"


def backtest_call_url(datasette: Datasette, database: str, run_id: str, call_id: str) -> str:
    return backtest_url(datasette, database, run_id) + f"/calls/{tilde_encode(call_id)}"


def compare_url(datasette: Datasette, database: str, old: str, new: str) -> str:
    """`old` against `new`: two run ids, or `old` "recorded" (what the proxy recorded)."""
    return backtests_url(datasette, database) + "/compare?" + urlencode({"old": old, "new": new})
