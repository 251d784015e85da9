"""Cassettes end to end: record through the real proxy (`interlock_cassette`) against a
loopback mock, stop the mock, replay (`interlock_replay`) with no upstream at all.

The real SDKs get identical results and a raw client identical bytes (openai chat
streamed and whole with tools, Responses, Anthropic thinking and tool use, google-genai,
parallel tool calls with interleaved deltas, upstream errors: a 429 from OpenAI and Gemini
and an `overloaded_error` mid-stream from Anthropic, a Responses WebSocket turn); streams keep their pacing (or not, with
`interlock_replay_fast`); a changed request gets the dialect's no-match error naming the
closest call and the differing path, through each SDK, and the provider is never
contacted; `interlock_replay_missing=record` forwards a miss and appends it; policies
run on replayed answers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors
from harness import REPO, MitmCA, ProxyLauncher, ProxyProcess, child_env, map_remote_args
from harness_clients import ClientFactory, timed_chunks
from harness_db import CallsDB
from mock_provider import MockProvider
from test_e2e_responses_ws import connect, create, turn
from test_e2e_startup import run_mitmdump

from interlock import cassette
from interlock.sse import parse_all

CALL_ID = "x-interlock-call-id"
GEMINI_MODEL = "gemini-2.5-flash"
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
WEATHER_ANTHROPIC: Any = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}
WEATHER_RESPONSES: Any = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}
PACED_MS = 250  # the mock's delay between two writes of the paced stream
DENY_WEATHER: Any = {"policies": [{"policy": "deny_tools", "deny": ["get_weather"]}]}


def openai_sdk(clients: ClientFactory) -> Any:
    """The openai client, untyped: the tests pass plain dicts where it wants TypedDicts."""
    return clients.openai()


def chat_body(text: str, stream: bool, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def raw_post(clients: ClientFactory, url: str, body: dict[str, Any], **headers: str) -> bytes:
    response = clients.raw().post(
        url, json=body, headers={"authorization": f"Bearer {clients.api_key}", "x-api-key": clients.api_key, **headers}
    )
    assert response.status_code == 200, response.text
    return response.content


# --- the calls recorded, then replayed: each returns what must come back the same -------


def chat_stream_bytes(clients: ClientFactory) -> Any:
    body = chat_body("weather in Paris? [[mock:tool]]", True, tools=[WEATHER])
    return raw_post(clients, "https://api.openai.com/v1/chat/completions", body)


def chat_stream_sdk(clients: ClientFactory) -> Any:
    chunks = openai_sdk(clients).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "weather in Paris and Tokyo? [[mock:tools2]]"}],
        tools=[WEATHER],
        stream=True,
        stream_options={"include_usage": True},
    )
    return [chunk.model_dump() for chunk in chunks]


def chat_tools_sdk(clients: ClientFactory) -> Any:
    completion = openai_sdk(clients).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "weather? [[mock:tool]]"}],
        tools=[WEATHER],
    )
    assert completion.choices[0].message.tool_calls
    return completion.model_dump()


def chat_tools_bytes(clients: ClientFactory) -> Any:
    body = chat_body("weather here and there? [[mock:tools2]]", False, tools=[WEATHER])
    return raw_post(clients, "https://api.openai.com/v1/chat/completions", body)


def responses_sdk(clients: ClientFactory) -> Any:
    events = openai_sdk(clients).responses.create(
        model="gpt-5-mini",
        input="weather? [[mock:tool]]",
        tools=[WEATHER_RESPONSES],
        stream=True,
    )
    return [event.model_dump() for event in events]


def responses_bytes(clients: ClientFactory) -> Any:
    body = {"model": "gpt-5-mini", "input": "hello [[mock:text]]", "stream": True}
    return raw_post(clients, "https://api.openai.com/v1/responses", body)


def anthropic_thinking_sdk(clients: ClientFactory) -> Any:
    with clients.anthropic().messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "hi [[mock:thinking]]"}],
    ) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "redacted_thinking", "text"]
    return message.model_dump()


def anthropic_tool_sdk(clients: ClientFactory) -> Any:
    with clients.anthropic().messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=256,
        messages=[{"role": "user", "content": "weather in Paris? [[mock:tool]]"}],
        tools=[WEATHER_ANTHROPIC],
    ) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "tool_use"
    return message.model_dump()


def anthropic_stream_bytes(clients: ClientFactory) -> Any:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 256,
        "stream": True,
        "messages": [{"role": "user", "content": "both cities [[mock:tools2]]"}],
        "tools": [WEATHER_ANTHROPIC],
    }
    return raw_post(clients, "https://api.anthropic.com/v1/messages", body, **{"anthropic-version": "2023-06-01"})


def gemini_stream_sdk(clients: ClientFactory) -> Any:
    chunks = clients.gemini().models.generate_content_stream(model=GEMINI_MODEL, contents="hi [[mock:thinking]]")
    return [chunk.model_dump(mode="json", exclude={"sdk_http_response"}) for chunk in chunks]


def gemini_stream_bytes(clients: ClientFactory) -> Any:
    body = {"contents": [{"role": "user", "parts": [{"text": "weather? [[mock:tool]]"}]}]}
    url = f"https://generativelanguage.googleapis.com/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse"
    return raw_post(clients, url, body, **{"x-goog-api-key": clients.api_key})


def chat_parallel_tools_sdk(clients: ClientFactory) -> Any:
    """Parallel calls in one turn, their deltas interleaved by index."""
    chunks = openai_sdk(clients).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "all of it [[mock:interleaved]]"}],
        tools=[WEATHER],
        stream=True,
    )
    return [chunk.model_dump() for chunk in chunks]


def errors_sdk(clients: ClientFactory) -> Any:
    """Upstream errors as each SDK raises them: a 429 from OpenAI and Gemini, an
    `overloaded_error` event in the middle of an Anthropic stream."""
    raised: list[Any] = []
    with pytest.raises(openai.RateLimitError) as rate_limited:
        openai_sdk(clients).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi [[mock:error_429]]"}]
        )
    raised.append((rate_limited.value.status_code, rate_limited.value.body))
    with pytest.raises(genai_errors.ClientError) as gemini_limited:
        clients.gemini().models.generate_content(model=GEMINI_MODEL, contents="a limit, please [[mock:error_429]]")
    raised.append((gemini_limited.value.code, gemini_limited.value.message))
    with (
        pytest.raises(anthropic.APIStatusError) as overloaded,
        clients.anthropic().messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=256,
            messages=[{"role": "user", "content": "hi [[mock:anthropic_stream_error]]"}],
        ) as stream,
    ):
        stream.get_final_message()
    raised.append((type(overloaded.value).__name__, overloaded.value.body))
    return raised


CALLS: dict[str, Callable[[ClientFactory], Any]] = {
    call.__name__: call
    for call in (
        chat_stream_bytes,
        chat_stream_sdk,
        chat_tools_sdk,
        chat_tools_bytes,
        responses_sdk,
        responses_bytes,
        anthropic_thinking_sdk,
        anthropic_tool_sdk,
        anthropic_stream_bytes,
        gemini_stream_sdk,
        gemini_stream_bytes,
        chat_parallel_tools_sdk,
        errors_sdk,
    )
}
CALLS_RECORDED = len(CALLS) + 2  # errors_sdk makes three calls


def paced_stream(clients: ClientFactory) -> list[tuple[float, bytes]]:
    """A text stream the mock sends a write every PACED_MS: (arrival, bytes) per chunk."""
    body = chat_body("pace me [[mock:text]]", True)
    headers = {"authorization": f"Bearer {clients.api_key}", "x-mock-delay-ms": str(PACED_MS)}
    with clients.raw().stream("POST", "https://api.openai.com/v1/chat/completions", json=body, headers=headers) as r:
        assert r.status_code == 200
        return [(arrival.at, arrival.data) for arrival in timed_chunks(r)]


async def websocket_turns(proxy: ProxyProcess, tls: ssl.SSLContext) -> list[list[bytes]]:
    """A pre-warm, then a turn chained on it that calls a tool (Codex's way)."""
    async with connect(proxy, tls) as ws:
        prewarm = await turn(ws, create("warm up", generate=False))
        assert json.loads(prewarm[-1])["type"] != "error", prewarm
        chained = json.loads(prewarm[-1])["response"]["id"]
        return [prewarm, await turn(ws, create("[[mock:shell]]", previous_response_id=chained))]


# --- recording, once for the module -------------------------------------------------------


@dataclass
class Recorded:
    cassette: Path
    results: dict[str, Any]
    paced: list[tuple[float, bytes]]
    websocket: list[list[bytes]]
    api_key: str
    dead_upstream: str  # the stopped mock's URL: nothing listens there
    calls: int  # lines in the cassette


def wait_lines(path: Path, count: int, timeout_s: float = 15.0) -> list[cassette.CassetteEntry]:
    deadline = time.monotonic() + timeout_s
    while True:
        entries = cassette.read(path) if path.exists() else []
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


@pytest.fixture(scope="module")
def tls(mitm_ca: MitmCA) -> ssl.SSLContext:
    return mitm_ca.ssl_context()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, mitm_ca: MitmCA, tls: ssl.SSLContext) -> Iterator[Recorded]:
    """Every call of CALLS, the paced stream and the WebSocket turns, recorded through a
    proxy with `interlock_cassette` against a mock of its own, which is then stopped."""
    root = tmp_path_factory.mktemp("cassette")
    path = root / "calls.jsonl"
    api_key = "sk-test-SECRET-cassette-0123456789"
    with MockProvider() as mock:
        launcher = ProxyLauncher(root, mitm_ca, mock.url)
        try:
            proxy = launcher(extra_args=["--set", f"interlock_cassette={path}"])
            clients = ClientFactory(proxy.url, mitm_ca, api_key)
            results = {name: call(clients) for name, call in CALLS.items()}
            paced = paced_stream(clients)
            websocket = asyncio.run(websocket_turns(proxy, tls))
            clients.close()
            expected = CALLS_RECORDED + 1 + 2  # the paced stream, the WebSocket's two turns
            assert len(wait_lines(path, expected)) == expected, proxy.output()
        finally:
            launcher.stop_all()
    yield Recorded(path, results, paced, websocket, api_key, mock.url, expected)


