"""Applies a policy chain to a whole Anthropic Messages body (not streamed), with the
same invariants as the stream rewriter."""

from __future__ import annotations

from typing import Any

from interlock.dialects.anthropic_messages import response, wire
from interlock.engine import whole
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, PolicyContext, ReplaceWithText, StreamEnd
from interlock.policy.chain import PolicyChain


async def rewrite_body(chain: PolicyChain, ctx: PolicyContext, message: dict[str, Any]) -> dict[str, Any]:
    blocks = message.get("content")
    if not isinstance(blocks, list):
        return await chain.response(ctx, message)
    kept_blocks: list[Any] = []
    tool_blocks: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "text" and chain.handles_text:
            text = await whole.text(chain, ctx, str(block.get("text", "")))
            if text:
                kept_blocks.append({**block, "text": text})
        elif isinstance(block, dict) and block.get("type") == "tool_use":
            tool_blocks.append(block)
        elif ctx.ended_by is None:
            kept_blocks.append(block)
    calls = [
        ToolCall(id=b.get("id"), name=str(b.get("name", "")), arguments=b.get("input", {}), index=i)
        for i, b in enumerate(tool_blocks)
    ]
    decisions = await whole.decisions(chain, ctx, calls)
    stop_reason = message.get("stop_reason")
    extra = await whole.stream_end(chain, ctx, StreamEnd(stop_reason, response.usage(message)))
    notices = ([extra] if extra else []) + [d.text for d in decisions if isinstance(d, ReplaceWithText)]
    kept_blocks += [{"type": "text", "text": notice} for notice in notices]
    survivors = (
        [] if ctx.ended_by else [(b, d) for b, d in zip(tool_blocks, decisions, strict=True) if isinstance(d, Keep)]
    )
    kept_blocks += [{**b, "name": d.call.name, "input": d.call.arguments} for b, d in survivors]
    result = {**message, "content": kept_blocks}
    if stop_reason == "tool_use" and tool_blocks and not survivors:
        result["stop_reason"] = "end_turn"
    return await whole.native(chain, ctx, result, wire.blocked_message)
