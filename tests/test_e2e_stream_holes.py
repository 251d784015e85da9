"""Streams that used to slip held tool calls past the policies, end to end.

The real mitmdump with the bundle, the loopback mock provider through `map_remote`, the
real `openai` and `anthropic` SDKs as clients and a raw httpx client for the bytes. Each
case runs under two chains that decide the same calls the same way: `deny_tools` with
argument rules, and `tool_call_judge` against the loopback judge with matching rules. In
both, a call is blocked when its arguments hold `rm -rf` (the `interleaved` scenario's
call 0), `TODO` (`long_args`) or `日本語` (`unicode`); every other call is allowed.

- A real OpenAI tool-only turn (the role and the first tool call in one chunk,
  `obfuscation`, `usage: null`...): nothing blocked, the client gets the mock's bytes
  exactly and the SDK's role stays "assistant"; the call blocked, the stream keeps the
  protocol (no repeated role, id, type or name) and ends with the notice and `stop`.
- Interleaved tool-call deltas: call 0 becomes `rm -rf /` only after call 1 started; it
  is decided on its complete arguments, so it is blocked and call 1 survives intact.
- A stream that ends after complete tool calls without its message end (an error event,
  or the connection cut): a denied or undecided call never reaches the client, an
  allowed one does, after its decision, and the upstream error still arrives.
- Transport: the same policed streams cut into writes differently (coalesced, split
  inside a UTF-8 character, re-cut at random sizes) and with keep-alive comments give
  the client the same events as one write per event.

Client timeouts (30 s) are hang guards only; timing assertions compare arrival times
with the judge's answers, never with a budget.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
import httpx2
import openai
import pytest
from anthropic import Anthropic
from harness import START_TIMEOUT_S, MitmCA, ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, auth_headers, llm_request, timed_chunks
from harness_db import CallsDB, RecordedCall
from judge_mock import JudgeMock, allow, block
from mock_provider import MockProvider
from openai import OpenAI
from openai.lib.streaming.chat import ChatCompletionStreamState
from policy_fixtures import sdk_summary, stream_violations
from wire_scenarios import SCENARIOS, ScenarioToolCall, anthropic_tool_id, openai_tool_id

from interlock.sse import SSEEvent, parse_all

Dialect = Literal["openai-chat", "anthropic-messages"]
DIALECTS: tuple[Dialect, ...] = ("openai-chat", "anthropic-messages")
Chain = Literal["deny_tools", "judge"]
CHAINS: tuple[Chain, ...] = ("deny_tools", "judge")
URLS = {
    "openai-chat": "https://api.openai.com/v1/chat/completions",
    "anthropic-messages": "https://api.anthropic.com/v1/messages",
}
MODELS = {"openai-chat": "gpt-4o-mini", "anthropic-messages": "claude-sonnet-4-6"}
STOPS = {"openai-chat": ("tool_calls", "stop"), "anthropic-messages": ("tool_use", "end_turn")}
CALL_ID = "x-interlock-call-id"
MOCK_ID = "x-mock-request-id"
KEY_ENV = "INTERLOCK_TEST_JUDGE_KEY"
JUDGE_DELAY_S = 0.3  # the judge's thinking time where a test compares arrivals with it
NOTICE = "Interlock blocked the tool call"

# What both chains block, as (argument needle, tool, reason).
BLOCKING = (
    ("rm -rf", "Bash", "deletes the file system"),
    ("TODO", "Bash", "greps the whole tree"),
    ("日本語", "translate", "no Japanese"),
)
DENY_CHAIN = [
    {
        "policy": "deny_tools",
        "rules": [{"tool": tool, "pattern": needle, "reason": reason} for needle, tool, reason in BLOCKING],
    }
]
JUDGE_CHAIN = [
    {
        "policy": "tool_call_judge",
        "model": "openai/judge-mock",
        "api_key_env": KEY_ENV,
        "on_error": "block",
        "timeout_s": 10,
        "retries": 0,
    }
]
_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}}
_TOOL_NAMES = (
    ("get_weather", "Current weather."),
    ("read_file", "Read a file."),
    ("Bash", "Run a shell command."),
    ("translate", "Translate a text."),
)
TOOLS: dict[Dialect, list[Any]] = {
    "openai-chat": [
        {"type": "function", "function": {"name": n, "description": d, "parameters": _SCHEMA}} for n, d in _TOOL_NAMES
    ],
    "anthropic-messages": [{"name": n, "description": d, "input_schema": _SCHEMA} for n, d in _TOOL_NAMES],
}


def blocked(call: ScenarioToolCall) -> bool:
    return any(needle in call.arguments and tool == call.name for needle, tool, _ in BLOCKING)


def scenario_of(spec: str) -> str:
    """The content scenario a mock spec names (`tools2+error_after_blocks` -> tools2)."""
    return next(part for part in spec.split("+") if part in SCENARIOS)


def calls_of(spec: str) -> list[ScenarioToolCall]:
    return SCENARIOS[scenario_of(spec)].tool_calls


def kept_calls(spec: str) -> list[ScenarioToolCall]:
    return [call for call in calls_of(spec) if not blocked(call)]


def denied_calls(spec: str) -> list[ScenarioToolCall]:
    return [call for call in calls_of(spec) if blocked(call)]


def as_tool(call: ScenarioToolCall) -> tuple[str, Any]:
    return call.name, json.loads(call.arguments)


def wire_id(dialect: Dialect, call: ScenarioToolCall) -> str:
    return openai_tool_id(call) if dialect == "openai-chat" else anthropic_tool_id(call)


# --- proxies, judge, clients ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def judge() -> Iterator[JudgeMock]:
    with JudgeMock() as mock:
        yield mock


def judge_rules(judge: JudgeMock, delay_s: float = 0.0) -> None:
    """The judge blocks what `deny_tools` blocks, allows the rest, after `delay_s`."""
    judge.reset(default=allow(delay_s=delay_s))
    for needle, _, reason in BLOCKING:
        judge.when(needle, block(reason.capitalize() + ".", delay_s=delay_s))


@dataclass
class Policed:
    """A proxy running one of the chains, with its clients (one of each, so connections
    through the proxy are reused) and its database."""

    chain: Chain
    proxy: ProxyProcess
    judge: JudgeMock
    factory: ClientFactory
    raw: httpx2.Client
    openai: OpenAI
    anthropic: Anthropic

    @property
    def db(self) -> CallsDB:
        assert self.proxy.db_path is not None
        return CallsDB(self.proxy.db_path)


def _policed(chain: Chain, proxy: ProxyProcess, judge: JudgeMock, ca: MitmCA) -> Policed:
    factory = ClientFactory(proxy.url, ca, f"sk-test-holes-{secrets.token_hex(8)}")
    return Policed(chain, proxy, judge, factory, factory.raw(), factory.openai(), factory.anthropic())


@pytest.fixture(scope="module")
def chains(
    start_module_proxy: ProxyLauncher,
    tmp_path_factory: pytest.TempPathFactory,
    mitm_ca: MitmCA,
    mock_provider: MockProvider,
    judge: JudgeMock,
) -> Iterator[dict[Chain, Future[Policed]]]:
    """One mitmdump per chain for the whole module. The judge's (slow to start: it imports
    litellm) starts in the background with its own launcher while the deny_tools tests run."""
    judge_launcher = ProxyLauncher(tmp_path_factory.mktemp("judge-proxy"), mitm_ca, mock_provider.url)
    judge_policy = {**JUDGE_CHAIN[0], "api_base": judge.url}
    with ThreadPoolExecutor(1) as pool:
        started: dict[Chain, Future[Policed]] = {
            "judge": pool.submit(
                lambda: _policed(
                    "judge",
                    judge_launcher(config={"policies": [judge_policy]}, env={KEY_ENV: "sk-judge-e2e"}),
                    judge,
                    mitm_ca,
                )
            )
        }
        try:
            deny: Future[Policed] = Future()
            deny.set_result(_policed("deny_tools", start_module_proxy(config={"policies": DENY_CHAIN}), judge, mitm_ca))
            started["deny_tools"] = deny
            yield started
        finally:
            for future in started.values():
                if future.exception() is None:
                    future.result().factory.close()
            judge_launcher.stop_all()  # after the judge's start-up ended, whichever way
    for future in started.values():
        assert future.result().proxy.addon_errors() == []


@pytest.fixture(scope="module", params=CHAINS)
def policed(request: pytest.FixtureRequest, chains: dict[Chain, Future[Policed]]) -> Policed:
    """Each chain in turn (module scope: the tests of one chain run together)."""
    return chains[request.param].result(timeout=START_TIMEOUT_S)


@pytest.fixture(autouse=True)
def fresh(policed: Policed, judge: JudgeMock) -> Iterator[None]:
    """The judge's standard rules for every test; no addon error while it ran."""
    judge_rules(judge)
    since = len(policed.proxy.output())
    yield
    assert policed.proxy.addon_errors(since) == []


