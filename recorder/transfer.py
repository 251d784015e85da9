"""Whole calls between SQLite databases: the SQL that copies or deletes calls together
with everything recorded about them, shared by retention (`recorder.retention`) and
merging (`recorder.merge`).

A call is its `calls` row and its rows in `CHILD_TABLES`. Which calls: the ids in the
temporary table `temp.transfer_ids`, which the caller fills first (`IDS_TABLE_SQL`).
Pure: these functions return SQL text; the caller executes it in one transaction, on
a connection where both schemas (`main`, an attached database) are migrated. Deleting
from `calls` goes through its full-text triggers, and so does inserting, so `calls_fts`
stays consistent on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

IDS_TABLE = "temp.transfer_ids"
IDS_TABLE_SQL = "create temp table if not exists transfer_ids (call_id text primary key)"
CLEAR_IDS_SQL = f"delete from {IDS_TABLE}"
CHILD_TABLES = ("stage_rows", "policy_events", "judge_decisions", "tool_calls", "backtest_results")
TABLES = ("calls", *CHILD_TABLES, "backtest_runs")
# Row ids the target numbers itself: copying them would collide with its own.
SURROGATE_KEYS = {"policy_events": "id", "judge_decisions": "id"}
_SELECTED = f"call_id in (select call_id from {IDS_TABLE})"

Columns = Mapping[str, Sequence[str]]  # table -> its columns, in order


def columns_sql(schema: str) -> str:
    """A query of (table, column) for every column of `TABLES` in `schema`, in order."""
    names = ", ".join(f"'{table}'" for table in TABLES)
    return (
        f"select m.name, p.name from {schema}.sqlite_master m, pragma_table_info(m.name, '{schema}') p "
        f"where m.type = 'table' and m.name in ({names}) order by m.name, p.cid"
    )


def group_columns(rows: Iterable[Sequence[Any]]) -> dict[str, list[str]]:
    """`columns_sql`'s rows as table -> columns."""
    grouped: dict[str, list[str]] = {}
    for table, column in rows:
        grouped.setdefault(table, []).append(column)
    return grouped


def common_columns(source: Columns, target: Columns) -> dict[str, list[str]]:
    """The columns both sides have, per table, in `source`'s order: a database written by
    a newer release may have columns this one does not know, which are left behind."""
    return {table: [c for c in cols if c in target.get(table, ())] for table, cols in source.items()}


def copy_table_sql(columns: Columns, table: str, source: str, target: str, where: str, verb: str = "insert") -> str:
    """Copy `table`'s rows matching `where` from `source` to `target` (`verb`: `insert`,
    `insert or ignore`), without its surrogate key."""
    names = ", ".join(f'"{c}"' for c in columns[table] if c != SURROGATE_KEYS.get(table))
    return f"{verb} into {target}.{table} ({names}) select {names} from {source}.{table} where {where}"


def copy_sql(columns: Columns, source: str, target: str) -> list[str]:
    """Copy the selected calls from `source` to `target`, replacing what `target` had of
    them (its rows of those calls first deleted, children and all), with the backtest
    runs their results belong to (a run `target` has already is kept as it is).
    `columns` are `source`'s, and `target` must have them all (both migrated)."""
    runs = f"run_id in (select run_id from {source}.backtest_results where {_SELECTED})"
    return [
        *delete_sql(target),
        copy_table_sql(columns, "calls", source, target, _SELECTED),
        copy_table_sql(columns, "backtest_runs", source, target, runs, "insert or ignore"),
        *(copy_table_sql(columns, table, source, target, _SELECTED) for table in CHILD_TABLES),
    ]


def delete_sql(schema: str) -> list[str]:
    """Delete the selected calls from `schema`, children first."""
    return [f"delete from {schema}.{table} where {_SELECTED}" for table in (*CHILD_TABLES, "calls")]


def orphan_runs_sql(schema: str) -> str:
    """Delete the backtest runs of `schema` left with no result (every call they covered was pruned)."""
    return (
        f"delete from {schema}.backtest_runs where calls > 0 and not exists "
        f"(select 1 from {schema}.backtest_results r where r.run_id = backtest_runs.run_id)"
    )
