"""Applies a policy chain to a whole OpenAI Response (not streamed), with the same
invariants as the stream rewriter: each `output_text` part through the text policies,
each tool call item decided (all concurrently), a blocked call replaced in its place by
a message item with its notice, text a policy adds at the end before the first call."""

from __future__ import annotations

import copy
from typing import Any

from interlock.dialects.openai_responses import chained, response, wire
from interlock.engine import whole
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, PolicyContext, ReplaceWithText, StreamEnd
from interlock.policy.chain import PolicyChain


async def rewrite_body(chain: PolicyChain, ctx: PolicyContext, body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("output"), list):
        return await chain.response(ctx, body)
    items = copy.deepcopy(response.output_items(body))
    if chain.handles_text:
        for item in items:
            for part in item.get("content") or [] if item.get("type") == "message" else []:
                if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    part["text"] = await whole.text(chain, ctx, part["text"])
    calls: list[tuple[int, ToolCall]] = []
    for position, item in enumerate(items):
        call = response.call_of(item, len(calls))
        if call is not None:
            calls.append((position, call))
    decisions = await whole.decisions(chain, ctx, [call for _, call in calls])
    extra = await whole.stream_end(chain, ctx, StreamEnd(response.stop_reason(body), response.usage(body)))
    replaced: dict[int, list[dict[str, Any]]] = {}
    response_id = str(body.get("id") or "")
    for (position, call), decision in zip(calls, decisions, strict=True):
        item = items[position]
        if ctx.ended_by is not None or isinstance(decision, ReplaceWithText):
            reason = decision.reason if isinstance(decision, ReplaceWithText) else "the message was ended by a policy"
            chained.remember(response_id, item, call.name, chained.blocking_policy(ctx, call.id), reason)
            notice = [decision.text] if isinstance(decision, ReplaceWithText) and ctx.ended_by is None else []
            replaced[position] = [wire.message_item(f"msg_interlock_{ctx.call_id}_{position}", t) for t in notice]
        elif isinstance(decision, Keep) and decision.call != call:
            replaced[position] = [wire.call_item(item, decision.call.name, decision.call.arguments)]
    output: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        if extra and calls and position == calls[0][0]:
            output.append(wire.message_item(f"msg_interlock_{ctx.call_id}_end", extra))
            extra = ""
        output.extend(replaced.get(position, [item]))
    if extra:
        output.append(wire.message_item(f"msg_interlock_{ctx.call_id}_end", extra))
    return await whole.native(chain, ctx, {**body, "output": output}, wire.blocked_response)
