"""Datasette plugin: Interlock's own pages and the stylesheet every page loads.

Routes: a call's original-against-final diff, its raw stages (JSON, exact bytes, headers),
a session's timeline, the backtests (the runs, a run, a call of a run, two outcomes
compared), the budgets' use and the alerts that fired, all under
`/-/interlock/<database>/`; the recorder databases are found at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from datasette import hookimpl
from datasette.app import Datasette
from jinja2 import Environment

from datasette_plugins.ui import alerts, backtest_views, budgets, fmt, paths, registry, views


@hookimpl
def startup(datasette: Datasette) -> Callable[[], Awaitable[None]]:
    async def find_databases() -> None:
        await registry.find(datasette)

    return find_databases


@hookimpl
def register_routes() -> list[tuple[str, Callable[..., Any]]]:
    return [
        (paths.RAW_ROUTE, views.raw_stage),
        (paths.CALL_ROUTE, views.call_page),
        (paths.SESSION_ROUTE, views.session_page),
        (paths.BACKTESTS_ROUTE, backtest_views.runs_page),
        (paths.BACKTEST_COMPARE_ROUTE, backtest_views.compare_page),
        (paths.BACKTEST_CALL_ROUTE, backtest_views.call_page),
        (paths.BACKTEST_ROUTE, backtest_views.run_page),
        (paths.BUDGETS_ROUTE, budgets.page),
        (paths.ALERTS_ROUTE, alerts.page),
        (paths.STYLESHEET_ROUTE, views.stylesheet),
    ]


@hookimpl
def extra_css_urls(datasette: Datasette) -> list[str]:
    return [datasette.urls.path(paths.STYLESHEET)]


@hookimpl
def prepare_jinja2_environment(env: Environment) -> None:
    env.filters.update(fmt.FILTERS)
