"""`just prune --older-than 30d [DB] [--archive FILE]`: delete the calls older than a
duration, with everything recorded about them (`recorder.retention`).

DB defaults to $INTERLOCK_DB, else `interlock.db`, and must exist; it is brought up to
the current schema first. The duration is a number of days (`30d`, or `30`) or hours
(`36h`). With `--archive FILE`, the calls are copied to FILE (created with the schema
when missing; a call it has already is replaced) before they are deleted. A proxy may be
recording to DB meanwhile: each batch is its own short transaction. Prints how many
calls were pruned; exits with 2 on a bad duration or database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import sys
from pathlib import Path

import aiosqlite

from recorder import dbfile
from recorder.retention import PruneResult, Retention, prune

DB_ENV = "INTERLOCK_DB"
DEFAULT_DB = "interlock.db"
BUSY_TIMEOUT_MS = 10_000
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dh]?)")


def days(text: str) -> float:
    """`30d` / `30` -> 30.0, `36h` -> 1.5; argparse's error for anything else."""
    found = _DURATION.fullmatch(text.strip())
    if found is None or float(found.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: a positive number of days (30d) or hours (36h)")
    value = float(found.group(1))
    return value / 24 if found.group(2) == "h" else value


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="just prune", description=__doc__.splitlines()[0] if __doc__ else None)
    parse.add_argument("db", nargs="?", help=f"the recorder database (default: ${DB_ENV}, else {DEFAULT_DB})")
    parse.add_argument("--older-than", required=True, type=days, metavar="AGE", help="30d (days) or 36h (hours)")
    parse.add_argument("--archive", metavar="FILE", help="copy the pruned calls to this SQLite file first")
    return parse


async def run(db_path: str, retention: Retention) -> PruneResult:
    await asyncio.to_thread(dbfile.prepare, db_path, BUSY_TIMEOUT_MS)
    async with aiosqlite.connect(db_path, isolation_level=None) as db:
        await db.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
        return await prune(db, retention)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    db = Path(args.db or os.environ.get(DB_ENV) or DEFAULT_DB)
    if not db.is_file():
        sys.stderr.write(f"just prune: no database at {db}\n")
        return 2
    retention = Retention(days=args.older_than, archive=args.archive)
    try:
        result = asyncio.run(run(str(db), retention))
    except (sqlite3.Error, OSError) as error:
        sys.stderr.write(f"just prune: cannot prune {db}: {error}\n")
        return 2
    archived = f", archived to {result.archive}" if result.archive else ""
    runs = f" and {result.runs} backtest runs left with no call" if result.runs else ""
    sys.stdout.write(f"pruned {result.calls} calls started before {result.cutoff}{runs} from {db}{archived}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
