"""Turns CallRecords into rows of the recorder's tables (see `recorder.schema`).

Pure and CPU-bound (JSON encoding of large bodies, pricing, reading tool calls out of
response bodies): the writer runs it in a worker thread, never on the proxy's event loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from interlock.dialects import DIALECTS
from recorder.cost import price
from recorder.models import SAME_AS, CallRecord, JudgeRecord, PolicyEventRecord, StageRecord

Row = dict[str, Any]

CALL_COLUMNS = (
    "call_id", "started_at", "ended_at", "ttfb_ms", "ttft_ms", "duration_ms",
    "provider", "dialect", "host", "path", "client", "session_id", "user", "project",
    "model", "model_final", "response_model", "stream", "status", "error", "verdict",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "cost_usd", "pricing_key", "prompt_text", "user_text", "response_text",
)  # fmt: skip
STAGE_COLUMNS = (
    "call_id", "stage", "headers_json", "body_json", "raw", "note", "size_bytes", "same_as", "arrivals_json",
)  # fmt: skip
EVENT_COLUMNS = ("call_id", "policy", "action", "reason", "details_json", "created_at")
JUDGE_COLUMNS = (
    "call_id", "tool_call_id", "tool_name", "arguments_json", "judge_model", "prompt_json",
    "raw_answer", "probability", "explanation", "decision", "latency_ms",
    "input_tokens", "output_tokens", "cost_usd", "error", "created_at",
)  # fmt: skip

TOOL_CALL_COLUMNS = ("call_id", "stage", "position", "tool_call_id", "name", "arguments_json")
# The stages whose bodies' tool calls go into `tool_calls`.
TOOL_CALL_STAGES = ("response_original", "response_final")


@dataclass
class BatchRows:
    """Rows for one batch of records, one list per table, plus records that failed."""

    call_ids: list[str] = field(default_factory=list)
    calls: list[Row] = field(default_factory=list)
    stages: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    judgements: list[Row] = field(default_factory=list)
    tool_calls: list[Row] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (call_id, reason)


def iso(ts: float | None) -> str | None:
    """Unix time as ISO-8601 UTC with milliseconds: 2026-11-23T11:32:02.123Z."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(columns)
    return f"insert into {table} ({names}) values ({', '.join(f':{c}' for c in columns)})"


def _ms_since(start: float, end: float | None) -> float | None:
    return None if end is None else (end - start) * 1000


def record_price(record: CallRecord) -> tuple[float | None, str | None]:
    """(cost in USD, pricing key) from the first model name the cost map knows:
    the one the provider answered with, the one sent upstream, the one requested."""
    for model in dict.fromkeys((record.response_model, record.model_final, record.model)):
        cost_usd, pricing_key = price(model, record.provider, record.usage)
        if pricing_key is not None:
            return cost_usd, pricing_key
    return None, None


# `prompt_text`, `user_text` and `response_text` (searchable, listed) keep at most this
# many characters: an agent's last user message can hold megabytes of tool output, which
# `stages` keeps whole anyway.
SEARCH_TEXT_MAX_CHARS = 32_768
_SEARCH_TEXTS = ("prompt_text", "user_text", "response_text")


def call_row(record: CallRecord) -> Row:
    cost_usd, pricing_key = record_price(record)
    return {
        **record.model_dump(include=set(CALL_COLUMNS)),
        **{name: _capped(getattr(record, name)) for name in _SEARCH_TEXTS},
        **record.usage.model_dump(),
        "started_at": iso(record.started_at),
        "ended_at": iso(record.ended_at),
        "ttfb_ms": _ms_since(record.started_at, record.first_byte_at),
        "ttft_ms": _ms_since(record.started_at, record.first_token_at),
        "duration_ms": _ms_since(record.started_at, record.ended_at),
        "stream": int(record.stream),
        "cost_usd": cost_usd,
        "pricing_key": pricing_key,
    }


def _capped(text: str | None) -> str | None:
    return text[:SEARCH_TEXT_MAX_CHARS] if text is not None else None


