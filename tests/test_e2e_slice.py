"""End to end through the real mitmdump with the Interlock addon and the real SDKs.

Clients use the real provider URLs; mitmdump maps api.openai.com and api.anthropic.com
to the loopback mock. Each test checks what the client got (against the bytes the mock
sent), the `x-interlock-call-id` header, and the rows the recorder wrote.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import anthropic
import httpx2
import openai
import pytest
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, auth_headers, llm_request, timed_chunks
from harness_db import CallsDB, RecordedCall
from mock_provider import SLOW_DELAY_MS, Exchange, MockProvider
from openai.lib.streaming.chat import ChatCompletionStreamState
from protocol_check import check_anthropic_stream, check_openai_chat_stream, check_openai_responses_stream
from wire_scenarios import SCENARIOS, anthropic_tool_id, openai_tool_id

from interlock.sse import parse_all

Dialect = Literal["openai", "anthropic", "openai-responses"]
RESPONSES: Dialect = "openai-responses"
ALL: tuple[Dialect, ...] = ("openai", "anthropic", RESPONSES)
STATUS_ERRORS = (openai.APIStatusError, anthropic.APIStatusError)
CALL_ID = "x-interlock-call-id"
MOCK_ID = "x-mock-request-id"
URLS = {
    "openai": "https://api.openai.com/v1/chat/completions",
    "anthropic": "https://api.anthropic.com/v1/messages",
    RESPONSES: "https://api.openai.com/v1/responses",
}
# Models the price map knows (claude-sonnet-4-5 would do, but the SDK warns it is deprecated).
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-6"
RESPONSES_MODEL = "gpt-5"
MODELS = {"openai": OPENAI_MODEL, "anthropic": ANTHROPIC_MODEL, RESPONSES: RESPONSES_MODEL}
UNKNOWN_MODEL = "mock-unknown-model"
WEATHER_TOOL_OPENAI: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
        },
    },
}
WEATHER_TOOL_ANTHROPIC: Any = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def proxy(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    return start_module_proxy()


@pytest.fixture(autouse=True)
def no_addon_errors(proxy: ProxyProcess) -> Iterator[None]:
    """Fails the test if any addon hook raised while it ran."""
    since = len(proxy.output())
    yield
    assert proxy.addon_errors(since) == []


@pytest.fixture
def clients(make_clients: Callable[[ProxyProcess], ClientFactory], proxy: ProxyProcess) -> ClientFactory:
    return make_clients(proxy)


@pytest.fixture
def db(proxy: ProxyProcess) -> CallsDB:
    assert proxy.db_path is not None
    return CallsDB(proxy.db_path)


def user(text: str) -> Any:
    """A one-message conversation (typed `Any`: both SDKs take it)."""
    return [{"role": "user", "content": text}]


def request_body(dialect: Dialect, scenario: str, stream: bool, model: str | None = None) -> dict[str, Any]:
    return llm_request(dialect, model or MODELS[dialect], user(f"hello [[mock:{scenario}]]"), stream)


def post_raw(clients: ClientFactory, dialect: Dialect, body: dict[str, Any]) -> httpx2.Response:
    return clients.raw().post(URLS[dialect], json=body, headers=auth_headers(dialect, clients.api_key))


def stream_raw(
    clients: ClientFactory, dialect: Dialect, body: dict[str, Any]
) -> tuple[httpx2.Response, bytes, list[float], Exception | None]:
    """A streamed POST read to its end: the response, the bytes, arrival times and any read error."""
    received = bytearray()
    arrivals: list[float] = []
    failure: Exception | None = None
    raw = clients.raw()
    with raw.stream("POST", URLS[dialect], json=body, headers=auth_headers(dialect, clients.api_key)) as response:
        try:
            for arrival in timed_chunks(response):
                received += arrival.data
                arrivals.append(arrival.at)
        except httpx2.HTTPError as error:
            failure = error
    return response, bytes(received), arrivals, failure


def violations(dialect: Dialect, body: bytes) -> list[str]:
    events = parse_all(body)
    if dialect == RESPONSES:
        return check_openai_responses_stream(events)
    return check_anthropic_stream(events) if dialect == "anthropic" else check_openai_chat_stream(events)


def sent_by_mock(mock: MockProvider, headers: httpx2.Headers | Any) -> Exchange:
    return mock.exchange(headers[MOCK_ID])


def assert_terminal_line(proxy: ProxyProcess, call_id: str) -> None:
    """Exactly one line of mitmdump's output names the call (it may lag the response a little)."""
    deadline = time.monotonic() + 5
    while call_id not in proxy.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in proxy.output().splitlines() if call_id in line]
    assert len(lines) == 1, lines


