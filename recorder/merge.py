"""`just merge A.db B.db ... -o team.db`: several machines' recorder databases in one.

Every input, and the output (created private, 0600, when missing; an existing one is
added to), is first brought up to the current schema, as the proxy would on opening it.
Then every call of every input is copied whole (`recorder.transfer`: its stages,
policy events, judge decisions, tool calls, backtest results), with every backtest run;
the output's triggers keep `calls_fts` (the search) current as rows go in.

Call ids are unique across machines: 12 hex digits of milliseconds then 20 random hex
digits (`addons.call_state.new_call_id`), so two machines share an id only when they
share the call, as when an input is merged again or the output was merged before. A
call (or backtest run) the output has already, with the same `calls` (`backtest_runs`)
row, is skipped: a call is written whole, so the same row is the same record. One with
a different row is a collision: that input is refused, naming it, and adds nothing
(each input is merged in one transaction); the inputs before it stay merged, and
merging them again skips them. Prints what each input added; exits with 2 on a
collision or a bad input.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from recorder import dbfile, transfer

BUSY_TIMEOUT_MS = 10_000
SOURCE = "source"
# Tables whose rows are compared on a shared key: a different row under it is a collision.
KEYED = {"calls": "call_id", "backtest_runs": "run_id"}
SHOWN_COLLISIONS = 5


class MergeError(Exception):
    """An input that cannot be merged; it added nothing."""


@dataclass
class Added:
    source: str
    calls: int = 0
    skipped: int = 0  # calls the output had already, the same
    runs: int = 0


def _columns(conn: sqlite3.Connection, schema: str) -> dict[str, list[str]]:
    return transfer.group_columns(conn.execute(transfer.columns_sql(schema)).fetchall())


def _collisions(conn: sqlite3.Connection, columns: dict[str, list[str]], table: str) -> list[str]:
    key = KEYED[table]
    same = " and ".join(f's."{c}" is t."{c}"' for c in columns[table])
    found = conn.execute(
        f"select s.{key} from {SOURCE}.{table} s join main.{table} t on t.{key} = s.{key} where not ({same})"
    )
    return [row[0] for row in found]


def _merge_one(conn: sqlite3.Connection, path: str) -> Added:
    """Merge the database attached as SOURCE (inside the caller's transaction)."""
    added = Added(path)
    columns = transfer.common_columns(_columns(conn, SOURCE), _columns(conn, "main"))
    for table, key in KEYED.items():
        collided = _collisions(conn, columns, table)
        if collided:
            shown = ", ".join(collided[:SHOWN_COLLISIONS]) + (", ..." if len(collided) > SHOWN_COLLISIONS else "")
            raise MergeError(
                f"{path}: {len(collided)} {table} rows have the id of a different row already merged "
                f"({key} {shown}); nothing of it was merged"
            )
    conn.execute(transfer.CLEAR_IDS_SQL)
    conn.execute(
        f"insert into {transfer.IDS_TABLE} select call_id from {SOURCE}.calls "
        "where call_id not in (select call_id from main.calls)"
    )
    added.calls = conn.execute(f"select count(*) from {transfer.IDS_TABLE}").fetchone()[0]
    added.skipped = conn.execute(f"select count(*) from {SOURCE}.calls").fetchone()[0] - added.calls
    runs_before = conn.execute("select count(*) from main.backtest_runs").fetchone()[0]
    for sql in transfer.copy_sql(columns, SOURCE, "main"):
        conn.execute(sql)
    # Runs and results of calls skipped as already there (a run made after an earlier merge).
    for table in ("backtest_runs", "backtest_results"):
        conn.execute(transfer.copy_table_sql(columns, table, SOURCE, "main", "1", "insert or ignore"))
    added.runs = conn.execute("select count(*) from main.backtest_runs").fetchone()[0] - runs_before
    return added


def merge(sources: list[str], output: str, merged: list[Added] | None = None) -> list[Added]:
    """Merge `sources` into `output`, one transaction each, appending to `merged` as each
    is done; raises MergeError (that input added nothing) or sqlite3.Error / OSError."""
    merged = [] if merged is None else merged
    target = Path(output).resolve()
    for source in sources:
        if not Path(source).is_file():
            raise MergeError(f"{source}: no database there")
        if Path(source).resolve() == target:
            raise MergeError(f"{source}: the output cannot also be an input")
    for path in [*sources, output]:
        dbfile.prepare(path, BUSY_TIMEOUT_MS)
    conn = sqlite3.connect(output, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute(transfer.IDS_TABLE_SQL)
        for source in sources:
            conn.execute(f"attach database ? as {SOURCE}", (source,))  # never inside a transaction
            try:
                conn.execute("begin immediate")
                try:
                    added = _merge_one(conn, source)
                    conn.execute("commit")
                except BaseException:
                    conn.execute("rollback")
                    raise
            finally:
                conn.execute(f"detach database {SOURCE}")
            merged.append(added)
    finally:
        conn.close()
    return merged


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="just merge", description=__doc__.splitlines()[0] if __doc__ else None)
    parse.add_argument("sources", nargs="+", metavar="DB", help="recorder databases to merge")
    parse.add_argument("-o", "--output", required=True, help="the database to merge into (created when missing)")
    return parse


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    merged: list[Added] = []
    failure = None
    try:
        merge(args.sources, args.output, merged)
    except MergeError as error:
        failure = str(error)
    except (sqlite3.Error, OSError) as error:
        failure = f"cannot merge into {args.output}: {error}"
    for added in merged:
        sys.stdout.write(
            f"{added.source}: {added.calls} calls added, {added.skipped} already there, {added.runs} backtest runs\n"
        )
    if failure is not None:
        sys.stderr.write(f"just merge: {failure}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
