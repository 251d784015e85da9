"""Applies a policy chain to a whole OpenAI Chat Completion (not streamed), with the
same invariants as the stream rewriter."""

from __future__ import annotations

import json
from typing import Any

from interlock.dialects.common import tool_arguments
from interlock.dialects.openai_chat import response, wire
from interlock.engine import whole
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, PolicyContext, ReplaceWithText, StreamEnd
from interlock.policy.chain import PolicyChain


async def rewrite_body(chain: PolicyChain, ctx: PolicyContext, completion: dict[str, Any]) -> dict[str, Any]:
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return await chain.response(ctx, completion)
    choice = choices[0]
    message = dict(choice.get("message") or {})
    content = message.get("content")
    if isinstance(content, str) and content and chain.handles_text:
        message["content"] = await whole.text(chain, ctx, content) or None
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
    decisions = await whole.decisions(chain, ctx, calls)
    finish_reason = choice.get("finish_reason")
    extra = await whole.stream_end(chain, ctx, StreamEnd(finish_reason, response.usage(completion)))
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
    return await whole.native(chain, ctx, result, wire.blocked_completion)


def _openai_call(raw: dict[str, Any], call: ToolCall) -> dict[str, Any]:
    arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments, ensure_ascii=False)
    return {**raw, "function": {**(raw.get("function") or {}), "name": call.name, "arguments": arguments}}
