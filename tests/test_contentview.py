"""Interlock's content views: a matched call's request and (reassembled) response as a
conversation, through mitmproxy's own contentviews API (`prettify_message` picks the
view as mitmweb and mitmdump do), on real wire shapes from `wire_scenarios`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import REPO, ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, auth_headers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy import contentviews, http
from mitmproxy.test import taddons, tflow
from wire_scenarios import (
    RESPONSES_SCENARIOS,
    SCENARIOS,
    anthropic_json,
    anthropic_sse,
    anthropic_stop_reason,
    anthropic_tool_id,
    openai_chat_json,
    openai_chat_sse,
    openai_finish_reason,
    openai_responses_json,
    openai_responses_sse,
    openai_tool_id,
    sse_for,
)

from addons.call_state import DIALECT_METADATA, CallStates
from addons.config_watch import ConfigWatch
from addons.contentview import STREAM_NOT_STORED, ConversationViews, render_request, render_response
from addons.matcher import CallMatcher
from interlock.dialects import DIALECTS

OPENAI = "openai-chat"
ANTHROPIC = "anthropic-messages"
RESPONSES = "openai-responses"
GEMINI = "gemini"
URLS = {
    OPENAI: "https://api.openai.com/v1/chat/completions",
    ANTHROPIC: "https://api.anthropic.com/v1/messages",
    RESPONSES: "https://api.openai.com/v1/responses",
    GEMINI: "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
}
MODELS = {OPENAI: "gpt-4o-mini", ANTHROPIC: "claude-sonnet-4-6", RESPONSES: "gpt-5-codex", GEMINI: "gemini-2.5-flash"}
API_KEY = "sk-test-SECRET-contentview"
HEADERS: dict[str, dict[str | bytes, str | bytes]] = {
    OPENAI: {"authorization": f"Bearer {API_KEY}"},
    ANTHROPIC: {"x-api-key": API_KEY},
    RESPONSES: {"authorization": f"Bearer {API_KEY}"},
    GEMINI: {"x-goog-api-key": API_KEY},
}

OPENAI_REQUEST: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "stream": True,
    "stream_options": {"include_usage": True},
    "tools": [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}},
    ],
    "messages": [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_w1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Paris, France"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_w1", "content": "18°C and sunny"},
    ],
}
ANTHROPIC_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 256,
    "system": [{"type": "text", "text": "You are a careful assistant."}],
    "tools": [
        {"name": "Bash", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search"},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "List the files here."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 5000}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "A listing needs ls.", "signature": "c2ln"},
                {"type": "tool_use", "id": "toolu_b1", "name": "Bash", "input": {"command": "ls -la"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_b1", "content": "ls: denied", "is_error": True}],
        },
    ],
}


@pytest.fixture
def views() -> Iterator[ConversationViews]:
    """The views loaded beside the configuration addon, as in the bundle."""
    config = ConfigWatch()
    addon = ConversationViews(config)
    with taddons.context(config, addon) as tctx:
        tctx.configure(config, interlock_config=str(REPO / "mitm_config.yaml"))
        yield addon
        tctx.master.addons.remove(addon)


def call_flow(dialect: str, request: Any, response: bytes | None = None, content_type: str = "") -> http.HTTPFlow:
    body = request if isinstance(request, bytes) else json.dumps(request).encode()
    headers: dict[str | bytes, str | bytes] = {"content-type": "application/json", **HEADERS[dialect]}
    flow = tflow.tflow(req=http.Request.make("POST", URLS[dialect], body, headers))
    if response is not None:
        flow.response = http.Response.make(200, response, {"content-type": content_type or "application/json"})
    return flow


def shown(flow: http.HTTPFlow, message: http.Message) -> contentviews.ContentviewResult:
    return contentviews.prettify_message(message, flow)


def as_conversation(dialect: str, flow: http.HTTPFlow, message: http.Message | None = None) -> str:
    """The text of `message` (default: the request) in the view mitmproxy picks, which
    must be `dialect`'s."""
    result = shown(flow, message if message is not None else flow.request)
    assert result.view_name == f"Interlock {dialect}"
    return result.text


def response_text(dialect: str, flow: http.HTTPFlow) -> str:
    assert flow.response is not None
    return as_conversation(dialect, flow, flow.response)


# -- requests --------------------------------------------------------------------------