def assert_recorded(call: RecordedCall, *, model: str, stream: bool, status: int) -> None:
    assert call["model"] == model
    assert call["stream"] == int(stream)
    assert call["status"] == status


def assert_priced(call: RecordedCall) -> None:
    assert isinstance(call["cost_usd"], float) and call["cost_usd"] > 0
    assert call["pricing_key"]


# --- OpenAI Chat Completions through the SDK ----------------------------------------


def test_openai_text_stream(
    clients: ClientFactory,
    proxy: ProxyProcess,
    db: CallsDB,
    mock_provider: MockProvider,
) -> None:
    raw = clients.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL,
        messages=user("say hello"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the mock provider."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 34
    call_id = raw.headers[CALL_ID]
    call = db.wait_call(call_id)
    assert_recorded(call, model=OPENAI_MODEL, stream=True, status=200)
    assert (call["input_tokens"], call["output_tokens"]) == (12, 34)
    assert call["dialect"] == "openai-chat"
    assert call["response_text"] == "Hello from the mock provider."
    assert_priced(call)
    assert call.stages["response_original"]["raw"] == sent_by_mock(mock_provider, raw.headers).sent
    assert_terminal_line(proxy, call_id)


def test_openai_text_non_stream(clients: ClientFactory, db: CallsDB, mock_provider: MockProvider) -> None:
    raw = clients.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL,
        messages=user("say hello"),
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the mock provider."
    call = db.wait_call(raw.headers[CALL_ID])
    assert_recorded(call, model=OPENAI_MODEL, stream=False, status=200)
    assert (call["input_tokens"], call["output_tokens"]) == (12, 34)
    assert_priced(call)
    assert call.stage_body("response_original") == json.loads(sent_by_mock(mock_provider, raw.headers).sent)
    assert call.stage_body("request_original")["messages"] == user("say hello")


@pytest.mark.parametrize("scenario", ["tools2", "tools3", "long_args"])
def test_openai_parallel_tool_calls_accumulate(clients: ClientFactory, db: CallsDB, scenario: str) -> None:
    raw = clients.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL,
        messages=user(f"weather? [[mock:{scenario}]]"),
        tools=[WEATHER_TOOL_OPENAI],
        parallel_tool_calls=True,
        stream=True,
        stream_options={"include_usage": True},
    )
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in raw.parse():
        state.handle_chunk(chunk)
    completion = state.get_final_completion()
    expected = SCENARIOS[scenario].tool_calls
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    got = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
    assert got == [(openai_tool_id(c), c.name, c.arguments) for c in expected]
    assert completion.usage is not None and completion.usage.completion_tokens == 34
    call = db.wait_call(raw.headers[CALL_ID])
    assert_recorded(call, model=OPENAI_MODEL, stream=True, status=200)
    assert call["output_tokens"] == 34
    rows = db.rows(
        "select position, tool_call_id, name, arguments_json from tool_calls"
        " where call_id = ? and stage = 'response_original' order by position",
        (raw.headers[CALL_ID],),
    )
    assert [(r["position"], r["tool_call_id"], r["name"], json.loads(r["arguments_json"])) for r in rows] == [
        (n, openai_tool_id(c), c.name, json.loads(c.arguments)) for n, c in enumerate(expected)
    ]


