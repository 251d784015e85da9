"""Which of the served databases the recorder wrote: those with `calls` and `stages` (a view since m011).

Found once at start-up (`find`), then read synchronously by hooks that cannot await
(`get_metadata`) and by those that should not repeat the look-up (`render_cell`).
"""

from __future__ import annotations

import weakref

from datasette.app import Datasette

_found: weakref.WeakKeyDictionary[Datasette, frozenset[str]] = weakref.WeakKeyDictionary()


async def find(datasette: Datasette) -> frozenset[str]:
    names = []
    for name, db in datasette.databases.items():
        if name.startswith("_"):  # Datasette's own _internal and _memory
            continue
        if await db.table_exists("calls") and (await db.table_exists("stages") or "stages" in await db.view_names()):
            names.append(name)
    _found[datasette] = frozenset(names)
    return _found[datasette]


def recorder_databases(datasette: Datasette) -> frozenset[str]:
    """The names `find` found (empty before start-up)."""
    return _found.get(datasette, frozenset())