@pytest.fixture(scope="module")
def launch_offline(
    tmp_path_factory: pytest.TempPathFactory, mitm_ca: MitmCA, recorded: Recorded
) -> Iterator[ProxyLauncher]:
    launcher = ProxyLauncher(tmp_path_factory.mktemp("offline"), mitm_ca, recorded.dead_upstream)
    yield launcher
    launcher.stop_all()


def replay_args(path: Path, *more: str) -> list[str]:
    return ["--set", f"interlock_replay={path}", *more]


@pytest.fixture(scope="module")
def replay(launch_offline: ProxyLauncher, recorded: Recorded) -> ProxyProcess:
    return launch_offline(extra_args=replay_args(recorded.cassette))


@pytest.fixture
def clients(replay: ProxyProcess, mitm_ca: MitmCA, recorded: Recorded) -> Iterator[ClientFactory]:
    with factory(replay, mitm_ca, recorded.api_key) as made:
        yield made


# --- the cassette ---------------------------------------------------------------------------


def test_the_cassette_holds_every_call_and_no_key(recorded: Recorded) -> None:
    entries = cassette.read(recorded.cassette)
    assert recorded.api_key not in recorded.cassette.read_text()
    assert {e.dialect for e in entries} == {"openai-chat", "openai-responses", "anthropic-messages", "gemini"}
    assert [e.transport for e in entries].count("websocket") == 2
    streamed = [e for e in entries if e.response.chunks is not None and e.transport == "http"]
    assert len(streamed) == 12 and all(len(e.response.chunks or []) > 1 for e in streamed)
    for entry in entries:
        assert CALL_ID not in {name.lower() for name, _ in entry.response.headers}


