"""The `gemini` dialect in process: a stream reassembles into its non-streamed twin (bare
and in Code Assist's wrapping) and agrees with what the `google-genai` SDK reads; any
split of the bytes gives the same result; bad streams give a partial response with
notes; usage, the request readers and editors (the model in the URL path), the views;
then the rewriters: blocked calls as notices with their thought signatures, byte
identity when nothing changed, text policies across chunks, failed ends, whole bodies.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_fixtures import (
    NoopPolicy,
    TagPolicy,
    chain_of,
    context,
    fixture_path,
    gemini_sdk_summary,
    police_body,
    police_stream,
    split_at,
)
from protocol_check import check_gemini_response, check_gemini_stream
from wire_scenarios import SCENARIOS, gemini_ids, gemini_json, gemini_json_array, gemini_sse

from interlock.dialects import dialect_for
from interlock.neutral import PastCall, Usage
from interlock.sse import SSEParser, parse_all

GEMINI = dialect_for("gemini")
MODEL = "gemini-2.5-flash"
DENY_RM = {"policy": "deny_tools", "rules": [{"tool": "*", "pattern": "rm -rf", "reason": "recursive delete"}]}
DENY_ALL = {"policy": "deny_tools", "rules": [{"tool": "*", "pattern": ".", "reason": "no tools"}]}


def stream(name: str, wrapped: bool = False) -> bytes:
    return b"".join(gemini_sse(SCENARIOS[name], MODEL, wrapped))


def sdk_read(body: bytes) -> tuple[str, list[tuple[str, Any]], str | None]:
    return gemini_sdk_summary(body)


# --- readers ------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapped", [False, True])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_stream_reassembles_into_its_twin_and_reads_as_the_sdk_reads_it(name: str, wrapped: bool) -> None:
    body = stream(name, wrapped)
    assert check_gemini_stream(parse_all(body)) == []
    reassembly = GEMINI.reassemble(parse_all(body))
    assert reassembly.errors == []
    assert reassembly.message == gemini_json(SCENARIOS[name], MODEL, wrapped)
    text, calls, finish = sdk_read(body)
    assert text == GEMINI.response_text(reassembly.message)
    assert calls == [(c.name, c.arguments) for c in GEMINI.tool_calls(reassembly.message)]
    assert finish == GEMINI.stop_reason(reassembly.message) == "STOP"


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(SCENARIOS)), cuts=st.lists(st.integers(1, 4000), max_size=12))
def test_any_split_gives_the_same_reassembly(name: str, cuts: list[int]) -> None:
    body = stream(name)
    parser, events = SSEParser(), []
    for piece in split_at(body, cuts):
        events += parser.feed(piece)
    events += parser.finish()
    assert b"".join(e.raw for e in events) == body
    assert GEMINI.reassemble(events).message == gemini_json(SCENARIOS[name], MODEL)


def test_every_truncation_gives_a_partial_message_and_notes() -> None:
    body = stream("tools2")
    for cut in range(0, len(body) - 3, 7):  # a cut inside the last CRLF CRLF still ends the frame
        result = GEMINI.reassemble(parse_all(body[:cut]))
        assert result.errors, f"a stream cut at {cut} was not noted"


def test_an_error_chunk_is_noted_and_first_content_marked() -> None:
    events = parse_all(stream("text"))
    error = b'data: {"error": {"code": 503,"message": "The model is overloaded.","status": "UNAVAILABLE"}}\r\n\r\n'
    reassembler = GEMINI.reassembler()
    flags = [reassembler.feed(e) for e in [*events[:1], *parse_all(error)]]
    assert flags == [True, False]
    assert any("UNAVAILABLE: The model is overloaded." in note for note in reassembler.result().errors)


def test_usage_counts_cached_tool_use_and_thought_tokens() -> None:
    body = {
        "usageMetadata": {
            "promptTokenCount": 2100,
            "cachedContentTokenCount": 2048,
            "toolUsePromptTokenCount": 30,
            "candidatesTokenCount": 40,
            "thoughtsTokenCount": 60,
            "totalTokenCount": 2230,
        }
    }
    assert GEMINI.usage(body) == Usage(input_tokens=82, output_tokens=100, cache_read_tokens=2048)
    assert GEMINI.usage({"response": body}) == GEMINI.usage(body)  # Code Assist
    assert GEMINI.usage({}) == Usage()


def test_the_model_lives_in_the_path() -> None:
    path = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse&key=k"
    request = GEMINI.read_request(path, {"contents": []})
    assert GEMINI.request_model(request) == MODEL and GEMINI.request_streams(request, path)
    assert not GEMINI.request_streams(request, f"/v1/models/{MODEL}:generateContent")
    new_path, body = GEMINI.write_request(path, GEMINI.with_model(request, "gemini-2.5-pro"))
    assert (new_path, body) == ("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=k", {"contents": []})
    vertex = "/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-pro:generateContent"
    assert GEMINI.request_model(GEMINI.read_request(vertex, {})) == "gemini-2.5-pro"
    wrapped = {"model": "gemini-2.5-pro", "project": "p", "request": {"contents": []}}
    assert GEMINI.read_request("/v1internal:streamGenerateContent?alt=sse", wrapped) is wrapped
    assert GEMINI.write_request("/v1internal:generateContent", wrapped) == ("/v1internal:generateContent", wrapped)


CONVERSATION: dict[str, Any] = {
    "systemInstruction": {"parts": [{"text": "Be brief. sk-old"}]},
    "contents": [
        {"role": "user", "parts": [{"text": "list files sk-old"}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "ls", "args": {"dir": "."}}, "thoughtSignature": "c2ln"}],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "ls", "response": {"output": "a.txt sk-old"}}}]},
    ],
    "tools": [{"functionDeclarations": [{"name": "ls", "description": "List.", "parameters": {"type": "object"}}]}],
}


@pytest.mark.parametrize("wrap", [False, True])
def test_request_readers_and_editors(wrap: bool) -> None:
    request = {"model": "m", "request": CONVERSATION} if wrap else CONVERSATION
    assert GEMINI.typed_text(request) == "list files sk-old"
    assert GEMINI.last_user_text(request) == ""  # the last user content is a function response
    edited = GEMINI.map_request_text(request, lambda text: text.replace("sk-old", "[key]"))
    assert "sk-old" not in json.dumps(edited) and "[key]" in json.dumps(edited)
    system = GEMINI.add_system_text(request, "Never print secrets.", "prepend")
    inner = system["request"] if wrap else system
    assert [p["text"] for p in inner["systemInstruction"]["parts"]] == ["Never print secrets.", "Be brief. sk-old"]
    assert GEMINI.add_system_text({"contents": []}, "X", "append")["systemInstruction"] == {"parts": [{"text": "X"}]}
    assert GEMINI.tool_definition(request, "ls") == {"description": "List.", "parameters": {"type": "object"}}
    assert GEMINI.recent_tool_calls(request, 5) == [PastCall("ls", {"dir": "."}, "a.txt sk-old")]
    assert GEMINI.session_key(request) == GEMINI.session_key({**CONVERSATION, "contents": CONVERSATION["contents"][:1]})
    assert GEMINI.session_key({"request": {"session_id": "s-1", "contents": []}}) == "gc-s-1"


def test_views_show_parts_calls_results_and_thoughts() -> None:
    view = GEMINI.request_view(CONVERSATION)
    assert view is not None and [b.text for b in view.system] == ["Be brief. sk-old"]
    assert [[b.kind for b in m.blocks] for m in view.messages] == [["text"], ["tool_call"], ["tool_result"]]
    assert view.messages[1].blocks[0].tool_name == "ls" and "tools" in view.params
    response = GEMINI.response_view(gemini_json(SCENARIOS["thinking"], MODEL, wrapped=True))
    assert response is not None and (response.stop_reason, response.model) == ("STOP", MODEL)
    assert [b.kind for b in response.message.blocks] == ["thinking", "text", "text"]
    assert GEMINI.response_view({"error": {"code": 400}}) is None
    assert GEMINI.request_view({"nothing": 1}) is None


# --- rewriters ------------------------------------------------------------------------------


def parts_sent(body: bytes) -> list[dict[str, Any]]:
    chunks: list[Any] = [e.json() for e in parse_all(body)]
    return [p for c in chunks for p in c.get("response", c)["candidates"][0]["content"].get("parts", [])]


@pytest.mark.parametrize("wrapped", [False, True])
async def test_a_blocked_call_becomes_a_notice_and_its_signature_moves_on(wrapped: bool) -> None:
    body = stream("interleaved", wrapped)
    out, ctx = await police_stream(chain_of(DENY_RM), "gemini", split_at(body, [50, 333, 700]))
    assert check_gemini_stream(parse_all(out)) == []
    parts = parts_sent(out)
    _, signature = gemini_ids(SCENARIOS["interleaved"])
    [notice, kept] = parts
    assert "Bash" in notice["text"] and "recursive delete" in notice["text"] and notice["thoughtSignature"] == signature
    assert kept == {
        "functionCall": {"name": "read_file", "args": {"path": "/etc/hostname"}},
        "thoughtSignature": signature,
    }
    assert sdk_read(out)[2] == "STOP"
    assert [e.action for e in ctx.events] == ["blocked"]


async def test_every_call_blocked_keeps_one_finish_and_no_empty_part() -> None:
    out, _ = await police_stream(chain_of(DENY_ALL), "gemini", [stream("tools3")])
    assert check_gemini_stream(parse_all(out)) == []
    assert [("functionCall" in p) for p in parts_sent(out)] == [False, False, False]
    text, calls, finish = sdk_read(out)
    assert calls == [] and finish == "STOP" and text.count("no tools") == 3


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_a_chain_that_changes_nothing_is_byte_identical(name: str) -> None:
    body = stream(name)
    chain = chain_of(
        {"policy": fixture_path(NoopPolicy)},
        {"policy": "replace", "apply_to": "response", "rules": [{"find": "zzz-never", "replace": "x"}]},
        {"policy": "deny_tools", "deny": ["no-such-tool"]},
    )
    out, _ = await police_stream(chain, "gemini", split_at(body, [1, 40, 41, 200, 555]))
    assert out == body


async def test_replace_across_chunks_and_text_added_before_the_calls() -> None:
    chain = chain_of(
        {"policy": "replace", "apply_to": "response", "rules": [{"find": "check the", "replace": "look at the"}]},
        {"policy": fixture_path(TagPolicy), "tag": "t"},
    )
    out, _ = await police_stream(chain, "gemini", [stream("tool")])
    assert check_gemini_stream(parse_all(out)) == []
    text, calls, _ = sdk_read(out)
    # the tag marks what replace released each time: each chunk whole, as no tail of
    # either could begin "check the"
    assert text == "Let me <t>look at the weather.<t>\n\n[t saw STOP]"
    parts = parts_sent(out)
    assert "[t saw STOP]" in parts[-2]["text"] and calls == [
        ("get_weather+t", {"location": "Paris, France", "unit": "celsius"})
    ]
    assert parts[-1]["thoughtSignature"] == gemini_ids(SCENARIOS["tool"])[1]


@pytest.mark.parametrize("end", ["error", "cut"])
async def test_held_calls_are_decided_at_a_failed_end(end: str) -> None:
    events = gemini_sse(SCENARIOS["tools3"], MODEL)
    error = b'data: {"error": {"code": 503,"message": "Overloaded","status": "UNAVAILABLE"}}\r\n\r\n'
    body = b"".join(events[:2]) + (error if end == "error" else events[2][:30])
    out, _ = await police_stream(chain_of(DENY_ALL), "gemini", [body])
    parts = parts_sent(out if end == "cut" else out[: out.index(b'data: {"error"')])
    assert [("functionCall" in p) for p in parts] == [False, False]
    assert all("no tools" in p["text"] for p in parts)
    assert out.endswith(error) if end == "error" else out.endswith(b"\r\n\r\n")


async def test_whole_bodies_get_the_same_decisions() -> None:
    body = gemini_json(SCENARIOS["interleaved"], MODEL, wrapped=True)
    out, _ = await police_body(chain_of(DENY_RM), "gemini", body)
    assert check_gemini_response(out) == []
    [notice, kept] = out["response"]["candidates"][0]["content"]["parts"]
    signature = gemini_ids(SCENARIOS["interleaved"])[1]
    assert "recursive delete" in notice["text"] and notice["thoughtSignature"] == kept["thoughtSignature"] == signature
    assert out["traceId"] == body["traceId"]
    same, _ = await police_body(
        chain_of({"policy": fixture_path(NoopPolicy)}), "gemini", gemini_json(SCENARIOS["thinking"], MODEL)
    )
    assert same == gemini_json(SCENARIOS["thinking"], MODEL)


def test_the_json_array_stream_holds_the_same_chunks() -> None:
    """Without `alt=sse` the chunks come as one JSON array (recorded and passed as it came)."""
    chunks = json.loads(b"".join(gemini_json_array(SCENARIOS["tool"], MODEL)))
    assert chunks == [e.json() for e in parse_all(stream("tool"))]
    assert base64.b64decode(gemini_ids(SCENARIOS["tool"])[1])
    assert context("gemini").dialect is GEMINI
