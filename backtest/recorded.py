"""The recorded calls a backtest covers: selected by a filter, read one at a time.

A filter is `--since DATE`, `--session ID`, `--where SQL` (over `calls c`) or nothing
(every call); `Filter.call_ids` lists the calls it selects in the order they started,
and `load` reads one call's recorded request (`request_original`) and upstream answer
(`response_original`), so a run over a large database never holds more than one call's
bodies.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from interlock.json_text import loads_or_none


class FilterError(ValueError):
    """A filter that cannot select calls (a bad date, SQL that does not run)."""


@dataclass(frozen=True, slots=True)
class Filter:
    """Which calls a run covers: SQL over `calls c`, and how people read it."""

    where: str = "1"
    params: tuple[Any, ...] = ()
    description: str = "all calls"

    @classmethod
    def since(cls, date: str) -> Filter:
        try:
            datetime.fromisoformat(date)
        except ValueError:
            raise FilterError(f"--since: not an ISO date or time: {date!r} (e.g. 2026-01-31)") from None
        return cls("c.started_at >= ?", (date,), f"since {date}")

    @classmethod
    def session(cls, session_id: str) -> Filter:
        return cls("c.session_id = ?", (session_id,), f"session {session_id}")

    @classmethod
    def sql(cls, where: str) -> Filter:
        return cls(f"({where})", (), f"where {where}")

    def call_ids(self, conn: sqlite3.Connection) -> list[str]:
        sql = f"select c.call_id from calls c where {self.where} order by c.started_at, c.call_id"
        try:
            return [row[0] for row in conn.execute(sql, self.params)]
        except sqlite3.Error as error:
            raise FilterError(f"{self.description}: {error}") from None


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One call as recorded: what the client sent, what upstream answered."""

    call_id: str
    dialect: str
    path: str
    status: int | None
    verdict: str
    error: str | None
    request: Any  # the parsed request_original, None when it was not JSON
    response_headers: dict[str, str] | None  # None: no response recorded
    response_body: Any  # parsed JSON, or a stream's reassembled message
    response_raw: bytes | None  # a stream's bytes (None when withheld: see the note)
    response_note: str | None
    tool_calls: int  # tool calls in the recorded upstream answer
    request_blocked: bool  # the recorded chain blocked the request: nothing went upstream

    @property
    def has_response(self) -> bool:
        return self.response_headers is not None or self.response_body is not None or self.response_raw is not None


_CALL_SQL = """select c.call_id, c.dialect, c.path, c.status, c.verdict, c.error,
  q.body_json, p.stage, p.headers_json, p.body_json, p.raw, p.note,
  (select count(*) from tool_calls t where t.call_id = c.call_id and t.stage = 'response_original'),
  exists (select 1 from policy_events e where e.call_id = c.call_id and e.action = 'error'
    and json_extract(e.details_json, '$.hook') = 'on_request'
    and json_extract(e.details_json, '$.on_error') = 'block')
from calls c
left join stages q on q.call_id = c.call_id and q.stage = 'request_original'
left join stages p on p.call_id = c.call_id and p.stage = 'response_original'
where c.call_id = ?"""


def load(conn: sqlite3.Connection, call_id: str) -> RecordedCall | None:
    row = conn.execute(_CALL_SQL, (call_id,)).fetchone()
    if row is None:
        return None
    call_id, dialect, path, status, verdict, error, request, stage, headers, body, raw, note, tools, blocked = row
    return RecordedCall(
        call_id=call_id,
        dialect=dialect,
        path=path,
        status=status,
        verdict=verdict,
        error=error,
        request=loads_or_none(request),
        response_headers=(loads_or_none(headers) or {}) if stage is not None else None,
        response_body=loads_or_none(body),
        response_raw=raw,
        response_note=note,
        tool_calls=tools,
        request_blocked=bool(blocked),
    )


def recorded_request(conn: sqlite3.Connection, call_id: str) -> tuple[str, Any]:
    """(dialect, parsed request_original or None) of one call."""
    row = conn.execute(
        """select c.dialect, q.body_json from calls c
        left join stages q on q.call_id = c.call_id and q.stage = 'request_original' where c.call_id = ?""",
        (call_id,),
    ).fetchone()
    if row is None:
        return "", None
    request = loads_or_none(row[1])
    return row[0], request if isinstance(request, dict) else None