def test_an_openai_request_reads_as_a_conversation(views: ConversationViews) -> None:
    text = as_conversation(OPENAI, call_flow(OPENAI, OPENAI_REQUEST))
    lines = text.splitlines()
    assert lines[0] == "openai-chat request: 4 messages"
    assert lines[1:5] == ["model: gpt-4o-mini", "stream: true", 'stream_options: {"include_usage": true}',
                          "tools (2): get_weather, read_file"]  # fmt: skip
    assert "── 1 system ──\nAnswer in one sentence." in text
    assert "── 2 user ──\nWhat is the weather in Paris?" in text
    assert (
        '── 3 assistant ──\n[tool call] get_weather  (id call_w1)\n    {\n      "location": "Paris, France"\n    }'
        in text
    )
    assert "── 4 tool ──\n[tool result] for call_w1\n    18°C and sunny" in text
    assert API_KEY not in text


def test_an_anthropic_request_reads_as_a_conversation(views: ConversationViews) -> None:
    text = as_conversation(ANTHROPIC, call_flow(ANTHROPIC, ANTHROPIC_REQUEST))
    assert text.startswith("anthropic-messages request: 3 messages\nmodel: claude-sonnet-4-6\nmax_tokens: 256\n")
    assert "tools (2): Bash, web_search" in text
    assert "── system ──\nYou are a careful assistant." in text
    assert "── 1 user ──\nList the files here.\n\n[image] base64 image/png, 5,000 base64 characters" in text
    assert "A" * 100 not in text  # an image is summarised, not dumped
    assert "── 2 assistant ──\n[thinking]\n    A listing needs ls.\n\n[tool call] Bash  (id toolu_b1)" in text
    assert '"command": "ls -la"' in text
    assert "── 3 user ──\n[tool result, error] for toolu_b1\n    ls: denied" in text
    assert API_KEY not in text


# -- responses -------------------------------------------------------------------------


def scenario_flow(dialect: str, name: str, streamed: bool) -> http.HTTPFlow:
    scenario, model = SCENARIOS[name], MODELS[dialect]
    request = {**(OPENAI_REQUEST if dialect == OPENAI else ANTHROPIC_REQUEST), "stream": streamed}
    if dialect == OPENAI:
        body = b"".join(openai_chat_sse(scenario, model, True)) if streamed else openai_chat_json(scenario, model)
    else:
        body = b"".join(anthropic_sse(scenario, model)) if streamed else anthropic_json(scenario, model)
    if streamed:
        assert isinstance(body, bytes)
        return call_flow(dialect, request, body, "text/event-stream")
    return call_flow(dialect, request, json.dumps(body).encode())


def conversation_part(text: str) -> str:
    """From the message on: what the person reads as the assistant's turn."""
    return text[text.index("── assistant ──") :]


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_response_shows_the_assistant_turn_and_how_it_ended(
    views: ConversationViews, dialect: str, name: str
) -> None:
    scenario = SCENARIOS[name]
    whole = response_text(dialect, scenario_flow(dialect, name, streamed=False))
    streamed = response_text(dialect, scenario_flow(dialect, name, streamed=True))

    stop = openai_finish_reason(scenario) if dialect == OPENAI else anthropic_stop_reason(scenario)
    tool_id = openai_tool_id if dialect == OPENAI else anthropic_tool_id
    for text in (whole, streamed):
        assert f"\nmodel: {MODELS[dialect]}\nstop reason: {stop}\n" in text
        assert (
            f"output_tokens {scenario.output_tokens}" in text or f"completion_tokens {scenario.output_tokens}" in text
        )
        if scenario.text:
            assert "".join(scenario.text) in text
        for call in scenario.tool_calls:
            assert f"[tool call] {call.name}  (id {tool_id(call)})" in text
            for key, value in json.loads(call.arguments).items():
                assert f"{json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)}" in text
        if scenario.thinking and dialect == ANTHROPIC:
            assert f"[thinking]\n    {''.join(scenario.thinking)}" in text
            assert "[redacted thinking]" in text
    # The stream is shown reassembled: the same turn as its non-streamed twin, no SSE lines.
    assert "reassembled from" in streamed.splitlines()[0]
    assert conversation_part(streamed) == conversation_part(whole)
    assert "data:" not in streamed and "event:" not in streamed
    assert "stream note" not in streamed


