"""Small rows beside the calls (alerts, budget use) written off the event loop.

The calls go through `RecorderWriter`'s batches; these tables get a row now and then
(an alert that fired, a budget's running total after a call), so they have a writer of
their own: one worker thread with its own sqlite3 connection, fed by `put` (never
blocks). `key` coalesces: of the rows waiting with the same (table, key), only the
latest is written, so a budget updated on every call costs one upsert per batch, not
one per call. A write that fails is retried with backoff while rows wait (bounded:
beyond `max_pending` the oldest are dropped, counted in `dropped`); `close` writes what
is pending, for at most `timeout_s`.

`written(table)` says how many rows of a table reached the disk (committed), so a
caller never reports a row written that is not.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter, OrderedDict
from typing import Any

from recorder import dbfile

logger = logging.getLogger(__name__)

Row = dict[str, Any]
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 5.0


class SideWriter:
    def __init__(self, db_path: str, *, busy_timeout_ms: int = 2000, max_pending: int = 10_000) -> None:
        self.db_path = db_path
        self.busy_timeout_ms = busy_timeout_ms
        self.max_pending = max_pending
        self.dropped = 0
        self.failed_attempts = 0
        self._written: Counter[str] = Counter()
        # (table, key or a unique number) -> (row, upsert?) in the order first put
        self._pending: OrderedDict[tuple[str, Any], tuple[Row, bool]] = OrderedDict()
        self._serial = 0
        self._wake = threading.Condition()
        self._closing = False
        self._busy = False  # a batch is being written
        self._thread = threading.Thread(target=self._run, name="interlock-side-writer", daemon=True)
        self._thread.start()

    def put(self, table: str, row: Row, key: Any = None) -> None:
        """Queue `row` for `table`: inserted, or (with `key`) upserted on the table's
        primary key, replacing an older row of the same key still waiting."""
        with self._wake:
            if self._closing:
                self.dropped += 1
                logger.error("Interlock: a %s row was not written: the writer is closed", table)
                return
            if key is None:
                self._serial += 1
                slot: tuple[str, Any] = (table, ("#", self._serial))
            else:
                slot = (table, key)
            self._pending.pop(slot, None)
            self._pending[slot] = (row, key is not None)
            while len(self._pending) > self.max_pending:
                (lost_table, _), _ = self._pending.popitem(last=False)
                self.dropped += 1
                logger.error(
                    "Interlock: a %s row was dropped: %d rows waiting for the database", lost_table, self.max_pending
                )
            self._wake.notify()

    def written(self, table: str) -> int:
        with self._wake:
            return self._written[table]

    def pending(self) -> int:
        with self._wake:
            return len(self._pending)

    def close(self, timeout_s: float = 5.0) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout_s)
        left = self.pending()
        if left:
            self.dropped += left
            logger.error("Interlock: %d rows (alerts, budget use) not written to %s at shutdown", left, self.db_path)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until nothing is pending (True) or `timeout_s` passed (False)."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._pending and not self._busy, timeout_s)

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        delay = RETRY_FIRST_S
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    self._wake.notify_all()
                    break
                batch = list(self._pending.items())
                self._pending.clear()
                self._busy = True
            try:
                if db is None:
                    dbfile.prepare(self.db_path, self.busy_timeout_ms)
                    db = sqlite3.connect(self.db_path, timeout=self.busy_timeout_ms / 1000, isolation_level=None)
                _commit(db, batch)
            except (sqlite3.Error, OSError) as error:
                self.failed_attempts += 1
                logger.error("Interlock cannot write alerts or budget use to %s: %s (retrying)", self.db_path, error)
                if db is not None:
                    db.close()
                    db = None
                with self._wake:
                    for slot, value in reversed(batch):  # back in front, unless a newer row of the key came
                        if slot not in self._pending:
                            self._pending[slot] = value
                            self._pending.move_to_end(slot, last=False)
                    self._busy = False
                    self._wake.wait(delay)  # closing too: `close` bounds how long it waits
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_FIRST_S
            with self._wake:
                for (table, _), _ in batch:
                    self._written[table] += 1
                self._busy = False
                self._wake.notify_all()
        if db is not None:
            db.close()


def _commit(db: sqlite3.Connection, batch: list[tuple[tuple[str, Any], tuple[Row, bool]]]) -> None:
    db.execute("begin immediate")
    try:
        for (table, _), (row, upsert) in batch:
            columns = ", ".join(row)
            marks = ", ".join(f":{name}" for name in row)
            verb = "insert or replace" if upsert else "insert"
            db.execute(f"{verb} into {table} ({columns}) values ({marks})", row)
        db.execute("commit")
    except BaseException:
        if db.in_transaction:
            db.execute("rollback")
        raise
