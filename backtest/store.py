"""Writes a backtest into the recorder database: `backtest_runs`, `backtest_results`
(migration m013 in `recorder.schema`).

The proxy may be writing to the same file: every write is a short transaction (the run
row, then one per batch of results, which also brings the run's counts up to date) on
a connection that waits for the proxy's lock (`BUSY_TIMEOUT_S`) rather than failing.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from backtest.replay import Outcome
from recorder.rows import insert_sql, iso
from recorder.schema import migrate

BUSY_TIMEOUT_S = 30.0
RESULT_COLUMNS = (
    "run_id", "call_id", "verdict", "changed", "status", "events_json", "judgements_json",
    "request_json", "response_json", "response_raw", "note", "error",
)  # fmt: skip


def connect(db_path: str) -> sqlite3.Connection:
    """The database, migrated (so it has the backtest tables), in WAL mode."""
    migrate(db_path, busy_timeout_ms=int(BUSY_TIMEOUT_S * 1000))
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S)
    conn.execute("pragma foreign_keys = on")
    return conn


def new_run_id() -> str:
    """Sortable like call ids: 12 hex digits of milliseconds, then 8 random ones."""
    return f"{int(time.time() * 1000):012x}{uuid.uuid4().hex[:8]}"


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


@dataclass
class Counts:
    calls: int = 0
    changed: int = 0
    blocked: int = 0
    errors: int = 0
    skipped: int = 0
    judge_calls: int = 0
    judge_cost_usd: float | None = None  # None: no judgement was priced

    def add(self, outcome: Outcome) -> None:
        self.calls += 1
        self.changed += outcome.changed
        self.blocked += outcome.verdict == "blocked"
        self.errors += outcome.error is not None
        self.skipped += outcome.verdict is None and outcome.error is None
        self.judge_calls += len(outcome.judgements)
        costs = [j.cost_usd for j in outcome.judgements if j.cost_usd is not None]
        if costs:
            self.judge_cost_usd = (self.judge_cost_usd or 0.0) + sum(costs)


def result_row(run_id: str, outcome: Outcome) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "call_id": outcome.call_id,
        "verdict": outcome.verdict,
        "changed": int(outcome.changed),
        "status": outcome.status,
        "events_json": json.dumps([e.model_dump(exclude={"at"}) for e in outcome.events], ensure_ascii=False),
        "judgements_json": json.dumps([j.model_dump(exclude={"at"}) for j in outcome.judgements], ensure_ascii=False),
        "request_json": _json(outcome.request),
        "response_json": _json(outcome.response),
        "response_raw": outcome.response_raw,
        "note": outcome.note,
        "error": outcome.error,
    }


class RunWriter:
    """One run: its row at once, its results in batches, its counts with each batch."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        config_path: str,
        policies: list[dict[str, Any]],
        description: str,
        max_judge_calls: int | None,
        estimate_calls: int,
        estimate_usd: float | None,
    ) -> None:
        self.conn = conn
        self.run_id = new_run_id()
        self.counts = Counts()
        self._pending: list[dict[str, Any]] = []
        with conn:
            conn.execute(
                """insert into backtest_runs (run_id, created_at, config_path, policies_json, filter,
                max_judge_calls, calls, changed, blocked, errors, skipped, judge_calls,
                judge_estimate_calls, judge_estimate_usd)
                values (?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0, 0, ?, ?)""",
                (
                    self.run_id,
                    iso(time.time()),
                    config_path,
                    json.dumps(policies, ensure_ascii=False),
                    description,
                    max_judge_calls,
                    estimate_calls,
                    estimate_usd,
                ),
            )

    def add(self, outcome: Outcome, batch_size: int) -> None:
        self.counts.add(outcome)
        self._pending.append(result_row(self.run_id, outcome))
        if len(self._pending) >= batch_size:
            self.flush()

    def flush(self, finished: bool = False) -> None:
        rows, self._pending = self._pending, []
        counts = self.counts
        with self.conn:
            if rows:
                self.conn.executemany(insert_sql("backtest_results", RESULT_COLUMNS), rows)
            self.conn.execute(
                """update backtest_runs set calls = ?, changed = ?, blocked = ?, errors = ?, skipped = ?,
                judge_calls = ?, judge_cost_usd = ?, finished_at = ? where run_id = ?""",
                (
                    counts.calls,
                    counts.changed,
                    counts.blocked,
                    counts.errors,
                    counts.skipped,
                    counts.judge_calls,
                    counts.judge_cost_usd,
                    iso(time.time()) if finished else None,
                    self.run_id,
                ),
            )
