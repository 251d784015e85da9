"""The policy chain over a request and over a response that is there whole (the proxy's and a backtest's).

One place for what the proxy does to a request (`police_request`) and to a response
body that arrived at once (`police_body`: a non-streamed or replayed body, a stream
buffered whole), so that a backtest (`backtest`) gets exactly the proxy's answers. An
SSE body goes through the dialect's stream rewriter as its events, a stream sent as one
JSON array of chunks (`Dialect.json_array_as_sse`) the same way, a JSON object through
`Dialect.rewrite_body`; the result says what the client gets and whether it changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interlock.engine.stream import PolicyStream, StreamTap, rewrite_body
from interlock.policy.base import Refused
from interlock.policy.chain import PolicyFailed

if TYPE_CHECKING:
    from interlock.dialects.base import Dialect
    from interlock.policy.base import PolicyContext
    from interlock.policy.chain import PolicyChain


def json_bytes(value: Any) -> bytes:
    """JSON as Interlock sends it: compact, UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class PolicedRequest:
    """The request as it goes upstream, or the failure that blocked it (the message is
    then ended in the context, and the client gets `dialect.blocked_request(notice)`),
    or a policy's deliberate refusal (the client gets `dialect.limit_error(message)`
    with the refusal's status; the policy recorded why)."""

    final: dict[str, Any]
    blocked: PolicyFailed | None = None
    refused: Refused | None = None


async def police_request(
    dialect: Dialect, chain: PolicyChain, ctx: PolicyContext, request: dict[str, Any]
) -> PolicedRequest:
    """The request chain, then what the dialect adds (`Dialect.continue_request`). A
    changed request becomes the context's request (and model) for the response hooks;
    `final is request` when nothing changed."""
    try:
        final = await chain.request(ctx, request)
    except PolicyFailed as failed:
        ctx.end_message(failed.policy, failed.reason)
        return PolicedRequest(request, failed)
    except Refused as refused:
        return PolicedRequest(request, refused=refused)
    final = dialect.continue_request(ctx, final)
    if final is not request:
        ctx.request = final
        ctx.model = dialect.request_model(final)
    return PolicedRequest(final)


@dataclass(frozen=True, slots=True)
class PolicedBody:
    """What the client gets for a whole body: `final` (the body itself when unchanged),
    and the policy stream it went through, if it went through one (its reassemblies are
    the original and final messages)."""

    final: bytes
    changed: bool
    stream: PolicyStream | None = None


def whole_stream(dialect: Dialect, chain: PolicyChain, ctx: PolicyContext) -> PolicyStream:
    """The policy stream for a stream's events that arrived as one body."""
    rewriter = dialect.stream_rewriter(chain, ctx)
    return PolicyStream(rewriter, StreamTap(dialect.reassembler()), dialect.reassembler())


async def police_body(
    dialect: Dialect, chain: PolicyChain, ctx: PolicyContext, body: bytes, *, sse: bool
) -> PolicedBody | None:
    """The response chain over a whole body (`sse`: an event stream); None when the body
    is neither SSE nor a JSON object or array of stream chunks (nothing is policed)."""
    if sse:
        stream = whole_stream(dialect, chain, ctx)
        final = await rewrite_body(stream, body)
        return PolicedBody(final, stream.changed, stream)
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    as_events = dialect.json_array_as_sse(parsed) if isinstance(parsed, list) else None
    if as_events is not None:  # a stream sent as one JSON array (Gemini without alt=sse)
        stream = whole_stream(dialect, chain, ctx)
        policed = await rewrite_body(stream, as_events)
        changed = stream.changed
        return PolicedBody(dialect.sse_as_json_array(policed) if changed else body, changed, stream)
    if not isinstance(parsed, dict):
        return None
    rewritten = await dialect.rewrite_body(chain, ctx, parsed)
    changed = rewritten != parsed
    return PolicedBody(json_bytes(rewritten) if changed else body, changed)
