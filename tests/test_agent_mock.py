"""The scripted mock that drives Claude Code and Gemini CLI (`agent_mock`): its streams
are valid Anthropic SSE the SDK accumulates (and Gemini streams google-genai reads), its
request checks catch the histories the real APIs reject, and it picks the scripted reply
from the conversation's state."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx2
import pytest
from agent_mock import (
    AgentMock,
    Reply,
    _message,
    bash,
    conversation_position,
    exec_command,
    request_violations,
    shell,
    signature,
    sse_events,
)
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from policy_fixtures import anthropic_sdk_message, stream_violations

KEY = "sk-ant-mock-unit"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
THINKING = "Let me think."
USE = {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}


def user(*blocks: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def thinking(value: str, sig: str | None = None) -> dict[str, Any]:
    return {"type": "thinking", "thinking": value, "signature": signature(value) if sig is None else sig}


@pytest.fixture(scope="module")
def mock() -> Iterator[AgentMock]:
    with AgentMock(KEY) as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(trust_env=False, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    "reply",
    [
        Reply("plain text"),
        Reply("text, then a call", (bash("echo hi > out.txt"),), thinking=THINKING),
        Reply("", (bash("ls"), bash("pwd"))),
    ],
    ids=["text", "thinking-text-tool", "two-tools"],
)
def test_stream_is_valid_anthropic_sse(reply: Reply) -> None:
    message = _message(reply, "claude-opus-4-5", 1234)
    raw = b"".join(sse_events(message, reply, context_management=True))
    assert stream_violations("anthropic-messages", raw) == []
    assert all(chunk.startswith(b"event: ") for chunk in sse_events(message, reply))
    accumulated = anthropic_sdk_message(raw)
    assert [block.model_dump(exclude_none=True) for block in accumulated.content] == message["content"]
    assert accumulated.stop_reason == ("tool_use" if reply.tools else "end_turn")
    assert accumulated.usage.input_tokens == 1234


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([user(text("hi"))], []),
        ([user(text("hi")), {"role": "system", "content": "env"}, assistant(USE), user(RESULT)], []),
        ([user(text("hi")), assistant(thinking(THINKING), text("ok"), USE), user(RESULT)], []),
        ([user(text("hi")), assistant(USE, text("after")), user(RESULT)], ["a `text` block follows a `tool_use`"]),
        ([user(text("hi")), assistant(USE), user(text("next"))], ["`tool_use` ids were found without `tool_result`"]),
        ([user(text("hi")), assistant(text("ok")), user(RESULT)], ["unexpected `tool_use_id`"]),
        ([user(text("hi")), assistant(USE), user(text("first"), RESULT)], ["`tool_result` blocks must come first"]),
        ([user(text("hi")), assistant(text(""))], ["must be non-empty", "final message must use the `user` role"]),
        ([user(text("a")), user(text("b"))], ["roles must alternate"]),
        ([user(text("a")), assistant(thinking(THINKING, "forged"), USE), user(RESULT)], ["Invalid `signature`"]),
    ],
    ids=[
        "one-prompt",
        "system-message-ignored",
        "thinking-text-tool",
        "text-after-tool-use",
        "missing-tool-result",
        "orphan-tool-result",
        "result-not-first",
        "empty-text-last-assistant",
        "two-users",
        "forged-signature",
    ],
)
def test_request_violations(messages: list[dict[str, Any]], expected: list[str]) -> None:
    found = request_violations({"messages": messages})
    assert len(found) == len(expected), found
    for fragment in expected:
        assert any(fragment in message for message in found), (fragment, found)


def test_conversation_position() -> None:
    history = [user(text("one")), assistant(USE), user(RESULT)]
    assert conversation_position(history[:1]) == (0, 0)
    assert conversation_position(history) == (0, 1)
    assert conversation_position([*history, assistant(text("done")), user(text("two"))]) == (1, 0)


def messages_request(http: httpx2.Client, mock: AgentMock, messages: list[Any], **extra: Any) -> httpx2.Response:
    body = {"model": "claude-opus-4-5", "max_tokens": 100, "messages": messages, **extra}
    return http.post(f"{mock.url}/v1/messages?beta=true", json=body, headers=HEADERS)


def test_scripted_conversation_over_http(mock: AgentMock, http: httpx2.Client) -> None:
    marker = mock.script([Reply("Running.", (bash("echo 7"),)), Reply("It said {results}.")], [Reply("Turn two.")])
    prompt = user(text(f"{marker} go"))
    first = messages_request(http, mock, [prompt], stream=True)
    assert first.headers["content-type"].startswith("text/event-stream")
    called = anthropic_sdk_message(first.content)
    [use] = [block for block in called.content if block.type == "tool_use"]
    assert (use.name, use.input) == ("Bash", {"command": "echo 7", "description": "Run a shell command"})

    history = [
        prompt,
        assistant(text("Running."), use.model_dump()),
        user({**RESULT, "tool_use_id": use.id, "content": "7"}),
    ]
    second = messages_request(http, mock, history)
    assert second.json()["content"] == [{"type": "text", "text": "It said 7."}]
    third = messages_request(http, mock, [*history, assistant(text("It said 7.")), user(text("again"))])
    assert third.json()["content"] == [{"type": "text", "text": "Turn two."}]
    off_script = messages_request(
        http, mock, [*history, assistant(text("x")), user(text("y")), assistant(text("z")), user(text("w"))]
    )
    assert off_script.status_code == 200
    assert [(e.turn, e.step) for e in mock.exchanges(marker)] == [(0, 0), (0, 1), (1, 0), (2, 0)]
    assert mock.exchanges(marker)[-1].violations == ["off script: turn 2, step 0"]


def test_thinking_must_come_back_with_its_tool_call(mock: AgentMock, http: httpx2.Client) -> None:
    marker = mock.script([Reply("", (bash("ls"),), thinking=THINKING), Reply("done")])
    prompt = user(text(f"{marker} go"))
    message = messages_request(http, mock, [prompt]).json()
    thought, use = message["content"]
    result = {**RESULT, "tool_use_id": use["id"]}
    dropped = messages_request(http, mock, [prompt, assistant(use), user(result)])
    assert dropped.status_code == 400
    assert "must start with a thinking block" in dropped.json()["error"]["message"]
    kept = messages_request(http, mock, [prompt, assistant(thought, use), user(result)])
    assert (kept.status_code, kept.json()["content"]) == (200, [{"type": "text", "text": "done"}])


def test_api_answers(mock: AgentMock, http: httpx2.Client) -> None:
    bad = messages_request(http, mock, [user(text("hi")), assistant(USE, text("after")), user(RESULT)])
    assert bad.status_code == 400
    assert bad.json()["type"] == "error" and bad.json()["error"]["type"] == "invalid_request_error"
    no_key = http.post(f"{mock.url}/v1/messages", json={"messages": []})
    assert (no_key.status_code, no_key.json()["error"]["type"]) == (401, "authentication_error")
    other = http.get(f"{mock.url}/api/claude_code/settings", headers=HEADERS)
    assert (other.status_code, other.json()["error"]["type"]) == (404, "not_found_error")
    counted = http.post(f"{mock.url}/v1/messages/count_tokens", json={"messages": [user(text("hi"))]}, headers=HEADERS)
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
    models = http.get(f"{mock.url}/v1/models", headers=HEADERS).json()
    assert models["data"] and not models["has_more"]
    side = messages_request(http, mock, [user(text("a title please"))])
    assert json.loads(side.content)["content"][0]["text"] == "Mock side answer."


# --- the Responses API (Codex) ------------------------------------------------------------


def responses_request(http: httpx2.Client, mock: AgentMock, items: list[Any], **extra: Any) -> httpx2.Response:
    body = {"model": "gpt-5.4", "input": items, "stream": True, **extra}
    return http.post(f"{mock.url}/v1/responses", json=body, headers={"authorization": f"Bearer {KEY}"})


def prompt_item(value: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}


def completed_response(raw: bytes) -> dict[str, Any]:
    assert stream_violations("openai-responses", raw) == []
    [line] = [line for line in raw.splitlines() if line.startswith(b'data: {"type":"response.completed"')]
    response: dict[str, Any] = json.loads(line.removeprefix(b"data: "))["response"]
    return response


def test_responses_tool_loop_and_the_tool_output_rule(mock: AgentMock, http: httpx2.Client) -> None:
    """Over HTTP with the whole history, and chained on `previous_response_id`, where a
    turn that does not answer the response's call is refused as the API refuses it."""
    marker = mock.script([Reply("Running.", (exec_command("echo 7"),)), Reply("It said {results}.")])
    context = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment/>"}]}
    first = completed_response(responses_request(http, mock, [context, prompt_item(f"{marker} go")]).content)
    message, call = first["output"]
    assert (message["type"], call["type"], call["name"], json.loads(call["arguments"])) == (
        "message",
        "function_call",
        "exec_command",
        {"cmd": "echo 7"},
    )
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "7"}
    whole = responses_request(http, mock, [context, prompt_item(f"{marker} go"), message, call, output])
    assert completed_response(whole.content)["output"][0]["content"][0]["text"] == "It said 7."

    unanswered = responses_request(http, mock, [], previous_response_id=first["id"])
    assert unanswered.status_code == 400
    assert unanswered.json()["error"]["message"] == f"No tool output found for function call {call['call_id']}."
    chained = responses_request(http, mock, [output], previous_response_id=first["id"])
    assert completed_response(chained.content)["output"][0]["content"][0]["text"] == "It said 7."
    unknown = responses_request(http, mock, [output], previous_response_id="resp_unknown")
    assert unknown.status_code == 400 and "not found" in unknown.json()["error"]["message"]
    assert [(e.status, e.turn, e.step) for e in mock.exchanges(marker)] == [(200, 0, 0), (200, 0, 1), (200, 0, 1)]
    assert [e.status for e in mock.exchanges()[-3:]] == [400, 200, 400]  # refusals are kept, with why
    assert mock.exchanges()[-3].violations == [unanswered.json()["error"]["message"]]