def prompt(spec: str) -> list[Any]:
    return [{"role": "user", "content": f"Please go ahead. [[mock:{spec}]]"}]


def request_body(dialect: Dialect, spec: str) -> dict[str, Any]:
    """A streamed request as the SDKs send it (OpenAI: with stream_options.include_usage)."""
    return llm_request(dialect, MODELS[dialect], prompt(spec), True, tools=TOOLS[dialect])


# --- what the client got -------------------------------------------------------------------------


@dataclass
class Received:
    """A streamed response read by a raw client: its bytes with arrival times."""

    call_id: str
    mock_id: str
    body: bytes
    arrivals: list[tuple[float, int]]  # (time.monotonic(), body length after the chunk)
    error: httpx2.TransportError | None  # the transport error that ended the body, if any

    def arrival_of(self, marker: bytes) -> float:
        """When the chunk completing the first occurrence of `marker` arrived."""
        end = self.body.index(marker) + len(marker)
        return next(at for at, length in self.arrivals if length >= end)


def stream_raw(policed: Policed, dialect: Dialect, spec: str) -> Received:
    """A streamed POST through the proxy; a cut body ends with its transport error (never
    with a timeout: that would be a hang)."""
    body = bytearray()
    arrivals: list[tuple[float, int]] = []
    error: httpx2.TransportError | None = None
    with policed.raw.stream(
        "POST", URLS[dialect], json=request_body(dialect, spec), headers=auth_headers(dialect, policed.factory.api_key)
    ) as response:
        assert response.status_code == 200, response.read()
        try:
            for arrival in timed_chunks(response):
                body += arrival.data
                arrivals.append((arrival.at, len(body)))
        except httpx2.TimeoutException:
            raise
        except httpx2.TransportError as caught:
            error = caught
        return Received(response.headers[CALL_ID], response.headers[MOCK_ID], bytes(body), arrivals, error)