# --- replay: identical results, bytes and pacing -----------------------------------------------


@pytest.mark.parametrize("name", list(CALLS))
def test_replay_gives_the_recorded_answer(name: str, clients: ClientFactory, recorded: Recorded) -> None:
    assert CALLS[name](clients) == recorded.results[name]


def test_replayed_calls_are_recorded_like_live_ones(clients: ClientFactory, replay: ProxyProcess) -> None:
    response = clients.raw().post(
        "https://api.openai.com/v1/chat/completions",
        json=chat_body("weather in Paris? [[mock:tool]]", True, tools=[WEATHER]),
        headers={"authorization": f"Bearer {clients.api_key}"},
    )
    assert replay.db_path is not None
    call = CallsDB(replay.db_path).wait_call(response.headers[CALL_ID])
    assert (call["host"], call["status"], call["verdict"], call["stream"]) == ("api.openai.com", 200, "pass", 1)
    assert call.stages["response_original"]["raw"] == response.content
    assert "x-interlock-replay" not in call.stage_headers("request_final")
    assert call["response_text"] == "Let me check the weather."


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_a_stream_keeps_its_recorded_pacing(clients: ClientFactory, recorded: Recorded) -> None:
    (entry,) = [e for e in cassette.read(recorded.cassette) if "pace me" in json.dumps(e.request.body)]
    recorded_gaps = gaps([chunk.t for chunk in entry.response.chunks or []])
    assert len(recorded_gaps) >= 4 and min(recorded_gaps) > PACED_MS / 1000 * 0.8
    replayed = paced_stream(clients)
    assert b"".join(data for _, data in replayed) == b"".join(data for _, data in recorded.paced)
    replayed_gaps = gaps([at for at, _ in replayed])
    assert len(replayed_gaps) == len(recorded_gaps)
    for got, want in zip(replayed_gaps, recorded_gaps, strict=True):
        assert abs(got - want) <= 0.2 * want, (replayed_gaps, recorded_gaps)


