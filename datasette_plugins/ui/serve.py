"""Serves a recorder database with Interlock's UI: `just ui [--team USERS] [DB] [datasette options]`.

DB defaults to $INTERLOCK_DB, else `interlock.db`. The UI only reads: it never creates or
migrates a database, so a path with no database is refused (exit status 1) with a
pointer to `just proxy` and `just up`, which create it. Datasette listens on 127.0.0.1
only and reads the file through read-only connections (`mode=ro`); no canned query
writes. The file is not opened immutable (`-i`): the proxy may be
writing to it, and an immutable reader would not see new calls. More database files
after DB are served beside it.

`--team USERS` is the UI of a shared host (docs/team.md): only people signed in at
`/-/login` see anything (an instance-level `allow` for any actor with an id), their
accounts from USERS, one `name:hash` a line (hashes from `uv run datasette hash-password`),
checked by the datasette-auth-passwords plugin; then `--host` may name another address.
Without it, that plugin is switched off and the UI is open, on 127.0.0.1.

The same options serve the in-process tests and benchmarks: `datasette_kwargs()`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from datasette.cli import cli
from datasette.plugins import pm

PLUGINS_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PLUGINS_DIR / "templates"
DB_ENV = "INTERLOCK_DB"
DEFAULT_DB = "interlock.db"
HOST = "127.0.0.1"
TEAM_OPTION = "--team"
AUTH_PLUGIN = "datasette-auth-passwords"
AUTH_PLUGIN_NAME = "auth_passwords"  # its entry point, under which Datasette registers it
PASSWORD_HASH = re.compile(r"pbkdf2_sha256\$\d+\$[^$]+\$[^$]+")
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
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


def split_argv(argv: list[str], *, team: bool = False) -> tuple[str, list[str]]:
    """(database path, datasette options): the first argument is the database unless it
    is an option; refuses --host/-h unless `team`, as the open UI only listens on 127.0.0.1."""
    if not team and any(arg in ("--host", "-h") or arg.startswith("--host=") for arg in argv):
        raise SystemExit(f"just ui serves on {HOST} only: drop --host, or sign people in with {TEAM_OPTION} USERS")
    if argv and not argv[0].startswith("-"):
        return argv[0], argv[1:]
    return os.environ.get(DB_ENV) or DEFAULT_DB, argv


def team_option(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the --team USERS file or None, the other arguments)."""
    rest: list[str] = []
    users: str | None = None
    args = iter(argv)
    for arg in args:
        if arg == TEAM_OPTION:
            users = next(args, None)
            if users is None or users.startswith("-"):
                raise SystemExit(f"just ui: {TEAM_OPTION} needs the accounts file (name:hash lines)")
        elif arg.startswith(f"{TEAM_OPTION}="):
            users = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if users is not None and any(arg == "--metadata" or arg.startswith(("--metadata=", "-m")) for arg in rest):
        raise SystemExit(f"just ui: {TEAM_OPTION} brings its own metadata (who may see the data): drop --metadata")
    return users, rest


def team_metadata(users_file: str) -> dict[str, Any]:
    """Datasette metadata that shows nothing to anyone not signed in, with the accounts
    of `users_file` (`name:hash` lines; blank lines and `#` comments skipped)."""
    try:
        text = Path(users_file).read_text(encoding="utf-8")
    except OSError as error:
        raise SystemExit(f"just ui: cannot read the accounts file {users_file}: {error.strerror}") from None
    accounts: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, password_hash = line.partition(":")
        if not USER_NAME.fullmatch(name) or not PASSWORD_HASH.fullmatch(password_hash):
            raise SystemExit(
                f"just ui: {users_file} line {number}: expected name:hash, the hash from "
                "`uv run datasette hash-password` (pbkdf2_sha256$...)"
            )
        accounts[f"{name}_password_hash"] = password_hash
    if not accounts:
        raise SystemExit(f"just ui: {users_file} has no account: nobody could sign in")
    return {"allow": {"id": "*"}, "plugins": {AUTH_PLUGIN: accounts}}


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
    users, argv = team_option(sys.argv[1:] if argv is None else argv)
    db_path, extra = split_argv(argv, team=users is not None)
    problem = missing_database(db_path)
    if problem is not None:
        raise SystemExit(problem)
    if users is None:
        if pm.get_plugin(AUTH_PLUGIN_NAME) is not None:
            pm.unregister(name=AUTH_PLUGIN_NAME)  # no "Log in" menu leading to no account
        cli.main(args=serve_args(db_path, extra), prog_name="datasette")
        return
    metadata = team_metadata(users)
    with tempfile.TemporaryDirectory(prefix="interlock-ui-") as directory:  # private to its owner
        path = Path(directory) / "team-metadata.json"
        path.write_text(json.dumps(metadata), encoding="utf-8")
        cli.main(args=[*serve_args(db_path, extra), "--metadata", str(path)], prog_name="datasette")


if __name__ == "__main__":
    main()