RESPONSES_REQUEST: dict[str, Any] = {
    "model": "gpt-5-codex",
    "instructions": "You are Codex.",
    "stream": True,
    "tools": [{"type": "function", "name": "exec_command"}, {"type": "custom", "name": "apply_patch"}],
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tidy the notes."}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Look first."}]},
        {"type": "function_call", "call_id": "call_ls", "name": "exec_command", "arguments": '{"cmd":"ls"}'},
        {"type": "function_call_output", "call_id": "call_ls", "output": "notes.txt"},
        {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done!"},
    ],
}


def test_a_responses_request_reads_as_a_conversation(views: ConversationViews) -> None:
    text = as_conversation(RESPONSES, call_flow(RESPONSES, RESPONSES_REQUEST))
    assert text.startswith("openai-responses request: 6 messages\nmodel: gpt-5-codex\n")
    assert "── system ──\nYou are Codex." in text
    assert "── 1 user ──\nTidy the notes." in text
    assert "── 2 assistant ──\n[thinking]\n    Look first." in text
    assert '── 3 assistant ──\n[tool call] exec_command  (id call_ls)\n    {\n      "cmd": "ls"\n    }' in text
    assert "── 4 tool ──\n[tool result] for call_ls\n    notes.txt" in text
    assert "── 5 assistant ──\n[tool call, custom_tool_call] apply_patch  (id call_p)\n    *** Begin Patch" in text
    assert "── 6 tool ──\n[tool result] for call_p\n    Done!" in text
    assert API_KEY not in text


@pytest.mark.parametrize("name", ["tool", "thinking", "custom_tool", "shell", "unicode"])
def test_a_responses_response_shows_items_streamed_or_not(views: ConversationViews, name: str) -> None:
    scenario = SCENARIOS.get(name) or RESPONSES_SCENARIOS[name]
    model = MODELS[RESPONSES]
    stream = b"".join(openai_responses_sse(scenario, model))
    whole = response_text(
        RESPONSES, call_flow(RESPONSES, RESPONSES_REQUEST, json.dumps(openai_responses_json(scenario, model)).encode())
    )
    streamed = response_text(RESPONSES, call_flow(RESPONSES, RESPONSES_REQUEST, stream, "text/event-stream"))
    for text in (whole, streamed):
        assert f"\nmodel: {model}\nstop reason: completed\n" in text
        if scenario.text:
            assert "".join(scenario.text) in text
        if scenario.thinking:
            assert f"[thinking]\n    {''.join(scenario.thinking)}" in text
        for call in scenario.tool_calls:
            assert f"[tool call] {call.name}  (id {openai_tool_id(call)})" in text
        for call in getattr(scenario, "custom_calls", []):
            assert f"[tool call, custom_tool_call] {call.name}  (id {openai_tool_id(call)})" in text
            assert call.argument_pieces[0].splitlines()[0] in text
    assert "reassembled from" in streamed.splitlines()[0]
    assert conversation_part(streamed) == conversation_part(whole)
    assert "event:" not in streamed and "stream note" not in streamed


def test_an_empty_stream_body_says_how_to_keep_it(views: ConversationViews) -> None:
    flow = call_flow(OPENAI, OPENAI_REQUEST, b"", "text/event-stream")
    assert flow.response is not None
    assert STREAM_NOT_STORED in shown(flow, flow.response).text


# -- which flows get the views ---------------------------------------------------------


def view_priorities(addon: ConversationViews, flow: http.HTTPFlow, message: http.Message) -> dict[str, float]:
    metadata = contentviews.make_metadata(message, flow)
    data = message.get_content(strict=False) or b""
    return {view.dialect.name: view.render_priority(data, metadata) for view in addon.views}


def test_a_flow_that_is_no_llm_call_gets_priority_zero(views: ConversationViews) -> None:
    others = [
        tflow.tflow(resp=True),
        tflow.tflow(req=http.Request.make("GET", "https://api.openai.com/v1/models")),
        tflow.tflow(req=http.Request.make("POST", "https://example.com/v1/chat/completions", b"{}")),
    ]
    for flow in others:
        assert set(view_priorities(views, flow, flow.request).values()) == {0}
        assert not (shown(flow, flow.request).view_name or "").startswith("Interlock")
        if flow.response is not None:
            assert set(view_priorities(views, flow, flow.response).values()) == {0}


