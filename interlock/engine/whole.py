"""The steps every dialect's whole-body rewriter takes, in the same order as for streams.

Each text block goes through `on_text` then `on_text_end`, every tool call through
`on_tool_call` (all of them concurrently, results applied in the original order), then
`on_stream_end`, then the native `on_response`. The dialect's `body` module walks its
own body shape and keeps its own invariants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from interlock.neutral import ToolCall
from interlock.policy.base import Keep, PolicyContext, StreamEnd, ToolDecision
from interlock.policy.chain import PolicyChain, PolicyFailed


async def text(chain: PolicyChain, ctx: PolicyContext, text: str) -> str:
    if ctx.ended_by is not None:
        return ""
    try:
        return await chain.text(ctx, text) + await chain.text_end(ctx)
    except PolicyFailed as failed:
        ctx.end_message(failed.policy, failed.reason)
        return failed.notice


async def decisions(chain: PolicyChain, ctx: PolicyContext, calls: list[ToolCall]) -> list[ToolDecision]:
    if not chain.holds_tool_calls or ctx.ended_by is not None:
        return [Keep(call) for call in calls]
    return list(await asyncio.gather(*(chain.tool_call(ctx, call) for call in calls)))


async def stream_end(chain: PolicyChain, ctx: PolicyContext, end: StreamEnd) -> str:
    if not chain.holds_tool_calls or ctx.ended_by is not None:
        return ""
    return await chain.stream_end(ctx, end)


async def native(
    chain: PolicyChain,
    ctx: PolicyContext,
    response: dict[str, Any],
    blocked: Callable[[dict[str, Any], str], dict[str, Any]],
) -> dict[str, Any]:
    """The native `on_response` hooks; a failing policy that blocks leaves only its notice."""
    try:
        return await chain.response(ctx, response)
    except PolicyFailed as failed:
        ctx.end_message(failed.policy, failed.reason)
        return blocked(response, failed.notice)
