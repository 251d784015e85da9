"""Serves a recorder database with Interlock's UI: `just ui [DB] [datasette options]`.

DB defaults to $INTERLOCK_DB, else `interlock.db`. The UI only reads: it never creates or
migrates a database, so a path with no database is refused (exit status 1) with a
pointer to `just proxy` and `just up`, which create it. Datasette listens on 127.0.0.1
only and reads the file through read-only connections (`mode=ro`); no canned query
writes. The file is not opened immutable (`-i`): the proxy may be
writing to it, and an immutable reader would not see new calls.

The same options serve the in-process tests and benchmarks: `datasette_kwargs()`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from datasette.cli import cli

PLUGINS_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PLUGINS_DIR / "templates"
DB_ENV = "INTERLOCK_DB"
DEFAULT_DB = "interlock.db"
HOST = "127.0.0.1"
SETTINGS: dict[str, Any] = {
    "sql_time_limit_ms": 5000,  # the canned "most-used tools" reads every response body
    "facet_time_limit_ms": 500,
    "suggest_facets": False,  # a query per column on every table page: slow on big logs
    "default_page_size": 50,
}


def datasette_kwargs() -> dict[str, Any]:
    """Keyword arguments for `datasette.app.Datasette` that give it Interlock's UI."""
    return {"plugins_dir": str(PLUGINS_DIR), "template_dir": str(TEMPLATES_DIR), "settings": dict(SETTINGS)}


def serve_args(db_path: str, extra: list[str]) -> list[str]:
    """`datasette` command-line arguments serving `db_path` with the UI."""
    args = ["serve", db_path, "--host", HOST, "--plugins-dir", str(PLUGINS_DIR), "--template-dir", str(TEMPLATES_DIR)]
    for name, value in SETTINGS.items():
        shown = ("on" if value else "off") if isinstance(value, bool) else str(value)
        args += ["--setting", name, shown]
    return args + extra


def split_argv(argv: list[str]) -> tuple[str, list[str]]:
    """(database path, datasette options): the first argument is the database unless it
    is an option; refuses --host/-h, as the UI only listens on 127.0.0.1."""
    if any(arg in ("--host", "-h") or arg.startswith("--host=") for arg in argv):
        raise SystemExit(f"just ui serves on {HOST} only: drop --host")
    if argv and not argv[0].startswith("-"):
        return argv[0], argv[1:]
    return os.environ.get(DB_ENV) or DEFAULT_DB, argv


def missing_database(db_path: str) -> str | None:
    """Why `db_path` cannot be served (None when it is a file): what to do instead."""
    path = Path(db_path)
    if path.is_file():
        return None
    if path.exists():
        return f"just ui: {db_path} is not a database file"
    return (
        f"just ui: no database at {db_path}. The UI only reads what the proxy recorded and never creates a "
        f"database: record calls first with `just up` (proxy and UI together) or `just proxy` "
        f"({DB_ENV}={db_path} to record to this path), or name an existing database (`just ui other.db`)."
    )


def main(argv: list[str] | None = None) -> None:
    db_path, extra = split_argv(sys.argv[1:] if argv is None else argv)
    problem = missing_database(db_path)
    if problem is not None:
        raise SystemExit(problem)
    cli.main(args=serve_args(db_path, extra), prog_name="datasette")


if __name__ == "__main__":
    main()
