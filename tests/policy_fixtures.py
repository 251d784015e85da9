"""Test-only policies and helpers that run the policy engine in process.

The policies here exist to prove the engine: one that tags what it sees (chain order),
one that fails in a chosen hook (raising or sleeping past its timeout), one that sleeps
before deciding (async waits mid-stream), one that overrides every hook and changes
nothing (byte-identical pass-through). They are importable by a mitmdump child process
as `policy_fixtures:<Class>` when `tests/` is on its PYTHONPATH.

The helpers feed wire bytes through the engine the way the addon does (split into
chunks at will), and read the result back with the official SDK accumulators.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal, cast

from anthropic._models import construct_type
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, ParsedMessage, RawMessageStreamEvent
from openai import omit
from openai._models import construct_type_unchecked
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.lib.streaming.responses import ResponseStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from protocol_check import (
    check_anthropic_message,
    check_anthropic_stream,
    check_gemini_response,
    check_gemini_stream,
    check_openai_chat_completion,
    check_openai_chat_stream,
    check_openai_response,
    check_openai_responses_stream,
)
from pydantic import Field

from interlock.config import PolicyEntry
from interlock.dialects import dialect_for
from interlock.engine.stream import PolicyStream, StreamTap
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, Policy, PolicyContext, PolicyOptions, StreamEnd, ToolDecision
from interlock.policy.chain import PolicyChain
from interlock.sse import parse_all
from policies.registry import build_chain

Dialect = Literal["anthropic-messages", "openai-chat", "openai-responses", "gemini"]
DIALECTS: tuple[Dialect, ...] = ("anthropic-messages", "openai-chat", "openai-responses", "gemini")
RESPONSES = "openai-responses"
GEMINI = "gemini"
# The stop reason of a turn that ends without tool calls (a Responses status, and Gemini's
# finishReason, have no tool stop).
TURN_ENDED = {"anthropic-messages": "end_turn", "openai-chat": "stop", RESPONSES: "completed", GEMINI: "STOP"}
HOOKS = ("on_request", "on_text", "on_text_end", "on_tool_call", "on_stream_end", "on_response")

# --- test policies ---------------------------------------------------------------------


class TagOptions(PolicyOptions):
    tag: str


class TagPolicy(Policy):
    """Marks everything it sees with its tag, so a test can read the order of a chain."""

    name = "tag"
    Options = TagOptions
    options: TagOptions

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        return {**request, "tags": [*request.get("tags", []), self.options.tag]}

    async def on_text(self, ctx: PolicyContext, text: str) -> str:
        return f"{text}<{self.options.tag}>"

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        return Keep(ToolCall(call.id, f"{call.name}+{self.options.tag}", call.arguments, call.index))

    async def on_stream_end(self, ctx: PolicyContext, end: StreamEnd) -> str:
        return f"[{self.options.tag} saw {end.stop_reason}]"

    async def on_response(self, ctx: PolicyContext, response: dict[str, Any]) -> dict[str, Any]:
        return {**response, "tags": [*response.get("tags", []), self.options.tag]}


class FailOptions(PolicyOptions):
    hook: Literal["on_request", "on_text", "on_text_end", "on_tool_call", "on_stream_end", "on_response"]
    mode: Literal["raise", "hang"] = "raise"


class FailingPolicy(Policy):
    """Fails in one hook: raises, or sleeps far beyond any test timeout ("hang")."""

    name = "failing"
    Options = FailOptions
    options: FailOptions

    async def _fail(self, hook: str) -> None:
        if hook != self.options.hook:
            return
        if self.options.mode == "hang":
            await asyncio.sleep(3600)
        raise RuntimeError(f"{hook} exploded")

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        await self._fail("on_request")
        return request

    async def on_text(self, ctx: PolicyContext, text: str) -> str:
        await self._fail("on_text")
        return text

    async def on_text_end(self, ctx: PolicyContext) -> str:
        await self._fail("on_text_end")
        return ""

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        await self._fail("on_tool_call")
        return Keep(call)

    async def on_stream_end(self, ctx: PolicyContext, end: StreamEnd) -> str:
        await self._fail("on_stream_end")
        return ""

    async def on_response(self, ctx: PolicyContext, response: dict[str, Any]) -> dict[str, Any]:
        await self._fail("on_response")
        return response


class SleepOptions(PolicyOptions):
    seconds: float = 1.0
    hooks: list[str] = Field(default_factory=lambda: ["on_tool_call"])


class SleepyPolicy(Policy):
    """Awaits `seconds` in the chosen hooks, then lets everything through unchanged: the
    stand-in for a judge that makes a network call mid-stream."""

    name = "sleepy"
    Options = SleepOptions
    options: SleepOptions

    async def _sleep(self, hook: str) -> None:
        if hook in self.options.hooks:
            await asyncio.sleep(self.options.seconds)

    async def on_text(self, ctx: PolicyContext, text: str) -> str:
        await self._sleep("on_text")
        return text

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        await self._sleep("on_tool_call")
        ctx.record(self.instance_name, "allowed", f"slept {self.options.seconds} s", tool_name=call.name)
        return Keep(call)


class NoopPolicy(Policy):
    """Overrides every hook and changes nothing: the stream must come out byte-identical."""

    name = "noop"

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        return request

    async def on_text(self, ctx: PolicyContext, text: str) -> str:
        return text

    async def on_text_end(self, ctx: PolicyContext) -> str:
        return ""

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        return Keep(call)

    async def on_stream_end(self, ctx: PolicyContext, end: StreamEnd) -> str:
        return ""

    async def on_response(self, ctx: PolicyContext, response: dict[str, Any]) -> dict[str, Any]:
        return response


def fixture_path(cls: type[Policy]) -> str:
    """The import path a config uses for a policy of this module."""
    return f"policy_fixtures:{cls.__name__}"


def chain_of(*entries: dict[str, Any]) -> PolicyChain:
    """A chain built through the registry, as the config loader does."""
    return build_chain([PolicyEntry.model_validate(entry) for entry in entries])


# --- running the engine in process -------------------------------------------------------


def context(dialect: str, request: dict[str, Any] | None = None, streaming: bool = True) -> PolicyContext:
    wire = dialect_for(dialect)
    request = request or {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
    return PolicyContext(
        call_id="test-call",
        dialect=wire,
        model=wire.request_model(request),
        request=request,
        streaming=streaming,
    )


def policed_stream(chain: PolicyChain, ctx: PolicyContext) -> PolicyStream:
    """The `PolicyStream` the addon sets up for a policed stream of `ctx.dialect`."""
    wire = ctx.dialect
    return PolicyStream(wire.stream_rewriter(chain, ctx), StreamTap(wire.reassembler()), wire.reassembler())


async def police_stream(
    chain: PolicyChain, dialect: str, chunks: Iterable[bytes], ctx: PolicyContext | None = None
) -> tuple[bytes, PolicyContext]:
    """Feed upstream chunks through a `PolicyStream` as mitmproxy does (then the empty
    end-of-stream chunk), awaiting waits as the addon's stream-wait hook does."""
    ctx = ctx or context(dialect)
    stream = policed_stream(chain, ctx)
    out = bytearray()
    for chunk in [*chunks, b""]:
        out += b"".join(stream(chunk))
        while stream.waiting:
            await stream.wait()
            out += b"".join(stream.resume())
    assert bytes(stream.final) == bytes(out)
    return bytes(out), ctx


