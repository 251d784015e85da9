"""Retention: calls older than N days deleted, with everything recorded about them, or
first archived to another SQLite file.

`prune` works on an aiosqlite connection: the proxy's writer runs it on its own
connection (config `recorder.retention_days`, at start-up and every
`recorder.retention_interval_s`), and `just prune` (`recorder.prune_cli`) on one of its
own. It goes in batches of `batch_size` calls, oldest first, one short transaction
each, taken under the writer's lock so that a batch of records waits for at most one
batch of pruning. What goes with a call is `recorder.transfer`'s: its stages, policy
events, judge decisions, tool calls and backtest results; a backtest run left with no
result goes too. Deleting from `calls` goes through its triggers, so `calls_fts` (the
search) forgets the pruned calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import aiosqlite
from pydantic import BaseModel, Field

from recorder import dbfile, transfer
from recorder.rows import iso

BATCH_SIZE = 500
ARCHIVE_SCHEMA = "archive"
DAY_S = 86_400.0


class Retention(BaseModel):
    """What to prune and where to archive it."""

    days: float = Field(gt=0, allow_inf_nan=False)
    archive: str | None = None  # a SQLite file (created with the schema if missing)
    batch_size: int = Field(default=BATCH_SIZE, ge=1)


class PruneResult(BaseModel):
    cutoff: str  # calls that started before this (ISO-8601 UTC) were pruned
    calls: int = 0
    runs: int = 0  # backtest runs left with no result, pruned too
    archive: str | None = None


def cutoff(days: float, now: float | None = None) -> str:
    """The `started_at` before which a call is older than `days` days."""
    stamp = iso((time.time() if now is None else now) - days * DAY_S)
    assert stamp is not None
    return stamp


async def prune(
    db: aiosqlite.Connection,
    retention: Retention,
    *,
    lock: asyncio.Lock | None = None,
    stopping: Callable[[], bool] = lambda: False,
    now: float | None = None,
) -> PruneResult:
    """Prune `db` (opened with `isolation_level=None`); stops between batches once
    `stopping()` says so. Raises `sqlite3.Error` (or OSError for the archive) on failure:
    batches committed before stay pruned (and archived)."""
    lock = lock or asyncio.Lock()
    result = PruneResult(cutoff=cutoff(retention.days, now), archive=retention.archive)
    if retention.archive is not None:
        await asyncio.to_thread(dbfile.prepare, retention.archive, 5000)
    async with lock:
        await db.execute(transfer.IDS_TABLE_SQL)
        if retention.archive is not None:
            await db.execute(f"attach database ? as {ARCHIVE_SCHEMA}", (retention.archive,))
    try:
        columns = await _columns(db, retention.archive is not None)
        while not stopping():
            async with lock:
                count = await _transaction(db, _batch(db, result.cutoff, retention, columns))
            result.calls += count
            if count < retention.batch_size:
                break
        async with lock:
            result.runs = await _transaction(db, _orphan_runs(db))
    finally:
        if retention.archive is not None:
            async with lock:
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await db.execute(f"detach database {ARCHIVE_SCHEMA}")
    return result


async def _columns(db: aiosqlite.Connection, archiving: bool) -> dict[str, list[str]]:
    main = transfer.group_columns(await db.execute_fetchall(transfer.columns_sql("main")))
    if not archiving:
        return main
    archive = transfer.group_columns(await db.execute_fetchall(transfer.columns_sql(ARCHIVE_SCHEMA)))
    return transfer.common_columns(main, archive)


async def _transaction(db: aiosqlite.Connection, work: Awaitable[int]) -> int:
    """Run `work` (a coroutine giving a count) in one immediate transaction."""
    await db.execute("begin immediate")
    try:
        count = await work
        await db.commit()
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(Exception):
                await db.rollback()
        raise
    return count


async def _batch(db: aiosqlite.Connection, before: str, retention: Retention, columns: dict[str, list[str]]) -> int:
    await db.execute(transfer.CLEAR_IDS_SQL)
    selected = await db.execute(
        f"insert into {transfer.IDS_TABLE} select call_id from main.calls where started_at < ? "
        "order by started_at limit ?",
        (before, retention.batch_size),
    )
    count = selected.rowcount
    if count > 0:
        statements = transfer.copy_sql(columns, "main", ARCHIVE_SCHEMA) if retention.archive is not None else []
        for sql in [*statements, *transfer.delete_sql("main")]:
            await db.execute(sql)
    return count


async def _orphan_runs(db: aiosqlite.Connection) -> int:
    deleted = await db.execute(transfer.orphan_runs_sql("main"))
    return deleted.rowcount
