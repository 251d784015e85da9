"""The `openai-responses` dialect's readers: a stream reassembles into its non-streamed
twin and agrees with the `openai` SDK's own accumulator; any split of the bytes gives the
same result; usage, stop reason and tool calls (function and custom); bad streams give a
partial response with notes; the request readers and editors.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_fixtures import chain_of, context, openai_sdk_response, policed_stream
from protocol_check import check_openai_responses_stream
from wire_scenarios import (
    RESPONSES_SCENARIOS,
    SCENARIOS,
    openai_responses_json,
    openai_responses_sse,
)

from interlock.dialects import dialect_for
from interlock.neutral import ToolCall, Usage
from interlock.sse import SSEParser, parse_all

RESPONSES = dialect_for("openai-responses")
MODEL = "gpt-5"
ALL = {**SCENARIOS, **RESPONSES_SCENARIOS}


def stream(name: str) -> bytes:
    return b"".join(openai_responses_sse(ALL[name], MODEL))


@pytest.mark.parametrize("name", sorted(ALL))
def test_a_stream_reassembles_into_its_non_streamed_twin(name: str) -> None:
    body = stream(name)
    assert check_openai_responses_stream(parse_all(body)) == []
    assert b"[DONE]" not in body
    reassembly = RESPONSES.reassemble(parse_all(body))
    assert reassembly.errors == []
    assert reassembly.message == openai_responses_json(ALL[name], MODEL)


@pytest.mark.parametrize("name", sorted(ALL))
def test_the_reassembly_agrees_with_the_sdk_accumulator(name: str) -> None:
    body = stream(name)
    message = RESPONSES.reassemble(parse_all(body)).message
    assert message is not None
    sdk = openai_sdk_response(body)
    assert sdk.id == message["id"] and sdk.status == message["status"]
    assert [item.model_dump(exclude_none=True, exclude={"parsed_arguments"}) for item in sdk.output] == [
        {k: v for k, v in item.items() if v is not None} for item in message["output"]
    ]
    assert sdk.output_text == RESPONSES.response_text(message)
    assert sdk.usage is not None and sdk.usage.model_dump(exclude_none=True) == message["usage"]


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(ALL)), cuts=st.lists(st.integers(0, 20_000), max_size=40))
def test_any_split_of_the_bytes_gives_the_same_reassembly(name: str, cuts: list[int]) -> None:
    body = stream(name)
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(body)}), len(body)]
    parser, reassembler = SSEParser(), RESPONSES.reassembler()
    for start, end in itertools.pairwise(bounds):
        for event in parser.feed(body[start:end]):
            reassembler.feed(event)
    for event in parser.finish():
        reassembler.feed(event)
    assert reassembler.result() == RESPONSES.reassemble(parse_all(body))


def test_usage_excludes_cache_reads_and_writes_and_keeps_reasoning_in_the_output() -> None:
    cache = openai_responses_json(SCENARIOS["cache"], MODEL)
    assert cache["usage"]["input_tokens"] == 5 + 2048 + 512
    assert RESPONSES.usage(cache) == Usage(
        input_tokens=5, output_tokens=7, cache_read_tokens=2048, cache_write_tokens=512
    )
    thinking = openai_responses_json(SCENARIOS["thinking"], MODEL)
    assert thinking["usage"]["output_tokens_details"]["reasoning_tokens"] == 8
    assert RESPONSES.usage(thinking).output_tokens == SCENARIOS["thinking"].output_tokens


def test_tool_calls_function_and_custom_and_stop_reason() -> None:
    tool = openai_responses_json(SCENARIOS["tool"], MODEL)
    assert RESPONSES.tool_calls(tool) == [
        ToolCall("call_01A09q90qw90lq917835lq9", "get_weather", {"location": "Paris, France", "unit": "celsius"}, 0)
    ]
    custom = openai_responses_json(RESPONSES_SCENARIOS["custom_tool"], MODEL)
    [patch] = RESPONSES.tool_calls(custom)
    assert patch.name == "apply_patch" and patch.arguments.startswith("*** Begin Patch\n")
    assert RESPONSES.stop_reason(tool) == "completed"
    incomplete = {**tool, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert RESPONSES.stop_reason(incomplete) == "max_output_tokens"


def test_the_first_generated_content_marks_the_first_token() -> None:
    events = parse_all(stream("thinking"))
    reassembler = RESPONSES.reassembler()
    flags = [reassembler.feed(event) for event in events]
    assert flags.count(True) == 1
    first: Any = events[flags.index(True)].json()
    assert first["type"] == "response.reasoning_summary_text.delta" and first["delta"] == "The user wants"
    tools = parse_all(stream("tools3"))
    reassembler = RESPONSES.reassembler()
    first = tools[[reassembler.feed(event) for event in tools].index(True)].json()
    assert first["type"] == "response.output_item.added" and first["item"]["type"] == "function_call"


def test_a_cut_stream_gives_the_items_so_far_with_a_note() -> None:
    events = parse_all(stream("tool"))
    reassembly = RESPONSES.reassemble(events[:-1])
    assert any("ended without response.completed" in note for note in reassembly.errors)
    assert reassembly.message is not None
    assert [item["type"] for item in reassembly.message["output"]] == ["message", "function_call"]


def test_an_error_event_and_a_repeated_sequence_number_are_noted() -> None:
    events = parse_all(stream("text"))
    error = b'event: error\ndata: {"type":"error","sequence_number":3,"code":"server_error","message":"Overloaded","param":null}\n\n'
    reassembly = RESPONSES.reassemble([*events[:4], *parse_all(error)])
    assert any("error in stream" in note and "Overloaded" in note for note in reassembly.errors)
    assert any("sequence_number 3 after 3" in note for note in reassembly.errors)


def test_malformed_events_are_skipped_with_a_note() -> None:
    events = parse_all(stream("text"))
    broken = parse_all(b'event: response.output_text.delta\ndata: {"type":"resp\n\n')
    reassembly = RESPONSES.reassemble([*events[:5], *broken, *events[5:]])
    assert any("not JSON" in note for note in reassembly.errors)
    assert (
        reassembly.message is not None
        and RESPONSES.response_text(reassembly.message) == "Hello from the mock provider."
    )


# --- requests -----------------------------------------------------------------------------

CODEX_LIKE: dict[str, Any] = {
    "model": "gpt-5-codex",
    "instructions": "You are Codex.",
    "prompt_cache_key": "conv-123",
    "tools": [
        {"type": "function", "name": "exec_command", "description": "Run a command", "parameters": {"type": "object"}},
        {"type": "custom", "name": "apply_patch", "description": "Patch files", "format": {"type": "grammar"}},
    ],
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
        {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": '{"cmd":"ls"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
        {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "<system-reminder>x</system-reminder>now patch it"}],
        },
    ],
}


def test_request_readers() -> None:
    assert RESPONSES.last_user_text(CODEX_LIKE) == "<system-reminder>x</system-reminder>now patch it"
    assert RESPONSES.typed_text(CODEX_LIKE) == "now patch it"
    assert RESPONSES.typed_text({"input": "hello"}) == "hello"
    assert RESPONSES.tool_definition(CODEX_LIKE, "exec_command") == {
        "description": "Run a command",
        "input_schema": {"type": "object"},
    }
    assert RESPONSES.tool_definition(CODEX_LIKE, "apply_patch") == {
        "description": "Patch files",
        "input_schema": {"type": "grammar"},
    }
    recent = RESPONSES.recent_tool_calls(CODEX_LIKE, 5)
    assert [(c.name, c.arguments, c.result) for c in recent] == [
        ("exec_command", {"cmd": "ls"}, "a.txt"),
        ("apply_patch", "*** Begin Patch", "Done"),
    ]
    assert RESPONSES.session_key(CODEX_LIKE) == "pck-conv-123"
    plain = {"input": "hi", "instructions": "be brief"}
    assert RESPONSES.session_key(plain) == RESPONSES.session_key(
        {**plain, "input": [{"role": "user", "content": "hi"}]}
    )


def test_request_editors() -> None:
    edited = RESPONSES.map_request_text(CODEX_LIKE, str.upper)
    assert edited["instructions"] == "YOU ARE CODEX."
    assert edited["input"][0]["content"][0]["text"] == "LIST FILES"
    assert edited["input"][2]["output"] == "A.TXT"
    assert edited["input"][1] == CODEX_LIKE["input"][1]  # tool calls are not text
    assert RESPONSES.map_request_text({"input": "abc"}, str.upper) == {"input": "ABC"}
    assert RESPONSES.add_system_text(CODEX_LIKE, "Be safe.", "prepend")["instructions"] == "Be safe.\n\nYou are Codex."
    assert RESPONSES.add_system_text({"input": "x"}, "Be safe.", "append")["instructions"] == "Be safe."
    assert RESPONSES.with_model(CODEX_LIKE, "gpt-5")["model"] == "gpt-5"
    assert json.loads(json.dumps(RESPONSES.blocked_request("no")))["error"]["message"] == "no"


# --- chained conversations ------------------------------------------------------------------


def test_removed_calls_are_supplied_once_each_and_forgotten_oldest_first() -> None:
    from interlock.dialects.openai_responses.chained import RemovedCall, RemovedCalls

    memory = RemovedCalls(limit=2)
    call = RemovedCall("call_1", "custom_tool_call", "apply_patch", "judge", "risky")
    memory.remember("resp_a", call)
    memory.remember("resp_a", call)  # policed twice (a replay): still one output
    assert memory.missing({"previous_response_id": "resp_a", "input": "go on"}) == [call]
    answered = {"previous_response_id": "resp_a", "input": [{"type": "custom_tool_call_output", "call_id": "call_1"}]}
    assert memory.missing(answered) == []
    assert call.output_item()["type"] == "custom_tool_call_output"
    memory.remember("resp_b", call)
    memory.remember("resp_c", call)
    assert memory.missing({"previous_response_id": "resp_a"}) == []  # the oldest was forgotten
    assert memory.missing({"previous_response_id": "resp_c"}) == [call]


def test_a_policed_stream_forwards_json_that_is_no_typed_event_as_it_came() -> None:
    """Malformed upstream traffic (a JSON event without `type`, e.g. a chat chunk) passes
    through a policed Responses stream byte for byte instead of failing the rewriter."""
    stream = policed_stream(
        chain_of({"policy": "replace", "rules": [{"find": "zzz", "replace": "y"}]}), context("openai-responses")
    )
    untyped = b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    sent = b"".join(stream(untyped)) + b"".join(stream(b""))
    assert sent == untyped
