"""The protocol checkers accept every scenario and catch each broken invariant."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from protocol_check import (
    check_anthropic_message,
    check_anthropic_stream,
    check_openai_chat_completion,
    check_openai_chat_stream,
    check_openai_response,
    check_openai_responses_stream,
)
from wire_scenarios import (
    RESPONSES_SCENARIOS,
    SCENARIOS,
    Scenario,
    anthropic_json,
    anthropic_sse,
    openai_chat_json,
    openai_chat_sse,
    openai_responses_json,
    openai_responses_sse,
)

from interlock.sse import SSEEvent, parse_all

MODEL = "test-model"
Payloads = list[Any]  # JSON payloads of a stream; "[DONE]" stays a string
Mutation = Callable[[Payloads], Payloads]


def payloads(chunks: list[bytes]) -> Payloads:
    return [e.json() if e.data != "[DONE]" else e.data for e in parse_all(b"".join(chunks))]


def anthropic_events(items: Payloads) -> list[SSEEvent]:
    return parse_all(b"".join(f"event: {p['type']}\ndata: {json.dumps(p)}\n\n".encode() for p in items))


def openai_events(items: Payloads) -> list[SSEEvent]:
    return parse_all(b"".join(f"data: {p if p == '[DONE]' else json.dumps(p)}\n\n".encode() for p in items))


# --- Every scenario passes ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_passes_every_checker(name: str) -> None:
    s = SCENARIOS[name]
    assert check_anthropic_stream(parse_all(b"".join(anthropic_sse(s, MODEL)))) == []
    assert check_anthropic_message(anthropic_json(s, MODEL)) == []
    for include_usage in (True, False):
        body = b"".join(openai_chat_sse(s, MODEL, include_usage))
        request = {"stream_options": {"include_usage": include_usage}}
        assert check_openai_chat_stream(parse_all(body), request) == []
    assert check_openai_chat_completion(openai_chat_json(s, MODEL)) == []


def test_untouchable_stop_reasons_are_accepted_with_tool_calls() -> None:
    for stop in ("max_tokens", "refusal", "pause_turn"):
        s = Scenario(text=["cut"], tool_calls=SCENARIOS["tool"].tool_calls, stop_reason=stop)
        assert check_anthropic_stream(parse_all(b"".join(anthropic_sse(s, MODEL)))) == []
    s = Scenario(tool_calls=SCENARIOS["tool"].tool_calls, stop_reason="length")
    assert check_openai_chat_stream(parse_all(b"".join(openai_chat_sse(s, MODEL, True)))) == []


# --- Anthropic stream mutations ---------------------------------------------------------


def of_type(kind: str) -> Callable[[Any], bool]:
    return lambda p: isinstance(p, dict) and p.get("type") == kind


def without(predicate: Callable[[Any], bool], nth: int = 0) -> Mutation:
    """Drop the nth payload matching `predicate`."""

    def mutate(items: Payloads) -> Payloads:
        hits = [i for i, p in enumerate(items) if predicate(p)]
        return items[: hits[nth]] + items[hits[nth] + 1 :]

    return mutate


def block_events(index: int) -> Callable[[Any], bool]:
    return lambda p: isinstance(p, dict) and str(p.get("type")).startswith("content_block_") and p.get("index") == index


def renumber(old: int, new: int) -> Mutation:
    def mutate(items: Payloads) -> Payloads:
        return [{**p, "index": new} if block_events(old)(p) else p for p in items]

    return mutate


def shift_indices(items: Payloads) -> Payloads:
    return [{**p, "index": p["index"] + 1} if str(p.get("type")).startswith("content_block_") else p for p in items]


def move_text_block_after_tool(items: Payloads) -> Payloads:
    text = [p for p in items if block_events(0)(p)]
    rest = [p for p in items if not block_events(0)(p)]
    tail = rest.index(next(p for p in rest if of_type("message_delta")(p)))
    return _reindex(rest[:tail] + text + rest[tail:])


def _reindex(items: Payloads) -> Payloads:
    """Give blocks consecutive indices in the order they start."""
    order: dict[int, int] = {}
    result = []
    for p in items:
        if of_type("content_block_start")(p):
            order[p["index"]] = len(order)
        if str(p.get("type")).startswith("content_block_"):
            p = {**p, "index": order[p["index"]]}
        result.append(p)
    return result


def message_delta_before_last_block(items: Payloads) -> Payloads:
    delta = next(p for p in items if of_type("message_delta")(p))
    rest = [p for p in items if p is not delta]
    last_start = max(i for i, p in enumerate(rest) if of_type("content_block_start")(p))
    return rest[:last_start] + [delta] + rest[last_start:]


def duplicate(predicate: Callable[[Any], bool]) -> Mutation:
    def mutate(items: Payloads) -> Payloads:
        at = next(i for i, p in enumerate(items) if predicate(p))
        return items[: at + 1] + [copy.deepcopy(items[at])] + items[at + 1 :]

    return mutate


def insert_after(predicate: Callable[[Any], bool], new: Any) -> Mutation:
    def mutate(items: Payloads) -> Payloads:
        at = next(i for i, p in enumerate(items) if predicate(p)) + 1
        return items[:at] + [new] + items[at:]

    return mutate


def edit(predicate: Callable[[Any], bool], change: Callable[[Any], None], nth: int = 0) -> Mutation:
    def mutate(items: Payloads) -> Payloads:
        items = copy.deepcopy(items)
        change([p for p in items if predicate(p)][nth])
        return items

    return mutate


def text_deltas_removed(items: Payloads) -> Payloads:
    return [p for p in items if not (of_type("content_block_delta")(p) and p["delta"]["type"] == "text_delta")]


def set_stop(stop: str | None) -> Mutation:
    return edit(of_type("message_delta"), lambda p: p["delta"].update(stop_reason=stop))


ANTHROPIC_BREAKS: list[tuple[str, str, Mutation, str]] = [
    (
        "no message_start",
        "text",
        without(of_type("message_start")),
        "must start with message_start",
    ),
    (
        "no message_stop",
        "text",
        without(of_type("message_stop")),
        "must end with message_stop",
    ),
    (
        "event after message_stop",
        "text",
        lambda i: [*i, {"type": "ping"}],
        "after message_stop",
    ),
    (
        "two message_start",
        "text",
        duplicate(of_type("message_start")),
        "a second message_start",
    ),
    (
        "block never stopped",
        "tool",
        without(of_type("content_block_stop")),
        "never stopped",
    ),
    (
        "overlapping blocks",
        "tool",
        without(of_type("content_block_stop")),
        "while block 0 is open",
    ),
    (
        "delta after stop",
        "text",
        insert_after(
            of_type("content_block_stop"),
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "x"},
            },
        ),
        "not the open block",
    ),
    ("index gap", "tools2", renumber(2, 3), "expected 2"),
    ("indices not from 0", "text", shift_indices, "expected 0"),
    (
        "block after message_delta",
        "tools2",
        message_delta_before_last_block,
        "after message_delta",
    ),
    ("empty text block", "text", text_deltas_removed, "empty text block"),
    (
        "text after tool_use",
        "tool",
        move_text_block_after_tool,
        "follows a tool_use block",
    ),
    ("tool_use stop without tools", "text", set_stop("tool_use"), "should be end_turn"),
    ("end_turn with tools", "tool", set_stop("end_turn"), "stop_reason is 'end_turn'"),
    ("no stop_reason", "text", set_stop(None), "no stop_reason"),
    (
        "error event",
        "text",
        insert_after(
            of_type("content_block_start"),
            {"type": "error", "error": {"type": "overloaded_error"}},
        ),
        "error event",
    ),
    (
        "delta type does not fit",
        "tool",
        edit(
            of_type("content_block_delta"),
            lambda p: p["delta"].update(type="text_delta"),
            nth=2,
        ),
        "text_delta in a tool_use block",
    ),
    (
        "tool input not JSON",
        "tool",
        edit(
            of_type("content_block_delta"),
            lambda p: p["delta"].update(partial_json="}}"),
            nth=2,
        ),
        "not valid JSON",
    ),
    (
        "two message_delta",
        "text",
        insert_after(
            of_type("message_delta"),
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 1},
            },
        ),
        "a second message_delta",
    ),
    (
        "message_delta without usage",
        "text",
        edit(of_type("message_delta"), lambda p: p.pop("usage")),
        "no usage object",
    ),
    (
        "message_start with content",
        "text",
        edit(
            of_type("message_start"),
            lambda p: p["message"].update(content=[{"type": "text", "text": "x"}]),
        ),
        "must start empty",
    ),
    (
        "block start without index",
        "text",
        edit(of_type("content_block_start"), lambda p: p.pop("index")),
        "no index",
    ),
]


@pytest.mark.parametrize(
    ("label", "name", "mutate", "expected"),
    ANTHROPIC_BREAKS,
    ids=[b[0] for b in ANTHROPIC_BREAKS],
)
def test_anthropic_stream_checker_catches(label: str, name: str, mutate: Mutation, expected: str) -> None:
    items = payloads(anthropic_sse(SCENARIOS[name], MODEL))
    assert check_anthropic_stream(anthropic_events(items)) == []
    violations = check_anthropic_stream(anthropic_events(mutate(items)))
    assert any(expected in v for v in violations), violations


def test_anthropic_stream_checker_catches_wire_level_faults() -> None:
    body = b"".join(anthropic_sse(SCENARIOS["text"], MODEL))
    assert any("not ended by a blank line" in v for v in check_anthropic_stream(parse_all(body[:-1])))
    bad_json = body.replace(b'data: {"type": "ping"}', b"data: {ping")
    assert any("not JSON" in v for v in check_anthropic_stream(parse_all(bad_json)))
    renamed = body.replace(b"event: ping", b"event: pong")
    assert any("`event: pong`" in v for v in check_anthropic_stream(parse_all(renamed)))
    assert check_anthropic_stream([]) == ["the stream holds no events"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (b"event: content_block_stop\n", b"", "no `event:` line for data type 'content_block_stop'"),
        (b"event: ping\n", b"", "no `event:` line for data type 'ping'"),
        (b"event: message_stop\n", b"event: message_delta\n", "`event: message_delta` but data type 'message_stop'"),
        (b"event: content_block_delta\n", b"event: content_block_start\n", "`event: content_block_start`"),
    ],
)
def test_anthropic_event_lines_must_name_the_data_type(old: bytes, new: bytes, expected: str) -> None:
    body = b"".join(anthropic_sse(SCENARIOS["tools2"], MODEL))
    assert check_anthropic_stream(parse_all(body)) == []
    violations = check_anthropic_stream(parse_all(body.replace(old, new, 1)))
    assert any(expected in v for v in violations), violations


# --- OpenAI stream mutations --------------------------------------------------------------


def has_finish(p: Any) -> bool:
    return isinstance(p, dict) and any(c.get("finish_reason") for c in p.get("choices", []))


def is_usage_chunk(p: Any) -> bool:
    return isinstance(p, dict) and p.get("choices") == [] and p.get("usage") is not None


def tool_delta(nth_call: int, nth_delta: int = 0) -> Callable[[Any], bool]:
    """Matches the deltas of tool call `nth_call` (chunks carry one tool call each)."""

    def predicate(p: Any) -> bool:
        if not isinstance(p, dict) or not p.get("choices"):
            return False
        calls = p["choices"][0]["delta"].get("tool_calls")
        return bool(calls) and calls[0]["index"] == nth_call

    return predicate


def set_call_index(old: int, new: int) -> Mutation:
    def mutate(items: Payloads) -> Payloads:
        items = copy.deepcopy(items)
        for p in items:
            if tool_delta(old)(p):
                p["choices"][0]["delta"]["tool_calls"][0]["index"] = new
        return items

    return mutate


def opening(change: Callable[[dict[str, Any]], None]) -> Mutation:
    return edit(tool_delta(0), lambda p: change(p["choices"][0]["delta"]["tool_calls"][0]))


def set_finish(reason: str | None) -> Mutation:
    return edit(has_finish, lambda p: p["choices"][0].update(finish_reason=reason))


def swap_usage_and_finish(items: Payloads) -> Payloads:
    finish = next(i for i, p in enumerate(items) if has_finish(p))
    usage = next(i for i, p in enumerate(items) if is_usage_chunk(p))
    items = list(items)
    items[finish], items[usage] = items[usage], items[finish]
    return items


def content_chunk_at_end(items: Payloads) -> Payloads:
    extra = copy.deepcopy(items[1])
    return [*items[:-1], extra, items[-1]]


def in_delta(position: int, change: Callable[[dict[str, Any]], None]) -> Mutation:
    """Change the delta of the chunk at `position`."""

    def mutate(items: Payloads) -> Payloads:
        items = copy.deepcopy(items)
        change(items[position]["choices"][0]["delta"])
        return items

    return mutate


def in_later_tool_delta(nth_call: int, change: Callable[[dict[str, Any]], None]) -> Mutation:
    """Change the second delta (the first arguments-only one) of tool call `nth_call`."""
    return edit(tool_delta(nth_call), lambda p: change(p["choices"][0]["delta"]["tool_calls"][0]), nth=1)


def role_sent_twice(items: Payloads) -> Payloads:
    """A role-only chunk before the role + first tool call chunk, which keeps its role."""
    opening = copy.deepcopy(items[0])
    opening["choices"][0]["delta"] = {"role": "assistant", "content": "", "refusal": None}
    return [opening, *items]


OPENAI_BREAKS: list[tuple[str, str, Mutation, str]] = [
    (
        "two finish chunks",
        "text",
        duplicate(has_finish),
        "a second chunk with finish_reason",
    ),
    ("no finish chunk", "text", set_finish(None), "no chunk carries finish_reason"),
    (
        "tool call index not kept",
        "tools2",
        set_call_index(1, 0),
        "reused for another id",
    ),
    ("tool call index gap", "tools2", set_call_index(1, 2), "expected 1"),
    (
        "first tool delta without id",
        "tool",
        opening(lambda c: c.pop("id")),
        "lacks id, type or name",
    ),
    (
        "first tool delta without name",
        "tool",
        opening(lambda c: c["function"].pop("name")),
        "lacks id, type or name",
    ),
    (
        "tool_calls finish without calls",
        "text",
        set_finish("tool_calls"),
        "should be 'stop'",
    ),
    ("stop finish with calls", "tool", set_finish("stop"), "finish_reason is 'stop'"),
    ("usage chunk before finish", "text", swap_usage_and_finish, "usage chunk before"),
    (
        "chunk after the usage chunk",
        "text",
        content_chunk_at_end,
        "after the usage chunk",
    ),
    ("no [DONE]", "text", lambda i: i[:-1], "found 0"),
    ("[DONE] twice", "text", lambda i: [*i, "[DONE]"], "data after [DONE]"),
    ("chunk after [DONE]", "text", lambda i: [*i, i[1]], "data after [DONE]"),
    ("two usage chunks", "text", duplicate(is_usage_chunk), "a second usage chunk"),
    (
        "wrong object",
        "text",
        edit(has_finish, lambda p: p.update(object="chat.completion")),
        "object is",
    ),
    (
        "id changes",
        "text",
        edit(has_finish, lambda p: p.update(id="chatcmpl-other")),
        "differs from",
    ),
    (
        "first chunk without role",
        "text",
        edit(lambda p: p is not None, lambda p: p["choices"][0]["delta"].pop("role")),
        "role 'assistant'",
    ),
    (
        "arguments not JSON",
        "tool",
        edit(
            tool_delta(0),
            lambda p: p["choices"][0]["delta"]["tool_calls"][0]["function"].update(arguments="}{"),
            nth=1,
        ),
        "not valid JSON",
    ),
    (
        "content after finish",
        "text",
        lambda i: [*i[:-2], i[1], *i[-2:]],
        "content after finish_reason",
    ),
    (
        "usage chunk without token counts",
        "text",
        edit(is_usage_chunk, lambda p: p["usage"].pop("total_tokens")),
        "usage.total_tokens",
    ),
    ("role in a later text delta", "text", in_delta(2, lambda d: d.update(role="assistant")), "repeats role"),
    ("role before the role + tool chunk", "tools3", role_sent_twice, "chunk 1: choice 0 repeats role 'assistant'"),
    ("role with the second tool call", "tools3", in_delta(5, lambda d: d.update(role="assistant")), "repeats role"),
    (
        "tool call id repeated",
        "tools2",
        in_later_tool_delta(0, lambda c: c.update(id="call_01A09q90qw90lq917835lq9")),
        "tool call 0 repeats id",
    ),
    ("tool call type repeated", "tools2", in_later_tool_delta(1, lambda c: c.update(type="function")), "repeats type"),
    (
        "tool call name repeated",
        "tools2",
        in_later_tool_delta(1, lambda c: c["function"].update(name="get_weather")),
        "tool call 1 repeats name",
    ),
    (
        "interleaved: call 0 name repeated after call 1 started",
        "interleaved",
        in_later_tool_delta(0, lambda c: c["function"].update(name="Bash")),
        "tool call 0 repeats name",
    ),
]


@pytest.mark.parametrize(
    ("label", "name", "mutate", "expected"),
    OPENAI_BREAKS,
    ids=[b[0] for b in OPENAI_BREAKS],
)
def test_openai_stream_checker_catches(label: str, name: str, mutate: Mutation, expected: str) -> None:
    items = payloads(openai_chat_sse(SCENARIOS[name], MODEL, include_usage=True))
    assert check_openai_chat_stream(openai_events(items)) == []
    violations = check_openai_chat_stream(openai_events(mutate(items)))
    assert any(expected in v for v in violations), violations


def test_openai_usage_chunk_the_request_asked_for() -> None:
    asked = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True}}
    missing = "the request asked for stream_options.include_usage but no usage chunk came"
    with_usage = openai_chat_sse(SCENARIOS["tool"], MODEL, include_usage=True)
    without_usage = parse_all(b"".join(openai_chat_sse(SCENARIOS["tool"], MODEL, include_usage=False)))
    assert check_openai_chat_stream(parse_all(b"".join(with_usage)), asked) == []
    assert check_openai_chat_stream(without_usage) == []
    assert check_openai_chat_stream(without_usage, {"stream_options": {"include_usage": False}}) == []
    assert check_openai_chat_stream(without_usage, {"stream": True}) == []
    assert check_openai_chat_stream(without_usage, asked) == [missing]
    dropped = openai_events([p for p in payloads(with_usage) if not is_usage_chunk(p)])
    assert missing in check_openai_chat_stream(dropped, asked)


def test_openai_stream_checker_catches_wire_level_faults() -> None:
    body = b"".join(openai_chat_sse(SCENARIOS["text"], MODEL, True))
    assert any(
        "not JSON" in v for v in check_openai_chat_stream(parse_all(body.replace(b'data: {"id"', b"data: {id", 1)))
    )
    assert any("not ended by a blank line" in v for v in check_openai_chat_stream(parse_all(body[:-20])))
    assert "the stream holds no chunks" in check_openai_chat_stream(parse_all(b"data: [DONE]\n\n"))


# --- Non-streaming bodies ---------------------------------------------------------------

BodyMutation = Callable[[dict[str, Any]], None]


def _tool_block(body: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in body["content"] if b["type"] == "tool_use")


ANTHROPIC_BODY_BREAKS: list[tuple[str, str, BodyMutation, str]] = [
    (
        "empty text block",
        "text",
        lambda b: b["content"][0].update(text=""),
        "empty text block",
    ),
    (
        "text after tool_use",
        "tool",
        lambda b: b["content"].append({"type": "text", "text": "x"}),
        "follows a tool_use block",
    ),
    (
        "tool_use stop without tools",
        "text",
        lambda b: b.update(stop_reason="tool_use"),
        "should be end_turn",
    ),
    (
        "end_turn with tools",
        "tool",
        lambda b: b.update(stop_reason="end_turn"),
        "stop_reason is 'end_turn'",
    ),
    (
        "input not an object",
        "tool",
        lambda b: _tool_block(b).update(input="{}"),
        "input is not an object",
    ),
    (
        "tool_use without id",
        "tool",
        lambda b: _tool_block(b).pop("id"),
        "without id or name",
    ),
    (
        "wrong type",
        "text",
        lambda b: b.update(type="completion"),
        "type must be 'message'",
    ),
    ("no usage", "text", lambda b: b.pop("usage"), "no usage object"),
    (
        "content not a list",
        "text",
        lambda b: b.update(content="hi"),
        "content is not a list",
    ),
]


@pytest.mark.parametrize(
    ("label", "name", "mutate", "expected"),
    ANTHROPIC_BODY_BREAKS,
    ids=[b[0] for b in ANTHROPIC_BODY_BREAKS],
)
def test_anthropic_message_checker_catches(label: str, name: str, mutate: BodyMutation, expected: str) -> None:
    body = anthropic_json(SCENARIOS[name], MODEL)
    mutate(body)
    violations = check_anthropic_message(body)
    assert any(expected in v for v in violations), violations


def _message(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["choices"][0]["message"]
    return message


OPENAI_BODY_BREAKS: list[tuple[str, str, BodyMutation, str]] = [
    (
        "stop finish with calls",
        "tool",
        lambda b: b["choices"][0].update(finish_reason="stop"),
        "finish_reason is 'stop'",
    ),
    (
        "tool_calls finish without calls",
        "text",
        lambda b: b["choices"][0].update(finish_reason="tool_calls"),
        "should be 'stop'",
    ),
    (
        "no finish_reason",
        "text",
        lambda b: b["choices"][0].update(finish_reason=None),
        "no finish_reason",
    ),
    (
        "arguments not JSON",
        "tool",
        lambda b: _message(b)["tool_calls"][0]["function"].update(arguments="{"),
        "not valid JSON",
    ),
    (
        "tool call without id",
        "tool",
        lambda b: _message(b)["tool_calls"][0].pop("id"),
        "lacks id",
    ),
    (
        "null content without tools",
        "text",
        lambda b: _message(b).update(content=None),
        "content is null",
    ),
    (
        "wrong total",
        "text",
        lambda b: b["usage"].update(total_tokens=1),
        "total_tokens is not",
    ),
    (
        "wrong object",
        "text",
        lambda b: b.update(object="chat.completion.chunk"),
        "object must be",
    ),
    ("no choices", "text", lambda b: b.update(choices=[]), "no choices"),
    (
        "not an assistant message",
        "text",
        lambda b: _message(b).update(role="user"),
        "no assistant message",
    ),
]


@pytest.mark.parametrize(
    ("label", "name", "mutate", "expected"),
    OPENAI_BODY_BREAKS,
    ids=[b[0] for b in OPENAI_BODY_BREAKS],
)
def test_openai_completion_checker_catches(label: str, name: str, mutate: BodyMutation, expected: str) -> None:
    body = openai_chat_json(SCENARIOS[name], MODEL)
    mutate(body)
    violations = check_openai_chat_completion(body)
    assert any(expected in v for v in violations), violations


def test_non_objects_are_rejected() -> None:
    assert check_anthropic_message([]) == ["the body is not a JSON object"]
    assert check_openai_chat_completion("x") == ["the body is not a JSON object"]


# --- OpenAI Responses ---------------------------------------------------------------------


def responses_events(items: Payloads) -> list[SSEEvent]:
    return parse_all(b"".join(f"event: {p['type']}\ndata: {json.dumps(p)}\n\n".encode() for p in items))


def responses_payloads(name: str) -> Payloads:
    return payloads(openai_responses_sse((SCENARIOS | RESPONSES_SCENARIOS)[name], MODEL))


def _where(items: Payloads, kind: str, nth: int = 0) -> int:
    return [i for i, p in enumerate(items) if p["type"] == kind][nth]


def _drop(kind: str, nth: int = 0) -> Mutation:
    def mutate(items: Payloads) -> Payloads:
        return items[: _where(items, kind, nth)] + items[_where(items, kind, nth) + 1 :]

    return mutate


def _edit(kind: str, change: Callable[[dict[str, Any]], None], nth: int = 0) -> Mutation:
    def mutate(items: Payloads) -> Payloads:
        items = copy.deepcopy(items)
        change(items[_where(items, kind, nth)])
        return items

    return mutate


def _repeat_sequence(items: Payloads) -> Payloads:
    items = copy.deepcopy(items)
    items[5]["sequence_number"] = items[4]["sequence_number"]
    return items


def _after_the_end(items: Payloads) -> Payloads:
    return [*items, {**items[_where(items, "response.output_text.delta")], "sequence_number": 999}]


RESPONSES_BREAKS: list[tuple[str, str, Mutation, str]] = [
    ("sequence repeats", "text", _repeat_sequence, "does not increase"),
    ("no terminal", "text", _drop("response.completed"), "does not end with"),
    ("event after the end", "text", _after_the_end, "after the stream's end"),
    ("created missing", "text", _drop("response.created"), "not response.created"),
    ("item never done", "tool", _drop("response.output_item.done", 1), "added but never done"),
    ("gap in output indices", "tool", _edit("response.output_item.added", lambda p: p.update(output_index=2), 1),
     "expected 1"),
    ("delta for a done item", "tool", _edit("response.function_call_arguments.delta", lambda p: p.update(output_index=0)),
     "not open"),
    ("delta names another item", "tool", _edit("response.output_text.delta", lambda p: p.update(item_id="msg_x")),
     "is not item 0's"),
    ("arguments differ from deltas", "tool",
     _edit("response.function_call_arguments.done", lambda p: p.update(arguments='{"location":"Rome"}')),
     "not the concatenated deltas"),
    ("custom input differs", "custom_tool",
     _edit("response.custom_tool_call_input.done", lambda p: p.update(input="*** other")), "not the concatenated deltas"),
    ("text done differs", "text", _edit("response.output_text.done", lambda p: p.update(text="Hi")),
     "differs from the concatenated deltas"),
    ("completed output differs", "tool",
     _edit("response.completed", lambda p: p["response"].update(output=p["response"]["output"][:1])),
     "is not the items the stream sent"),
    ("call without call_id", "tool", _edit("response.output_item.done", lambda p: p["item"].pop("call_id"), 1),
     "lacks call_id or name"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "name", "mutate", "expected"), RESPONSES_BREAKS, ids=[b[0] for b in RESPONSES_BREAKS]
)
def test_responses_stream_checker_catches(label: str, name: str, mutate: Mutation, expected: str) -> None:
    items = responses_payloads(name)
    assert check_openai_responses_stream(responses_events(items)) == []
    violations = check_openai_responses_stream(responses_events(mutate(items)))
    assert any(expected in v for v in violations), (label, violations)


def test_responses_event_lines_must_name_the_data_type() -> None:
    body = b"".join(openai_responses_sse(SCENARIOS["text"], MODEL))
    broken = body.replace(b"event: response.output_text.delta\n", b"event: message\n", 1)
    assert any("line differs from its type" in v for v in check_openai_responses_stream(parse_all(broken)))


def test_responses_body_checker_catches() -> None:
    body = openai_responses_json(SCENARIOS["tools2"], MODEL)
    assert check_openai_response(body) == []
    twice = {**body, "output": [*body["output"], body["output"][-1]]}
    assert any("distinct ids" in v for v in check_openai_response(twice))
    bad = copy.deepcopy(body)
    bad["output"][1]["arguments"] = '{"location":'
    assert any("not valid JSON" in v for v in check_openai_response(bad))
    assert any("object must be 'response'" in v for v in check_openai_response({**body, "object": "chat.completion"}))