@dataclass
class WireCall:
    """A tool call as it appears in a stream: its id, name and argument fragments."""

    id: str | None = None
    name: str | None = None
    fragments: list[str] = field(default_factory=list)

    @property
    def arguments(self) -> str:
        return "".join(self.fragments)


def wire_calls(dialect: Dialect, body: bytes) -> list[WireCall]:
    """Every tool call in a stream, read from the events themselves (not by the SDKs)."""
    calls: dict[int, WireCall] = {}
    for event in parse_all(body):
        payload = event.json()
        if not isinstance(payload, dict):
            continue
        if dialect == "openai-chat":
            for choice in payload.get("choices") or ():
                for delta in (choice.get("delta") or {}).get("tool_calls") or ():
                    call = calls.setdefault(delta.get("index"), WireCall())
                    function = delta.get("function") or {}
                    call.id = call.id or delta.get("id")
                    call.name = call.name or function.get("name")
                    if function.get("arguments"):
                        call.fragments.append(function["arguments"])
        elif payload.get("type") == "content_block_start" and payload["content_block"].get("type") == "tool_use":
            block = payload["content_block"]
            calls[payload["index"]] = WireCall(block.get("id"), block.get("name"))
        elif (
            payload.get("type") == "content_block_delta"
            and payload["index"] in calls
            and payload["delta"].get("type") == "input_json_delta"
        ):
            calls[payload["index"]].fragments.append(payload["delta"].get("partial_json") or "")
    return list(calls.values())


def is_error_event(dialect: Dialect, event: SSEEvent) -> bool:
    payload = event.json()
    if dialect == "anthropic-messages":
        return event.event == "error" and isinstance(payload, dict) and payload.get("type") == "error"
    return isinstance(payload, dict) and "error" in payload and "choices" not in payload


