"""tool_call_judge end to end: the real mitmdump, the real SDKs, a loopback judge.

Clients use the real provider URLs; mitmdump maps them to the loopback mock provider
and runs the judge policy, which asks the loopback `JudgeMock` through litellm. Every
mitmdump here runs with HTTPS_PROXY, HTTP_PROXY and ALL_PROXY pointing at a listener
that records connections: the judge must never use them (the loop guard).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, auth_headers, llm_request, timed_chunks
from harness_db import CallsDB
from judge_mock import ConnectionRecorder, JudgeMock, allow, block
from mock_provider import SLOW_DELAY_MS, MockProvider
from openai.lib.streaming.chat import ChatCompletionStreamState
from policy_fixtures import body_violations, sdk_summary, stream_violations

from interlock.sse import parse_all

Dialect = Literal["openai-chat", "anthropic-messages", "openai-responses"]
RESPONSES: Dialect = "openai-responses"
DIALECTS: tuple[Dialect, ...] = ("openai-chat", "anthropic-messages", RESPONSES)
URLS = {
    "openai-chat": "https://api.openai.com/v1/chat/completions",
    "anthropic-messages": "https://api.anthropic.com/v1/messages",
    RESPONSES: "https://api.openai.com/v1/responses",
}
MODELS = {"openai-chat": "gpt-4o-mini", "anthropic-messages": "claude-sonnet-4-6", RESPONSES: "gpt-5"}
STOPS = {
    "anthropic-messages": ("tool_use", "end_turn"),
    "openai-chat": ("tool_calls", "stop"),
    RESPONSES: ("completed", "completed"),  # a response's status says nothing of tool calls
}
CALL_ID = "x-interlock-call-id"
KEY_ENV = "INTERLOCK_TEST_JUDGE_KEY"
JUDGE_KEY = "sk-judge-SECRET-e2e-0123456789"
TIMEOUT_S = 2.0  # the main proxy's judge timeout
MARGIN_S = 0.75
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
WEATHER_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string"}}}
_TOOL_NAMES = (("get_weather", "Current weather."), ("read_file", "Read a file."), ("Bash", "Run a command."))
TOOLS: dict[Dialect, list[Any]] = {
    RESPONSES: [
        {"type": "function", "name": n, "description": d, "parameters": WEATHER_SCHEMA} for n, d in _TOOL_NAMES
    ],
    "openai-chat": [
        {"type": "function", "function": {"name": n, "description": d, "parameters": WEATHER_SCHEMA}}
        for n, d in (("get_weather", "Current weather."), ("read_file", "Read a file."), ("Bash", "Run a command."))
    ],
    "anthropic-messages": [
        {"name": n, "description": d, "input_schema": WEATHER_SCHEMA}
        for n, d in (("get_weather", "Current weather."), ("read_file", "Read a file."), ("Bash", "Run a command."))
    ],
}
PARIS = ("get_weather", {"location": "Paris, France", "unit": "celsius"})
TOKYO = ("get_weather", {"location": "Tokyo, Japan", "unit": "celsius"})
HOSTNAME = ("read_file", {"path": "/etc/hostname"})


# --- fixtures ------------------------------------------------------------------------


def start_judged_proxy(
    launcher: ProxyLauncher,
    trap: ConnectionRecorder,
    api_base: str,
    on_error: str,
    timeout_s: float,
    settings: dict[str, Any] | None = None,
) -> ProxyProcess:
    """A proxy whose only policy is the judge at `api_base`; `settings`: more config keys."""
    policy = {
        "policy": "tool_call_judge",
        "model": "openai/judge-mock",
        "api_base": api_base,
        "api_key_env": KEY_ENV,
        "on_error": on_error,
        "timeout_s": timeout_s,
        "retries": 1,
        "backoff_s": 0.05,
    }
    env = {KEY_ENV: JUDGE_KEY}
    for name in PROXY_VARIABLES:
        env[name] = env[name.lower()] = trap.url
    return launcher(config={"policies": [policy], **(settings or {})}, env=env)


@pytest.fixture(scope="module")
def proxy(start_module_proxy: ProxyLauncher, judge: JudgeMock, trap: ConnectionRecorder) -> ProxyProcess:
    """The judge fails closed here."""
    return start_judged_proxy(start_module_proxy, trap, judge.url, "block", TIMEOUT_S)


@pytest.fixture(autouse=True)
def fresh(judge: JudgeMock, proxy: ProxyProcess, trap: ConnectionRecorder) -> Iterator[None]:
    """A clean judge per test; no addon errors and no proxy use while it ran."""
    judge.reset()
    since = len(proxy.output())
    yield
    output = proxy.output()[since:]
    assert proxy.addon_errors(since) == []
    assert "LiteLLM" not in output and JUDGE_KEY not in output  # litellm's debug logs stay off
    assert trap.seen == []


@pytest.fixture
def clients(make_clients: Callable[[ProxyProcess], ClientFactory], proxy: ProxyProcess) -> ClientFactory:
    return make_clients(proxy)


@pytest.fixture
def db(proxy: ProxyProcess) -> CallsDB:
    assert proxy.db_path is not None
    return CallsDB(proxy.db_path)


# --- clients -------------------------------------------------------------------------


def prompt(scenario: str) -> list[Any]:
    return [{"role": "user", "content": f"Look these up for me. [[mock:{scenario}]]"}]


def body(dialect: Dialect, scenario: str, stream: bool) -> dict[str, Any]:
    return llm_request(dialect, MODELS[dialect], prompt(scenario), stream, tools=TOOLS[dialect])


Summary = tuple[str, list[tuple[str, Any]], str | None, str]  # text, tools, stop reason, call id


def sdk_stream(clients: ClientFactory, dialect: Dialect, scenario: str) -> Summary:
    """A streamed call through the official SDK's own stream helpers."""
    if dialect == RESPONSES:
        with clients.openai().responses.stream(
            model=MODELS[dialect], input=prompt(scenario), tools=TOOLS[dialect]
        ) as response_stream:
            response = response_stream.get_final_response()
            call_id = response_stream._response.headers[CALL_ID]
        calls = [(i.name, json.loads(i.arguments)) for i in response.output if i.type == "function_call"]
        return response.output_text, calls, response.status, call_id
    if dialect == "anthropic-messages":
        with clients.anthropic().messages.stream(
            model=MODELS[dialect], max_tokens=256, messages=prompt(scenario), tools=TOOLS[dialect]
        ) as stream:
            message = stream.get_final_message()
            call_id = stream.response.headers[CALL_ID]
        text = "".join(b.text for b in message.content if b.type == "text")
        return text, [(b.name, b.input) for b in message.content if b.type == "tool_use"], message.stop_reason, call_id
    raw = clients.openai().chat.completions.with_raw_response.create(
        model=MODELS[dialect],
        messages=prompt(scenario),
        tools=TOOLS[dialect],
        stream=True,
        stream_options={"include_usage": True},
    )
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in raw.parse():
        state.handle_chunk(chunk)
    choice = state.get_final_completion().choices[0]
    calls = [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or []]
    return choice.message.content or "", calls, choice.finish_reason, raw.headers[CALL_ID]


