"""The dialect codecs: a stream reassembles into its non-streaming twin, and bad input
gives a partial message with errors instead of an exception.

OpenAI comparison: the reassembled body is compared whole with the non-streaming body.
Only two fields legitimately differ between the wire forms, and the codec rebuilds both:
`object` ("chat.completion.chunk" becomes "chat.completion") and per-chunk padding such
as `obfuscation` (dropped). `usage` exists in a stream only when the client asked for it
(`stream_options.include_usage`); without it the reassembly has no `usage` key rather
than an invented one, so that case is compared without `usage`.
"""

from __future__ import annotations

import itertools
import json
import string
from typing import Any, cast

import pytest
from anthropic._models import construct_type
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from wire_scenarios import (
    SCENARIOS,
    Scenario,
    ScenarioToolCall,
    anthropic_json,
    anthropic_sse,
    openai_chat_json,
    openai_chat_sse,
)

from interlock.dialects import dialect_for
from interlock.dialects.base import Dialect
from interlock.neutral import ToolCall, Usage
from interlock.sse import SSEEvent, SSEParser, parse_all

OPENAI = dialect_for("openai-chat")
ANTHROPIC = dialect_for("anthropic-messages")
MODEL = "test-model"


def events_of(chunks: list[bytes]) -> list[SSEEvent]:
    return parse_all(b"".join(chunks))


def content_flags(dialect: Dialect, events: list[SSEEvent]) -> list[bool]:
    """Which events the dialect's reassembler, fed one by one, calls generated content."""
    reassembler = dialect.reassembler()
    return [reassembler.feed(event) for event in events]


def payload_of(event: SSEEvent) -> dict[str, Any]:
    payload = event.json()
    assert isinstance(payload, dict)
    return payload


def openai_reassembly(s: Scenario, include_usage: bool = True) -> dict[str, Any]:
    result = OPENAI.reassemble(events_of(openai_chat_sse(s, MODEL, include_usage)))
    assert result.errors == []
    assert result.message is not None
    return result.message


def anthropic_reassembly(s: Scenario) -> dict[str, Any]:
    result = ANTHROPIC.reassemble(events_of(anthropic_sse(s, MODEL)))
    assert result.errors == []
    assert result.message is not None
    return result.message


# --- Streams reassemble into their non-streaming twins ------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_openai_stream_reassembles_into_the_completion(name: str) -> None:
    s = SCENARIOS[name]
    assert openai_reassembly(s) == openai_chat_json(s, MODEL)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_openai_stream_without_usage_has_no_usage(name: str) -> None:
    s = SCENARIOS[name]
    message = openai_reassembly(s, include_usage=False)
    expected = openai_chat_json(s, MODEL)
    del expected["usage"]
    assert message == expected
    assert OPENAI.usage(message) == Usage()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_anthropic_stream_reassembles_into_the_message(name: str) -> None:
    s = SCENARIOS[name]
    assert anthropic_reassembly(s) == anthropic_json(s, MODEL)


def openai_sdk_final(chunks: list[bytes]) -> dict[str, Any]:
    state = ChatCompletionStreamState()
    for event in events_of(chunks):
        if event.data and event.data != "[DONE]":
            state.handle_chunk(ChatCompletionChunk.model_validate_json(event.data))
    return state.get_final_completion().model_dump(mode="json")


def anthropic_sdk_final(chunks: list[bytes]) -> dict[str, Any]:
    snapshot = None
    buffers: dict[int, bytes] = {}
    for event in events_of(chunks):
        payload = payload_of(event)
        if payload["type"] == "ping":  # the SDK drops pings before accumulating
            continue
        parsed = cast(
            RawMessageStreamEvent,
            construct_type(type_=RawMessageStreamEvent, value=payload),
        )
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=buffers)
    assert snapshot is not None
    return snapshot.model_dump(mode="json", exclude_unset=True)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_official_sdks_read_the_streams_as_the_codecs_do(name: str) -> None:
    s = SCENARIOS[name]
    sdk = openai_sdk_final(openai_chat_sse(s, MODEL, include_usage=True))
    ours = openai_reassembly(s)
    assert OPENAI.response_text(sdk) == OPENAI.response_text(ours)
    assert OPENAI.tool_calls(sdk) == OPENAI.tool_calls(ours)
    assert OPENAI.stop_reason(sdk) == OPENAI.stop_reason(ours)
    assert OPENAI.usage(sdk) == OPENAI.usage(ours)
    assert sdk["id"] == ours["id"] and sdk["model"] == ours["model"]

    sdk_message = anthropic_sdk_final(anthropic_sse(s, MODEL))
    sdk_message.pop("stop_details", None)  # the SDK adds it; the API sends none here
    assert sdk_message == anthropic_reassembly(s)


