"""The committed cassettes (`tests/cassettes/`, written by `tests/record_cassettes.py`)
replayed through the real proxy with no provider at all: one replaying mitmdump per
cassette, the provider hosts mapped to a loopback port nothing listens on, so a call that
went upstream would fail loudly.

Each recorded call, driven again by the real SDK of its dialect (openai chat and
Responses, the Responses WebSocket, anthropic, google-genai; a raw client for Code
Assist), gives the client what the provider gave it: text, thinking, every tool call's
name and arguments in order, usage, or the error's class, status and message. One
stream per cassette replays byte for byte (frame for frame on the WebSocket); replayed
calls are recorded in the database as live ones (verdict, tool_calls rows); deny_tools
over a replayed answer removes one of two parallel calls and the other reaches the
client. The cassettes are small, hold no key, and are what the recorder writes today.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import record_cassettes as rc
from harness import MitmCA, ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from record_cassettes import CASSETTES, Cassette, Outcome
from test_e2e_responses_ws import connect, new_calls, turn

from interlock import cassette

CALL_ID = "x-interlock-call-id"
UNITS = {unit.name: unit for unit in CASSETTES}
CALLS = {call.__name__: unit for unit in CASSETTES for call in unit.calls}
MAX_BYTES = 40_000  # per cassette: small enough to read in review
SUITE_KEY_PREFIX = "sk-test-"  # the `api_key` fixture's keys
KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")

HELLO = "Hello from the mock provider."
THOUGHT = "The user wants a greeting. Keep it short."
PARIS = ("get_weather", {"location": "Paris, France", "unit": "celsius"})
TOKYO = ("get_weather", {"location": "Tokyo, Japan", "unit": "celsius"})
HOSTNAME = ("read_file", {"path": "/etc/hostname"})
RM = ("Bash", {"command": "rm -rf /"})
USAGE = (12, 34)
TEXT = Outcome(text=HELLO, usage=USAGE)
THINKING = Outcome(text="Hi there!", thinking=THOUGHT, usage=USAGE)
BOTH_CITIES = Outcome(text="Checking both cities.", tools=[PARIS, TOKYO], usage=USAGE)
THREE_CALLS = Outcome(tools=[PARIS, TOKYO, HOSTNAME], usage=USAGE)
OPENAI_429 = (
    "Error code: 429 - Rate limit reached for {model} in organization org-mock on requests per min (RPM): "
    "Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits "
    "to learn more."
)
GEMINI_429 = "Resource has been exhausted (e.g. check quota)."
ANTHROPIC_429 = (
    "This request would exceed the rate limit for your organization of 50 requests per minute. For details, "
    "refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. "
    "Please reduce the prompt length or the maximum tokens requested, or try again later."
)
NO_PREVIOUS = "Previous response with id 'resp_unknown' not found."


def anthropic_error(status: int | None, kind: str, message: str) -> str:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    if kind == "rate_limit_error":
        body["request_id"] = "req_011CMockRateLimit"
    return f"Error code: {status} - {body}" if status is not None else str(body)


EXPECTED: dict[str, Outcome] = {
    "chat_text_stream": TEXT,
    "chat_parallel_tools_stream": Outcome(tools=[RM, HOSTNAME], usage=USAGE),  # deltas interleaved by index
    "chat_parallel_tools": THREE_CALLS,
    "chat_rate_limited": Outcome(error=("RateLimitError", 429, OPENAI_429.format(model=rc.CHAT_MODEL))),
    "chat_invalid_request": Outcome(
        error=(
            "BadRequestError",
            400,
            (
                "Error code: 400 - An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                "call_unanswered"
            ),
        )
    ),
    "chat_error_mid_stream": Outcome(error=("APIError", None, "Overloaded")),
    "responses_text_stream": TEXT,
    "responses_thinking_stream": THINKING,
    "responses_parallel_tools_stream": BOTH_CITIES,
    "responses_parallel_tools": THREE_CALLS,
    "responses_rate_limited": Outcome(error=("RateLimitError", 429, OPENAI_429.format(model=rc.RESPONSES_MODEL))),
    "responses_invalid_request": Outcome(error=("BadRequestError", 400, f"Error code: 400 - {NO_PREVIOUS}")),
    "responses_error_mid_stream": Outcome(error=("ResponseErrorEvent", None, "server_error: Overloaded")),
    "ws_text": TEXT,
    "ws_parallel_tools": BOTH_CITIES,
    "ws_thinking": THINKING,
    "ws_invalid_request": Outcome(error=("error frame", 400, NO_PREVIOUS)),
    "anthropic_text_stream": TEXT,
    "anthropic_thinking_stream": THINKING,
    "anthropic_parallel_tools_stream": BOTH_CITIES,
    "anthropic_parallel_tools": THREE_CALLS,
    "anthropic_rate_limited": Outcome(
        error=("RateLimitError", 429, anthropic_error(429, "rate_limit_error", ANTHROPIC_429))
    ),
    "anthropic_invalid_request": Outcome(
        error=(
            "BadRequestError",
            400,
            anthropic_error(
                400,
                "invalid_request_error",
                "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: "
                "toolu_unanswered. Each `tool_use` block must have a corresponding `tool_result` block in the next "
                "message.",
            ),
        )
    ),
    "anthropic_overloaded_mid_stream": Outcome(
        error=("APIStatusError", None, anthropic_error(None, "overloaded_error", "Overloaded"))
    ),
    "gemini_text_stream": TEXT,
    "gemini_thinking_stream": THINKING,
    "gemini_parallel_tools_stream": BOTH_CITIES,
    "gemini_parallel_tools": THREE_CALLS,
    "gemini_rate_limited": Outcome(error=("ClientError", 429, GEMINI_429)),
    "gemini_invalid_request": Outcome(
        error=(
            "ClientError",
            400,
            (
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
                "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
                "data, function call `default_api:get_weather` , position 2. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            ),
        )
    ),
    "gemini_error_mid_stream": Outcome(error=("ServerError", 503, "The model is overloaded. Please try again later.")),
    "code_assist_text_stream": TEXT,
    "code_assist_parallel_tools_stream": BOTH_CITIES,
    "code_assist_thinking": THINKING,
    "code_assist_rate_limited": Outcome(error=("RESOURCE_EXHAUSTED", 429, GEMINI_429)),
}
WS_UNIT = next(unit for unit in CASSETTES if unit.transport == "websocket")


def committed(unit: Cassette) -> list[cassette.CassetteEntry]:
    return cassette.read(rc.DIRECTORY / unit.file)


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Replays:
    """One replaying proxy per cassette, started when a test first asks for it."""

    launcher: ProxyLauncher
    ca: MitmCA
    proxies: dict[str, ProxyProcess] = field(default_factory=dict)

    def __getitem__(self, unit: Cassette) -> ProxyProcess:
        if unit.name not in self.proxies:
            self.proxies[unit.name] = self.launcher(
                config={"policies": []}, extra_args=["--set", f"interlock_replay={rc.DIRECTORY / unit.file}"]
            )
        return self.proxies[unit.name]


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory, mitm_ca: MitmCA) -> Iterator[ProxyLauncher]:
    """Proxies whose provider hosts map to a port nothing listens on: nothing may go upstream."""
    launcher = ProxyLauncher(tmp_path_factory.mktemp("cassettes"), mitm_ca, f"http://127.0.0.1:{dead_port()}")
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def replays(offline: ProxyLauncher, mitm_ca: MitmCA) -> Replays:
    return Replays(offline, mitm_ca)


@pytest.fixture
def clients_of(replays: Replays, mitm_ca: MitmCA) -> Iterator[Any]:
    made: list[ClientFactory] = []

    def make(unit: Cassette) -> ClientFactory:
        made.append(ClientFactory(replays[unit].url, mitm_ca, rc.KEY))
        return made[-1]

    yield make
    for clients in made:
        clients.close()


# --- the cassettes themselves ---------------------------------------------------------------


def test_every_call_has_its_expected_outcome() -> None:
    assert set(EXPECTED) == set(CALLS) | {name for name, _, _ in rc.WS_TURNS}


@pytest.mark.parametrize("unit", CASSETTES, ids=lambda unit: unit.name)
def test_the_committed_cassettes_are_small_and_hold_no_key(unit: Cassette) -> None:
    path = rc.DIRECTORY / unit.file
    text = path.read_text()
    assert path.stat().st_size < MAX_BYTES
    assert rc.KEY not in text and SUITE_KEY_PREFIX not in text
    entries = committed(unit)
    assert len(entries) == unit.size and all(unit.holds(entry) for entry in entries)
    for entry in entries:
        secrets = [value for name, value in entry.request.headers if name.lower() in KEY_HEADERS]
        assert secrets and all(value.startswith(("<redacted", "Bearer <redacted")) for value in secrets), secrets


def essence(entry: cassette.CassetteEntry) -> Any:
    """What regenerating must not change: the request as sent and the answer's status,
    content type and bytes (not ids, times, chunk boundaries nor other headers)."""
    response = entry.response
    data = response.body.data if response.body is not None else b"".join(c.data for c in response.chunks or [])
    kind = [value for name, value in response.headers if name.lower() == "content-type"]
    return (
        entry.dialect,
        entry.provider,
        entry.transport,
        entry.request.method,
        entry.request.url,
        entry.request.body,
        entry.request.body_text,
        response.status,
        kind,
        response.body is None,
        data,
    )


def test_the_committed_cassettes_are_current(tmp_path: Path) -> None:
    """Fails when the mock, the recorder or the calls changed: run
    `uv run python tests/record_cassettes.py` and commit the cassettes."""
    outcomes = rc.record(tmp_path)
    assert outcomes == EXPECTED  # live, as replayed below
    for unit in CASSETTES:
        fresh = cassette.read(tmp_path / unit.file)
        assert [essence(e) for e in fresh] == [essence(e) for e in committed(unit)], (
            f"{unit.file} is stale: uv run python tests/record_cassettes.py"
        )


# --- replayed through the SDKs ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(CALLS))
def test_each_call_replays_through_its_sdk(name: str, clients_of: Any) -> None:
    unit = CALLS[name]
    call = next(call for call in unit.calls if call.__name__ == name)
    assert call(clients_of(unit)) == EXPECTED[name]


def test_the_websocket_turns_replay(replays: Replays, clients_of: Any) -> None:
    proxy = replays[WS_UNIT]
    outcomes = asyncio.run(rc.websocket_session(proxy, clients_of(WS_UNIT)))
    assert outcomes == {name: EXPECTED[name] for name, _, _ in rc.WS_TURNS}


def auth_headers(entry: cassette.CassetteEntry) -> dict[str, str]:
    """The recorded request headers that are not framing, with a key in place of each redacted one."""
    keep = {"anthropic-version", "content-type"}
    headers = {name: value for name, value in entry.request.headers if name.lower() in keep}
    return headers | {"authorization": f"Bearer {rc.KEY}", "x-api-key": rc.KEY, "x-goog-api-key": rc.KEY}


def first_stream(unit: Cassette) -> cassette.CassetteEntry:
    return next(e for e in committed(unit) if e.response.chunks is not None and e.response.status == 200)


def post_recorded(clients: ClientFactory, entry: cassette.CassetteEntry) -> Any:
    """The recorded request again, from a raw client (Gemini's streams with `?alt=sse`:
    cassettes keep no query string)."""
    query = "?alt=sse" if entry.request.url.endswith(":streamGenerateContent") else ""
    return clients.raw().post(entry.request.url + query, json=entry.request.body, headers=auth_headers(entry))


HTTP_UNITS = [unit for unit in CASSETTES if unit.transport == "http"]


@pytest.mark.parametrize("unit", HTTP_UNITS, ids=lambda unit: unit.name)
def test_a_stream_replays_byte_for_byte_and_is_recorded_like_a_live_one(
    unit: Cassette, replays: Replays, clients_of: Any
) -> None:
    entry = first_stream(unit)
    response = post_recorded(clients_of(unit), entry)
    assert response.status_code == 200, response.text
    assert response.content == b"".join(chunk.data for chunk in entry.response.chunks or [])
    db_path = replays[unit].db_path
    assert db_path is not None
    call = CallsDB(db_path).wait_call(response.headers[CALL_ID])
    assert (call["dialect"], call["status"], call["verdict"], call["stream"]) == (unit.dialect, 200, "pass", 1)
    assert call["host"] == unit.host and call.stages["response_original"]["raw"] == response.content


def parallel_entry(unit: Cassette) -> cassette.CassetteEntry:
    """The streamed call with several tool calls."""
    markers = ("[[mock:tools2]]", "[[mock:interleaved]]")
    return next(
        e
        for e in committed(unit)
        if e.response.chunks is not None and any(marker in json.dumps(e.request.body) for marker in markers)
    )


@pytest.mark.parametrize("unit", HTTP_UNITS, ids=lambda unit: unit.name)
def test_replayed_tool_calls_are_recorded_in_order(unit: Cassette, replays: Replays, clients_of: Any) -> None:
    response = post_recorded(clients_of(unit), parallel_entry(unit))
    db_path = replays[unit].db_path
    assert db_path is not None
    call = CallsDB(db_path).wait_call(response.headers[CALL_ID])
    assert call["verdict"] == "pass"
    rows = CallsDB(db_path).rows(
        "select name, arguments_json from tool_calls where call_id = ? and stage = 'response_final' order by position",
        (call["call_id"],),
    )
    expected = [RM, HOSTNAME] if unit.dialect == "openai-chat" else [PARIS, TOKYO]
    assert [(row["name"], json.loads(row["arguments_json"])) for row in rows] == expected


async def test_a_websocket_turn_replays_frame_for_frame(replays: Replays, mitm_ca: MitmCA) -> None:
    proxy = replays[WS_UNIT]
    entries = committed(WS_UNIT)
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    before = db.call_ids()
    async with connect(proxy, mitm_ca.ssl_context()) as ws:
        frames = await turn(ws, entries[0].request.body or {})
    assert [frame.decode() for frame in frames] == [chunk.text for chunk in entries[0].response.chunks or []]
    [call] = new_calls(db, before, 1)
    assert (call["dialect"], call["verdict"], call["response_text"]) == ("openai-responses", "pass", HELLO)


# --- a policy over a committed cassette ----------------------------------------------------------


def test_deny_tools_removes_one_of_the_parallel_calls(offline: ProxyLauncher, mitm_ca: MitmCA) -> None:
    unit = UNITS["openai_chat"]
    proxy = offline(
        config={"policies": [{"policy": "deny_tools", "deny": ["Bash"]}]},
        extra_args=["--set", f"interlock_replay={rc.DIRECTORY / unit.file}"],
    )
    clients = ClientFactory(proxy.url, mitm_ca, rc.KEY)
    try:
        got = rc.chat_parallel_tools_stream(clients)
    finally:
        clients.close()
    assert got.tools == [HOSTNAME]  # the other call of the turn reaches the client
    assert "Interlock blocked the tool call `Bash`" in got.text
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    [call] = new_calls(db, [], 1)
    assert call["verdict"] == "blocked"
    rows = db.rows("select stage, name from tool_calls where call_id = ? order by stage, position", (call["call_id"],))
    assert [(r["stage"], r["name"]) for r in rows] == [
        ("response_final", "read_file"),
        ("response_original", "Bash"),
        ("response_original", "read_file"),
    ]