def sdk_whole(clients: ClientFactory, dialect: Dialect, scenario: str) -> tuple[Summary, dict[str, Any]]:
    """A non-streamed call through the official SDK, and the JSON body it parsed."""
    if dialect == "anthropic-messages":
        raw = clients.anthropic().messages.with_raw_response.create(
            model=MODELS[dialect], max_tokens=256, messages=prompt(scenario), tools=TOOLS[dialect]
        )
    elif dialect == RESPONSES:
        raw = clients.openai().responses.with_raw_response.create(  # type: ignore[assignment]
            model=MODELS[dialect], input=prompt(scenario), tools=TOOLS[dialect]
        )
    else:
        raw = clients.openai().chat.completions.with_raw_response.create(  # type: ignore[assignment]
            model=MODELS[dialect], messages=prompt(scenario), tools=TOOLS[dialect]
        )
    raw.parse()
    parsed = json.loads(raw.http_response.content)
    text, tools, stop = sdk_summary(dialect, parsed)
    return (text, tools, stop, raw.headers[CALL_ID]), parsed


def raw_stream(clients: ClientFactory, dialect: Dialect, scenario: str) -> tuple[bytes, list[tuple[float, bytes]], str]:
    """A streamed call read chunk by chunk: the bytes, each chunk with its arrival time, the call id."""
    arrivals: list[tuple[float, bytes]] = []
    with clients.raw().stream(
        "POST", URLS[dialect], json=body(dialect, scenario, True), headers=auth_headers(dialect, clients.api_key)
    ) as response:
        assert response.status_code == 200
        for arrival in timed_chunks(response):
            arrivals.append((arrival.at, arrival.data))
        call_id = response.headers[CALL_ID]
    return b"".join(data for _, data in arrivals), arrivals, call_id


def judge_rows(db: CallsDB, call_id: str) -> list[dict[str, Any]]:
    db.wait_call(call_id)
    return db.rows("select * from judge_decisions where call_id = ? order by id", (call_id,))


def first_arrival(arrivals: list[tuple[float, bytes]], needle: bytes) -> float:
    return next(at for at, data in arrivals if needle in data)