# --- Generated scenarios ------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8"), max_size=12)
json_values = st.one_of(st.integers(), st.booleans(), st.none(), texts)


@st.composite
def tool_calls(draw: st.DrawFn, index: int) -> ScenarioToolCall:
    arguments = json.dumps(
        draw(st.dictionaries(texts, json_values, max_size=4)),
        ensure_ascii=draw(st.booleans()),
    )
    cuts = sorted(draw(st.lists(st.integers(0, len(arguments)), max_size=8)))
    bounds = [0, *cuts, len(arguments)]
    return ScenarioToolCall(
        id=f"gen{index}_" + draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=10)),
        name=draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)),
        argument_pieces=[arguments[a:b] for a, b in itertools.pairwise(bounds)],
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(0, 3))
    return Scenario(
        model=draw(st.sampled_from(["gpt-4o-mini", "claude-sonnet-4-5", "模型"])),
        thinking=draw(st.lists(texts, max_size=3)),
        redacted_thinking=draw(st.booleans()),
        text=draw(st.lists(texts, max_size=6)),
        tool_calls=[draw(tool_calls(i)) for i in range(count)],
        stop_reason=draw(st.sampled_from([None, None, "max_tokens", "length"])),
        input_tokens=draw(st.integers(0, 10**6)),
        output_tokens=draw(st.integers(0, 10**5)),
        cache_read_tokens=draw(st.integers(0, 10**6)),
        cache_write_tokens=draw(st.integers(0, 10**6)),
    )


