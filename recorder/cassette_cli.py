"""`just cassette [DB] -o FILE [--call ID ...] [--session ID] [--where SQL]`: recorded calls
to a cassette (`interlock.cassette`) that `just replay` serves.

DB defaults to $INTERLOCK_DB, else `interlock.db`, and is only read. The selections are
combined with `and`; with none, every call is exported. `--where` is an SQL condition over
the `calls` table as `c` (e.g. `c.model = 'gpt-4o-mini' and c.started_at >= '2026-12-01'`);
the values of `--call` and `--session` are bound as parameters. FILE is written anew.
Prints how many calls were written and, for each selected call that cannot be replayed,
its id and why; exits with 1 when no call matched or none could be written, 2 on a bad
database or condition.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from interlock.cassette import CassetteEntry
from recorder.cassette_export import NotReplayable, entries_from_db

DB_ENV = "INTERLOCK_DB"
DEFAULT_DB = "interlock.db"


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="just cassette", description=__doc__.splitlines()[0] if __doc__ else None)
    parse.add_argument("db", nargs="?", help=f"the recorder database (default: ${DB_ENV}, else {DEFAULT_DB})")
    parse.add_argument("-o", "--output", required=True, type=Path, help="the cassette file to write")
    parse.add_argument("--call", action="append", default=[], metavar="ID", help="a call id (repeatable)")
    parse.add_argument("--session", metavar="ID", help="the calls of one session (calls.session_id)")
    parse.add_argument("--where", metavar="SQL", help="an SQL condition over `calls c`")
    return parse


def selection(calls: list[str], session: str | None, where: str | None) -> tuple[str, tuple[str, ...]]:
    """The `where` condition over `calls c` and its parameters."""
    clauses, params = [], []
    if calls:
        clauses.append(f"c.call_id in ({', '.join('?' * len(calls))})")
        params += calls
    if session is not None:
        clauses.append("c.session_id = ?")
        params.append(session)
    if where:
        clauses.append(f"({where})")
    return " and ".join(clauses) or "1", tuple(params)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    db = Path(args.db or os.environ.get(DB_ENV) or DEFAULT_DB)
    if not db.is_file():
        sys.stderr.write(f"just cassette: no database at {db}\n")
        return 2
    where, params = selection(args.call, args.session, args.where)
    entries: list[CassetteEntry] = []
    skipped: list[tuple[str, NotReplayable]] = []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for call_id, found in entries_from_db(conn, where, params):
            if isinstance(found, NotReplayable):
                skipped.append((call_id, found))
            else:
                entries.append(found)
    except sqlite3.Error as error:
        sys.stderr.write(f"just cassette: cannot select calls from {db}: {error}\n")
        return 2
    finally:
        conn.close()
    for call_id in sorted(set(args.call) - {entry.call_id for entry in entries} - {found for found, _ in skipped}):
        sys.stderr.write(f"call {call_id}: not in {db}\n")
    for _, why in skipped:
        sys.stderr.write(f"not replayable: {why}\n")
    if not entries:
        sys.stderr.write("just cassette: no call matched\n" if not skipped else "just cassette: no call written\n")
        return 1
    args.output.write_text("".join(entry.line() + "\n" for entry in entries), encoding="utf-8")
    sys.stdout.write(f"wrote {len(entries)} call{'s' if len(entries) != 1 else ''} to {args.output}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