def visible_events(body: bytes) -> list[tuple[str | None, str | None]]:
    """What a client acts on: each event's name and data (comments left out)."""
    return [(event.event, event.data) for event in parse_all(body) if not event.is_comment_only]


def comment_count(body: bytes) -> int:
    return sum(len(event.comments) for event in parse_all(body))


def assert_never_delivered(dialect: Dialect, body: bytes, call: ScenarioToolCall) -> None:
    """A blocked call reached the client in no form: not its id, not as a tool call of
    another id, not a single fragment of its arguments as tool-call arguments."""
    assert wire_id(dialect, call).encode() not in body
    for seen in wire_calls(dialect, body):
        assert not (seen.name == call.name and json.loads(seen.arguments or "{}") == json.loads(call.arguments))
        assert not set(seen.fragments) & {piece for piece in call.argument_pieces if len(piece) > 3}, seen
        for needle, _, _ in BLOCKING:
            assert needle not in seen.arguments


def assert_delivered_intact(dialect: Dialect, body: bytes, call: ScenarioToolCall) -> None:
    calls = wire_calls(dialect, body)
    matching = [seen for seen in calls if seen.id == wire_id(dialect, call)]
    assert len(matching) == 1, f"{call.name} {call.arguments} should reach the client once; it got {calls}"
    assert (matching[0].name, _loads(matching[0].arguments)) == as_tool(call)


# --- the SDKs --------------------------------------------------------------------------------------


@dataclass
class SDKView:
    """What an official SDK made of a stream, however it ended."""

    call_id: str
    role: str | None
    text: str
    tools: list[tuple[str, Any]]
    stop: str | None
    error: Exception | None  # what the SDK raised while reading, if anything


def sdk_stream(policed: Policed, dialect: Dialect, spec: str) -> SDKView:
    """A streamed call through the SDK's own accumulators; an error the SDK raises (an
    upstream error event, a cut body) is kept with the message accumulated before it."""
    error: Exception | None = None
    if dialect == "openai-chat":
        raw = policed.openai.chat.completions.with_raw_response.create(
            model=MODELS[dialect],
            messages=prompt(spec),
            tools=TOOLS[dialect],
            stream=True,
            stream_options={"include_usage": True},
        )
        state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
        chunks = 0
        try:
            for chunk in raw.parse():
                state.handle_chunk(chunk)
                chunks += 1
        except (openai.APIError, httpx2.TransportError) as caught:
            error = caught
        if not chunks:  # the body failed before its first chunk
            return SDKView(raw.headers[CALL_ID], None, "", [], None, error)
        # The SDK's final completion when the stream ended well, else what it had so far.
        completion = state.current_completion_snapshot if error else state.get_final_completion()
        choice = completion.choices[0]
        message = choice.message
        tools = [(c.function.name, _loads(c.function.arguments)) for c in message.tool_calls or []]
        return SDKView(raw.headers[CALL_ID], message.role, message.content or "", tools, choice.finish_reason, error)
    with policed.anthropic.messages.stream(
        model=MODELS[dialect], max_tokens=256, messages=prompt(spec), tools=TOOLS[dialect]
    ) as stream:
        try:
            for _ in stream:
                pass
        except (anthropic.APIError, httpx2.TransportError) as caught:
            error = caught
        snapshot = stream.current_message_snapshot
        call_id = stream.response.headers[CALL_ID]
    text = "".join(b.text for b in snapshot.content if b.type == "text")
    tools = [(b.name, b.input) for b in snapshot.content if b.type == "tool_use"]
    return SDKView(call_id, snapshot.role, text, tools, snapshot.stop_reason, error)


def _loads(arguments: str | None) -> Any:
    try:
        return json.loads(arguments or "")
    except ValueError:
        return arguments  # partial arguments stay visible as text in a failure message


# --- the record -------------------------------------------------------------------------------------


