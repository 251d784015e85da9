"""Turns a finished flow and its `CallState` into a `CallRecord`, and scrubs it.

Streams are not parsed again here: their original and final messages come from the
reassemblers fed as the stream passed (`StreamTap`, `PolicyStream`). Headers are
redacted as the record is put together; `RecordScrubber` then scrubs the secrets found
in the request's headers and URL, and whatever the chain's record detectors find, from
all of it.
"""

from __future__ import annotations

import time
from typing import Any

from mitmproxy import http

from addons.call_state import CallState
from addons.matcher import parse_json_body
from addons.policing import is_sse, response_body_bytes
from interlock.dialects.base import Dialect
from interlock.engine.stream import StreamTap
from interlock.neutral import Reassembly, Usage
from interlock.policy.records import verdict
from interlock.secrets import Scrubber, redact_headers
from interlock.sse import parse_all
from recorder.models import CallRecord, Stage, StageRecord


def _stream_stage(
    stage: Stage, headers: dict[str, str] | None, raw: bytes, reassembly: Reassembly, *notes: str | None
) -> StageRecord:
    note = "; ".join([*(n for n in notes if n), *reassembly.errors]) or None
    return StageRecord(stage=stage, headers=headers, body=reassembly.message, raw=raw, note=note)


def _body_stage(stage: Stage, dialect: Dialect, headers: dict[str, str] | None, body: bytes, sse: bool) -> StageRecord:
    """A stage from a whole body: SSE kept raw and reassembled, JSON parsed (its bytes
    kept in memory as `exact`), anything else kept raw with a note."""
    if sse:
        return _stream_stage(stage, headers, body, dialect.reassemble(parse_all(body)))
    parsed, note = parse_json_body(body)
    if note is None:
        return StageRecord(stage=stage, headers=headers, body=parsed, exact=body)
    return StageRecord(stage=stage, headers=headers, raw=body, note=note)


def _arrivals(tap: StreamTap, started_at: float) -> list[tuple[float, int]]:
    """The tap's chunk arrivals as (seconds since the call started, bytes)."""
    return [(round(at - started_at, 4), size) for at, size in tap.arrivals]


def _response_stages(state: CallState, response: http.Response | None) -> list[StageRecord]:
    headers = redact_headers(response.headers.items(multi=True)) if response is not None else None
    tap = state.tap or (state.policy_stream.tap if state.policy_stream is not None else None)
    if tap is not None:
        first = _stream_stage("response_original", headers, bytes(tap.raw), tap.reassembler.result(), tap.decode_error)
        first.arrivals = _arrivals(tap, state.started_at)
        stream = state.policy_stream
        if state.stream_tail:  # Interlock ended the stream with an event of its own: parsed once more
            sent = (bytes(stream.final) if stream is not None else bytes(tap.raw)) + state.stream_tail
            return [first, _body_stage("response_final", state.dialect, headers, sent, sse=True)]
        if stream is None or stream.final == tap.raw:
            return [first, first.model_copy(update={"stage": "response_final", "arrivals": None})]
        return [first, _stream_stage("response_final", headers, bytes(stream.final), stream.final_reassembly())]
    if response is None:
        return []
    final = response_body_bytes(response) or b""
    original = state.response_original_body if state.response_original_body is not None else final
    sse = is_sse(response.headers)
    first = _body_stage("response_original", state.dialect, headers, original, sse)
    if final == original:
        return [first, first.model_copy(update={"stage": "response_final"})]
    return [first, _body_stage("response_final", state.dialect, headers, final, sse)]


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


class RecordScrubber:
    """Scrubs one call's record: its header and URL secrets, its chain's detectors.

    A streamed stage whose message holds a detected secret keeps no raw bytes: a model
    streams a key in pieces, one per event, which no search of the bytes would find."""

    def __init__(self, state: CallState) -> None:
        self.scrubber = Scrubber(state.secrets(), state.chain.record_detectors)

    def __call__(self, record: CallRecord) -> CallRecord:
        stages = [_without_secret_stream(stage, self.scrubber) for stage in record.stages]
        return self.scrubber(record.model_copy(update={"stages": stages}))


def _without_secret_stream(stage: StageRecord, scrubber: Scrubber) -> StageRecord:
    if stage.raw is None or stage.body is None:
        return stage
    kinds = scrubber.kinds(stage.body)
    if not kinds:
        return stage
    withheld = f"raw stream not kept: its message held {', '.join(sorted(kinds))}"
    return stage.model_copy(update={"raw": None, "note": "; ".join(n for n in (stage.note, withheld) if n)})


def build_record(state: CallState, flow: http.HTTPFlow, session_id: str | None, error: str | None) -> CallRecord:
    """The call's record, not scrubbed yet (`RecordScrubber`): never hand it out as it is."""
    dialect = state.dialect
    request = flow.request
    error = error or state.upstream_error
    raw_request = request.raw_content if state.request_original is None else None
    stages = [
        StageRecord(
            stage="request_original",
            headers=state.original_headers(),
            body=state.request_original,
            raw=raw_request,
            note=state.request_note,
        ),
        StageRecord(
            stage="request_final",
            headers=redact_headers(request.headers.items(multi=True)),
            body=state.request_final,
            raw=raw_request,
            note=state.request_note,
        ),
        *_response_stages(state, flow.response),
    ]
    responded = len(stages) == 4
    original_message = _dict(stages[2].body) if responded else None
    final_message = _dict(stages[3].body) if responded else None
    notes = [n for n in (error, stages[2].note if responded else None) if n]
    status = flow.response.status_code if flow.response else None
    if status is not None and status >= 400:
        notes.append(f"HTTP {status}")
    request_body = _dict(state.request_original)
    final_body = _dict(state.request_final)
    events = state.policy.events if state.policy is not None else []
    stream = state.policy_stream  # its keepalives are in `response_final` but change nothing
    response_changed = responded and (
        stream.changed if stream is not None else stages[3].raw != stages[2].raw or stages[3].body != stages[2].body
    )
    changed = state.request_final is not state.request_original or response_changed
    tap = state.tap
    return CallRecord(
        call_id=state.call_id,
        started_at=state.started_at,
        first_byte_at=(tap.first_byte_at if tap else None)
        or (flow.response.timestamp_start if flow.response else None),
        first_token_at=tap.first_token_at if tap else None,
        ended_at=time.time(),
        provider=state.match.provider,
        dialect=dialect.name,
        host=state.host,
        path=state.path,
        client=request.headers.get("user-agent"),
        session_id=session_id,
        user=state.tags.user,
        project=state.tags.project,
        model=dialect.request_model(request_body) if request_body else None,
        model_final=dialect.request_model(final_body) if final_body else None,
        response_model=dialect.response_model(original_message) if original_message else None,
        stream=state.streamed or state.stream_requested,
        status=status,
        error="; ".join(notes) or None,
        verdict=verdict(events, changed, error),
        usage=dialect.usage(original_message) if original_message else Usage(),
        prompt_text=dialect.typed_text(final_body) if final_body else None,
        user_text=dialect.last_user_text(final_body) if final_body else None,
        response_text=dialect.response_text(final_message) if final_message else None,
        stages=stages,
        events=events,
        judgements=state.policy.judgements if state.policy is not None else [],
    )