async def test_responses_websocket_turns(mock: AgentMock) -> None:
    """Pre-warm, a chained turn, a refused one (a wrapped error frame), a chained answer."""
    marker = mock.script([Reply("", (exec_command("ls"),)), Reply("Listed: {results}")])
    headers = {"authorization": f"Bearer {KEY}", "OpenAI-Beta": "responses_websockets=2026-02-06"}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{mock.url}/v1/responses", headers=headers) as ws,
    ):

        async def turn(**body: Any) -> list[dict[str, Any]]:
            await ws.send_json({"type": "response.create", "model": "gpt-5.4", "stream": True, **body})
            frames: list[dict[str, Any]] = []
            while not frames or frames[-1]["type"] not in ("response.completed", "error"):
                frames.append(json.loads(await asyncio.wait_for(ws.receive_str(), 10)))
            return frames

        warm = await turn(input=[prompt_item(f"{marker} list")], generate=False)
        assert [f["type"] for f in warm] == ["response.created", "response.completed"]
        assert warm[-1]["response"]["output"] == []
        asked = await turn(input=[], previous_response_id=warm[-1]["response"]["id"])
        [call] = asked[-1]["response"]["output"]
        refused = await turn(input=[], previous_response_id=asked[-1]["response"]["id"])
        assert refused == [
            {
                "type": "error",
                "status": 400,
                "error": {
                    "message": f"No tool output found for function call {call['call_id']}.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_request_error",
                },
            }
        ]
        output = {"type": "function_call_output", "call_id": call["call_id"], "output": "a.txt"}
        done = await turn(input=[output], previous_response_id=asked[-1]["response"]["id"])
        assert done[-1]["response"]["output"][0]["content"][0]["text"] == "Listed: a.txt"
    assert [(e.method, e.status, e.step) for e in mock.exchanges(marker)] == [("WS", 200, 0), ("WS", 200, 1)]
    assert [(e.method, e.status) for e in mock.exchanges()[-4:]] == [("WS", 200), ("WS", 200), ("WS", 400), ("WS", 200)]


