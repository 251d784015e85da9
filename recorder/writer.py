"""The background writer: CallRecords from a bounded in-memory queue into SQLite.

A flow never awaits the disk: `submit` is synchronous and never blocks. One task takes
records off the queue in batches and writes each batch in one transaction through
aiosqlite; rows are built (JSON, pricing) in a worker thread. Every record that does not
reach the database (queue full, database unusable, batch failed, shutdown timeout) is
counted in `stats.dropped` and logged, rate-limited; nothing here raises into the proxy.

`submit` must be called from the event loop's thread, as the mitmproxy hooks are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiosqlite
from pydantic import BaseModel

from recorder.models import CallRecord
from recorder.rows import (
    CALL_COLUMNS,
    EVENT_COLUMNS,
    JUDGE_COLUMNS,
    STAGE_COLUMNS,
    TOOL_CALL_COLUMNS,
    BatchRows,
    batch_rows,
    insert_sql,
)

log = logging.getLogger(__name__)

LOG_EVERY = 100  # after the first, log one drop (or failed batch) in this many


_UPSERT_CALL = (
    insert_sql("calls", CALL_COLUMNS)
    + " on conflict(call_id) do update set "
    + ", ".join(f"{c} = excluded.{c}" for c in CALL_COLUMNS if c != "call_id")
)
_INSERT_STAGE = insert_sql("stages", STAGE_COLUMNS)
_INSERT_EVENT = insert_sql("policy_events", EVENT_COLUMNS)
_INSERT_JUDGE = insert_sql("judge_decisions", JUDGE_COLUMNS)
_INSERT_TOOL_CALL = insert_sql("tool_calls", TOOL_CALL_COLUMNS)
_CHILD_TABLES = ("stages", "policy_events", "judge_decisions", "tool_calls")


class WriterStats(BaseModel):
    """Counters of a RecorderWriter, a snapshot."""

    written: int = 0  # records committed to the database
    dropped: int = 0  # records that never will be
    batches: int = 0  # transactions committed
    failed_batches: int = 0
    queue_depth: int = 0
    last_error: str | None = None


class RecorderWriter:
    """Writes submitted CallRecords to the SQLite database at `db_path`.

    A record is one whole call: writing a call_id again replaces its row and all its
    stages, events, judgements and tool calls.
    """

    def __init__(
        self,
        db_path: str,
        queue_size: int = 10_000,
        batch_size: int = 200,
        *,
        busy_timeout_ms: int = 2000,
    ) -> None:
        self.db_path = db_path
        self.batch_size = batch_size
        self.busy_timeout_ms = busy_timeout_ms
        self._queue: asyncio.Queue[CallRecord] = asyncio.Queue(maxsize=queue_size)
        self._db: aiosqlite.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._dropping = False  # the database is unusable, or the writer has stopped
        self._opening: asyncio.Event | None = None  # set once start() has opened the database, or given up
        self._stats = WriterStats()
        self._repeats = 0  # consecutive occurrences of stats.last_error

    @property
    def stats(self) -> WriterStats:
        return self._stats.model_copy(update={"queue_depth": self._queue.qsize()})

    def submit(self, record: CallRecord) -> bool:
        """Queue `record` for writing; False (and counted as dropped) if it cannot be."""
        if self._dropping:
            self._drop(1, f"recorder is not writing to {self.db_path}")
            return False
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._drop(
                1,
                f"recorder queue full ({self._queue.maxsize} records), call {record.call_id}",
            )
            return False
        return True

    async def start(self) -> None:
        """Migrate and open the database, then start writing in the background.

        If the database cannot be used, log why and keep counting every record as dropped.
        """
        self._opening = asyncio.Event()
        try:
            await self._open()
        finally:
            self._opening.set()

    async def _open(self) -> None:
        try:
            await asyncio.to_thread(_migrate, self.db_path, self.busy_timeout_ms)
            self._db = await aiosqlite.connect(self.db_path, isolation_level=None)
            await self._db.execute(f"pragma busy_timeout = {int(self.busy_timeout_ms)}")
            await self._db.execute("pragma synchronous = NORMAL")
        except Exception as exc:  # noqa: BLE001 - any failure means "do not record", never "crash the proxy"
            self._error(f"recorder cannot use database {self.db_path}: {exc}; calls will not be recorded")
            await self._close_db()
            self._dropping = True
            self._drop(self._take_all(), f"recorder is not writing to {self.db_path}")
            return
        if self._dropping:  # stop() ran while the database was being opened
            await self._close_db()
            return
        self._task = asyncio.create_task(self._run(self._db), name="interlock-recorder")

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (for at most `timeout_s`), then close the database.

        Records still queued at the timeout are dropped; a batch already being written
        is finished first. A stop while the database is still being opened waits for
        the opening (within the same bound), so records queued meanwhile are written.
        """
        if self._opening is not None and not self._opening.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._opening.wait(), timeout_s)
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
        self._dropping = True
        leftover = self._take_all()
        if leftover:
            self._drop(leftover, f"recorder stopped with {leftover} records unwritten")
        if self._task is not None:
            await self._queue.join()  # the batch in flight
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_db()
        stats = self._stats
        report = log.warning if stats.dropped else log.info
        report("recorder %s: %d calls written, %d dropped", self.db_path, stats.written, stats.dropped)

    async def _run(self, db: aiosqlite.Connection) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(db, batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, db: aiosqlite.Connection, batch: list[CallRecord]) -> None:
        """Write one batch in one transaction; count it as dropped if that fails."""
        try:
            rows = await asyncio.to_thread(batch_rows, batch)
            if rows.call_ids:
                await self._commit(db, rows)
        except Exception as exc:  # noqa: BLE001 - a failed batch must never stop the writer
            if db.in_transaction:
                with contextlib.suppress(Exception):
                    await db.rollback()
            self._stats.failed_batches += 1
            self._error(f"recorder could not write to {self.db_path}: {exc}")
            self._drop(len(batch), f"batch of {len(batch)} records lost")
            return
        for call_id, reason in rows.failures:
            self._error(f"recorder cannot record call {call_id}: {reason}")
        self._drop(len(rows.failures), "records lost")
        self._stats.written += len(batch) - len(rows.failures)
        self._stats.batches += bool(rows.call_ids)

    @staticmethod
    async def _commit(db: aiosqlite.Connection, rows: BatchRows) -> None:
        await db.execute("begin immediate")
        await db.executemany(_UPSERT_CALL, rows.calls)
        for table in _CHILD_TABLES:
            await db.executemany(f"delete from {table} where call_id = ?", [(c,) for c in rows.call_ids])
        await db.executemany(_INSERT_STAGE, rows.stages)
        await db.executemany(_INSERT_EVENT, rows.events)
        await db.executemany(_INSERT_JUDGE, rows.judgements)
        await db.executemany(_INSERT_TOOL_CALL, rows.tool_calls)
        await db.commit()

    def _take_all(self) -> int:
        """Empty the queue; the number of records removed."""
        taken = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
            taken += 1
        return taken

    def _drop(self, count: int, reason: str) -> None:
        """Count `count` records as dropped, logging the first drop and every LOG_EVERY-th."""
        if count <= 0:
            return
        before = self._stats.dropped
        self._stats.dropped += count
        if before == 0 or before // LOG_EVERY != self._stats.dropped // LOG_EVERY:
            log.warning("%s: %d records dropped so far", reason, self._stats.dropped)

    def _error(self, message: str) -> None:
        """Remember and log an error: each new message, then every LOG_EVERY-th repeat."""
        if message != self._stats.last_error:
            self._repeats = 0
        if self._repeats % LOG_EVERY == 0:
            log.error("%s", message)
        self._repeats += 1
        self._stats.last_error = message

    async def _close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                await self._db.close()
            self._db = None


def _migrate(db_path: str, busy_timeout_ms: int) -> None:
    """Run the migrations; sqlite-utils is imported here, in the worker thread, to keep
    it (about 0.1 s) off the proxy's start-up path."""
    from recorder.schema import migrate

    migrate(db_path, busy_timeout_ms=busy_timeout_ms)