def test_only_the_flows_dialect_view_is_chosen(views: ConversationViews) -> None:
    for dialect in DIALECTS:
        flow = call_flow(dialect, {"model": "m", "messages": []}, b"{}")
        assert flow.response is not None
        for message in (flow.request, flow.response):
            ranks = view_priorities(views, flow, message)
            assert ranks[dialect] > 0 and {p for name, p in ranks.items() if name != dialect} == {0}


def test_the_dialect_noted_by_the_matcher_survives_map_remote(views: ConversationViews) -> None:
    """The matcher notes the dialect at `requestheaders`; map_remote then points the
    request at another host (the harness's mock, a local model server)."""
    assert views.config.current is not None
    flow = call_flow(ANTHROPIC, ANTHROPIC_REQUEST)
    CallMatcher(views.config, CallStates()).requestheaders(flow)
    flow.request.url = "http://127.0.0.1:8000/v1/messages"
    assert flow.metadata[DIALECT_METADATA] == ANTHROPIC
    assert as_conversation(ANTHROPIC, flow).startswith("anthropic-messages request (call ")

    unnoted = call_flow(ANTHROPIC, ANTHROPIC_REQUEST)
    unnoted.request.url = "http://127.0.0.1:8000/v1/messages"
    assert set(view_priorities(views, unnoted, unnoted.request).values()) == {0}


def test_unloaded_views_are_never_chosen() -> None:
    config = ConfigWatch()
    addon = ConversationViews(config)
    with taddons.context(config, addon) as tctx:
        tctx.configure(config, interlock_config=str(REPO / "mitm_config.yaml"))
        flow = call_flow(OPENAI, OPENAI_REQUEST)
        assert view_priorities(addon, flow, flow.request)[OPENAI] > 0
        tctx.master.addons.remove(addon)
        assert set(view_priorities(addon, flow, flow.request).values()) == {0}
        assert shown(flow, flow.request).view_name != f"Interlock {OPENAI}"


# -- bodies it cannot read -------------------------------------------------------------


def cut_stream(dialect: str, name: str, keep: Callable[[bytes], int]) -> bytes:
    body = b"".join(sse_for(dialect, SCENARIOS[name], MODELS[dialect]))
    return body[: keep(body)]


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC, RESPONSES])
def test_bad_bodies_are_shown_as_they_came_with_the_reason(views: ConversationViews, dialect: str) -> None:
    cases: list[tuple[bytes, str, str]] = [
        (b"{not json", "", "not JSON"),
        (b"[1, 2]", "", "not a JSON object"),
        (b"\xff\xfegarbage", "", "not JSON"),
        (cut_stream(dialect, "tool", lambda body: 60), "text/event-stream", "the stream could not be reassembled"),
        (b"data: nonsense\n\n", "text/event-stream", "the stream could not be reassembled"),
    ]
    for body, content_type, reason in cases:
        flow = call_flow(dialect, body, body, content_type)
        assert flow.response is not None
        for message in (flow.request, flow.response) if not content_type else (flow.response,):
            result = shown(flow, message)
            assert result.view_name == f"Interlock {dialect}"
            assert reason in result.text.splitlines()[0]
            assert "The body as it came:" in result.text
            assert body.decode("utf-8", "replace") in result.text


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC, RESPONSES])
def test_a_stream_cut_short_shows_what_arrived_and_why_it_is_incomplete(views: ConversationViews, dialect: str) -> None:
    body = cut_stream(dialect, "tools2", lambda body: len(body) * 2 // 3)
    text = response_text(dialect, call_flow(dialect, OPENAI_REQUEST, body, "text/event-stream"))
    assert "Checking both cities." in text
    assert "stream note: " in text
    assert "── assistant ──" in text


def test_a_reader_that_fails_shows_the_body_and_the_error(
    views: ConversationViews, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(body: dict[str, Any]) -> None:
        raise KeyError("messages")

    monkeypatch.setattr(DIALECTS[OPENAI], "request_view", broken)
    text = as_conversation(OPENAI, call_flow(OPENAI, OPENAI_REQUEST))
    assert text.startswith("openai-chat: could not show this body (KeyError: 'messages')\nThe body as it came:")
    assert "What is the weather in Paris?" in text


def test_a_json_body_of_an_unexpected_shape_still_renders(views: ConversationViews) -> None:
    for dialect in DIALECTS:
        odd = {"messages": "hello", "choices": [1], "content": {"type": "new"}, "system": 5, "usage": 3}
        flow = call_flow(dialect, odd, json.dumps(odd).encode())
        assert flow.response is not None
        assert "could not show" not in as_conversation(dialect, flow)
        assert "could not show" not in response_text(dialect, flow)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
message_like = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool", "system"]), "content": json_values},
    optional={"tool_calls": json_values, "tool_call_id": json_values, "reasoning_content": json_values},
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values,
        "messages": st.lists(message_like | json_values, max_size=3),
        "system": json_values,
        "tools": json_values,
        "choices": st.lists(
            st.fixed_dictionaries({}, optional={"message": message_like, "finish_reason": json_values})
        ),
        "content": json_values,
        "usage": json_values,
        "stop_reason": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, dialect=st.sampled_from(sorted(DIALECTS)))
def test_any_json_body_renders_through_the_readers(body: dict[str, Any], dialect: str) -> None:
    data = json.dumps(body).encode()
    for text in (render_request(DIALECTS[dialect], data), render_response(DIALECTS[dialect], data, None)):
        assert "could not show" not in text


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200) | st.lists(st.sampled_from([b"data: ", b"event: ", b"{", b"}", b"\n", b"[DONE]"]))
       .map(b"".join), dialect=st.sampled_from(sorted(DIALECTS)))  # fmt: skip