def chunked_events(body: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    bounds = [0, *sorted(c % (len(body) + 1) for c in cuts), len(body)]
    events: list[SSEEvent] = []
    for a, b in itertools.pairwise(bounds):
        events += parser.feed(body[a:b])
    return events + parser.finish()


@settings(max_examples=150)
@given(scenarios(), st.lists(st.integers(0, 10**6), max_size=30))
def test_generated_openai_streams_reassemble(s: Scenario, cuts: list[int]) -> None:
    result = OPENAI.reassemble(chunked_events(b"".join(openai_chat_sse(s, MODEL, True)), cuts))
    assert result.errors == []
    assert result.message == openai_chat_json(s, MODEL)
    assert OPENAI.response_text(result.message) == "".join(s.text)
    calls = OPENAI.tool_calls(result.message)
    assert [c.arguments for c in calls] == [json.loads(c.arguments) for c in s.tool_calls]
    assert OPENAI.usage(result.message) == Usage(
        input_tokens=s.input_tokens,
        output_tokens=s.output_tokens,
        cache_read_tokens=s.cache_read_tokens,
    )


@settings(max_examples=150)
@given(scenarios(), st.lists(st.integers(0, 10**6), max_size=30))
def test_generated_anthropic_streams_reassemble(s: Scenario, cuts: list[int]) -> None:
    result = ANTHROPIC.reassemble(chunked_events(b"".join(anthropic_sse(s, MODEL)), cuts))
    assert result.errors == []
    assert result.message == anthropic_json(s, MODEL)
    assert ANTHROPIC.response_text(result.message) == "".join(s.text)
    assert [(c.id, c.name, c.arguments) for c in ANTHROPIC.tool_calls(result.message)] == [
        ("toolu_" + c.id, c.name, json.loads(c.arguments)) for c in s.tool_calls
    ]
    assert ANTHROPIC.usage(result.message) == Usage(
        input_tokens=s.input_tokens,
        output_tokens=s.output_tokens,
        cache_read_tokens=s.cache_read_tokens,
        cache_write_tokens=s.cache_write_tokens,
    )


def interleave(chunks: list[bytes]) -> list[bytes]:
    """Reorder tool-call argument chunks round-robin across calls (allowed by the API)."""
    by_call: dict[int, list[bytes]] = {}
    head: list[bytes] = []
    tail: list[bytes] = []
    for chunk in chunks:
        payload = json.loads(chunk[len(b"data: ") :]) if chunk != b"data: [DONE]\n\n" else None
        calls = payload["choices"][0]["delta"].get("tool_calls") if payload and payload["choices"] else None
        if calls:
            by_call.setdefault(calls[0]["index"], []).append(chunk)
        else:
            (tail if by_call else head).append(chunk)
    mixed = [c for group in itertools.zip_longest(*by_call.values()) for c in group if c is not None]
    return head + mixed + tail


@pytest.mark.parametrize("name", ["tools2", "tools3"])
def test_openai_interleaved_tool_call_deltas_merge_by_index(name: str) -> None:
    s = SCENARIOS[name]
    chunks = interleave(openai_chat_sse(s, MODEL, True))
    assert chunks != openai_chat_sse(s, MODEL, True)
    result = OPENAI.reassemble(events_of(chunks))
    assert result.errors == []
    assert result.message == openai_chat_json(s, MODEL)


# --- Usage, stop reasons, tool calls and requests -------------------------------------


def test_cache_usage_in_both_dialects() -> None:
    s = SCENARIOS["cache"]
    assert OPENAI.usage(openai_chat_json(s, MODEL)) == Usage(
        input_tokens=5, output_tokens=7, cache_read_tokens=2048, cache_write_tokens=None
    )
    assert openai_chat_json(s, MODEL)["usage"]["prompt_tokens"] == 5 + 2048
    expected = Usage(input_tokens=5, output_tokens=7, cache_read_tokens=2048, cache_write_tokens=512)
    assert ANTHROPIC.usage(anthropic_json(s, MODEL)) == expected
    assert ANTHROPIC.usage(anthropic_reassembly(s)) == expected


def anthropic_stream(*payloads: dict[str, Any]) -> list[SSEEvent]:
    return events_of([f"event: {p['type']}\ndata: {json.dumps(p)}\n\n".encode() for p in payloads])


START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "output_tokens": 1},
    },
}
STOP = {"type": "message_stop"}


def test_anthropic_later_usage_wins_per_field() -> None:
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "output_tokens": 50,
            "input_tokens": 12,
            "cache_read_input_tokens": None,
        },
    }
    result = ANTHROPIC.reassemble(anthropic_stream(START, delta, STOP))
    assert result.message is not None
    assert ANTHROPIC.usage(result.message) == Usage(input_tokens=12, output_tokens=50, cache_read_tokens=4)
    assert ANTHROPIC.stop_reason(result.message) == "end_turn"


def test_stop_reasons() -> None:
    assert OPENAI.stop_reason(openai_chat_json(SCENARIOS["tool"], MODEL)) == "tool_calls"
    assert OPENAI.stop_reason(openai_chat_json(SCENARIOS["text"], MODEL)) == "stop"
    assert ANTHROPIC.stop_reason(anthropic_json(SCENARIOS["tool"], MODEL)) == "tool_use"
    truncated = Scenario(text=["cut"], stop_reason="max_tokens")
    assert ANTHROPIC.stop_reason(anthropic_reassembly(truncated)) == "max_tokens"
    assert OPENAI.stop_reason(openai_reassembly(truncated)) == "length"
    assert OPENAI.stop_reason({}) is None and ANTHROPIC.stop_reason({}) is None