# --- Anthropic Messages through the SDK ---------------------------------------------


def test_anthropic_text_stream(
    clients: ClientFactory,
    proxy: ProxyProcess,
    db: CallsDB,
    mock_provider: MockProvider,
) -> None:
    with clients.anthropic().messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=256, messages=user("say hello")
    ) as stream:
        message = stream.get_final_message()
        headers = stream.response.headers
    (text,) = message.content
    assert text.type == "text"
    assert text.text == "Hello from the mock provider."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 34)
    call_id = headers[CALL_ID]
    call = db.wait_call(call_id)
    assert_recorded(call, model=ANTHROPIC_MODEL, stream=True, status=200)
    assert call["dialect"] == "anthropic-messages"
    assert (call["input_tokens"], call["output_tokens"]) == (12, 34)
    assert_priced(call)
    assert call.stages["response_original"]["raw"] == sent_by_mock(mock_provider, headers).sent
    assert_terminal_line(proxy, call_id)


def test_anthropic_tool_use_stream(clients: ClientFactory, db: CallsDB) -> None:
    with clients.anthropic().messages.stream(
        model=ANTHROPIC_MODEL,
        max_tokens=256,
        messages=user("weather in Paris? [[mock:tool]]"),
        tools=[WEATHER_TOOL_ANTHROPIC],
    ) as stream:
        message = stream.get_final_message()
        call_id = stream.response.headers[CALL_ID]
    (call,) = SCENARIOS["tool"].tool_calls
    assert [block.type for block in message.content] == ["text", "tool_use"]
    tool_use = message.content[1]
    assert tool_use.type == "tool_use"
    assert (tool_use.id, tool_use.name, tool_use.input) == (
        anthropic_tool_id(call),
        call.name,
        json.loads(call.arguments),
    )
    assert message.stop_reason == "tool_use"
    recorded = db.wait_call(call_id)
    assert_recorded(recorded, model=ANTHROPIC_MODEL, stream=True, status=200)
    assert recorded.stage_body("response_final")["content"][1]["input"] == json.loads(call.arguments)


def test_anthropic_thinking_stream(clients: ClientFactory, db: CallsDB) -> None:
    with clients.anthropic().messages.stream(
        model=ANTHROPIC_MODEL,
        max_tokens=2048,
        messages=user("hi [[mock:thinking]]"),
    ) as stream:
        message = stream.get_final_message()
        call_id = stream.response.headers[CALL_ID]
    assert [block.type for block in message.content] == [
        "thinking",
        "redacted_thinking",
        "text",
    ]
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking == "".join(SCENARIOS["thinking"].thinking)
    assert thinking.signature
    call = db.wait_call(call_id)
    assert_recorded(call, model=ANTHROPIC_MODEL, stream=True, status=200)
    assert call["response_text"] == "Hi there!"


# --- Claude Code's requests: what the person typed, what the agent wraps around it ---

TYPED = "list the files in src please"
REMINDERS = [
    (
        "<system-reminder>\nAs you answer the user's questions, you can use the following context:\n"
        "# claudeMd\nThe project codeword is xylophonic.\n</system-reminder>"
    ),
    "<system-reminder>\nThe date is 2026-12-01. Todo list is empty.\n</system-reminder>",
]