def _stage_row(call_id: str, stage: StageRecord, same_as: Row | None = None) -> Row:
    """A stage's row; with `same_as` (its original's row, equal in body and bytes) one
    that names it and holds no body of its own."""
    if same_as is not None:
        body_json, raw, size = None, None, same_as["size_bytes"]
    else:
        body_json, raw = to_json(stage.body), stage.raw
        size = len(raw) if raw is not None else len(body_json.encode("utf-8")) if body_json is not None else None
    return {
        "call_id": call_id,
        "stage": stage.stage,
        "headers_json": to_json(stage.headers),
        "body_json": body_json,
        "raw": raw,
        "note": stage.note,
        "size_bytes": size,
        "same_as": same_as["stage"] if same_as is not None else None,
        "arrivals_json": _compact_json(stage.arrivals),
    }


def _compact_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def stage_rows(call_id: str, stages: list[StageRecord]) -> list[Row]:
    """The rows of a call's stages (`stage_rows`): a final stage whose body and raw bytes
    equal its original's is stored once, its own row naming the original in `same_as`.
    A body nobody changed is the original's own object, so it is not serialised again."""
    records = {stage.stage: stage for stage in stages}
    rows = {stage.stage: _stage_row(call_id, stage) for stage in stages if stage.stage not in SAME_AS}
    for stage in stages:
        if stage.stage not in SAME_AS:
            continue
        original, kept = records.get(SAME_AS[stage.stage]), rows.get(SAME_AS[stage.stage])
        same = (
            original is not None
            and kept is not None
            and stage.raw == original.raw
            and (stage.body is original.body or to_json(stage.body) == kept["body_json"])
        )
        rows[stage.stage] = _stage_row(call_id, stage, kept if same else None)
    return [rows[stage.stage] for stage in stages]


def event_row(call_id: str, event: PolicyEventRecord) -> Row:
    return {
        "call_id": call_id,
        "policy": event.policy,
        "action": event.action,
        "reason": event.reason,
        "details_json": to_json(event.details),
        "created_at": iso(event.at),
    }


def judge_row(call_id: str, judge: JudgeRecord) -> Row:
    return {
        **judge.model_dump(exclude={"arguments", "prompt", "at"}),
        "call_id": call_id,
        "arguments_json": to_json(judge.arguments),
        "prompt_json": to_json(judge.prompt),
        "created_at": iso(judge.at),
    }


def tool_call_rows(call_id: str, dialect_name: str, stage: str, body: Any) -> list[Row]:
    """The tool calls of a response body, read by the dialect that recorded it
    (`Dialect.tool_calls`), as `tool_calls` rows in the response's order. None for a
    body that is not a JSON object or a dialect the registry does not know."""
    dialect = DIALECTS.get(dialect_name)
    if dialect is None or not isinstance(body, dict):
        return []
    return [
        {
            "call_id": call_id,
            "stage": stage,
            "position": position,
            "tool_call_id": call.id,
            "name": call.name,
            "arguments_json": to_json(call.arguments),
        }
        for position, call in enumerate(dialect.tool_calls(body))
    ]


def _tool_call_rows(record: CallRecord) -> list[Row]:
    rows: list[Row] = []
    for stage in record.stages:
        if stage.stage in TOOL_CALL_STAGES:
            rows += tool_call_rows(record.call_id, record.dialect, stage.stage, stage.body)
    return rows


def batch_rows(records: list[CallRecord]) -> BatchRows:
    """Rows for `records`; the last record of a call_id wins, a record that cannot be
    converted (a body that is not JSON-serialisable) is reported in `failures`."""
    rows = BatchRows()
    latest = {record.call_id: record for record in records}
    for call_id, record in latest.items():
        try:
            call = call_row(record)
            stages = stage_rows(call_id, record.stages)
            events = [event_row(call_id, event) for event in record.events]
            judgements = [judge_row(call_id, judge) for judge in record.judgements]
            tool_calls = _tool_call_rows(record)
        except (TypeError, ValueError) as exc:
            rows.failures.append((call_id, f"{type(exc).__name__}: {exc}"))
            continue
        rows.call_ids.append(call_id)
        rows.calls.append(call)
        rows.stages += stages
        rows.events += events
        rows.judgements += judgements
        rows.tool_calls += tool_calls
    return rows