# --- streams -------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_text_then_an_allowed_tool_call(
    clients: ClientFactory, db: CallsDB, judge: JudgeMock, mock_provider: MockProvider, dialect: Dialect
) -> None:
    received, _, call_id = raw_stream(clients, dialect, "tool")
    assert received == mock_provider.last_response_body  # allowed: untouched, byte for byte
    text, tools, stop, _ = sdk_stream(clients, dialect, "tool")
    assert (text, tools, stop) == ("Let me check the weather.", [PARIS], STOPS[dialect][0])
    [row] = judge_rows(db, call_id)
    [request] = judge.requests[:1]
    assert (row["tool_name"], row["decision"], row["error"]) == ("get_weather", "allowed", None)
    assert json.loads(row["prompt_json"]) == request.messages  # the exact prompt the judge got
    assert "Current weather." in request.prompt_text and "Look these up for me." in request.prompt_text
    assert db.wait_call(call_id)["verdict"] == "pass"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_blocked_tool_call_becomes_text_and_ends_the_turn(
    clients: ClientFactory, db: CallsDB, judge: JudgeMock, dialect: Dialect
) -> None:
    judge.reset(default=block("Weather lookups are forbidden here.", probability=0.91))
    text, tools, stop, call_id = sdk_stream(clients, dialect, "tool")
    assert tools == [] and stop == STOPS[dialect][1]
    assert text.startswith("Let me check the weather.")
    assert "⛔ Interlock blocked the tool call `get_weather` (judged risk: 0.91)" in text
    assert "Weather lookups are forbidden here." in text and '"location": "Paris, France"' in text
    call = db.wait_call(call_id)
    assert call["verdict"] == "blocked"
    [row] = judge_rows(db, call_id)
    assert (row["decision"], row["probability"], row["explanation"]) == (
        "blocked",
        0.91,
        "Weather lookups are forbidden here.",
    )
    assert json.loads(row["arguments_json"]) == PARIS[1]
    assert row["judge_model"] == "openai/judge-mock"
    assert json.loads(row["raw_answer"]) == {"probability": 0.91, "explanation": "Weather lookups are forbidden here."}
    assert (row["input_tokens"], row["output_tokens"], row["cost_usd"]) == (321, 23, None)
    assert row["latency_ms"] > 0 and row["tool_call_id"]
    [event] = db.rows("select * from policy_events where call_id = ?", (call_id,))
    assert (event["policy"], event["action"]) == ("tool_call_judge", "blocked")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("scenario", "survivors"),
    [("tools2", [PARIS]), ("tools3", [PARIS, HOSTNAME])],
)
def test_parallel_calls_with_one_blocked(
    clients: ClientFactory,
    db: CallsDB,
    judge: JudgeMock,
    dialect: Dialect,
    scenario: str,
    survivors: list[tuple[str, Any]],
) -> None:
    judge.when("Tokyo", block("No Tokyo."))
    received, _, call_id = raw_stream(clients, dialect, scenario)
    assert stream_violations(dialect, received, body(dialect, scenario, True)) == []
    assert sdk_summary(dialect, received)[1] == survivors
    text, tools, stop, sdk_call_id = sdk_stream(clients, dialect, scenario)
    assert tools == survivors and stop == STOPS[dialect][0]
    assert text.count("⛔") == 1 and "Tokyo" in text and "No Tokyo." in text
    rows = judge_rows(db, sdk_call_id)
    judged = sorted((r["decision"], r["tool_name"], r["arguments_json"]) for r in rows)
    expected = [("blocked", *TOKYO)] + [("allowed", *call) for call in survivors]
    assert judged == sorted((decision, name, json.dumps(args)) for decision, name, args in expected)
    assert len(judge_rows(db, call_id)) == len(survivors) + 1


@pytest.mark.parametrize("dialect", DIALECTS)
def test_all_calls_blocked(clients: ClientFactory, judge: JudgeMock, dialect: Dialect) -> None:
    judge.reset(default=block())
    received, _, _ = raw_stream(clients, dialect, "tools3")
    assert stream_violations(dialect, received, body(dialect, "tools3", True)) == []
    text, tools, stop, _ = sdk_stream(clients, dialect, "tools3")
    assert tools == [] and stop == STOPS[dialect][1] and text.count("⛔") == 3


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_call_split_over_many_deltas(
    clients: ClientFactory, db: CallsDB, judge: JudgeMock, mock_provider: MockProvider, dialect: Dialect
) -> None:
    command = "find . -name '*.py' | xargs grep -n 'TODO' | sort | head -n 50"
    received, _, call_id = raw_stream(clients, dialect, "long_args")
    assert received == mock_provider.last_response_body
    assert len(parse_all(received)) > 25  # the arguments come in 25 deltas
    assert command in judge.requests[0].prompt_text
    assert json.loads(judge_rows(db, call_id)[0]["arguments_json"])["command"] == command
    judge.reset(default=block("Searches the whole tree."))
    text, tools, stop, _ = sdk_stream(clients, dialect, "long_args")
    assert tools == [] and stop == STOPS[dialect][1]
    assert f'"command": "{command}"' in text and "Searches the whole tree." in text