def policy_events(db: CallsDB, call_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = db.rows("select policy, action, details_json from policy_events where call_id = ? order by id", (call_id,))
    return [(row["policy"], row["action"], json.loads(row["details_json"] or "{}")) for row in rows]


def judged(db: CallsDB, call_id: str) -> list[tuple[str, str, Any]]:
    """(decision, tool name, arguments) of each judge decision of a call, in a stable order."""
    rows = db.rows("select * from judge_decisions where call_id = ?", (call_id,))
    return sorted(
        ((row["decision"], row["tool_name"], json.loads(row["arguments_json"])) for row in rows),
        key=lambda row: json.dumps(row),
    )


def assert_blocked_record(policed: Policed, call: RecordedCall, spec: str) -> None:
    """The database says which calls were blocked, with their complete arguments."""
    assert call["verdict"] == "blocked"
    events = policy_events(policed.db, call["call_id"])
    policy = "deny_tools" if policed.chain == "deny_tools" else "tool_call_judge"
    blocked_events = [(p, a, d.get("tool_name")) for p, a, d in events if a == "blocked"]
    assert blocked_events == [(policy, "blocked", c.name) for c in denied_calls(spec)]
    if policed.chain == "deny_tools":
        assert [d["arguments"] for _, a, d in events if a == "blocked"] == [
            json.loads(c.arguments) for c in denied_calls(spec)
        ]
    else:
        expected = [("blocked", *as_tool(c)) for c in denied_calls(spec)] + [
            ("allowed", *as_tool(c)) for c in kept_calls(spec)
        ]
        assert judged(policed.db, call["call_id"]) == sorted(expected, key=lambda row: json.dumps(row))


# --- (a) a real OpenAI tool-only turn ------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_tool_only_turn_nothing_blocked_is_forwarded_byte_for_byte(
    policed: Policed, mock_provider: MockProvider, dialect: Dialect
) -> None:
    spec = "tools3"
    received = stream_raw(policed, dialect, spec)
    sent = mock_provider.exchange(received.mock_id).sent
    if dialect == "openai-chat":  # the real first chunk: role and first tool call together
        first = json.loads(parse_all(sent)[0].data or "")
        delta = first["choices"][0]["delta"]
        assert delta["role"] == "assistant" and delta["tool_calls"][0]["id"] == "call_01A09q90qw90lq917835lq9"
        assert first["obfuscation"] and first["usage"] is None and first["system_fingerprint"]
    assert received.body == sent
    view = sdk_stream(policed, dialect, spec)
    assert view.error is None
    assert view.role == "assistant"
    assert (view.text, view.tools, view.stop) == ("", [as_tool(c) for c in calls_of(spec)], STOPS[dialect][0])
    call = policed.db.wait_call(received.call_id)
    assert call["verdict"] == "pass"
    assert call.stages["response_final"]["raw"] == received.body


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_tool_only_turn_with_its_call_blocked_keeps_the_protocol(
    policed: Policed, mock_provider: MockProvider, dialect: Dialect
) -> None:
    spec = "long_args"
    [call] = calls_of(spec)
    received = stream_raw(policed, dialect, spec)
    assert stream_violations(dialect, received.body, request_body(dialect, spec)) == []
    assert wire_calls(dialect, received.body) == []
    assert_never_delivered(dialect, received.body, call)
    view = sdk_stream(policed, dialect, spec)
    assert view.error is None
    assert view.role == "assistant"
    assert view.tools == [] and view.stop == STOPS[dialect][1]
    assert f"{NOTICE} `Bash`" in view.text and "greps the whole tree" in view.text.lower()
    record = policed.db.wait_call(received.call_id)
    assert record.stages["response_original"]["raw"] == mock_provider.exchange(received.mock_id).sent
    assert record.stages["response_final"]["raw"] == received.body
    assert_blocked_record(policed, record, spec)


