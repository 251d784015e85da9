"""What Interlock adds to Datasette's own pages: the cost chart with links on the index
and database pages, and the calls table's main columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from datasette.app import Datasette
from datasette.utils import tilde_encode
from datasette.utils.asgi import Request
from markupsafe import Markup

from datasette_plugins.ui import paths, store
from datasette_plugins.ui.chart import cost_chart

# The calls table shows these, in this order, unless the URL picks columns (_col, _nocol)
# or asks for all of them.
CALLS_COLUMNS = (
    "started_at", "call_id", "provider", "model", "verdict", "input_tokens", "output_tokens",
    "cost_usd", "duration_ms", "session_id", "prompt_text",
)  # fmt: skip
# With them when some call has a team tag (docs/team.md), after `session_id`.
TAG_COLUMNS = ("user", "project")
CALLS_COLUMNS_TAGGED = (*CALLS_COLUMNS[:-1], *TAG_COLUMNS, CALLS_COLUMNS[-1])
ALL_COLUMNS_ARG = "_all_columns"


@dataclass(frozen=True)
class Overview:
    database: str
    chart: Markup
    first_day: str
    last_day: str
    cost: float
    calls: int
    unknown: int
    links: list[tuple[str, str]]  # (label, href)


def _links(datasette: Datasette, database: str) -> list[tuple[str, str]]:
    return [
        ("Calls", datasette.urls.table(database, "calls")),
        ("Sessions", datasette.urls.query(database, "sessions")),
        ("Modified and blocked", datasette.urls.table(database, "modified_calls")),
        ("Cost by day and model", datasette.urls.table(database, "cost_by_day_model")),
        ("Slowest calls", datasette.urls.table(database, "slowest_calls")),
        ("Most-used tools", datasette.urls.query(database, "most_used_tools")),
        ("Judge decisions by tool", datasette.urls.query(database, "judge_decisions_by_tool")),
        ("Backtests", paths.backtests_url(datasette, database)),
        ("Budgets", paths.budgets_url(datasette, database)),
        ("Alerts", paths.alerts_url(datasette, database)),
    ]


async def overview(datasette: Datasette, database: str) -> Overview | None:
    """The chart of the last days' cost, or None when the database has no calls yet."""
    costs = await store.daily_costs(datasette.get_database(database))
    if costs is None:
        return None
    points, days = costs
    return Overview(
        database=database,
        chart=cost_chart(points, days),
        first_day=days[0],
        last_day=days[-1],
        cost=sum(p.cost for p in points),
        calls=sum(p.calls for p in points),
        unknown=sum(p.unknown for p in points),
        links=_links(datasette, database),
    )


def in_order(columns: tuple[str, ...]) -> Callable[[Iterable[Mapping[str, Any]], str], list[Mapping[str, Any]]]:
    """The columns (key "name") or a row's cells (key "column") of `columns`, in order."""

    def ordered(items: Iterable[Mapping[str, Any]], key: str) -> list[Mapping[str, Any]]:
        by_name = {item[key]: item for item in items}
        return [by_name[name] for name in columns if name in by_name]

    return ordered


async def calls_table_vars(datasette: Datasette, database: str, request: Request | None) -> dict[str, Any]:
    """Template variables for the calls table: the main columns (the tags too when some
    call has one) and links per call."""
    args = request.args if request is not None else {}
    if any(key in args for key in ("_col", "_nocol", ALL_COLUMNS_ARG)):
        return {}
    tagged = await store.has_tags(datasette.get_database(database))
    columns = CALLS_COLUMNS_TAGGED if tagged else CALLS_COLUMNS
    call_url: Callable[[str], str] = lambda call_id: paths.call_url(datasette, database, call_id)
    row_url: Callable[[str], str] = lambda call_id: datasette.urls.row(database, "calls", tilde_encode(call_id))
    return {
        "interlock_columns": columns,
        "interlock_tag_facets": [("_facet", column) for column in TAG_COLUMNS] if tagged else [],
        "interlock_in_order": in_order(columns),
        "interlock_all_columns_arg": ALL_COLUMNS_ARG,
        "interlock_call_url": call_url,
        "interlock_row_url": row_url,
    }