def test_a_client_leaving_mid_replay_is_recorded_and_breaks_nothing(
    clients: ClientFactory, replay: ProxyProcess, recorded: Recorded
) -> None:
    since = len(replay.output())
    body = chat_body("pace me [[mock:text]]", True)
    headers = {"authorization": f"Bearer {clients.api_key}"}
    with clients.raw().stream("POST", "https://api.openai.com/v1/chat/completions", json=body, headers=headers) as r:
        next(r.iter_raw())
        call_id = r.headers[CALL_ID]
    assert replay.db_path is not None
    call = CallsDB(replay.db_path).wait_call(call_id)
    assert call["error"]  # recorded as cut short
    assert b"".join(data for _, data in paced_stream(clients)) == b"".join(data for _, data in recorded.paced)
    assert "Traceback" not in replay.output()[since:] and not replay.addon_errors(since)


def test_fast_replay_sends_at_once(launch_offline: ProxyLauncher, mitm_ca: MitmCA, recorded: Recorded) -> None:
    fast = launch_offline(extra_args=replay_args(recorded.cassette, "--set", "interlock_replay_fast=true"))
    with factory(fast, mitm_ca, recorded.api_key) as clients:
        replayed = paced_stream(clients)
    assert b"".join(data for _, data in replayed) == b"".join(data for _, data in recorded.paced)
    assert replayed[-1][0] - replayed[0][0] < PACED_MS / 1000  # recorded: several times that


async def test_a_websocket_turn_replays_frame_for_frame(
    replay: ProxyProcess, recorded: Recorded, tls: ssl.SSLContext
) -> None:
    assert await websocket_turns(replay, tls) == recorded.websocket
    async with connect(replay, tls) as ws:
        (frame,) = await turn(ws, create("[[mock:shell]] changed"))
    error = json.loads(frame)
    assert (error["type"], error["status"]) == ("error", 404)
    assert "input[0].content" in error["error"]["message"]


# --- no match: the dialect's error, at once, and nothing goes upstream ---------------------------