# --- (b) interleaved tool-call deltas -----------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_interleaved_call_is_decided_on_its_complete_arguments(
    policed: Policed, mock_provider: MockProvider, dialect: Dialect
) -> None:
    spec = "interleaved"
    rm_rf, read_file = calls_of(spec)
    received = stream_raw(policed, dialect, spec)
    if dialect == "openai-chat":  # upstream really completes call 0 after call 1 started
        sent = mock_provider.exchange(received.mock_id).sent
        assert sent.index(b'"id":"call_01C5h') < sent.index(b"rm -rf /")
    assert stream_violations(dialect, received.body, request_body(dialect, spec)) == []
    assert_never_delivered(dialect, received.body, rm_rf)
    assert_delivered_intact(dialect, received.body, read_file)
    assert len(wire_calls(dialect, received.body)) == 1
    view = sdk_stream(policed, dialect, spec)
    assert view.error is None and view.role == "assistant"
    assert view.tools == [as_tool(read_file)] and view.stop == STOPS[dialect][0]
    assert f"{NOTICE} `Bash`" in view.text and "rm -rf /" in view.text  # the notice shows what was blocked
    for call_id in (received.call_id, view.call_id):
        assert_blocked_record(policed, policed.db.wait_call(call_id), spec)
    if policed.chain == "judge":  # asked once per call, never about a half-built one
        bash_prompts = [r.prompt_text for r in policed.judge.requests if "Bash" in r.prompt_text]
        assert len(bash_prompts) == 2 and all("rm -rf /" in text for text in bash_prompts)
        assert len(policed.judge.requests) == 4


# --- (c) a stream ending after complete tool calls, without its message end -------------------------------

ENDINGS = ("error_after_blocks", "cut_before_finish")
ENDED_SPECS = [f"{scenario}+{ending}" for scenario in ("long_args", "tools2", "interleaved") for ending in ENDINGS]


def assert_upstream_ending(dialect: Dialect, received: Received, spec: str) -> None:
    """The client sees the stream end the way upstream ended it."""
    events = [event for event in parse_all(received.body) if not event.is_comment_only]
    if spec.endswith("error_after_blocks"):
        assert received.error is None
        assert is_error_event(dialect, events[-1]), events[-1].raw
        assert b"Overloaded" in events[-1].raw
        assert sum(is_error_event(dialect, event) for event in events) == 1
    else:
        assert cut_short(received.error), received.error
        assert not any(is_error_event(dialect, event) for event in events)


def delivered(dialect: Dialect, body: bytes, spec: str) -> list[ScenarioToolCall]:
    """The scenario's calls whose id reached the client."""
    return [call for call in calls_of(spec) if wire_id(dialect, call).encode() in body]


