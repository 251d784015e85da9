"""The backtest pages: the runs, a run's calls whose would-be outcome differs from what
was recorded, one call of a run (recorded final against would-be final, the call page's
diff view), and two outcomes compared (`?old=<run id or recorded>&new=<run id>`).

Permissions and the database come from `views`; data from `backtests`.
"""

from __future__ import annotations

from typing import Any

from datasette.app import Datasette
from datasette.database import Database
from datasette.utils import tilde_decode
from datasette.utils.asgi import BadRequest, NotFound, Request, Response

from datasette_plugins.ui import backtests, paths
from datasette_plugins.ui.views import recorder_database


def _links(datasette: Datasette, database: str) -> dict[str, Any]:
    return {
        "database": database,
        "runs_url": paths.backtests_url(datasette, database),
        "run_url": lambda run_id: paths.backtest_url(datasette, database, run_id),
        "call_url": lambda call_id: paths.call_url(datasette, database, call_id),
        "outcome_url": lambda run_id, call_id: paths.backtest_call_url(datasette, database, run_id, call_id),
        "compare_url": lambda old, new: paths.compare_url(datasette, database, old, new),
        "events_text": backtests.events_text,
        "recorded": backtests.RECORDED,
    }


async def _run(db: Database, database: str, run_id: str) -> backtests.RunRow:
    run = await backtests.load_run(db, run_id)
    if run is None:
        raise NotFound(f"No backtest run {run_id!r} in {database}")
    return run


async def runs_page(datasette: Datasette, request: Request) -> Response:
    database, db = await recorder_database(datasette, request)
    context = {**_links(datasette, database), "runs": await backtests.load_runs(db)}
    return Response.html(await datasette.render_template("interlock_backtests.html", context, request=request))


async def run_page(datasette: Datasette, request: Request) -> Response:
    database, db = await recorder_database(datasette, request)
    run = await _run(db, database, tilde_decode(request.url_vars["run_id"]))
    found = await backtests.differences(db, backtests.RECORDED, run.run_id)
    context = {
        **_links(datasette, database),
        "run": run,
        "groups": backtests.by_category(found),
        "differences": found,
        "limit": backtests.DIFFERENCES_LIMIT,
        "not_run": await backtests.not_run(db, run.run_id),
        "other_runs": [r for r in await backtests.load_runs(db) if r.run_id != run.run_id],
    }
    return Response.html(await datasette.render_template("interlock_backtest.html", context, request=request))


async def call_page(datasette: Datasette, request: Request) -> Response:
    database, db = await recorder_database(datasette, request)
    run = await _run(db, database, tilde_decode(request.url_vars["run_id"]))
    call_id = tilde_decode(request.url_vars["call_id"])
    outcome = await backtests.load_call_outcome(db, run.run_id, call_id)
    if outcome is None:
        raise NotFound(f"Backtest run {run.run_id} has no call {call_id!r}")
    context = {**_links(datasette, database), "run": run, "outcome": outcome}
    return Response.html(await datasette.render_template("interlock_backtest_call.html", context, request=request))


async def compare_page(datasette: Datasette, request: Request) -> Response:
    database, db = await recorder_database(datasette, request)
    old, new = request.args.get("old") or backtests.RECORDED, request.args.get("new")
    if not new:
        raise BadRequest("compare needs ?new=<run id> (and ?old=<run id>, else what was recorded)")
    new_run = await _run(db, database, new)
    old_run = None if old == backtests.RECORDED else await _run(db, database, old)
    found = await backtests.differences(db, old, new)
    context = {
        **_links(datasette, database),
        "old": old,
        "old_run": old_run,
        "new_run": new_run,
        "groups": backtests.by_category(found),
        "differences": found,
        "limit": backtests.DIFFERENCES_LIMIT,
        "runs": await backtests.load_runs(db),
    }
    return Response.html(await datasette.render_template("interlock_backtest_compare.html", context, request=request))