async def police_body(
    chain: PolicyChain, dialect: str, body: dict[str, Any], ctx: PolicyContext | None = None
) -> tuple[dict[str, Any], PolicyContext]:
    ctx = ctx or context(dialect, streaming=False)
    return await ctx.dialect.rewrite_body(chain, ctx, body), ctx


def stream_violations(dialect: str, body: bytes, request: dict[str, Any] | None = None) -> list[str]:
    """The protocol checker's findings on a stream; given the request body, an OpenAI
    stream must also carry the usage chunk its `stream_options.include_usage` asked for."""
    if dialect == "anthropic-messages":
        return check_anthropic_stream(parse_all(body))
    if dialect == RESPONSES:
        return check_openai_responses_stream(parse_all(body))
    if dialect == GEMINI:
        return check_gemini_stream(parse_all(body))
    return check_openai_chat_stream(parse_all(body), request=request)


def body_violations(dialect: str, body: dict[str, Any]) -> list[str]:
    if dialect == RESPONSES:
        return check_openai_response(body)
    if dialect == GEMINI:
        return check_gemini_response(body)
    check = check_anthropic_message if dialect == "anthropic-messages" else check_openai_chat_completion
    return check(body)


def anthropic_sdk_message(body: bytes) -> Message:
    """The message the `anthropic` SDK's stream accumulator builds from these bytes."""
    snapshot: ParsedMessage[None] | None = None
    buffers: dict[int, bytes] = {}
    for event in parse_all(body):
        payload = event.json()
        if not isinstance(payload, dict) or payload.get("type") == "ping":
            continue
        if payload.get("type") == "error":
            raise AssertionError(f"error event: {payload}")
        parsed = cast(RawMessageStreamEvent, construct_type(type_=RawMessageStreamEvent, value=payload))
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=buffers)
    assert snapshot is not None
    return snapshot