@pytest.fixture
def guarded_replay(start_proxy: ProxyLauncher, recorded: Recorded) -> ProxyProcess:
    """A replay proxy whose provider hosts map to the live session mock: it must stay unused."""
    return start_proxy(extra_args=replay_args(recorded.cassette))


def recorded_call(recorded: Recorded, dialect: str, text: str) -> cassette.CassetteEntry:
    """The recorded call of `dialect` whose request holds `text`."""
    (entry,) = [
        e for e in cassette.read(recorded.cassette) if e.dialect == dialect and text in json.dumps(e.request.body)
    ]
    return entry


def test_a_changed_request_gets_the_no_match_error_through_each_sdk(
    guarded_replay: ProxyProcess,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    recorded: Recorded,
) -> None:
    clients = make_clients(guarded_replay)
    before = len(mock_provider.exchanges)
    started = time.monotonic()
    with pytest.raises(openai.NotFoundError) as chat:
        openai_sdk(clients).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "weather? [[mock:tool]] please"}],
            tools=[WEATHER],
        )
    expected = recorded_call(recorded, "openai-chat", '"weather? [[mock:tool]]"')
    assert expected.call_id in str(chat.value) and expected.recorded_at in str(chat.value)
    assert "messages[0].content" in str(chat.value)
    with pytest.raises(anthropic.NotFoundError) as messages:
        anthropic_sdk_changed(clients)
    assert recorded_call(recorded, "anthropic-messages", "hi [[mock:thinking]]").call_id in str(messages.value)
    assert "max_tokens" in str(messages.value)
    with pytest.raises(genai_errors.ClientError) as gemini:
        list(clients.gemini().models.generate_content_stream(model=GEMINI_MODEL, contents="hi [[mock:thinking]] again"))
    assert gemini.value.code == 404 and "contents[0].parts[0].text" in str(gemini.value)
    assert recorded_call(recorded, "gemini", "hi [[mock:thinking]]").call_id in str(gemini.value)
    assert time.monotonic() - started < 30  # at once: no hang, no retries
    assert len(mock_provider.exchanges) == before  # never a live call


def anthropic_sdk_changed(clients: ClientFactory) -> None:
    clients.anthropic().messages.create(
        model="claude-sonnet-4-6",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "hi [[mock:thinking]]"}],
        stream=True,
    )


# --- record-missing --------------------------------------------------------------------------------


def test_a_miss_is_recorded_then_replayed(
    tmp_path: Path, mitm_ca: MitmCA, recorded: Recorded, launch_offline: ProxyLauncher
) -> None:
    path = tmp_path / "growing.jsonl"
    shutil.copy(recorded.cassette, path)
    new = chat_body("something new [[mock:tools2]]", True, tools=[WEATHER])
    url = "https://api.openai.com/v1/chat/completions"
    with MockProvider() as mock:
        launcher = ProxyLauncher(tmp_path / "proxies", mitm_ca, mock.url)
        try:
            proxy = launcher(extra_args=replay_args(path, "--set", "interlock_replay_missing=record"))
            with factory(proxy, mitm_ca, recorded.api_key) as clients:
                live = raw_post(clients, url, new)
                assert len(mock.exchanges) == 1  # forwarded upstream
                entries = wait_lines(path, recorded.calls + 1)
                assert len(entries) == recorded.calls + 1 and entries[-1].request.body == new
                assert raw_post(clients, url, new) == live  # replayable in the same run
                assert (
                    raw_post(clients, url, chat_body("weather in Paris? [[mock:tool]]", True, tools=[WEATHER]))
                    == (recorded.results["chat_stream_bytes"])
                )
            assert len(mock.exchanges) == 1
        finally:
            launcher.stop_all()
    offline = launch_offline(extra_args=replay_args(path))
    with factory(offline, mitm_ca, recorded.api_key) as clients:
        assert raw_post(clients, url, new) == live


# --- policies on replayed answers, options ------------------------------------------------------