def test_any_stream_bytes_render(data: bytes, dialect: str) -> None:
    assert "could not show" not in render_response(DIALECTS[dialect], data, "text/event-stream")


# -- end to end ------------------------------------------------------------------------

ENTRY = '''"""The bundle with its content views, until addons/bundle.py lists them itself."""
from addons import bundle
from addons.contentview import ConversationViews

listed = any(isinstance(addon, ConversationViews) for addon in bundle.addons)
addons = bundle.addons if listed else [*bundle.addons, ConversationViews(bundle.config)]
'''


def test_mitmdump_prints_calls_as_conversations(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], tmp_path: Path
) -> None:
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    proxy = start_proxy(script=entry, extra_args=["--flow-detail", "3", "--set", "store_streamed_bodies=true"])
    client = make_clients(proxy).raw()
    api_key = make_clients(proxy).api_key

    asked = {**OPENAI_REQUEST, "stream": False}
    del asked["stream_options"]
    answer = client.post(URLS[OPENAI], json=asked, headers={**auth_headers(OPENAI, api_key), "x-mock-scenario": "tool"})
    assert answer.status_code == 200
    output = proxy.wait_for_output("openai-chat response")
    assert "    ── 2 user ──\n    What is the weather in Paris?\n" in output  # mitmdump indents bodies
    assert "stop reason: tool_calls" in output
    assert "[tool call] get_weather  (id call_01A09q90qw90lq917835lq9)" in output

    asked = {**ANTHROPIC_REQUEST, "stream": True}
    answer = client.post(URLS[ANTHROPIC], json=asked, headers={**auth_headers(ANTHROPIC, api_key), "x-mock-scenario": "thinking"})  # fmt: skip
    assert answer.status_code == 200
    output = proxy.wait_for_output("anthropic-messages response")
    streamed = output[output.index("anthropic-messages response") :]
    assert "reassembled from" in streamed.splitlines()[0]
    assert "stop reason: end_turn" in streamed
    assert "Hi there!" in streamed
    assert "content_block_delta" not in streamed

    asked = {**RESPONSES_REQUEST, "input": RESPONSES_REQUEST["input"][:1]}
    answer = client.post(URLS[RESPONSES], json=asked, headers={**auth_headers(RESPONSES, api_key), "x-mock-scenario": "custom_tool"})  # fmt: skip
    assert answer.status_code == 200
    output = proxy.wait_for_output("openai-responses response")
    assert re.search(r"openai-responses request \(call \w+\): 1 message\n    model: gpt-5-codex\n", output)
    assert "── 1 user ──\n    Tidy the notes." in output
    streamed = output[output.index("openai-responses response") :]
    assert "reassembled from" in streamed.splitlines()[0]
    assert "stop reason: completed" in streamed
    assert "[tool call, custom_tool_call] apply_patch" in streamed
    assert "response.output_item" not in streamed