# --- non-streaming -------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_non_streamed_allowed(clients: ClientFactory, db: CallsDB, dialect: Dialect) -> None:
    (text, tools, stop, call_id), parsed = sdk_whole(clients, dialect, "tool")
    assert body_violations(dialect, parsed) == []
    assert (text, tools, stop) == ("Let me check the weather.", [PARIS], STOPS[dialect][0])
    assert [r["decision"] for r in judge_rows(db, call_id)] == ["allowed"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_non_streamed_one_of_three_blocked(
    clients: ClientFactory, db: CallsDB, judge: JudgeMock, dialect: Dialect
) -> None:
    judge.when("/etc/hostname", block("Reads system files."))
    (text, tools, stop, call_id), parsed = sdk_whole(clients, dialect, "tools3")
    assert body_violations(dialect, parsed) == []
    assert tools == [PARIS, TOKYO] and stop == STOPS[dialect][0]
    assert "`read_file`" in text and "Reads system files." in text
    assert sorted(r["decision"] for r in judge_rows(db, call_id)) == ["allowed", "allowed", "blocked"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_non_streamed_all_blocked(clients: ClientFactory, judge: JudgeMock, dialect: Dialect) -> None:
    judge.reset(default=block())
    (text, tools, stop, _), parsed = sdk_whole(clients, dialect, "tools2")
    assert body_violations(dialect, parsed) == []
    assert tools == [] and stop == STOPS[dialect][1] and text.count("⛔") == 2


# --- timing --------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_text_reaches_the_client_before_the_judge_answers(
    clients: ClientFactory, judge: JudgeMock, dialect: Dialect
) -> None:
    judge.reset(default=allow(delay_s=1.0))
    _, arrivals, _ = raw_stream(clients, dialect, "tool")
    [request] = judge.requests
    answered_at = request.at + 1.0
    assert first_arrival(arrivals, b" the weather.") < answered_at
    assert first_arrival(arrivals, b"get_weather") >= answered_at


@pytest.mark.parametrize("dialect", DIALECTS)
def test_three_calls_with_a_1s_judge_take_under_2s(clients: ClientFactory, judge: JudgeMock, dialect: Dialect) -> None:
    judge.reset(default=allow(delay_s=1.0))
    started = time.monotonic()
    received, _, _ = raw_stream(clients, dialect, "tools3")
    elapsed = time.monotonic() - started
    assert len(judge.requests) == 3
    assert 1.0 <= elapsed < 2.0  # the figure: judged concurrently
    assert stream_violations(dialect, received, body(dialect, "tools3", True)) == []


@pytest.mark.parametrize("judged_dialect", ["anthropic-messages", RESPONSES])
def test_a_concurrent_stream_is_not_stalled(clients: ClientFactory, judge: JudgeMock, judged_dialect: Dialect) -> None:
    """While one stream waits 1 s for its judge, another streams at the mock's own pace."""
    judge.reset(default=allow(delay_s=1.0))
    judged = threading.Thread(target=raw_stream, args=(clients, judged_dialect, "tools3"))
    judged.start()
    deadline = time.monotonic() + 5
    while not judge.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert judge.requests, "the judge was never asked"
    _, arrivals, _ = raw_stream(clients, "openai-chat", "slow")
    judging_until = judge.requests[0].at + 1.0
    judged.join(10)
    times = [at for at, _ in arrivals]
    assert times[-1] < judging_until  # the whole text stream ran during the judge's wait
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < SLOW_DELAY_MS / 1000 + 0.25, gaps  # near the mock's pace, far from the 1 s wait


# --- loop guard ----------------------------------------------------------------------


def test_start_up_is_quiet(proxy: ProxyProcess) -> None:
    """litellm is imported at start-up: none of its log lines reach mitmdump's output."""
    output = proxy.output()
    assert "Interlock ready" in output
    assert "LiteLLM" not in output and JUDGE_KEY not in output


def test_the_judge_bypasses_the_proxy_environment(
    clients: ClientFactory, proxy: ProxyProcess, judge: JudgeMock, trap: ConnectionRecorder
) -> None:
    environ = Path(f"/proc/{proxy.pid}/environ").read_bytes().split(b"\0")
    for name in PROXY_VARIABLES:
        assert f"{name}={trap.url}".encode() in environ  # mitmdump really runs with them
    sdk_stream(clients, "openai-chat", "tools2")
    assert len(judge.requests) == 2
    assert trap.seen == []
