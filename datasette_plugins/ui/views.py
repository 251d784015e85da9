"""The UI's own pages: a call's diff, its raw stages, a session's timeline, the CSS.

Each view checks Datasette's view permissions for the database and its `calls` table,
loads what it shows through `store`, and renders a template from
`datasette_plugins/templates` (served with `--template-dir`).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from datasette.app import Datasette
from datasette.database import Database
from datasette.utils import tilde_decode, tilde_encode
from datasette.utils.asgi import NotFound, Request, Response

from datasette_plugins.ui import paths, registry, store
from datasette_plugins.ui.calldiff import call_diff
from datasette_plugins.ui.schema import STAGES
from datasette_plugins.ui.timeline import build_session

STYLESHEET = Path(__file__).resolve().parent.parent / "static" / "interlock.css"


async def recorder_database(datasette: Datasette, request: Request) -> tuple[str, Database]:
    """The recorder database named in the URL, after checking the actor may see it."""
    name = tilde_decode(request.url_vars["database"])
    known = registry.recorder_databases(datasette)
    if name not in known and name in datasette.databases:  # the recorder may have created its tables since
        known = await registry.find(datasette)
    if name not in known:
        raise NotFound(f"No recorder database called {name!r}")
    await datasette.ensure_permissions(
        request.actor, [("view-table", (name, "calls")), ("view-database", name), "view-instance"]
    )
    return name, datasette.get_database(name)


async def call_page(datasette: Datasette, request: Request) -> Response:
    database, db = await recorder_database(datasette, request)
    call_id = tilde_decode(request.url_vars["call_id"])
    data = await store.load_call(db, call_id)
    if data is None:
        raise NotFound(f"No call {call_id!r} in {database}")

    def raw(stage: str, kind: str) -> str:
        return paths.raw_url(datasette, database, call_id, stage, kind)

    def neighbour(other: str | None) -> str | None:
        return paths.call_url(datasette, database, other) if other else None

    context = {
        "database": database,
        "data": data,
        "call": data.call,
        "diff": call_diff(data),
        "stages": STAGES,
        "raw_url": raw,
        "row_url": datasette.urls.row(database, "calls", tilde_encode(call_id)),
        "calls_url": datasette.urls.table(database, "calls"),
        "session_url": paths.session_url(datasette, database, data.call.session_id) if data.call.session_id else None,
        "previous_url": neighbour(data.previous_call),
        "next_url": neighbour(data.next_call),
    }
    html = await datasette.render_template("interlock_call.html", context, request=request)
    return Response.html(html)


async def raw_stage(datasette: Datasette, request: Request) -> Response:
    """A stage's body as pretty JSON, its exact bytes (the SSE stream), or its headers."""
    database, db = await recorder_database(datasette, request)
    call_id = tilde_decode(request.url_vars["call_id"])
    stage, kind = request.url_vars["stage"], request.url_vars["kind"]
    row = await store.load_stage_body(db, call_id, stage) if stage in STAGES else None
    if row is None:
        raise NotFound(f"Call {call_id!r} has no stage {stage!r} in {database}")
    if kind == "raw":
        if row["raw"] is None:
            raise NotFound(f"{stage} of call {call_id} kept no raw bytes: its body was JSON (see {stage}.json)")
        return Response(row["raw"], content_type="text/plain; charset=utf-8")
    column = "headers_json" if kind == "headers.json" else "body_json"
    text = row[column]
    if text is None:
        why = row["note"] or "not recorded"
        raise NotFound(f"{stage} of call {call_id} has no {column}: {why}")
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass  # served as stored
    return Response(text, content_type="application/json; charset=utf-8")


async def session_page(datasette: Datasette, request: Request) -> Response:
    database, db = await recorder_database(datasette, request)
    session_id = tilde_decode(request.url_vars["session_id"])
    calls, totals = await store.load_session(db, session_id)
    if totals.calls == 0:
        raise NotFound(f"No calls in session {session_id!r} in {database}")
    context = {
        "database": database,
        "session": build_session(session_id, calls, totals),
        "call_url": lambda call_id: paths.call_url(datasette, database, call_id),
        "calls_url": datasette.urls.table(database, "calls") + "?" + urlencode({"session_id": session_id}),
    }
    html = await datasette.render_template("interlock_session.html", context, request=request)
    return Response.html(html)


async def stylesheet() -> Response:
    return Response(
        STYLESHEET.read_text(encoding="utf-8"),
        content_type="text/css; charset=utf-8",
        headers={"cache-control": "max-age=300"},
    )
