"""Policies see the native upstream event behind each neutral hook (`ctx.native_event`)."""

from __future__ import annotations

from typing import Any

from policy_fixtures import chain_of, police_body, police_stream
from wire_scenarios import SCENARIOS, anthropic_json, anthropic_sse, openai_chat_sse

from interlock.neutral import ToolCall
from interlock.policy.base import Keep, Policy, PolicyContext, ToolDecision


class NativeSpy(Policy):
    """Notes the native event type (Anthropic) or chunk keys (OpenAI) at each hook."""

    name = "native_spy"

    async def on_text(self, ctx: PolicyContext, text: str) -> str:
        ctx.scratch(self).setdefault("text", []).append(_kind(ctx))
        return text

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        ctx.scratch(self).setdefault("tool", []).append(_kind(ctx))
        return Keep(call)


def _kind(ctx: PolicyContext) -> Any:
    event = ctx.native_event
    if event is None:
        return None
    data = event.json()
    if not isinstance(data, dict):
        return event.data
    if "type" in data:  # Anthropic names its events
        return data["type"]
    return sorted(data["choices"][0]["delta"])  # OpenAI: what the chunk's delta carries


SPY = {"policy": "test_engine_native:NativeSpy"}


async def test_stream_hooks_see_the_event_that_triggered_them() -> None:
    body, ctx = await police_stream(chain_of(SPY), "anthropic-messages", anthropic_sse(SCENARIOS["tool"], "m"))
    seen = next(iter(ctx._scratch.values()))
    assert set(seen["text"]) == {"content_block_delta"}
    assert seen["tool"] == ["content_block_stop"]  # a tool call is complete at its block's stop
    assert body == b"".join(anthropic_sse(SCENARIOS["tool"], "m"))

    _, ctx = await police_stream(chain_of(SPY), "openai-chat", openai_chat_sse(SCENARIOS["text"], "m", True))
    seen = next(iter(ctx._scratch.values()))
    assert seen["text"] and all("content" in keys for keys in seen["text"])


async def test_whole_bodies_have_no_native_event() -> None:
    _, ctx = await police_body(chain_of(SPY), "anthropic-messages", anthropic_json(SCENARIOS["tool"], "m"))
    seen = next(iter(ctx._scratch.values()))
    assert seen["text"] == [None] and seen["tool"] == [None]
