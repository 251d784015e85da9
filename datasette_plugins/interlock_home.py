"""Datasette plugin: the cost-over-time chart on the index and database pages, and the
main columns of the calls table (see `ui.home`); templates in `templates/` use them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from datasette import hookimpl
from datasette.app import Datasette
from datasette.utils.asgi import Request

from datasette_plugins.ui import home, registry


@hookimpl
def extra_template_vars(
    template: str, database: str | None, table: str | None, request: Request | None, datasette: Datasette
) -> dict[str, Any] | Callable[[], Awaitable[dict[str, Any]]]:
    recorded = registry.recorder_databases(datasette)
    if template == "table.html" and table == "calls" and database in recorded:
        return lambda: home.calls_table_vars(datasette, database, request)
    if template == "index.html":
        names = sorted(recorded)
    elif template == "database.html" and database in recorded:
        names = [database]
    else:
        return {}

    async def overviews() -> dict[str, Any]:
        found = [await home.overview(datasette, name) for name in names]
        return {"interlock_overviews": [o for o in found if o is not None]}

    return overviews
