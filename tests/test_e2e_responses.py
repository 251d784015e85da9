"""The `openai-responses` dialect end to end: the real mitmdump, the official `openai`
SDK's `client.responses`, the loopback mock speaking the Responses API (it stores what it
generated and enforces the tool-output rule of chained requests).

What the SDK gets (text, function calls, custom tool calls, errors) and what is recorded;
then chained conversations after a block: a call Interlock removed never reached the
client, so the next request chained on that response (`previous_response_id`) gets the
missing `function_call_output` before it goes upstream, recorded as a policy change; on
OpenAI chat and Anthropic the client resends the history, and its next turn is accepted.
A stream the model fails (`response.failed`) reaches the client as upstream sent it, and
a call a policy holds in it never does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, auth_headers, llm_request
from harness_db import CallsDB
from judge_mock import JudgeMock, allow, block, judge_policy
from mock_provider import MockProvider
from policy_fixtures import stream_violations
from wire_scenarios import RESPONSES_SCENARIOS, SCENARIOS, openai_tool_id

from interlock.sse import parse_all

CALL_ID = "x-interlock-call-id"
MOCK_ID = "x-mock-request-id"
MODEL = "gpt-5-codex"
SHELL_TOOL: Any = {"type": "function", "name": "exec_command", "parameters": {"type": "object"}}
PATCH_TOOL: Any = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch."}
DENY = {
    "policies": [{"policy": "deny_tools", "rules": [{"tool": "*", "pattern": "rm -rf", "reason": "recursive delete"}]}]
}
RM_CALL = openai_tool_id(RESPONSES_SCENARIOS["shell"].tool_calls[0])
JUDGE_KEY_ENV = "INTERLOCK_TEST_JUDGE_KEY"


@pytest.fixture(scope="module")
def plain(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    return start_module_proxy()


@pytest.fixture(scope="module")
def guarded(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    return start_module_proxy(config=DENY)


def db_of(proxy: ProxyProcess) -> CallsDB:
    assert proxy.db_path is not None
    return CallsDB(proxy.db_path)


def user(text: str) -> Any:
    return [{"role": "user", "content": text}]


# --- the SDK through the proxy ----------------------------------------------------------


def test_a_text_response_and_its_record(
    plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    raw = make_clients(plain).openai().responses.with_raw_response.create(model=MODEL, input="say hello")
    response = raw.parse()
    assert response.output_text == "Hello from the mock provider."
    assert raw.http_response.content == mock_provider.exchange(raw.headers[MOCK_ID]).sent
    call = db_of(plain).wait_call(raw.headers[CALL_ID])
    assert (call["dialect"], call["model"], call["stream"], call["status"]) == ("openai-responses", MODEL, 0, 200)
    assert (call["input_tokens"], call["output_tokens"]) == (12, 34)
    assert call["response_text"] == "Hello from the mock provider."
    assert call["prompt_text"] == "say hello"
    assert isinstance(call["cost_usd"], float) and call["cost_usd"] > 0


def test_a_streamed_function_call_through_the_stream_helper(
    plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    clients = make_clients(plain)
    with clients.openai().responses.stream(
        model=MODEL, input=user("clean up [[mock:shell]]"), tools=[SHELL_TOOL]
    ) as stream:
        response = stream.get_final_response()
        headers = stream._response.headers
    [reasoning, call_item] = response.output
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "Cleaning up."
    assert call_item.type == "function_call" and call_item.call_id == RM_CALL
    assert json.loads(call_item.arguments) == {"cmd": "rm -rf /tmp/precious"}
    call = db_of(plain).wait_call(headers[CALL_ID])
    assert call.stages["response_original"]["raw"] == mock_provider.exchange(headers[MOCK_ID]).sent
    assert call.stages["response_final"]["raw"] == mock_provider.exchange(headers[MOCK_ID]).sent
    rows = db_of(plain).rows("select * from tool_calls where call_id = ? order by stage, position", (headers[CALL_ID],))
    assert [(r["stage"], r["name"], r["tool_call_id"]) for r in rows] == [
        ("response_final", "exec_command", RM_CALL),
        ("response_original", "exec_command", RM_CALL),
    ]


@pytest.mark.parametrize("stream", [True, False])
def test_a_custom_tool_call_reaches_the_sdk_with_its_input(
    plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], stream: bool
) -> None:
    clients = make_clients(plain)
    arguments: Any = {"model": MODEL, "input": user("patch [[mock:custom_tool]]"), "tools": [PATCH_TOOL]}
    if stream:
        with clients.openai().responses.stream(**arguments) as response_stream:
            response: Any = response_stream.get_final_response()
            call_id = response_stream._response.headers[CALL_ID]
    else:
        raw = clients.openai().responses.with_raw_response.create(**arguments)
        response, call_id = raw.parse(), raw.headers[CALL_ID]
    patch = RESPONSES_SCENARIOS["custom_tool"].custom_calls[0]
    [message, custom] = response.output
    assert message.content[0].text == "Patching the notes."
    assert (custom.type, custom.name, custom.input) == ("custom_tool_call", "apply_patch", patch.arguments)
    db_of(plain).wait_call(call_id)
    [row] = db_of(plain).rows("select * from tool_calls where call_id = ? and stage = 'response_original'", (call_id,))
    assert (row["name"], json.loads(row["arguments_json"])) == ("apply_patch", patch.arguments)


def test_an_error_reaches_the_sdk(plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory]) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        make_clients(plain).openai().responses.create(model=MODEL, input="[[mock:error_429]]")
    call = db_of(plain).wait_call(caught.value.response.headers[CALL_ID])
    assert (call["dialect"], call["status"]) == ("openai-responses", 429)


def test_a_chained_conversation_and_a_codex_thread_are_one_session_each(
    plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory]
) -> None:
    """Turns chained with `previous_response_id` (only the new input sent) join the first
    turn's session, streamed or not; Codex's `thread-id` header names its own."""
    sdk = make_clients(plain).openai().responses
    first = sdk.with_raw_response.create(model=MODEL, input=user(f"a chained talk {time.time_ns()}"))
    with sdk.stream(model=MODEL, previous_response_id=first.parse().id, input=user("go on")) as second_stream:
        second_id = second_stream.get_final_response().id
        second_call = second_stream._response.headers[CALL_ID]
    third = sdk.with_raw_response.create(model=MODEL, previous_response_id=second_id, input=user("and?"))
    thread = f"thr-{time.time_ns()}"
    codex = sdk.with_raw_response.create(model=MODEL, input=user("tidy"), extra_headers={"thread-id": thread})
    db = db_of(plain)
    sessions = [db.wait_call(c)["session_id"] for c in (first.headers[CALL_ID], second_call, third.headers[CALL_ID])]
    assert sessions[0].startswith("fp-") and sessions == [sessions[0]] * 3
    assert db.wait_call(codex.headers[CALL_ID])["session_id"] == f"codex-{thread}"


def test_the_mock_enforces_the_tool_output_rule(mock_provider: MockProvider) -> None:
    """Without Interlock: a request chained on a response with a call it does not answer."""
    first = httpx2.post(f"{mock_provider.url}/v1/responses", json={"model": MODEL, "input": "[[mock:shell]]"},
                        headers={"authorization": "Bearer sk-x"})  # fmt: skip
    chained = {"model": MODEL, "previous_response_id": first.json()["id"], "input": "go on"}
    refused = httpx2.post(f"{mock_provider.url}/v1/responses", json=chained, headers={"authorization": "Bearer sk-x"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == f"No tool output found for function call {RM_CALL}."


# --- chained conversations after a block -------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_a_turn_chained_on_a_blocked_call_is_accepted(
    guarded: ProxyProcess,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    stream: bool,
) -> None:
    sdk = make_clients(guarded).openai().responses
    arguments: Any = {"model": MODEL, "input": user("clean up [[mock:shell]]"), "tools": [SHELL_TOOL]}
    if stream:
        with sdk.stream(**arguments) as first_stream:
            first: Any = first_stream.get_final_response()
            first_call = first_stream._response.headers[CALL_ID]
    else:
        raw = sdk.with_raw_response.create(**arguments)
        first, first_call = raw.parse(), raw.headers[CALL_ID]
    assert [item.type for item in first.output] == ["reasoning", "message"]  # the call became a notice
    assert "Interlock blocked the tool call `exec_command`: recursive delete" in first.output_text
    if stream:
        assert (
            stream_violations("openai-responses", db_of(guarded).wait_call(first_call).stages["response_final"]["raw"])
            == []
        )

    raw_next = sdk.with_raw_response.create(
        model=MODEL, previous_response_id=first.id, input=user("fine, say hello then"), tools=[SHELL_TOOL]
    )
    assert raw_next.parse().output_text == "Hello from the mock provider."
    upstream = mock_provider.exchange(raw_next.headers[MOCK_ID]).json()
    supplied = upstream["input"][0]
    assert (supplied["type"], supplied["call_id"]) == ("function_call_output", RM_CALL)
    assert "blocked" in supplied["output"] and "recursive delete" in supplied["output"]
    assert upstream["input"][1:] == user("fine, say hello then")
    db = db_of(guarded)
    call = db.wait_call(raw_next.headers[CALL_ID])
    assert call.stage_body("request_original")["input"] == user("fine, say hello then")
    assert call.stage_body("request_final") == upstream
    events = db.rows("select policy, action, details_json from policy_events where call_id = ?", (call["call_id"],))
    assert [(e["policy"], e["action"], json.loads(e["details_json"])["tool_call_id"]) for e in events] == [
        ("deny_tools", "supplied_tool_output", RM_CALL)
    ]
    assert call["verdict"] == "modified"


def test_a_turn_that_answers_the_call_itself_is_left_alone(
    guarded: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    sdk = make_clients(guarded).openai().responses
    first = sdk.create(model=MODEL, input=user("clean up [[mock:shell]]"), tools=[SHELL_TOOL])
    own = [{"type": "function_call_output", "call_id": RM_CALL, "output": "skipped"}, *user("hello")]
    raw_next = sdk.with_raw_response.create(model=MODEL, previous_response_id=first.id, input=own)
    assert raw_next.http_response.status_code == 200
    assert mock_provider.exchange(raw_next.headers[MOCK_ID]).json()["input"] == own


def test_the_next_chat_turn_after_a_block_is_accepted(
    guarded: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory]
) -> None:
    """OpenAI chat: the client resends its history, which holds no blocked call."""
    sdk = make_clients(guarded).openai().chat.completions
    tool: Any = {"type": "function", "function": {"name": "Bash", "parameters": {"type": "object"}}}
    history: list[Any] = user("clean up [[mock:interleaved]]")
    first = sdk.create(model="gpt-4o-mini", messages=history, tools=[tool])
    message = first.choices[0].message
    assert [c.function.name for c in message.tool_calls or [] if c.type == "function"] == ["read_file"]
    history.append(message.model_dump(exclude_none=True))
    history += [{"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in message.tool_calls or []]
    history += user("thanks [[mock:text]]")
    second = sdk.create(model="gpt-4o-mini", messages=history, tools=[tool])
    assert second.choices[0].message.content == "Hello from the mock provider."


def test_the_next_anthropic_turn_after_a_block_is_accepted(
    guarded: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory]
) -> None:
    sdk = make_clients(guarded).anthropic().messages
    tool: Any = {"name": "Bash", "input_schema": {"type": "object"}}
    history: list[Any] = user("clean up [[mock:interleaved]]")
    first = sdk.create(model="claude-sonnet-4-6", max_tokens=256, messages=history, tools=[tool])
    assert [b.type for b in first.content] == ["text", "tool_use"]  # the notice, then the allowed call
    history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
    results = [
        {"type": "tool_result", "tool_use_id": b.id, "content": "ok"} for b in first.content if b.type == "tool_use"
    ]
    history.append({"role": "user", "content": [*results, {"type": "text", "text": "thanks [[mock:text]]"}]})
    second = sdk.create(model="claude-sonnet-4-6", max_tokens=256, messages=history, tools=[tool])
    assert second.content[0].type == "text" and second.content[0].text == "Hello from the mock provider."
    # The mock refuses a history that leaves a tool call unanswered, as the API does.
    with pytest.raises(anthropic.BadRequestError, match="tool_use` ids were found without `tool_result`"):
        sdk.create(model="claude-sonnet-4-6", max_tokens=256, messages=[*history[:2], *user("x")], tools=[tool])
    assert SCENARIOS["interleaved"].tool_calls[0].name == "Bash"


# --- a stream the model fails: `response.failed` where `response.completed` would be ------------------


def failed_stream(proxy: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory]) -> tuple[bytes, str, str]:
    """A streamed `shell` turn that ends in `response.failed`: (client bytes, call id, mock id)."""
    body = {**llm_request("openai-responses", MODEL, user("clean up"), True), "tools": [SHELL_TOOL]}
    headers = {**auth_headers("openai-responses", "sk-test-failed"), "x-mock-scenario": "shell+response_failed"}
    with (
        make_clients(proxy)
        .raw()
        .stream("POST", "https://api.openai.com/v1/responses", json=body, headers=headers) as response
    ):
        assert response.status_code == 200
        return response.read(), response.headers[CALL_ID], response.headers[MOCK_ID]


def last_event(raw: bytes) -> dict[str, Any]:
    payloads = [event.json() for event in parse_all(raw) if not event.is_comment_only]
    last = payloads[-1]
    assert isinstance(last, dict)
    return last


def test_a_failed_stream_no_policy_changed_reaches_the_client_byte_for_byte(
    plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    raw, call_id, mock_id = failed_stream(plain, make_clients)
    assert raw == mock_provider.exchange(mock_id).sent
    failed = last_event(raw)
    assert (failed["type"], failed["response"]["status"], failed["response"]["error"]["code"]) == (
        "response.failed",
        "failed",
        "server_error",
    )
    record = db_of(plain).wait_call(call_id)
    assert record.stages["response_original"]["raw"] == raw and record["verdict"] == "pass"


def test_a_held_call_never_reaches_the_client_when_the_stream_fails(
    guarded: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    raw, call_id, mock_id = failed_stream(guarded, make_clients)
    assert RM_CALL.encode() in mock_provider.exchange(mock_id).sent
    assert RM_CALL.encode() not in raw and b'"type":"function_call"' not in raw
    assert "Interlock blocked the tool call `exec_command`: recursive delete" in raw.decode()  # the notice
    failed = last_event(raw)
    assert failed["type"] == "response.failed" and failed["response"]["error"]["code"] == "server_error"
    assert all(item["type"] != "function_call" for item in failed["response"]["output"])
    assert stream_violations("openai-responses", raw) == []
    record = db_of(guarded).wait_call(call_id)
    assert record["verdict"] == "blocked"
    events = db_of(guarded).rows("select policy, action from policy_events where call_id = ?", (call_id,))
    assert [(e["policy"], e["action"]) for e in events] == [("deny_tools", "blocked")]


@pytest.fixture(scope="module")
def judged(start_module_proxy: ProxyLauncher, judge: JudgeMock) -> ProxyProcess:
    return start_module_proxy(
        config={"policies": [judge_policy(judge, JUDGE_KEY_ENV)]}, env={JUDGE_KEY_ENV: "sk-judge-failed"}
    )


@pytest.mark.parametrize("blocks", [True, False], ids=["blocked", "allowed"])
def test_a_failed_stream_waits_for_the_judge_on_its_held_call(
    judged: ProxyProcess,
    judge: JudgeMock,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    blocks: bool,
) -> None:
    """The judge answers after the stream has failed: the held call goes out only if it
    is allowed, before the `response.failed` that ends the stream."""
    judge.reset(block(delay_s=0.5) if blocks else allow(delay_s=0.5))
    raw, call_id, mock_id = failed_stream(judged, make_clients)
    failed = last_event(raw)
    assert failed["type"] == "response.failed"
    assert stream_violations("openai-responses", raw) == []
    calls = [item for item in failed["response"]["output"] if item["type"] == "function_call"]
    if blocks:
        assert RM_CALL.encode() not in raw and calls == []
    else:
        assert [c["call_id"] for c in calls] == [RM_CALL]
        assert raw.index(RM_CALL.encode()) < raw.index(b"event: response.failed")
        assert raw == mock_provider.exchange(mock_id).sent  # allowed: nothing changed
    assert len(judge.requests) == 1
    assert db_of(judged).wait_call(call_id)["verdict"] == ("blocked" if blocks else "pass")
