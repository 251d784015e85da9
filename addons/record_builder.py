"""Turns a finished flow and its `CallState` into a secret-free `CallRecord`."""

from __future__ import annotations

import json
import time
from typing import Any

from mitmproxy import http

from addons.call_state import CallState
from interlock.codecs import codec_for
from interlock.codecs.base import Codec
from interlock.secrets import redact_headers, scrub_record
from interlock.sse import SSEEvent, parse_all
from recorder.models import CallRecord, PolicyEventRecord, Stage, StageRecord, Usage, Verdict

_BLOCKING_ACTIONS = {"blocked", "ended"}
_MODIFYING_ACTIONS = {"modified", "redacted"}


def parse_json_body(body: bytes | None) -> tuple[Any | None, str | None]:
    """(parsed JSON, None) or (None, why not)."""
    if not body:
        return None, "empty body"
    try:
        return json.loads(body), None
    except (ValueError, UnicodeDecodeError) as error:
        return None, f"body is not JSON: {error}"


def response_body_bytes(response: http.Response) -> bytes | None:
    """The decoded body (mitmproxy undoes gzip/br/zstd); raw bytes if decoding fails."""
    try:
        return response.get_content(strict=False)
    except ValueError:
        return response.raw_content


def body_stage(
    stage: Stage,
    codec: Codec,
    headers: dict[str, str] | None,
    body: bytes | None,
    sse: bool,
    events: list[SSEEvent] | None = None,
) -> StageRecord:
    """A stage from body bytes: SSE is kept raw and reassembled (from `events` when the
    caller has parsed them already), JSON parsed, anything else kept raw with a note."""
    if sse:
        reassembly = codec.reassemble(events if events is not None else parse_all(body or b""))
        note = "; ".join(reassembly.errors) or None
        return StageRecord(stage=stage, headers=headers, body=reassembly.message, raw=body, note=note)
    parsed, note = parse_json_body(body)
    return StageRecord(stage=stage, headers=headers, body=parsed, raw=None if note is None else body, note=note)


def first_token_time(codec: Codec, state: CallState, events: list[SSEEvent]) -> float | None:
    """When the first generated content of the upstream stream (`events`) arrived."""
    offset = 0
    for event in events:
        if codec.is_content_event(event):
            return state.time_at_offset(offset)
        offset += len(event.raw)
    return None


def _response_stages(
    codec: Codec, state: CallState, response: http.Response | None, streamed_events: list[SSEEvent]
) -> list[StageRecord]:
    if response is None and not state.stream_raw:
        return []
    headers = redact_headers(response.headers.items(multi=True)) if response is not None else None
    if state.streamed:
        original = bytes(state.stream_raw)
        final = bytes(state.policy_stream.final) if state.policy_stream is not None else original
        sse = True
    else:
        assert response is not None
        final = response_body_bytes(response) or b""
        original = state.response_original_body if state.response_original_body is not None else final
        sse = response.headers.get("content-type", "").startswith("text/event-stream")
    first = body_stage("response_original", codec, headers, original, sse, streamed_events if state.streamed else None)
    if final == original:
        return [first, first.model_copy(update={"stage": "response_final"})]
    return [first, body_stage("response_final", codec, headers, final, sse)]


def verdict(events: list[PolicyEventRecord], changed: bool, error: str | None) -> Verdict:
    actions = {e.action for e in events}
    # A policy that failed with `on_error: block` blocked what it was looking at.
    failed_closed = any(e.action == "error" and e.details.get("on_error") == "block" for e in events)
    if actions & _BLOCKING_ACTIONS or failed_closed:
        return "blocked"
    if error:
        return "error"
    if changed or actions & _MODIFYING_ACTIONS:
        return "modified"
    return "pass"


def build_record(state: CallState, flow: http.HTTPFlow, session_id: str | None, error: str | None) -> CallRecord:
    codec = codec_for(state.match.dialect)
    request = flow.request
    streamed_events = parse_all(bytes(state.stream_raw)) if state.streamed else []
    raw_request = request.raw_content if state.request_original is None else None
    stages = [
        StageRecord(
            stage="request_original",
            headers=state.request_original_headers,
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
        *_response_stages(codec, state, flow.response, streamed_events),
    ]
    final_message = stages[-1].body if len(stages) == 4 and isinstance(stages[-1].body, dict) else None
    original_message = stages[2].body if len(stages) == 4 and isinstance(stages[2].body, dict) else None
    notes = [n for n in (error, stages[2].note if len(stages) == 4 else None) if n]
    status = flow.response.status_code if flow.response else None
    if status is not None and status >= 400:
        notes.append(f"HTTP {status}")
    request_body = state.request_original if isinstance(state.request_original, dict) else None
    final_body = state.request_final if isinstance(state.request_final, dict) else None
    events = state.policy.events if state.policy is not None else []
    response_changed = len(stages) == 4 and (stages[3].raw != stages[2].raw or stages[3].body != stages[2].body)
    changed = state.request_final is not state.request_original or response_changed
    record = CallRecord(
        call_id=state.call_id,
        started_at=state.started_at,
        first_byte_at=state.first_byte_at or (flow.response.timestamp_start if flow.response else None),
        first_token_at=first_token_time(codec, state, streamed_events) if state.streamed else None,
        ended_at=time.time(),
        provider=state.match.provider,
        dialect=state.match.dialect,
        host=state.host,
        path=state.path,
        client=request.headers.get("user-agent"),
        session_id=session_id,
        model=codec.request_model(request_body) if request_body else None,
        model_final=codec.request_model(final_body) if final_body else None,
        response_model=codec.response_model(original_message) if original_message else None,
        stream=state.streamed or state.stream_requested,
        status=status,
        error="; ".join(notes) or None,
        verdict=verdict(events, changed, error),
        usage=codec.usage(original_message) if original_message else Usage(),
        prompt_text=codec.prompt_text(final_body) if final_body else None,
        response_text=codec.response_text(final_message) if final_message else None,
        stages=stages,
        events=events,
        judgements=state.policy.judgements if state.policy is not None else [],
    )
    return scrub_record(record, state.secrets)