def test_tool_calls_in_both_dialects() -> None:
    s = SCENARIOS["tools2"]
    expected = [
        (0, "get_weather", {"location": "Paris, France", "unit": "celsius"}),
        (1, "get_weather", {"location": "Tokyo, Japan", "unit": "celsius"}),
    ]
    openai_calls = OPENAI.tool_calls(openai_chat_json(s, MODEL))
    anthropic_calls = ANTHROPIC.tool_calls(anthropic_json(s, MODEL))
    assert [(c.index, c.name, c.arguments) for c in openai_calls] == expected
    assert [(c.index, c.name, c.arguments) for c in anthropic_calls] == expected
    assert [c.id for c in openai_calls] == [
        "call_01A09q90qw90lq917835lq9",
        "call_01B7mZ3kPq2Wd8sXy4tN6vR",
    ]
    assert [c.id for c in anthropic_calls] == [
        "toolu_01A09q90qw90lq917835lq9",
        "toolu_01B7mZ3kPq2Wd8sXy4tN6vR",
    ]


def test_openai_invalid_arguments_stay_a_raw_string() -> None:
    body = openai_chat_json(SCENARIOS["tool"], MODEL)
    body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"location": "Par'
    assert OPENAI.tool_calls(body) == [
        ToolCall(
            id="call_01A09q90qw90lq917835lq9",
            name="get_weather",
            arguments='{"location": "Par',
            index=0,
        )
    ]


def test_openai_legacy_function_call() -> None:
    body = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "f", "arguments": '{"a": 1}'},
                }
            }
        ]
    }
    assert OPENAI.tool_calls(body) == [ToolCall(id=None, name="f", arguments={"a": 1}, index=0)]


def test_response_text_and_model() -> None:
    s = SCENARIOS["unicode"]
    assert OPENAI.response_text(openai_chat_json(s, MODEL)) == "Café é 日本語 🎉👍🏽 done"
    assert ANTHROPIC.response_text(anthropic_json(s, MODEL)) == "Café é 日本語 🎉👍🏽 done"
    assert ANTHROPIC.response_text(anthropic_json(SCENARIOS["thinking"], MODEL)) == "Hi there!"
    assert OPENAI.response_text(openai_chat_json(SCENARIOS["tools3"], MODEL)) == ""
    assert OPENAI.response_model(openai_chat_json(s, "gpt-x")) == "gpt-x"
    assert ANTHROPIC.response_model(anthropic_json(s, "claude-x")) == "claude-x"
    assert OPENAI.response_text({"choices": "nonsense"}) == "" and ANTHROPIC.response_text({}) == ""


@pytest.mark.parametrize("codec", [OPENAI, ANTHROPIC])
def test_request_fields(codec: Dialect) -> None:
    request = {
        "model": "m-1",
        "stream": True,
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "last"},
                    {"type": "image", "source": {}},
                    {"type": "text", "text": "question é"},
                ],
            },
            {"role": "system", "content": "Claude Code puts system messages here"},
        ],
    }
    assert codec.request_model(request) == "m-1"
    assert codec.request_streams(request) is True
    assert codec.last_user_text(request) == "last\nquestion é"
    assert codec.request_streams({"stream": "yes"}) is False
    assert codec.request_model({}) is None
    assert codec.last_user_text({"messages": [{"role": "user", "content": "only"}]}) == "only"
    assert codec.last_user_text({"messages": "garbage"}) == "" and codec.last_user_text({}) == ""


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_first_content_event(name: str) -> None:
    s = SCENARIOS[name]
    openai_events = events_of(openai_chat_sse(s, MODEL, True))
    first = content_flags(OPENAI, openai_events).index(True)
    # A text turn opens with role and content "" only; a tool-only turn's first chunk
    # carries the role and the first tool call together.
    assert first == (1 if s.text or not s.tool_calls else 0)
    anthropic_events = events_of(anthropic_sse(s, MODEL))
    anthropic_flags = content_flags(ANTHROPIC, anthropic_events)
    first_event = anthropic_events[anthropic_flags.index(True)]
    payload = payload_of(first_event)
    if s.thinking:
        assert payload["delta"] == {"type": "thinking_delta", "thinking": s.thinking[0]}
    elif s.redacted_thinking or not s.text:
        assert payload["type"] == "content_block_start"
    else:
        assert payload["delta"] == {"type": "text_delta", "text": s.text[0]}
    assert not any(
        flag
        for e, flag in zip(anthropic_events, anthropic_flags, strict=True)
        if e.event != "content_block_delta" and e.event != "content_block_start"
    )