def claude_code_request(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A Messages request shaped as Claude Code sends it: system blocks, tools, metadata."""
    return {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": "You are an interactive CLI tool.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": messages,
        "tools": [WEATHER_TOOL_ANTHROPIC],
        "metadata": {"user_id": "user_abc_account_def_session_0c7f2a3e-1111-4222-8333-444455556666"},
    }


def typed_turn() -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reminder} for reminder in REMINDERS]
    return {
        "role": "user",
        "content": [*blocks, {"type": "text", "text": TYPED, "cache_control": {"type": "ephemeral"}}],
    }


def post_scenario(clients: ClientFactory, body: dict[str, Any], scenario: str) -> httpx2.Response:
    headers = {**auth_headers("anthropic", clients.api_key), "x-mock-scenario": scenario}
    return clients.raw().post(URLS["anthropic"], json=body, headers=headers)


def fts_matches(db: CallsDB, term: str) -> list[str]:
    rows = db.rows(
        "select c.call_id from calls c join calls_fts f on f.rowid = c.rowid where calls_fts match ?", (term,)
    )
    return [row["call_id"] for row in rows]


def test_claude_code_prompt_text_is_what_the_person_typed(clients: ClientFactory, db: CallsDB) -> None:
    response = post_scenario(clients, claude_code_request([typed_turn()]), "tool")
    assert response.status_code == 200
    call_id = response.headers[CALL_ID]
    call = db.wait_call(call_id)
    assert call["prompt_text"] == TYPED
    assert call["user_text"] == "\n".join([*REMINDERS, TYPED])  # all of it, searchable
    assert call_id in fts_matches(db, "xylophonic")  # a word only inside a system reminder
    assert call_id in fts_matches(db, "prompt_text: files")
    assert call_id not in fts_matches(db, "prompt_text: xylophonic")
    # The tool call the stream carried, read by the dialect into neutral rows.
    (expected,) = SCENARIOS["tool"].tool_calls
    rows = db.rows("select * from tool_calls where call_id = ? order by stage, position", (call_id,))
    assert [
        (r["stage"], r["position"], r["tool_call_id"], r["name"], json.loads(r["arguments_json"])) for r in rows
    ] == [
        (stage, 0, anthropic_tool_id(expected), expected.name, json.loads(expected.arguments))
        for stage in ("response_final", "response_original")
    ]


def test_claude_code_tool_result_turn_keeps_the_typed_words(clients: ClientFactory, db: CallsDB) -> None:
    """The last user message carries only a tool result (and a reminder): the words
    shown are the ones typed in the turn before."""
    tool_use = {"type": "tool_use", "id": "toolu_01Ls", "name": "get_weather", "input": {"location": "src"}}
    results = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01Ls", "content": "main.py\nutil.py"},
            {"type": "text", "text": "<system-reminder>\nThe marimbaphone file changed.\n</system-reminder>"},
        ],
    }
    messages = [
        typed_turn(),
        {"role": "assistant", "content": [{"type": "text", "text": "Looking."}, tool_use]},
        results,
    ]
    response = post_scenario(clients, claude_code_request(messages), "text")
    assert response.status_code == 200
    call_id = response.headers[CALL_ID]
    call = db.wait_call(call_id)
    assert call["prompt_text"] == TYPED
    assert call["user_text"] == "<system-reminder>\nThe marimbaphone file changed.\n</system-reminder>"
    assert fts_matches(db, "marimbaphone") == [call_id]
    assert db.rows("select * from tool_calls where call_id = ?", (call_id,)) == []


# --- exact bytes, both dialects, streamed and not ------------------------------------


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("scenario", ["text", "tools2", "thinking", "unicode"])
def test_stream_bytes_reach_the_client_exactly(
    clients: ClientFactory,
    db: CallsDB,
    mock_provider: MockProvider,
    dialect: Dialect,
    scenario: str,
) -> None:
    response, received, _, failure = stream_raw(clients, dialect, request_body(dialect, scenario, stream=True))
    assert failure is None
    sent = sent_by_mock(mock_provider, response.headers).sent
    assert received == sent
    if dialect == "anthropic":
        assert b"event: ping\n" in received
    assert violations(dialect, received) == []
    call = db.wait_call(response.headers[CALL_ID])
    assert call.stages["response_original"]["raw"] == sent
    assert call.stages["response_final"]["raw"] == sent


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("scenario", ["text", "tools2", "unicode"])
def test_json_bytes_reach_the_client_exactly(
    clients: ClientFactory,
    db: CallsDB,
    mock_provider: MockProvider,
    dialect: Dialect,
    scenario: str,
) -> None:
    response = post_raw(clients, dialect, request_body(dialect, scenario, stream=False))
    sent = sent_by_mock(mock_provider, response.headers).sent
    assert response.status_code == 200
    assert response.content == sent
    call = db.wait_call(response.headers[CALL_ID])
    assert_recorded(call, model=MODELS[dialect], stream=False, status=200)
    assert call.stage_body("response_original") == json.loads(sent)
    assert call.stage_body("response_final") == json.loads(sent)


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("stream", [True, False])
def test_cache_tokens_are_split_from_input(clients: ClientFactory, db: CallsDB, dialect: Dialect, stream: bool) -> None:
    response = post_raw(clients, dialect, request_body(dialect, "cache", stream))
    assert response.status_code == 200
    call = db.wait_call(response.headers[CALL_ID])
    cache = SCENARIOS["cache"]
    assert (call["input_tokens"], call["output_tokens"], call["cache_read_tokens"]) == (
        cache.input_tokens,
        cache.output_tokens,
        cache.cache_read_tokens,
    )
    if dialect != "openai":  # Chat Completions reports no cache writes
        assert call["cache_write_tokens"] == cache.cache_write_tokens
    assert_priced(call)


@pytest.mark.parametrize("dialect", ALL)
def test_unknown_model_has_no_cost(clients: ClientFactory, db: CallsDB, dialect: Dialect) -> None:
    response = post_raw(
        clients,
        dialect,
        request_body(dialect, "text", stream=True, model=UNKNOWN_MODEL),
    )
    assert response.status_code == 200
    call = db.wait_call(response.headers[CALL_ID])
    assert call["model"] == UNKNOWN_MODEL
    assert call["output_tokens"] == 34
    assert call["cost_usd"] is None
    assert call["pricing_key"] is None


# --- upstream errors and broken streams ---------------------------------------------


def sdk_call(clients: ClientFactory, dialect: Dialect, scenario: str) -> None:
    """One streamed SDK call asking for `scenario` (for calls that must raise)."""
    messages = user(f"[[mock:{scenario}]]")
    if dialect == "openai":
        clients.openai().chat.completions.create(model=OPENAI_MODEL, messages=messages, stream=True)
    elif dialect == RESPONSES:
        clients.openai().responses.create(model=RESPONSES_MODEL, input=messages, stream=True)
    else:
        clients.anthropic().messages.create(model=ANTHROPIC_MODEL, max_tokens=10, messages=messages, stream=True)


@pytest.mark.parametrize("dialect", ALL)
def test_upstream_429_reaches_the_sdk(
    clients: ClientFactory, db: CallsDB, mock_provider: MockProvider, dialect: Dialect
) -> None:
    error = anthropic.RateLimitError if dialect == "anthropic" else openai.RateLimitError
    with pytest.raises(error) as caught:
        sdk_call(clients, dialect, "error_429")
    assert isinstance(caught.value, STATUS_ERRORS)
    response = caught.value.response
    exchange = sent_by_mock(mock_provider, response.headers)
    assert response.content == exchange.sent
    assert response.headers["retry-after"] == "0"
    call = db.wait_call(response.headers[CALL_ID])
    assert call["status"] == 429
    assert call["error"]
    assert call.stage_body("response_original") == json.loads(exchange.sent)


@pytest.mark.parametrize("dialect", ALL)
def test_upstream_500_html_page(
    clients: ClientFactory, db: CallsDB, mock_provider: MockProvider, dialect: Dialect
) -> None:
    error = anthropic.InternalServerError if dialect == "anthropic" else openai.InternalServerError
    with pytest.raises(error) as caught:
        sdk_call(clients, dialect, "error_500_html")
    assert isinstance(caught.value, STATUS_ERRORS)
    response = caught.value.response
    sent = sent_by_mock(mock_provider, response.headers).sent
    assert response.content == sent
    call = db.wait_call(response.headers[CALL_ID])
    assert call["status"] == 500
    assert call["error"]
    original = call.stages["response_original"]
    assert original["body_json"] is None
    assert original["raw"] == sent
    assert original["note"]


@pytest.mark.parametrize("dialect", ALL)
def test_malformed_sse_is_forwarded_and_noted(
    clients: ClientFactory, db: CallsDB, mock_provider: MockProvider, dialect: Dialect
) -> None:
    response, received, _, failure = stream_raw(clients, dialect, request_body(dialect, "malformed_sse", stream=True))
    assert failure is None
    sent = sent_by_mock(mock_provider, response.headers).sent
    assert received == sent
    call = db.wait_call(response.headers[CALL_ID])
    assert call["status"] == 200
    assert call.stages["response_original"]["raw"] == sent
    assert call.stages["response_original"]["note"]
    assert call["error"]


@pytest.mark.parametrize("dialect", ALL)
def test_truncated_stream_is_forwarded_and_noted(
    clients: ClientFactory, db: CallsDB, mock_provider: MockProvider, dialect: Dialect
) -> None:
    response, received, _, failure = stream_raw(clients, dialect, request_body(dialect, "truncated", stream=True))
    assert isinstance(failure, httpx2.RemoteProtocolError)
    sent = sent_by_mock(mock_provider, response.headers).sent
    assert not sent.endswith(b"\n\n")  # the mock stopped mid-event
    assert received == sent
    call = db.wait_call(response.headers[CALL_ID])
    assert call.stages["response_original"]["raw"] == sent
    assert call["error"]


def test_anthropic_error_event_mid_stream(clients: ClientFactory, db: CallsDB, mock_provider: MockProvider) -> None:
    with clients.anthropic().messages.stream(
        model=ANTHROPIC_MODEL,
        max_tokens=256,
        messages=user("[[mock:anthropic_stream_error]]"),
    ) as stream:
        headers = stream.response.headers
        with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
            stream.get_final_message()
    call = db.wait_call(headers[CALL_ID])
    assert call.stages["response_original"]["raw"] == sent_by_mock(mock_provider, headers).sent
    assert call["error"]


def test_client_disconnect_mid_stream(clients: ClientFactory, db: CallsDB) -> None:
    raw = clients.raw()
    body = request_body("anthropic", "slow", stream=True)
    headers = auth_headers("anthropic", clients.api_key)
    with raw.stream("POST", URLS["anthropic"], json=body, headers=headers) as response:
        first = next(response.iter_raw())
        dropped_id = response.headers[CALL_ID]
    assert first.startswith(b"event: message_start")
    # The proxy keeps serving: the next call goes through and both are recorded.
    completion = clients.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=user("still there?")
    )
    assert completion.parse().choices[0].message.content == "Hello from the mock provider."
    db.wait_call(completion.headers[CALL_ID])
    dropped = db.wait_call(dropped_id)
    assert dropped["error"]


# --- streaming pace --------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ALL)
def test_events_arrive_as_they_are_sent(clients: ClientFactory, mock_provider: MockProvider, dialect: Dialect) -> None:
    response, received, arrivals, failure = stream_raw(clients, dialect, request_body(dialect, "slow", stream=True))
    assert failure is None
    assert received == sent_by_mock(mock_provider, response.headers).sent
    events = parse_all(received)
    sent_spread = (len(events) - 1) * SLOW_DELAY_MS / 1000
    # Buffered, everything would arrive at once; streamed, arrivals spread like the sends.
    assert len(arrivals) >= len(events) // 2
    assert arrivals[-1] - arrivals[0] >= 0.6 * sent_spread


def test_sdk_sees_openai_deltas_as_they_are_sent(clients: ClientFactory) -> None:
    stream = clients.openai().chat.completions.create(model=OPENAI_MODEL, messages=user("[[mock:slow]]"), stream=True)
    arrivals = [time.monotonic() for _ in stream]
    assert arrivals[-1] - arrivals[0] >= 0.6 * (len(arrivals) - 1) * SLOW_DELAY_MS / 1000


async def test_concurrent_async_streams(clients: ClientFactory, db: CallsDB) -> None:
    async with clients.async_openai() as oai, clients.async_anthropic() as ant:

        async def openai_text() -> tuple[str, str]:
            stream = await oai.chat.completions.create(model=OPENAI_MODEL, messages=user("[[mock:slow]]"), stream=True)
            pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return stream.response.headers[CALL_ID], "".join(pieces)

        async def anthropic_text() -> tuple[str, str]:
            async with ant.messages.stream(
                model=ANTHROPIC_MODEL, max_tokens=64, messages=user("[[mock:slow]]")
            ) as stream:
                return stream.response.headers[CALL_ID], await stream.get_final_text()

        results = await asyncio.gather(openai_text(), anthropic_text(), openai_text())
    assert [text for _, text in results] == ["Hello from the mock provider."] * 3
    call_ids = [call_id for call_id, _ in results]
    assert len(set(call_ids)) == 3
    for call_id in call_ids:
        assert (await asyncio.to_thread(db.wait_call, call_id))["status"] == 200


# --- what is not an LLM call, and secrets ---------------------------------------------


def test_non_llm_requests_pass_untouched_and_unrecorded(
    clients: ClientFactory, db: CallsDB, mock_provider: MockProvider
) -> None:
    raw = clients.raw()
    before = set(db.call_ids())
    settings = raw.get(
        "https://api.anthropic.com/api/claude_code/settings?x=1",
        headers={"x-api-key": clients.api_key, "accept-encoding": "gzip, br"},
    )
    openai_auth = auth_headers("openai", clients.api_key)
    models = raw.post("https://api.openai.com/v1/models", json={}, headers=openai_auth)
    not_post = raw.get(URLS["openai"], headers=openai_auth)
    for response, path in (
        (settings, "/api/claude_code/settings?x=1"),
        (models, "/v1/models"),
        (not_post, "/v1/chat/completions"),
    ):
        exchange = sent_by_mock(mock_provider, response.headers)
        assert exchange.path == path
        assert response.status_code == 404
        assert response.content == exchange.sent
        assert CALL_ID not in response.headers
    assert sent_by_mock(mock_provider, settings.headers).headers["accept-encoding"] == "gzip, br"
    # A later LLM call is recorded; the requests before it are not.
    llm = post_raw(clients, "openai", request_body("openai", "text", stream=False))
    db.wait_call(llm.headers[CALL_ID])
    assert set(db.call_ids()) - before == {llm.headers[CALL_ID]}


def test_api_key_is_never_written(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    api_key: str,
) -> None:
    proxy = start_proxy()
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    clients = make_clients(proxy)
    chat = clients.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=user("hi"), stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in chat.parse() if c.choices)
    message = clients.anthropic().messages.with_raw_response.create(
        model=ANTHROPIC_MODEL, max_tokens=10, messages=user("hi")
    )
    assert message.parse().content
    body = request_body("anthropic", "text", stream=True)
    with_query = clients.raw().post(
        URLS["anthropic"] + f"?beta=true&key={api_key}",
        json=body,
        headers=auth_headers("anthropic", api_key),
    )
    assert with_query.status_code == 200
    call_ids = [r.headers[CALL_ID] for r in (chat, message, with_query)]
    for call_id in call_ids:
        db.wait_call(call_id)
    secret = api_key.encode()
    assert secret not in db.file_bytes()
    assert proxy.addon_errors() == []
    assert proxy.stop() == 0  # a clean shutdown drains the recorder
    assert sorted(db.call_ids()) == sorted(call_ids)
    assert secret not in db.file_bytes()