def openai_sdk_completion(body: bytes) -> ChatCompletion:
    """The completion the `openai` SDK's stream accumulator builds from these bytes."""
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for event in parse_all(body):
        if event.data and event.data != "[DONE]":
            state.handle_chunk(ChatCompletionChunk.model_validate_json(event.data))
    return state.get_final_completion()


def openai_sdk_response(body: bytes) -> Response:
    """The response the `openai` SDK's Responses stream accumulator builds (what
    `client.responses.stream(...).get_final_response()` returns)."""
    state: ResponseStreamState[None] = ResponseStreamState(input_tools=[], text_format=omit)
    for event in parse_all(body):
        payload = event.json()
        if isinstance(payload, dict):
            state.handle_event(cast(Any, construct_type_unchecked(type_=cast(Any, ResponseStreamEvent), value=payload)))
    completed = state._completed_response
    assert completed is not None, "the stream never completed"
    return completed


def sdk_summary(dialect: str, body: bytes | dict[str, Any]) -> tuple[str, list[tuple[str, Any]], str | None]:
    """(text, [(tool name, arguments)], stop reason) as the official SDK parses a stream
    (bytes) or a whole body (dict); a Responses custom tool call's arguments are its input."""
    if dialect == GEMINI:
        return gemini_sdk_summary(body)
    if dialect == RESPONSES:
        response = openai_sdk_response(body) if isinstance(body, bytes) else Response.model_validate(body)
        calls = [
            (item.name, json.loads(item.arguments) if item.type == "function_call" else item.input)
            for item in response.output
            if item.type in ("function_call", "custom_tool_call")
        ]
        return response.output_text, calls, response.status
    if dialect == "anthropic-messages":
        message = anthropic_sdk_message(body) if isinstance(body, bytes) else Message.model_validate(body)
        text = "".join(b.text for b in message.content if b.type == "text")
        tools = [(b.name, b.input) for b in message.content if b.type == "tool_use"]
        return text, tools, message.stop_reason
    completion = openai_sdk_completion(body) if isinstance(body, bytes) else ChatCompletion.model_validate(body)
    choice = completion.choices[0]
    calls = [
        (c.function.name, json.loads(c.function.arguments))
        for c in choice.message.tool_calls or []
        if c.type == "function"
    ]
    return choice.message.content or "", calls, choice.finish_reason


def gemini_sdk_summary(body: bytes | dict[str, Any]) -> tuple[str, list[tuple[str, Any]], str | None]:
    """What the `google-genai` types read from each chunk (or the whole body): the
    answer text (thoughts left out), the function calls, the last finish reason."""
    from google.genai import types

    payloads = [e.json() for e in parse_all(body)] if isinstance(body, bytes) else [body]
    text, calls, finish = "", [], None
    for payload in (p for p in payloads if isinstance(p, dict)):
        chunk = types.GenerateContentResponse.model_validate(payload.get("response", payload))
        candidate = chunk.candidates[0] if chunk.candidates else None
        content = candidate.content if candidate is not None else None
        for part in content.parts or [] if content is not None else []:
            if part.function_call is not None:
                calls.append((str(part.function_call.name), part.function_call.args))
            elif part.text and not part.thought:
                text += part.text
        if candidate is not None and candidate.finish_reason is not None:
            finish = candidate.finish_reason.value
    return text, calls, finish


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """`data` cut at the given offsets (any order, duplicates allowed)."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
