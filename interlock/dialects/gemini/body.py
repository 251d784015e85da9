"""Applies a policy chain to a whole Gemini response (not streamed), with the same
invariants as the stream rewriter: the finish reason as it came, blocked calls as text
parts with their notice (keeping their `thoughtSignature`), a blocked call's signature
given to the next kept call, text a policy adds before the calls, no empty text part. A
message a policy ends at its end (one failing closed in `on_stream_end`) keeps no call:
its notice takes the calls' place."""

from __future__ import annotations

from typing import Any

from interlock.dialects.gemini import response, wire
from interlock.dialects.gemini.stream import SIGNATURE, kept_call, sendable, single_candidate
from interlock.engine import whole
from interlock.policy.base import Keep, PolicyContext, ReplaceWithText, StreamEnd
from interlock.policy.chain import PolicyChain


async def rewrite_body(chain: PolicyChain, ctx: PolicyContext, body: dict[str, Any]) -> dict[str, Any]:
    inner, wrapping = wire.Wrapping.of(body)
    candidate = single_candidate(inner)
    if candidate is None:
        return await chain.response(ctx, body)
    parts: list[dict[str, Any]] = []
    for part in response.candidate_parts(candidate):
        if response.is_text(part) and part["text"] and chain.handles_text:
            parts.append({**part, "text": await whole.text(chain, ctx, part["text"])})
        else:
            parts.append(part)
    if ctx.ended_by is not None:  # a policy ended the message: its calls go with it
        parts = [p for p in parts if response.function_call(p) is None]
    positions = [i for i, part in enumerate(parts) if response.function_call(part) is not None]
    calls = [response.to_tool_call(response.function_call(parts[i]) or {}, n) for n, i in enumerate(positions)]
    decisions = await whole.decisions(chain, ctx, calls)
    extra = await whole.stream_end(chain, ctx, StreamEnd(response.stop_reason(inner), response.usage(inner)))
    where = positions[0] if positions else len(parts)  # where text added at the end goes
    if ctx.ended_by is not None:  # a policy ended the message at its end: its calls go with it
        parts = [p for p in parts if response.function_call(p) is None]  # none before `where`
        positions, decisions = [], []
    sent_text = any(response.is_text(p) and p["text"] for p in parts[: positions[0] if positions else len(parts)])
    owed: str | None = None
    signed = False
    for position, decision in zip(positions, decisions, strict=True):
        part = parts[position]
        if isinstance(decision, Keep):
            new = kept_call(part, decision.call)
            if SIGNATURE not in new and owed is not None and not signed:
                new = {**new, SIGNATURE: owed}
            signed = signed or SIGNATURE in new
            parts[position] = new
        elif isinstance(decision, ReplaceWithText):
            notice: dict[str, Any] = {"text": f"\n\n{decision.text}" if sent_text else decision.text}
            if SIGNATURE in part:
                notice[SIGNATURE] = part[SIGNATURE]
                owed = owed or str(part[SIGNATURE])
            parts[position] = notice
            sent_text = True
    if extra:
        before = any(response.is_text(p) and p["text"] for p in parts[:where])
        parts.insert(where, {"text": f"\n\n{extra}" if before else extra})
    result = wrapping.wrap(wire.with_parts(inner, sendable(parts)))
    return await whole.native(chain, ctx, result, wire.blocked_response)
