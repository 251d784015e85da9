"""The background writer: CallRecords from a bounded in-memory queue into SQLite.

A flow never awaits the disk: `submit` is synchronous and never blocks. One task takes
records off the queue in batches and writes each batch in one transaction through
aiosqlite; rows are built (JSON, pricing) in a worker thread, and so is every file
system call (`recorder.dbfile`).

A batch counts as written only once SQLite has committed it to the file the database
path still names (its inode is checked after the commit). When a write fails or the file
was removed or replaced, recording stops (logged once): the batch is kept, later records
wait in the queue, and the writer retries with backoff, reopening the database and
recreating it with its schema if it is gone; the first batch written again logs that
recording resumed. With a `Retention`, the writer also prunes old calls on its own
connection (`recorder.retention`) once it has opened the database and then every
`retention_interval_s`, between batches of records, never on a flow's path. Records are dropped (counted in `stats.dropped`, logged rate-limited)
only when the queue is full, a record cannot be encoded, or at shutdown. Nothing here
raises into the proxy.

`submit` must be called from the event loop's thread, as the mitmproxy hooks are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiosqlite
from pydantic import BaseModel

from recorder import dbfile, retention
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
# aiosqlite logs two DEBUG records per statement, and mitmproxy hands every record to every
# addon on the event loop (its legacy `add_log` event): a tenth of the loop's time at 60
# calls/s, for lines nobody shows. Its warnings and errors still come through.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

LOG_EVERY = 100  # after the first, log one drop (or repeated error) in this many
RETRY_FIRST_S = 0.5  # the first wait before retrying an unusable database, doubled each time
RETRY_MAX_S = 4.0
# A batch's first record waits this long for others: a transaction costs the event loop
# about as much as building several records, so at tens of calls a second one per call
# would double the recorder's share of the loop.
LINGER_S = 0.05
# After a batch of at least BUSY_BATCH records (calls arriving at 200 a second or more),
# the next one waits longer: each transaction writes the calls' indexes and full-text
# segments once, so at 300 calls a second a commit per 60 records instead of per 15 costs
# less CPU per record (`just bench call_path`). Calls reach the database within LINGER_BUSY_S.
BUSY_BATCH = 10
LINGER_BUSY_S = 0.2


_UPSERT_CALL = (
    insert_sql("calls", CALL_COLUMNS)
    + " on conflict(call_id) do update set "
    + ", ".join(f"{c} = excluded.{c}" for c in CALL_COLUMNS if c != "call_id")
)
_INSERT_STAGE = insert_sql("stage_rows", STAGE_COLUMNS)
_INSERT_EVENT = insert_sql("policy_events", EVENT_COLUMNS)
_INSERT_JUDGE = insert_sql("judge_decisions", JUDGE_COLUMNS)
_INSERT_TOOL_CALL = insert_sql("tool_calls", TOOL_CALL_COLUMNS)
_CHILD_TABLES = ("stage_rows", "policy_events", "judge_decisions", "tool_calls")


class DatabaseMoved(Exception):
    """The database path no longer names the file the writer committed to."""


class WriterStats(BaseModel):
    """Counters of a RecorderWriter, a snapshot."""

    written: int = 0  # records committed to the database
    dropped: int = 0  # records that never will be
    batches: int = 0  # transactions committed
    failed_batches: int = 0  # attempts to write a batch that failed (the batch is retried)
    reopened: int = 0  # times the database was opened again after a failure
    pruned: int = 0  # calls removed by retention
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
        retention: retention.Retention | None = None,
        retention_interval_s: float = 3600.0,
    ) -> None:
        self.db_path = db_path
        self.batch_size = batch_size
        self.busy_timeout_ms = busy_timeout_ms
        self.retention = retention
        self.retention_interval_s = retention_interval_s
        self._transaction = asyncio.Lock()  # one transaction at a time on `_db`: a batch of records or of pruning
        self._pruning: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[CallRecord] = asyncio.Queue(maxsize=queue_size)
        self._db: aiosqlite.Connection | None = None
        self._file: dbfile.FileId | None = None  # the file `_db` has open
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()  # stop() ran: no more records, no more retries
        self._opening: asyncio.Event | None = None  # set once start() has tried to open the database
        self._stopped_at: float | None = None  # when recording stopped (monotonic), while it is stopped
        self._stats = WriterStats()
        self._repeats = 0  # consecutive occurrences of stats.last_error

    @property
    def stats(self) -> WriterStats:
        return self._stats.model_copy(update={"queue_depth": self._queue.qsize()})

    def submit(self, record: CallRecord) -> bool:
        """Queue `record` for writing; False (and counted as dropped) if it cannot be."""
        if self._stopping.is_set():
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
        """Open (creating and migrating) the database, then write in the background.

        If the database cannot be used yet, recording stops (logged) and the writer
        retries; records wait in the queue meanwhile.
        """
        self._opening = asyncio.Event()
        try:
            try:
                await self._open()
            except Exception as exc:  # noqa: BLE001 - an unusable database is retried, never a crash
                self._recording_stopped(f"cannot use the database: {exc}")
                await self._close_db()
            if not self._stopping.is_set():  # stop() may have run while the database was being opened
                self._task = asyncio.create_task(self._run(), name="interlock-recorder")
                if self.retention is not None:
                    self._pruning = asyncio.create_task(self._prune_every(self.retention), name="interlock-retention")
        finally:
            self._opening.set()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (for at most `timeout_s`), then close the database.

        Records still queued at the timeout are dropped; a batch already being written
        is finished first (or dropped if that fails: no more retries). A stop while the
        database is still being opened waits for the opening (within the same bound), so
        records queued meanwhile are written.
        """
        if self._opening is not None and not self._opening.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._opening.wait(), timeout_s)
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
        self._stopping.set()
        if self._pruning is not None:  # it stops after the batch it is pruning
            with contextlib.suppress(Exception):
                await self._pruning
            self._pruning = None
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

    async def _prune_every(self, policy: retention.Retention) -> None:
        """Prune now, then every `retention_interval_s`, until the writer stops. A prune
        that fails is logged and tried again at the next interval."""
        while not self._stopping.is_set():
            db = self._db
            if db is not None:
                try:
                    done = await retention.prune(db, policy, lock=self._transaction, stopping=self._stopping.is_set)
                except Exception as exc:  # noqa: BLE001 - pruning failing must never stop recording
                    log.error("recorder could not prune %s: %s", self.db_path, exc)
                else:
                    self._stats.pruned += done.calls
                    if done.calls or done.runs:
                        where = f", archived to {done.archive}" if done.archive else ""
                        log.info("recorder pruned %d calls started before %s%s", done.calls, done.cutoff, where)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.retention_interval_s)

    async def _run(self) -> None:
        linger_s = LINGER_S
        while True:
            batch = [await self._queue.get()]
            try:
                if self._queue.qsize() < self.batch_size - 1:
                    await asyncio.sleep(linger_s)  # let the batch fill
                while len(batch) < self.batch_size and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                linger_s = LINGER_BUSY_S if len(batch) >= BUSY_BATCH else LINGER_S
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[CallRecord]) -> None:
        """Write one batch, retrying with backoff while the database is unusable; drop
        it only if the writer stops first."""
        try:
            rows = await asyncio.to_thread(batch_rows, batch)
        except Exception as exc:  # noqa: BLE001 - rows of one batch failing must never stop the writer
            self._error(f"recorder cannot build the rows of {len(batch)} records: {exc}")
            self._drop(len(batch), f"batch of {len(batch)} records lost")
            return
        for call_id, reason in rows.failures:
            self._error(f"recorder cannot record call {call_id}: {reason}")
        self._drop(len(rows.failures), "records lost")
        if not rows.call_ids:
            return
        delay = RETRY_FIRST_S
        while not await self._try_commit(rows):
            if self._stopping.is_set():
                self._drop(len(rows.call_ids), f"recorder stopped with a batch of {len(rows.call_ids)} unwritten")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, RETRY_MAX_S)
        self._stats.written += len(rows.call_ids)
        self._stats.batches += 1
        self._recording_resumed()

    async def _try_commit(self, rows: BatchRows) -> bool:
        """One attempt: (re)open the database if needed, commit, check the file is still
        the one the path names. On failure, log, close the connection and say False."""
        try:
            db = self._db
            if db is None:
                db = await self._open()
                self._stats.reopened += 1
            await self._commit(db, rows)
            if await asyncio.to_thread(dbfile.file_id, self.db_path) != self._file:
                raise DatabaseMoved("the database file was removed or replaced; the batch is written again")
        except Exception as exc:  # noqa: BLE001 - any failure means "retry later", never "crash the proxy"
            self._stats.failed_batches += 1
            self._recording_stopped(str(exc) or type(exc).__name__)
            await self._close_db()
            return False
        return True

    async def _open(self) -> aiosqlite.Connection:
        """Create or migrate the database, connect, and note which file is open."""
        await asyncio.to_thread(dbfile.prepare, self.db_path, self.busy_timeout_ms)
        db = self._db = await aiosqlite.connect(self.db_path, isolation_level=None)
        await db.execute(f"pragma busy_timeout = {int(self.busy_timeout_ms)}")
        await db.execute("pragma synchronous = NORMAL")
        self._file = await asyncio.to_thread(dbfile.file_id, self.db_path)
        return db

    async def _commit(self, db: aiosqlite.Connection, rows: BatchRows) -> None:
        async with self._transaction:
            await db.execute("begin immediate")
            try:
                await db.executemany(_UPSERT_CALL, rows.calls)
                for table in _CHILD_TABLES:
                    await db.executemany(f"delete from {table} where call_id = ?", [(c,) for c in rows.call_ids])
                await db.executemany(_INSERT_STAGE, rows.stages)
                await db.executemany(_INSERT_EVENT, rows.events)
                await db.executemany(_INSERT_JUDGE, rows.judgements)
                await db.executemany(_INSERT_TOOL_CALL, rows.tool_calls)
                await db.commit()
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(Exception):
                        await db.rollback()
                raise

    def _recording_stopped(self, reason: str) -> None:
        """Log that recording stopped (once per outage; repeated errors rate-limited)."""
        if self._stopped_at is not None:
            self._error(f"recorder still cannot write to {self.db_path}: {reason}")
            return
        self._stopped_at = time.monotonic()
        self._stats.last_error = reason
        log.error(
            "recorder stopped recording to %s: %s; keeping up to %d calls queued and retrying",
            self.db_path,
            reason,
            self._queue.maxsize,
        )

    def _recording_resumed(self) -> None:
        if self._stopped_at is None:
            return
        log.warning(
            "recorder resumed recording to %s after %.1f s (%d calls dropped so far)",
            self.db_path,
            time.monotonic() - self._stopped_at,
            self._stats.dropped,
        )
        self._stopped_at = None

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
        db, self._db, self._file = self._db, None, None
        if db is not None:
            with contextlib.suppress(Exception):
                await db.close()
