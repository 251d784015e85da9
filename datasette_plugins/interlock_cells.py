"""Datasette plugin: recorder columns rendered for people (see `ui.cells`).

Call and session ids link to their pages, verdicts are badges, JSON is pretty-printed;
only in databases the recorder wrote, and only for the columns `ui.cells` knows.
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl
from datasette.app import Datasette
from markupsafe import Markup

from datasette_plugins.ui import cells, registry


@hookimpl(trylast=True)
def render_cell(row: Any, value: Any, column: str, database: str, datasette: Datasette) -> Markup | None:
    if database not in registry.recorder_databases(datasette):
        return None
    return cells.render(datasette, database, column, value, row)