# --- Tolerance: malformed and truncated streams ----------------------------------------


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
@pytest.mark.parametrize("name", ["tools2", "thinking", "unicode"])
def test_every_truncation_gives_a_partial_message_and_errors(dialect: str, name: str) -> None:
    s = SCENARIOS[name]
    if dialect == "openai":
        codec: Dialect = OPENAI
        body = b"".join(openai_chat_sse(s, MODEL, True))
    else:
        codec = ANTHROPIC
        body = b"".join(anthropic_sse(s, MODEL))
    full_text = "".join(s.text)
    for end in range(len(body) - 2):
        result = codec.reassemble(parse_all(body[:end]))
        assert result.errors, end
        if result.message is not None:
            assert full_text.startswith(codec.response_text(result.message))


def test_anthropic_noise_is_ignored_and_bad_json_reported() -> None:
    s = SCENARIOS["tool"]
    chunks = anthropic_sse(s, MODEL)
    noisy = [
        chunks[0],
        b": keep-alive\n\n",
        b'event: ping\ndata: {"type": "ping"}\n\n',
        *chunks[1:4],
        b'event: future_event\ndata: {"type": "future_event", "x": 1}\n\n',
        b"event: content_block_delta\ndata: {not json\n\n",
        *chunks[4:],
    ]
    result = ANTHROPIC.reassemble(events_of(noisy))
    assert result.message == anthropic_json(s, MODEL)
    assert len(result.errors) == 1 and "not JSON" in result.errors[0]


def test_openai_noise_is_ignored_and_bad_json_reported() -> None:
    s = SCENARIOS["tool"]
    chunks = openai_chat_sse(s, MODEL, True)
    noisy = [
        chunks[0],
        b": OPENROUTER PROCESSING\n\n",
        *chunks[1:3],
        b"data: {oops\n\n",
        *chunks[3:],
    ]
    result = OPENAI.reassemble(events_of(noisy))
    assert result.message == openai_chat_json(s, MODEL)
    assert len(result.errors) == 1 and "not JSON" in result.errors[0]


def test_anthropic_error_event_mid_stream() -> None:
    chunks = anthropic_sse(SCENARIOS["text"], MODEL)
    error = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    result = ANTHROPIC.reassemble(events_of([*chunks[:4], error]))
    assert result.message is not None
    assert ANTHROPIC.response_text(result.message) == "Hello"
    assert any("overloaded_error: Overloaded" in e for e in result.errors)
    assert any("message_stop" in e for e in result.errors)
    assert any("content block 0" in e for e in result.errors)


@pytest.mark.parametrize("name", ["tools2", "interleaved"])
def test_streams_ending_after_complete_tool_calls(name: str) -> None:
    """An Anthropic error event after the last block, or an OpenAI stream cut before its
    finish_reason chunk: the tool calls are whole, the errors say the message never ended."""
    s = SCENARIOS[name]
    expected = [(c.name, json.loads(c.arguments)) for c in s.tool_calls]
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    anthropic_result = ANTHROPIC.reassemble(events_of([*anthropic_sse(s, MODEL)[:-2], error]))
    assert anthropic_result.message is not None
    assert [(c.name, c.arguments) for c in ANTHROPIC.tool_calls(anthropic_result.message)] == expected
    assert ANTHROPIC.stop_reason(anthropic_result.message) is None
    assert any("overloaded_error: Overloaded" in e for e in anthropic_result.errors)
    assert any("message_stop" in e for e in anthropic_result.errors)
    openai_result = OPENAI.reassemble(events_of(openai_chat_sse(s, MODEL, True)[:-3]))
    assert openai_result.message is not None
    assert [(c.name, c.arguments) for c in OPENAI.tool_calls(openai_result.message)] == expected
    assert OPENAI.stop_reason(openai_result.message) is None
    assert any("finish_reason" in e for e in openai_result.errors) and any("[DONE]" in e for e in openai_result.errors)


