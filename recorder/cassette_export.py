"""Cassette entries (`interlock.cassette`) from recorded calls: a live `CallRecord` as a
call ends, or the rows of a recorder database.

Both go through `entry`: the request as it went upstream (`request_final`) and the answer
as upstream sent it (`response_original`): a stream split back into its chunks at the
sizes and times they arrived (`arrivals`), a WebSocket turn into its server frames, a
whole body as its exact bytes when the live record has them (`StageRecord.exact`), else
its JSON serialised again (the database keeps parsed JSON, not bytes; noted).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from interlock.cassette import CassetteEntry, CassetteRequest, CassetteResponse, Chunk
from interlock.sse import parse_all
from recorder.models import CallRecord, StageRecord
from recorder.rows import iso

# Not replayed as recorded: the body is replayed decoded and whole or chunk by chunk, and
# the proxy gives every replayed call its own id. The URL names the host (a `Host` header
# recorded through `map_remote` names the address it was mapped to).
_DROPPED_HEADERS = frozenset(
    {
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "x-interlock-call-id",
        "host",
    }
)


class NotReplayable(ValueError):
    """A recorded call a cassette cannot hold (no answer, or its raw stream withheld)."""


def _headers(headers: dict[str, str] | None) -> list[tuple[str, str]]:
    return [(name, value) for name, value in (headers or {}).items() if name.lower() not in _DROPPED_HEADERS]


def _stream_chunks(raw: bytes, arrivals: list[tuple[float, int]] | None, start: float) -> list[Chunk]:
    """The stream cut back into the chunks it arrived in; without arrivals (older
    databases), one chunk per SSE event, all at `start`."""
    if not arrivals:
        return [Chunk.of(start, event.raw) for event in parse_all(raw)]
    chunks, at = [], 0
    for t, size in arrivals:
        chunks.append(Chunk.of(t, raw[at : at + size]))
        at += size
    if at < len(raw):  # bytes no arrival accounts for (a decoder's tail): with the last
        chunks.append(Chunk.of(arrivals[-1][0], raw[at:]))
    return chunks


def _frames(raw: bytes, arrivals: list[tuple[float, int]] | None, start: float) -> list[Chunk]:
    """A WebSocket turn's server frames: each frame was recorded as the SSE event that
    carries its JSON (see `interlock.engine.frames`), one arrival per frame."""
    times = [t for t, _ in arrivals or []]
    return [
        Chunk(t=times[i] if i < len(times) else start, text=event.data or "")
        for i, event in enumerate(parse_all(raw))
        if event.data is not None
    ]


def entry(
    *,
    call_id: str,
    started_at: float,
    first_byte_at: float | None,
    dialect: str,
    provider: str,
    host: str,
    path: str,
    status: int | None,
    request: StageRecord,
    response: StageRecord | None,
    error: str | None = None,
) -> CassetteEntry:
    """The cassette entry of one call; `NotReplayable` when it has no answer to replay
    (saying why, with the call's `error` when it has one). A WebSocket turn is recorded
    with its connection's `101` upgrade as its status."""
    if status is None or response is None:
        raise NotReplayable(f"call {call_id} has no response" + (f" ({error})" if error else ""))
    websocket = status == 101
    start = round(first_byte_at - started_at, 4) if first_byte_at is not None else 0.0
    note = None
    body: Chunk | None = None
    chunks: list[Chunk] | None = None
    if response.arrivals is not None or (websocket and response.raw is not None):
        if response.raw is None:
            raise NotReplayable(f"call {call_id}: {response.note or 'its raw stream was not kept'}")
        cut = _frames if websocket else _stream_chunks
        chunks = cut(response.raw, response.arrivals, start)
    elif response.exact is not None:
        body = Chunk.of(start, response.exact)
    elif response.raw is not None:
        body = Chunk.of(start, response.raw)  # a stream that arrived whole, or a body that is not JSON
    elif response.body is not None:
        body = Chunk.of(start, json.dumps(response.body, ensure_ascii=False).encode("utf-8"))
        note = "body re-serialised from its parsed JSON"
    else:
        body = Chunk(t=start, text="")
    scheme = "wss" if websocket else "https"
    return CassetteEntry(
        call_id=call_id,
        recorded_at=iso(started_at) or "",
        dialect=dialect,
        provider=provider,
        transport="websocket" if websocket else "http",
        request=CassetteRequest(
            url=f"{scheme}://{host}{path}",
            headers=_headers(request.headers),
            body=request.body,
            body_text=request.raw.decode("utf-8", "replace") if request.body is None and request.raw else None,
        ),
        response=CassetteResponse(status=status, headers=_headers(response.headers), t=start, body=body, chunks=chunks),
        note=note,
    )


def entry_from_record(record: CallRecord) -> CassetteEntry:
    """The entry of a call that just ended (its record already scrubbed)."""
    stages = {stage.stage: stage for stage in record.stages}
    request = stages.get("request_final") or StageRecord(stage="request_final")
    return entry(
        call_id=record.call_id,
        started_at=record.started_at,
        first_byte_at=record.first_byte_at,
        dialect=record.dialect,
        provider=record.provider,
        host=record.host,
        path=record.path,
        status=record.status,
        request=request,
        response=stages.get("response_original"),
        error=record.error,
    )


_CALLS_SQL = """select c.call_id, c.started_at, c.ttfb_ms, c.dialect, c.provider, c.host, c.path, c.status,
  q.headers_json, q.body_json, q.raw, p.stage, p.headers_json, p.body_json, p.raw, p.note, p.arrivals_json,
  c.error
from calls c
left join stages q on q.call_id = c.call_id and q.stage = 'request_final'
left join stages p on p.call_id = c.call_id and p.stage = 'response_original'
where {where}
order by c.started_at, c.call_id"""


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _unix(started_at: str) -> float:
    return datetime.fromisoformat(started_at).timestamp()


def entries_from_db(
    conn: sqlite3.Connection, where: str = "1", params: dict[str, Any] | tuple[Any, ...] = ()
) -> Iterator[tuple[str, CassetteEntry | NotReplayable]]:
    """(call_id, entry or why not) for the calls `where` selects (SQL over `calls c`),
    in the order they started."""
    for row in conn.execute(_CALLS_SQL.format(where=where), params):
        call_id, started_iso, ttfb_ms, dialect, provider, host, path, status = row[:8]
        q_headers, q_body, q_raw, p_stage, p_headers, p_body, p_raw, p_note, p_arrivals, error = row[8:]
        started_at = _unix(started_iso)
        arrivals = [tuple(pair) for pair in _loads(p_arrivals)] if p_arrivals else None
        try:
            yield (
                call_id,
                entry(
                    call_id=call_id,
                    started_at=started_at,
                    first_byte_at=started_at + ttfb_ms / 1000 if ttfb_ms is not None else None,
                    dialect=dialect,
                    provider=provider,
                    host=host,
                    path=path,
                    status=status,
                    request=StageRecord(
                        stage="request_final", headers=_loads(q_headers), body=_loads(q_body), raw=q_raw
                    ),
                    response=None
                    if p_stage is None
                    else StageRecord(
                        stage="response_original",
                        headers=_loads(p_headers),
                        body=_loads(p_body),
                        raw=p_raw,
                        note=p_note,
                        arrivals=arrivals,
                    ),
                    error=error,
                ),
            )
        except NotReplayable as why:
            yield call_id, why
