"""One recorded call through a policy chain, as the proxy would have run it, with no
upstream call: the recorded request through the request chain, the recorded upstream
answer through the response chain (`interlock.engine.policing`, the proxy's own code).

What is policed, and how:
- the request (`request_original`, as the client sent it, secrets already scrubbed):
  blocked, it is answered with the dialect's blocked body and nothing goes upstream;
- the answer (`response_original`): a stream's raw bytes through the dialect's stream
  rewriter as one body (as the proxy polices a replayed stream), a JSON body through its
  whole-body rewriter. A stream whose raw bytes were withheld (a secret in it) is policed
  from its reassembled message as a whole JSON body, and the result notes it. An error
  status (>= 400) is not policed, as in the proxy; nor is a body that is not JSON.
- no answer to police: the recorded request was blocked (nothing went upstream) or no
  response was recorded; the result then covers the request alone and notes why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from backtest.recorded import RecordedCall
from interlock.dialects import DIALECTS
from interlock.dialects.base import Dialect
from interlock.engine.policing import PolicedBody, json_bytes, police_body, police_request
from interlock.policy.base import PolicyContext, Refused
from interlock.policy.chain import PolicyChain
from interlock.policy.records import JudgeRecord, PolicyEventRecord, Verdict, verdict

WEBSOCKET_STATUS = 101  # a WebSocket turn is recorded with its connection's upgrade status


@dataclass(slots=True)
class Outcome:
    """What the chain would have made of one call. `request` and `response` are None
    when they would be as recorded upstream (`request_original`, `response_original`);
    `verdict` is None when the call was not run (`note` says why)."""

    call_id: str
    verdict: Verdict | None
    changed: bool = False
    status: int | None = None
    events: list[PolicyEventRecord] = field(default_factory=list)
    judgements: list[JudgeRecord] = field(default_factory=list)
    request: dict[str, Any] | None = None
    response: Any = None
    response_raw: bytes | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def note(self) -> str | None:
        return "; ".join(self.notes) or None


def not_run(call_id: str, why: str) -> Outcome:
    return Outcome(call_id, None, notes=[why])


def _is_stream(call: RecordedCall) -> bool:
    headers = {name.lower(): value for name, value in (call.response_headers or {}).items()}
    return headers.get("content-type", "").startswith("text/event-stream") or call.status == WEBSOCKET_STATUS


def _blocked_body(dialect: Dialect, call: RecordedCall, notice: str) -> dict[str, Any]:
    frames = dialect.websocket
    if call.status == WEBSOCKET_STATUS and frames is not None:
        return frames.blocked_frame(dialect.blocked_status, notice)
    return dialect.blocked_request(notice)


def _refused_body(dialect: Dialect, call: RecordedCall, refused: Refused) -> dict[str, Any]:
    body = dialect.limit_error(refused.message, refused.retry_soon)
    frames = dialect.websocket
    if call.status == WEBSOCKET_STATUS and frames is not None:
        return frames.error_frame(refused.status, body)
    return body


async def _police_answer(
    dialect: Dialect, chain: PolicyChain, ctx: PolicyContext, call: RecordedCall, outcome: Outcome
) -> None:
    """The recorded upstream answer through the response chain, into `outcome`."""
    outcome.status = call.status
    if call.status is not None and call.status >= 400:
        outcome.notes.append(f"HTTP {call.status}: an error answer is not policed")
        return
    if not chain.touches_responses:
        return
    policed: PolicedBody | None
    if _is_stream(call) and call.response_raw is not None:
        policed = await police_body(dialect, chain, ctx, call.response_raw, sse=True)
        if policed is not None and policed.changed and policed.stream is not None:
            outcome.response = policed.stream.final_reassembly().message
            outcome.response_raw = policed.final
    elif isinstance(call.response_body, dict | list):
        if _is_stream(call):
            outcome.notes.append("raw stream withheld: policed from its reassembled message as a whole body")
        policed = await police_body(dialect, chain, ctx, json_bytes(call.response_body), sse=False)
        if policed is not None and policed.changed:
            outcome.response = json.loads(policed.final)
    else:
        policed = None
    if policed is None:
        outcome.notes.append(f"answer not policed: {call.response_note or 'its body is not JSON'}")
        return
    outcome.changed = outcome.changed or policed.changed


async def replay(chain: PolicyChain, call: RecordedCall) -> Outcome:
    """The would-be outcome of one recorded call under `chain`."""
    dialect = DIALECTS.get(call.dialect)
    if dialect is None:
        return not_run(call.call_id, f"unknown dialect {call.dialect!r}")
    request = call.request
    if not isinstance(request, dict):
        return not_run(call.call_id, "request not JSON: the proxy forwards it unpoliced")
    ctx = PolicyContext(
        call_id=call.call_id,
        dialect=dialect,
        model=dialect.request_model(request),
        request=request,
        streaming=dialect.request_streams(request, call.path),
    )
    outcome = Outcome(call.call_id, None, events=ctx.events, judgements=ctx.judgements)
    policed = await police_request(dialect, chain, ctx, request)
    if policed.blocked is not None:
        outcome.status = dialect.blocked_status
        outcome.response = _blocked_body(dialect, call, policed.blocked.notice)
        outcome.notes.append("request blocked: nothing would go upstream")
    elif policed.refused is not None:
        outcome.status = policed.refused.status
        outcome.response = _refused_body(dialect, call, policed.refused)
        outcome.notes.append("request refused (a limit): nothing would go upstream")
    else:
        if policed.final is not request:
            outcome.request, outcome.changed = policed.final, True
        if call.request_blocked:
            outcome.notes.append("the recorded request was blocked: no upstream answer to police")
        elif not call.has_response:
            outcome.notes.append("no response recorded")
        else:
            await _police_answer(dialect, chain, ctx, call, outcome)
    # As in the proxy's record: a call whose upstream failed is an error unless blocked.
    outcome.verdict = verdict(ctx.events, outcome.changed, call.error if call.verdict == "error" else None)
    return outcome
