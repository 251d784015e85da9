"""Applies a policy chain to whole (non-streamed) responses, for both dialects.

The same neutral hooks as for streams run here: each text block goes through `on_text`
then `on_text_end`, every tool call through `on_tool_call` (all of them concurrently,
results applied in the original order), then `on_stream_end`, then the native
`on_response`. The same invariants hold as for streams.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from interlock.codecs import anthropic_events, openai_events
from interlock.codecs.base import ToolCall
from interlock.codecs.common import tool_arguments
from policies.base import Keep, PolicyContext, ReplaceWithText, StreamEnd, ToolDecision
from policies.chain import PolicyChain, PolicyFailed


async def _text(chain: PolicyChain, ctx: PolicyContext, text: str) -> str:
    if ctx.ended_by is not None:
        return ""
    try:
        return await chain.text(ctx, text) + await chain.text_end(ctx)
    except PolicyFailed as failed:
        ctx.end_message(failed.policy, failed.reason)
        return failed.notice


async def _decisions(chain: PolicyChain, ctx: PolicyContext, calls: list[ToolCall]) -> list[ToolDecision]:
    if not chain.holds_tool_calls or ctx.ended_by is not None:
        return [Keep(call) for call in calls]
    return list(await asyncio.gather(*(chain.tool_call(ctx, call) for call in calls)))


async def rewrite_anthropic(chain: PolicyChain, ctx: PolicyContext, message: dict[str, Any]) -> dict[str, Any]:
    blocks = message.get("content")
    if not isinstance(blocks, list):
        return await chain.response(ctx, message)
    kept_blocks: list[Any] = []
    tool_blocks: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "text" and chain.handles_text:
            text = await _text(chain, ctx, str(block.get("text", "")))
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
    decisions = await _decisions(chain, ctx, calls)
    stop_reason = message.get("stop_reason")
    extra = await _stream_end(chain, ctx, StreamEnd(stop_reason, ctx.codec.usage(message)))
    notices = ([extra] if extra else []) + [d.text for d in decisions if isinstance(d, ReplaceWithText)]
    kept_blocks += [{"type": "text", "text": notice} for notice in notices]
    survivors = (
        [] if ctx.ended_by else [(b, d) for b, d in zip(tool_blocks, decisions, strict=True) if isinstance(d, Keep)]
    )
    kept_blocks += [{**b, "name": d.call.name, "input": d.call.arguments} for b, d in survivors]
    result = {**message, "content": kept_blocks}
    if stop_reason == "tool_use" and tool_blocks and not survivors:
        result["stop_reason"] = "end_turn"
    return await _native(chain, ctx, result, anthropic_events.blocked_message)


async def rewrite_openai_chat(chain: PolicyChain, ctx: PolicyContext, completion: dict[str, Any]) -> dict[str, Any]:
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return await chain.response(ctx, completion)
    choice = choices[0]
    message = dict(choice.get("message") or {})
    content = message.get("content")
    if isinstance(content, str) and content and chain.handles_text:
        message["content"] = await _text(chain, ctx, content) or None
    raw_calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    calls = [
        ToolCall(
            id=c.get("id"),
            name=str((c.get("function") or {}).get("name", "")),
            arguments=tool_arguments((c.get("function") or {}).get("arguments", "")),
            index=i,
        )
        for i, c in enumerate(raw_calls)
    ]
    decisions = await _decisions(chain, ctx, calls)
    finish_reason = choice.get("finish_reason")
    extra = await _stream_end(chain, ctx, StreamEnd(finish_reason, ctx.codec.usage(completion)))
    notices = ([extra] if extra else []) + [d.text for d in decisions if isinstance(d, ReplaceWithText)]
    if notices:
        message["content"] = "\n\n".join([t for t in [message.get("content") or "", *notices] if t])
    survivors = (
        []
        if ctx.ended_by
        else [
            (raw, d.call, call) for raw, d, call in zip(raw_calls, decisions, calls, strict=True) if isinstance(d, Keep)
        ]
    )
    if raw_calls:
        if survivors:
            message["tool_calls"] = [raw if new == old else _openai_call(raw, new) for raw, new, old in survivors]
        else:
            message.pop("tool_calls", None)
            if finish_reason == "tool_calls":
                finish_reason = "stop"
    result = {**completion, "choices": [{**choice, "message": message, "finish_reason": finish_reason}, *choices[1:]]}
    return await _native(chain, ctx, result, openai_events.blocked_completion)


def _openai_call(raw: dict[str, Any], call: ToolCall) -> dict[str, Any]:
    arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments, ensure_ascii=False)
    return {**raw, "function": {**(raw.get("function") or {}), "name": call.name, "arguments": arguments}}


async def _stream_end(chain: PolicyChain, ctx: PolicyContext, end: StreamEnd) -> str:
    if not chain.holds_tool_calls or ctx.ended_by is not None:
        return ""
    return await chain.stream_end(ctx, end)


async def _native(
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