@pytest.mark.parametrize("spec", ENDED_SPECS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_stream_ending_after_complete_tool_calls(
    policed: Policed, mock_provider: MockProvider, dialect: Dialect, spec: str
) -> None:
    """An error event after the calls: the allowed ones go out as upstream sent them, then
    the error. A cut connection: the client sees the cut; whatever calls it got were
    allowed, whole, and decided first (with a body that never ended, mitmproxy never
    calls the stream for its end: held calls may stay held)."""
    if policed.chain == "judge":
        judge_rules(policed.judge, delay_s=JUDGE_DELAY_S)
    errored = spec.endswith("error_after_blocks")
    received = stream_raw(policed, dialect, spec)
    exchange = mock_provider.exchange(received.mock_id)
    for call in calls_of(spec):  # upstream sent every call whole
        assert wire_id(dialect, call).encode() in exchange.sent
    assert_upstream_ending(dialect, received, spec)
    for call in denied_calls(spec):
        assert_never_delivered(dialect, received.body, call)
    got = delivered(dialect, received.body, spec)
    assert len(wire_calls(dialect, received.body)) == len(got)  # no call under another id
    if errored:
        assert got == kept_calls(spec)
    for call in got:
        assert not blocked(call)
        assert_delivered_intact(dialect, received.body, call)
    if not denied_calls(spec):  # nothing to change: the client gets what upstream sent (or its start)
        assert received.body == exchange.sent if errored else exchange.sent.startswith(received.body)
    if policed.chain == "judge":
        # Every call the client got was judged once, and reached it only after the answer.
        requests = policed.judge.requests
        for call in got:
            asked = [r for r in requests if json.loads(call.arguments)[_distinctive(call)] in r.prompt_text]
            assert len(asked) == 1, f"the judge was asked {len(asked)} times about {call.arguments}"
            assert received.arrival_of(wire_id(dialect, call).encode()) >= asked[0].at + JUDGE_DELAY_S
    record = policed.db.wait_call(received.call_id)  # the flow ended: the proxy did not hang
    assert record.stages["response_original"]["raw"] == exchange.sent
    if denied_calls(spec) and errored:  # the body ended: every call was decided
        assert_blocked_record(policed, record, spec)


def _distinctive(call: ScenarioToolCall) -> str:
    """The argument that tells a call from the others of its scenario."""
    return next(iter(json.loads(call.arguments)))


def cut_short(error: BaseException | None) -> bool:
    """The SDK's error is (or wraps) the incomplete body, not a timeout."""
    while error is not None:
        if isinstance(error, httpx2.TimeoutException):
            return False
        if isinstance(error, httpx2.RemoteProtocolError):
            return True
        error = error.__cause__ or error.__context__
    return False


@pytest.mark.parametrize("spec", ENDED_SPECS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_sdk_sees_allowed_calls_and_the_upstream_error_only(policed: Policed, dialect: Dialect, spec: str) -> None:
    view = sdk_stream(policed, dialect, spec)
    allowed = [as_tool(call) for call in kept_calls(spec)]
    assert view.stop is None  # the message never ended
    if spec.endswith("error_after_blocks"):
        assert view.tools == allowed
        assert isinstance(view.error, openai.APIError | anthropic.APIError), view.error
        assert "Overloaded" in str(view.error)
    else:
        assert view.tools == allowed[: len(view.tools)]  # allowed calls or none of them, in order
        assert cut_short(view.error), view.error
    assert view.role == "assistant" or (view.role is None and view.error is not None)  # None: nothing came
    assert policed.db.wait_call(view.call_id)


# --- transport: how upstream cuts its writes does not change what the client gets ------------------------

TRANSPORT_SCENARIOS = ("tools3", "long_args", "interleaved", "unicode", "interleaved+error_after_blocks")
TRANSPORTS = ("coalesce", "split", "mixed", "coalesce+keepalive", "mixed+openrouter")


@pytest.fixture(scope="module")
def per_event_results() -> dict[tuple[Chain, Dialect, str], bytes]:
    """The client's bytes for a scenario sent one write per event, by chain and dialect."""
    return {}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", TRANSPORT_SCENARIOS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_client_gets_the_same_events_however_upstream_cuts_its_writes(
    policed: Policed,
    mock_provider: MockProvider,
    per_event_results: dict[tuple[Chain, Dialect, str], bytes],
    dialect: Dialect,
    scenario: str,
    transport: str,
) -> None:
    key = (policed.chain, dialect, scenario)
    if key not in per_event_results:
        baseline = stream_raw(policed, dialect, scenario)
        sent = mock_provider.exchange(baseline.mock_id)
        assert len(sent.writes) == len(parse_all(sent.sent))  # one write per event
        per_event_results[key] = baseline.body
    expected = per_event_results[key]
    spec = f"{scenario}+{transport}"
    received = stream_raw(policed, dialect, spec)
    exchange = mock_provider.exchange(received.mock_id)
    assert_transport_applied(exchange.writes, transport)
    assert received.error is None
    assert visible_events(received.body) == visible_events(expected)
    assert comment_count(received.body) == comment_count(exchange.sent)  # keep-alive comments kept
    if "error" not in scenario:
        assert stream_violations(dialect, received.body, request_body(dialect, spec)) == []
        assert sdk_summary(dialect, received.body) == sdk_summary(dialect, expected)
    for call in denied_calls(scenario):
        assert_never_delivered(dialect, received.body, call)
    for call in kept_calls(scenario):
        assert_delivered_intact(dialect, received.body, call)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def assert_transport_applied(writes: list[bytes], transport: str) -> None:
    """The mock really cut its writes the way the test asked."""
    body = b"".join(writes)
    events = parse_all(body)
    data_events = [event for event in events if not event.is_comment_only]
    if transport.startswith("coalesce"):
        assert len(writes) < len(events)
    if transport.startswith(("split", "mixed")):
        assert len(writes) > len(events)
        assert any(not write.endswith(b"\n\n") for write in writes)  # writes end mid-event
    if transport.startswith("split") and any(byte >= 0x80 for byte in body):
        assert not all(_decodes(write) for write in writes)  # a UTF-8 character split across writes
    if "keepalive" in transport or "openrouter" in transport:
        assert len(events) > len(data_events)
    else:
        assert len(events) == len(data_events)