# --- the Gemini API side (`agent_mock_gemini`), through the google-genai SDK ---------------


GEMINI_KEY = "AIza-agent-mock-unit"
GEMINI_MODEL = "gemini-3-flash-preview"


@pytest.fixture(scope="module")
def gemini_mock() -> Iterator[AgentMock]:
    with AgentMock(GEMINI_KEY) as server:
        yield server


def genai_client(mock: AgentMock, key: str = GEMINI_KEY) -> genai.Client:
    return genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=mock.url, api_version="v1beta"))


def candidate(response: genai_types.GenerateContentResponse) -> genai_types.Candidate:
    [found] = response.candidates or []
    return found


def parts_of(response: genai_types.GenerateContentResponse) -> list[genai_types.Part]:
    content = candidate(response).content
    return list(content.parts or []) if content is not None else []


def test_gemini_agent_loop_through_the_sdk(gemini_mock: AgentMock) -> None:
    """A scripted call streams as the SDK expects; the follow-up with the function's
    response gets the next step; one whose call lost its signature gets Gemini 3's 400."""
    marker = gemini_mock.script([Reply("Running it.", (shell("ls"),), thinking=THINKING), Reply("Saw: {results}")])
    client = genai_client(gemini_mock)
    prompt = genai_types.Content(role="user", parts=[genai_types.Part(text=f"{marker} list the files")])
    chunks = list(client.models.generate_content_stream(model=GEMINI_MODEL, contents=[prompt]))
    parts = [part for chunk in chunks for part in parts_of(chunk)]
    assert [(p.thought, p.text) for p in parts if p.text] == [(True, THINKING), (None, "Running it.")]
    [call] = [p for p in parts if p.function_call]
    assert call.function_call is not None and call.thought_signature
    assert (call.function_call.name, call.function_call.args) == ("run_shell_command", shell("ls").input)
    assert [candidate(c).finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["STOP"]
    usage = chunks[-1].usage_metadata
    assert usage is not None and usage.thoughts_token_count and chunks[-1].model_version == GEMINI_MODEL

    answer = genai_types.Part.from_function_response(name="run_shell_command", response={"output": "a.txt"})
    model_turn = genai_types.Content(role="model", parts=[call])
    follow_up = [prompt, model_turn, genai_types.Content(role="user", parts=[answer])]
    done = client.models.generate_content(model=GEMINI_MODEL, contents=follow_up)
    assert done.text == "Saw: a.txt"

    unsigned = call.model_copy(update={"thought_signature": None})
    with pytest.raises(genai_errors.ClientError, match="missing a thought_signature") as refused:
        client.models.generate_content(
            model=GEMINI_MODEL, contents=[prompt, genai_types.Content(role="model", parts=[unsigned]), follow_up[2]]
        )
    assert refused.value.code == 400
    assert [(e.turn, e.step, e.status) for e in gemini_mock.exchanges(marker)] == [(0, 0, 200), (0, 1, 200)]
    [violation] = gemini_mock.exchanges()[-1].violations
    assert "function call `default_api:run_shell_command`" in violation


def test_gemini_structured_request_and_bad_key(gemini_mock: AgentMock) -> None:
    """A request for structured output (Gemini CLI's routing call) is answered from its
    schema; a wrong key gets the API's 400."""
    schema = {
        "type": "OBJECT",
        "properties": {"complexity_reasoning": {"type": "STRING"}, "complexity_score": {"type": "INTEGER"}},
        "required": ["complexity_reasoning", "complexity_score"],
    }
    config = genai_types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=schema)
    client, wrong_key = genai_client(gemini_mock), genai_client(gemini_mock, "AIza-wrong")
    routed = client.models.generate_content(model=GEMINI_MODEL, contents="route me", config=config)
    assert set(json.loads(routed.text or "")) == {"complexity_reasoning", "complexity_score"}
    with pytest.raises(genai_errors.ClientError, match="API key not valid") as refused:
        wrong_key.models.generate_content(model=GEMINI_MODEL, contents="hi")
    assert refused.value.code == 400
