"""Reads a proxy's calls database the way a user would: plain SQLite, read-only.

The recorder writes in batches from a background task, so `wait_call()` polls (bounded)
until a call's row and its four stages are there.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WAIT_TIMEOUT_S = 10.0
STAGES = ("request_original", "request_final", "response_original", "response_final")


@dataclass(frozen=True)
class RecordedCall:
    """A `calls` row and its `stages` rows (by stage name)."""

    row: dict[str, Any]
    stages: dict[str, dict[str, Any]]

    def __getitem__(self, column: str) -> Any:
        return self.row[column]

    def stage_body(self, stage: str) -> Any:
        """The parsed `body_json` of a stage (None when the column is NULL)."""
        body = self.stages[stage]["body_json"]
        return None if body is None else json.loads(body)

    def stage_headers(self, stage: str) -> dict[str, str]:
        headers: dict[str, str] = json.loads(self.stages[stage]["headers_json"] or "{}")
        return headers


class CallsDB:
    """Queries against one database file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        connection.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in connection.execute(sql, params)]
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):  # the schema is not created yet
                return []
            raise
        finally:
            connection.close()

    def call(self, call_id: str) -> RecordedCall | None:
        rows = self._query("select * from calls where call_id = ?", (call_id,))
        if not rows:
            return None
        stages = self._query("select * from stages where call_id = ?", (call_id,))
        return RecordedCall(rows[0], {stage["stage"]: stage for stage in stages})

    def wait_call(self, call_id: str, timeout_s: float = WAIT_TIMEOUT_S) -> RecordedCall:
        """The call once its row and all four stages are written."""
        deadline = time.monotonic() + timeout_s
        while True:
            call = self.call(call_id)
            if call is not None and set(call.stages) >= set(STAGES):
                return call
            if time.monotonic() > deadline:
                found = "nothing" if call is None else f"stages {sorted(call.stages)}"
                raise AssertionError(f"call {call_id} not fully recorded in {self.path} after {timeout_s} s: {found}")
            time.sleep(0.05)

    def call_ids(self) -> list[str]:
        return [row["call_id"] for row in self._query("select call_id from calls order by started_at")]

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self._query(sql, params)

    def file_bytes(self) -> bytes:
        """The bytes of the database and its -wal and -shm files, as they are on disk now."""
        parts = [
            self.path,
            self.path.with_name(self.path.name + "-wal"),
            self.path.with_name(self.path.name + "-shm"),
        ]
        return b"".join(part.read_bytes() for part in parts if part.exists())