def test_openai_error_chunk_mid_stream() -> None:
    chunks = openai_chat_sse(SCENARIOS["text"], MODEL, False)
    error = b'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    result = OPENAI.reassemble(events_of([*chunks[:2], error]))
    assert result.message is not None
    assert OPENAI.response_text(result.message) == "Hello"
    assert OPENAI.stop_reason(result.message) is None
    assert any("server_error: The server had an error" in e for e in result.errors)
    assert any("finish_reason" in e for e in result.errors) and any("[DONE]" in e for e in result.errors)


@pytest.mark.parametrize("codec", [OPENAI, ANTHROPIC])
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>502 Bad Gateway</html>",
        b"data: [DONE]\n\n",
        b'data: 42\n\ndata: "str"\n\n',
        b": only\n\n",
    ],
)
def test_nothing_to_rebuild(codec: Dialect, body: bytes) -> None:
    result = codec.reassemble(parse_all(body))
    assert result.message is None
    assert result.errors


def test_anthropic_tool_input_edge_cases() -> None:
    def tool_stream(*parts: str) -> list[SSEEvent]:
        block = {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}
        deltas = [
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }
            for p in parts
        ]
        return anthropic_stream(
            START,
            {"type": "content_block_start", "index": 0, "content_block": block},
            *deltas,
            {"type": "content_block_stop", "index": 0},
            STOP,
        )

    empty = ANTHROPIC.reassemble(tool_stream(""))
    assert empty.message is not None and empty.message["content"][0]["input"] == {}
    bad = ANTHROPIC.reassemble(tool_stream('{"a": ', "tru"))
    assert bad.message is not None
    assert ANTHROPIC.tool_calls(bad.message)[0].arguments == '{"a": tru'
    assert any("not valid JSON" in e for e in bad.errors)


def test_anthropic_out_of_order_block_events_are_reported() -> None:
    text = {"type": "text", "text": ""}
    result = ANTHROPIC.reassemble(
        anthropic_stream(
            START,
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "early"},
            },
            {"type": "content_block_start", "index": 0, "content_block": text},
            {"type": "content_block_start", "index": 0, "content_block": text},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "mystery_delta"},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "ok"},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "late"},
            },
            {"type": "content_block_stop"},
            STOP,
        )
    )
    assert result.message is not None
    assert ANTHROPIC.response_text(result.message) == "ok"
    joined = " | ".join(result.errors)
    for phrase in (
        "never started",
        "started twice",
        "unknown delta type",
        "already stopped",
        "no index",
    ):
        assert phrase in joined


def test_anthropic_events_before_message_start() -> None:
    result = ANTHROPIC.reassemble(
        anthropic_stream(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": "hi"},
            },
            {"type": "content_block_stop", "index": 0},
            STOP,
        )
    )
    assert result.message is not None
    assert ANTHROPIC.response_text(result.message) == "hi"
    assert any("before message_start" in e for e in result.errors)


def test_openai_tool_call_without_id_is_reported() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return f"data: {json.dumps({'id': 'c', 'choices': [choice]})}\n\n".encode()

    result = OPENAI.reassemble(
        events_of(
            [
                chunk({"role": "assistant"}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
                chunk({"tool_calls": [{"function": {"arguments": "x"}}]}),
                chunk({}, "tool_calls"),
                b"data: [DONE]\n\n",
                chunk({"content": "late"}),
            ]
        )
    )
    assert result.message is not None
    assert result.message["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{}"
    joined = " | ".join(result.errors)
    assert "no id or name" in joined and "without an index" in joined and "after [DONE]" in joined


def test_openai_azure_style_leading_filter_chunk() -> None:
    """Azure OpenAI opens with a chunk of empty id/model and no choices; the real values
    in the following chunks must win."""
    s = SCENARIOS["text"]
    azure_head = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
    }
    chunks = [
        f"data: {json.dumps(azure_head)}\n\n".encode(),
        *openai_chat_sse(s, MODEL, True),
    ]
    result = OPENAI.reassemble(events_of(chunks))
    assert result.errors == []
    assert result.message == {
        **openai_chat_json(s, MODEL),
        "prompt_filter_results": azure_head["prompt_filter_results"],
    }