def test_policies_run_on_replayed_answers(launch_offline: ProxyLauncher, mitm_ca: MitmCA, recorded: Recorded) -> None:
    proxy = launch_offline(config=DENY_WEATHER, extra_args=replay_args(recorded.cassette))
    with factory(proxy, mitm_ca, recorded.api_key) as clients:
        response = clients.raw().post(
            "https://api.openai.com/v1/chat/completions",
            json=chat_body("weather in Paris? [[mock:tool]]", True, tools=[WEATHER]),
            headers={"authorization": f"Bearer {clients.api_key}"},
        )
    chunks = [json.loads(e.data) for e in parse_all(response.content) if e.data and e.data != "[DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "Interlock blocked the tool call `get_weather`" in text
    assert not any(c["choices"][0]["delta"].get("tool_calls") for c in chunks if c["choices"])
    assert proxy.db_path is not None
    call = CallsDB(proxy.db_path).wait_call(response.headers[CALL_ID])
    assert call["verdict"] == "blocked"
    assert call.stages["response_original"]["raw"] == recorded.results["chat_stream_bytes"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "interlock_replay_missing=ignore"], "interlock_replay_missing: 'ignore' is not one of"),
        (["--set", "interlock_replay=/nonexistent/calls.jsonl"], "interlock_replay: cannot read"),
        (["--set", "interlock_replay=bad.jsonl"], r"interlock_replay: bad\.jsonl:1: not a cassette entry"),
        (
            ["--set", "interlock_cassette=/nonexistent/calls.jsonl"],
            "interlock_cassette: /nonexistent is not a directory",
        ),
    ],
)
def test_bad_replay_options_refuse_start_up(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.jsonl").write_text('{"cassette": 1, "call_id": "x"}\n')
    result = run_mitmdump(tmp_path, "--set", f"interlock_db={tmp_path / 'calls.db'}", *args)
    assert result.returncode != 0
    assert re.search(message, result.stdout + result.stderr)


@contextmanager
def just_proxy(workdir: Path, *args: str) -> Iterator[ProxyProcess]:
    """`just ARGS` (a recipe running the proxy), in a process group of its own so that
    stopping it stops the mitmdump it started; as a `ProxyProcess` for its port and output."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "just.out"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            ["just", "--justfile", str(REPO / "justfile"), *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not (found := re.search(rb"proxy listening at 127\.0\.0\.1:(\d+)", out.read_bytes())):
            assert process.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        proxy = ProxyProcess.__new__(ProxyProcess)
        proxy.port = int(found.group(1))
        yield proxy
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def test_just_record_and_just_replay(
    tmp_path: Path, mitm_ca: MitmCA, mock_provider: MockProvider, recorded: Recorded
) -> None:
    """`just record FILE` appends to FILE; `just replay FILE --fast` replays with no pacing
    (and no route to any provider: it maps nothing)."""
    common = ["--listen-port", "0", "--set", f"confdir={mitm_ca.confdir}", "--set", f"interlock_db={tmp_path / 'x.db'}"]
    path = tmp_path / "just.jsonl"
    upstream = [*map_remote_args(mock_provider.url), "--set", "connection_strategy=lazy"]
    with (
        just_proxy(tmp_path / "record", "record", str(path), *common, *upstream) as proxy,
        factory(proxy, mitm_ca, recorded.api_key) as clients,
    ):
        live = chat_stream_bytes(clients)
        (entry,) = wait_lines(path, 1)
    assert entry.response.chunks and b"".join(c.data for c in entry.response.chunks) == live
    with (
        just_proxy(tmp_path / "replay", "replay", str(recorded.cassette), "--fast", *common) as proxy,
        factory(proxy, mitm_ca, recorded.api_key) as clients,
    ):
        replayed = paced_stream(clients)
    assert b"".join(data for _, data in replayed) == b"".join(data for _, data in recorded.paced)
    assert replayed[-1][0] - replayed[0][0] < PACED_MS / 1000


@contextmanager
def factory(proxy: ProxyProcess, ca: MitmCA, api_key: str) -> Iterator[ClientFactory]:
    clients = ClientFactory(proxy.url, ca, api_key)
    try:
        yield clients
    finally:
        clients.close()
