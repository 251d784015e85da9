"""The fault suite's upstream cases (issue 9), through a real mitmdump and the loopback mock.

Each case runs on a proxy of its own (idle timeout `IDLE_S`) with a paced stream beside
it, and checks what `fault_kit` says every case checks: the client's answer or clean
error, in its dialect, within a bound; the paced stream's pacing; every call recorded or
counted as dropped; the test's API key nowhere in the database. Then `report()`.

- A provider that never answers: a 504 with the dialect's error body, which the official
  SDK raises as its status error with our message; upstream's connection is closed.
- A provider that falls silent mid-stream: the dialect's stream error event, which the
  SDK raises; a tool call a policy was holding never reaches the client.
- A slow drip (one event a second, under the idle timeout): streams through, paced.
- Reset, truncated, garbage, HTML 500: the client sees what upstream did (a cut, the
  bytes, the page) at once; nothing hangs; the record says what went wrong.
- gzip, deflate, br, zstd SSE: with no response policy the client gets upstream's bytes
  exactly (compressed) and the record the decoded events; policed, the stream is
  decoded and policed live, and reaches the client as identity.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from anthropic.types import RawContentBlockDeltaEvent, TextDelta
from fault_kit import PacedStream, RecorderTotals, assert_accounted, assert_no_secret, report
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, auth_headers, llm_request, timed_chunks
from harness_db import CallsDB, RecordedCall
from mitmproxy.net.encoding import decode
from mock_provider import DRIP_DELAY_MS, GARBAGE, MockProvider
from policy_fixtures import sdk_summary, stream_violations
from wire_scenarios import SCENARIOS

from interlock.sse import parse_all

# Each case measures a concurrent stream's pacing: nothing else runs meanwhile (tests/solo.py).
pytestmark = pytest.mark.solo

IDLE_S = 2  # the upstream idle timeout of every proxy here
ANSWER_BOUND_S = IDLE_S + 6.0  # the give-up answer comes after IDLE_S; the rest is a loaded machine's slack
PROMPT_BOUND_S = 6.0  # an upstream failure that needs no timeout reaches the client at once
DIALECTS = ("openai-chat", "anthropic-messages")
URLS = {
    "openai-chat": "https://api.openai.com/v1/chat/completions",
    "anthropic-messages": "https://api.anthropic.com/v1/messages",
}
MODELS = {"openai-chat": "gpt-4o-mini", "anthropic-messages": "claude-sonnet-4-6"}
CALL_ID = "x-interlock-call-id"
MOCK_ID = "x-mock-request-id"
GIVE_UP = f"the provider sent nothing for {IDLE_S} s"
IDLE_ERROR = f"upstream idle for {IDLE_S} s"
TEXT = "".join(SCENARIOS["text"].text)
REPLACE = [{"policy": "replace", "rules": [{"find": "mock provider", "replace": "real vendor"}]}]
HOLD_WEATHER = [{"policy": "deny_tools", "deny": ["get_weather"]}]
HOLD_NOTHING = [{"policy": "deny_tools", "deny": ["read_file"]}]  # holds every call until complete, allows it


def config(policies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"upstream": {"idle_timeout_s": IDLE_S}, "policies": policies or []}


def messages(spec: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"[[mock:{spec}]] hello"}]


def sdk_messages(spec: str) -> Any:
    """The same messages, for the SDKs' typed parameters."""
    return messages(spec)


def unpacked(data: bytes, encoding: str) -> bytes:
    """`data` decoded from `encoding` by mitmproxy (not by the code under test)."""
    out = decode(data, encoding)
    assert isinstance(out, bytes)
    return out


@dataclass
class Fault:
    """One case: its proxy, clients and the paced stream running beside it."""

    proxy: ProxyProcess
    clients: ClientFactory
    api_key: str
    paced: PacedStream
    calls: int = 0  # the calls the case itself made

    @property
    def db(self) -> CallsDB:
        assert self.proxy.db_path is not None
        return CallsDB(self.proxy.db_path)

    def close(self, case: str, outcome: str, **figures: Any) -> RecorderTotals:
        """The checks every case ends with, then its row in the figures table."""
        self.paced.finish()
        self.paced.assert_paced()
        calls = self.calls + self.paced.calls
        totals = assert_accounted(self.proxy, calls)
        assert_no_secret(self.proxy.db_path, self.api_key)
        report(
            case,
            outcome,
            calls=calls,
            records=totals.written,
            dropped=totals.dropped,
            paced_max_gap_s=round(self.paced.max_gap, 3),
            **figures,
        )
        return totals


@pytest.fixture
def fault(start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], api_key: str) -> Any:
    """`fault(policies)` starts a proxy for the case, and the paced stream beside it."""
    started: list[Fault] = []

    def start(policies: list[dict[str, Any]] | None = None) -> Fault:
        proxy = start_proxy(config=config(policies))
        clients = make_clients(proxy)
        paced = PacedStream(clients)
        paced.start()
        case = Fault(proxy, clients, api_key, paced)
        started.append(case)
        return case

    yield start
    for case in started:  # a failed case must not leave its paced stream running
        if case.paced.is_alive():
            case.paced.finish()


@dataclass
class Received:
    """A raw streamed exchange: undecoded body bytes, arrival times, how it ended."""

    status: int
    headers: httpx2.Headers
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    error: Exception | None = None
    started: float = 0.0
    ended: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)

    @property
    def took(self) -> float:
        return self.ended - self.started

    @property
    def call_id(self) -> str:
        return self.headers[CALL_ID]

    def first_byte_after(self) -> float:
        return self.chunks[0][0] - self.started


def post_raw(case: Fault, dialect: str, spec: str, stream: bool = True) -> Received:
    """One call with a raw client; the body as it came off the wire (never decoded)."""
    case.calls += 1
    client = case.clients.raw()
    body = llm_request(dialect, MODELS[dialect], messages(spec), stream=stream)
    started = time.monotonic()
    with client.stream("POST", URLS[dialect], json=body, headers=auth_headers(dialect, case.api_key)) as response:
        received = Received(response.status_code, response.headers, started=started)
        try:
            received.chunks = [(arrival.at, arrival.data) for arrival in timed_chunks(response)]
        except httpx2.TransportError as error:
            received.error = error
    received.ended = time.monotonic()
    return received


@dataclass
class SdkOutcome:
    """What an official SDK made of a call: its text, or the error it raised."""

    text: str = ""
    error: Exception | None = None
    call_id: str | None = None
    took: float = 0.0


def sdk_call(case: Fault, dialect: str, spec: str, stream: bool) -> SdkOutcome:
    case.calls += 1
    outcome = SdkOutcome()
    started = time.monotonic()
    try:
        if dialect == "openai-chat":
            _openai_call(case.clients.openai(), spec, stream, outcome)
        else:
            _anthropic_call(case.clients.anthropic(), spec, stream, outcome)
    except (openai.APIError, anthropic.APIError) as error:
        outcome.error = error
        response = getattr(error, "response", None)
        if response is not None and outcome.call_id is None:
            outcome.call_id = response.headers.get(CALL_ID)
    outcome.took = time.monotonic() - started
    return outcome


def _openai_call(client: openai.OpenAI, spec: str, stream: bool, outcome: SdkOutcome) -> None:
    if not stream:
        raw = client.chat.completions.with_raw_response.create(model=MODELS["openai-chat"], messages=sdk_messages(spec))
        outcome.call_id = raw.headers.get(CALL_ID)
        outcome.text = raw.parse().choices[0].message.content or ""
        return
    chunks = client.chat.completions.create(model=MODELS["openai-chat"], messages=sdk_messages(spec), stream=True)
    outcome.call_id = chunks.response.headers.get(CALL_ID)
    for chunk in chunks:
        for choice in chunk.choices:
            outcome.text += choice.delta.content or ""


def _anthropic_call(client: anthropic.Anthropic, spec: str, stream: bool, outcome: SdkOutcome) -> None:
    model = MODELS["anthropic-messages"]
    if not stream:
        raw = client.messages.with_raw_response.create(model=model, max_tokens=256, messages=sdk_messages(spec))
        outcome.call_id = raw.headers.get(CALL_ID)
        outcome.text = "".join(block.text for block in raw.parse().content if block.type == "text")
        return
    events = client.messages.create(model=model, max_tokens=256, messages=sdk_messages(spec), stream=True)
    outcome.call_id = events.response.headers.get(CALL_ID)
    for event in events:
        if isinstance(event, RawContentBlockDeltaEvent) and isinstance(event.delta, TextDelta):
            outcome.text += event.delta.text


def assert_dialect_timeout(dialect: str, error: Exception | None, status: int) -> None:
    """The SDK raised its own status error carrying the dialect's timeout body."""
    if dialect == "openai-chat":
        assert isinstance(error, openai.APIError), error
        if status:
            assert isinstance(error, openai.APIStatusError) and error.status_code == status
        assert error.code == "upstream_timeout" and error.type == "server_error"
    else:
        assert isinstance(error, anthropic.APIStatusError), error
        assert error.status_code == (status or 200)
        assert isinstance(error.body, dict) and error.body["error"]["type"] == "timeout_error"
    assert GIVE_UP in str(error)


def wait_record(case: Fault, call_id: str | None) -> RecordedCall:
    assert call_id, "the answer carries no call id"
    return case.db.wait_call(call_id)


def is_error_event(dialect: str, raw: bytes) -> bool:
    event = parse_all(raw)[0]
    data = event.json()
    if dialect == "anthropic-messages":
        return event.event == "error" and isinstance(data, dict) and data.get("type") == "error"
    return isinstance(data, dict) and "error" in data and "choices" not in data


# --- a provider that never answers, or falls silent -------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_provider_that_never_answers_gets_a_504_in_the_dialect(
    fault: Callable[..., Fault], mock_provider: MockProvider, dialect: str
) -> None:
    case = fault()
    outcome = sdk_call(case, dialect, "never", stream=False)
    assert_dialect_timeout(dialect, outcome.error, 504)
    assert IDLE_S - 0.1 <= outcome.took < ANSWER_BOUND_S, outcome.took
    record = wait_record(case, outcome.call_id)
    assert record["status"] == 504 and IDLE_ERROR in record["error"], record.row
    assert record["verdict"] == "error"
    exchange = next(e for e in reversed(mock_provider.exchanges) if e.scenario == "never")
    deadline = time.monotonic() + 5
    while exchange.error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exchange.error == "client went away while the mock was silent"  # Interlock hung up on it
    case.close(f"never answering ({dialect})", "504 dialect error", answer_s=round(outcome.took, 2))


def test_over_http2_only_the_silent_call_is_given_up(fault: Callable[..., Fault]) -> None:
    """Two calls on one HTTP/2 connection: the silent one gets its 504, the other streams on."""
    case = fault()
    headers = auth_headers("openai", case.api_key)
    silent_body = llm_request("openai", MODELS["openai-chat"], messages("never"), stream=True)
    paced_body = llm_request("openai", MODELS["openai-chat"], messages("slow"), stream=True)
    verify = case.clients.ca.ssl_context()
    with (
        httpx2.Client(proxy=case.proxy.url, verify=verify, trust_env=False, http2=True, timeout=30) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        started = time.monotonic()
        silent = pool.submit(client.post, URLS["openai-chat"], json=silent_body, headers=headers)
        paced = pool.submit(client.post, URLS["openai-chat"], json=paced_body, headers=headers)
        given_up, streamed = silent.result(timeout=60), paced.result(timeout=60)
        took = time.monotonic() - started
    case.calls += 2
    assert given_up.http_version == streamed.http_version == "HTTP/2"
    assert given_up.status_code == 504 and given_up.json()["error"]["code"] == "upstream_timeout"
    assert streamed.status_code == 200 and sdk_summary("openai-chat", streamed.content)[0] == TEXT
    assert IDLE_ERROR in wait_record(case, given_up.headers[CALL_ID])["error"]
    assert wait_record(case, streamed.headers[CALL_ID])["error"] is None
    case.close("never answering, HTTP/2 beside a stream", "504 on that stream only", answer_s=round(took, 2))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_stream_that_never_starts_gets_a_504_too(fault: Callable[..., Fault], dialect: str) -> None:
    case = fault()
    outcome = sdk_call(case, dialect, "never", stream=True)
    assert_dialect_timeout(dialect, outcome.error, 504)
    assert outcome.took < ANSWER_BOUND_S
    record = wait_record(case, outcome.call_id)
    assert record["status"] == 504 and IDLE_ERROR in record["error"]
    case.close(f"never answering, stream ({dialect})", "504 dialect error", answer_s=round(outcome.took, 2))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_stream_that_falls_silent_ends_with_the_dialect_error_event(
    fault: Callable[..., Fault], mock_provider: MockProvider, dialect: str
) -> None:
    case = fault()
    outcome = sdk_call(case, dialect, "stall", stream=True)
    assert_dialect_timeout(dialect, outcome.error, 0)
    assert outcome.text and TEXT.startswith(outcome.text)  # what came before the silence
    assert outcome.took < ANSWER_BOUND_S
    received = post_raw(case, dialect, "stall")
    exchange = mock_provider.exchange(received.headers[MOCK_ID])
    assert received.status == 200 and received.error is None  # the body ended cleanly, after the event
    assert received.body.startswith(exchange.sent)  # upstream's bytes as they came, then ours
    assert is_error_event(dialect, received.body[len(exchange.sent) :])
    assert received.took - received.first_byte_after() >= IDLE_S - 0.1
    record = wait_record(case, received.call_id)
    assert IDLE_ERROR in record["error"] and record["status"] == 200
    assert record.stages["response_original"]["raw"] == exchange.sent
    assert record.stages["response_final"]["raw"] == received.body  # the error event included
    case.close(f"idle mid-stream ({dialect})", "stream error event", answer_s=round(received.took, 2))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_held_tool_call_is_never_released_when_upstream_falls_silent(
    fault: Callable[..., Fault], mock_provider: MockProvider, dialect: str
) -> None:
    """`tool+stall` stops inside the tool call: the policy holding it never saw it
    complete, so the client never sees it, only the text before it and the error event."""
    case = fault(HOLD_NOTHING)
    received = post_raw(case, dialect, "tool+stall")
    exchange = mock_provider.exchange(received.headers[MOCK_ID])
    call_id = next(call.id for call in SCENARIOS["tool"].tool_calls)
    assert call_id.encode() in exchange.sent  # upstream started the call
    assert call_id.encode() not in received.body and b"get_weather" not in received.body
    events = [event for event in parse_all(received.body) if not event.is_comment_only]
    assert is_error_event(dialect, events[-1].raw)
    assert received.took < ANSWER_BOUND_S
    record = wait_record(case, received.call_id)
    assert IDLE_ERROR in record["error"]
    assert record.stages["response_final"]["raw"] == received.body
    case.close(
        f"idle mid-stream, tool call held ({dialect})", "call withheld, error event", answer_s=round(received.took, 2)
    )


def test_a_slow_drip_streams_through_without_a_timeout(fault: Callable[..., Fault]) -> None:
    """One event a second, under the 2 s idle timeout, through a policy that holds tool
    calls (not text): every event arrives, one a second, and no timeout fires."""
    case = fault(HOLD_NOTHING)
    with ThreadPoolExecutor(len(DIALECTS)) as pool:
        futures = {dialect: pool.submit(post_raw, case, dialect, "drip") for dialect in DIALECTS}
        received = {dialect: future.result(timeout=60) for dialect, future in futures.items()}
    for dialect, got in received.items():
        assert got.status == 200 and got.error is None
        assert stream_violations(dialect, got.body) == []
        assert sdk_summary(dialect, got.body)[0] == TEXT
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(got.chunks)]
        assert max(gaps) < DRIP_DELAY_MS / 1000 + 0.8, gaps  # paced as upstream sent it, not held back
        assert sum(gap > DRIP_DELAY_MS / 2000 for gap in gaps) >= 3, gaps  # and not bunched at the end
        record = wait_record(case, got.call_id)
        assert record["error"] is None and record["verdict"] == "pass"
    took = max(got.took for got in received.values())
    case.close("slow drip, 1 event/s", "streamed, no timeout", answer_s=round(took, 2))


# --- upstream failures the client sees at once ------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("spec", ["reset", "truncated"])
def test_a_stream_cut_by_upstream_reaches_the_client_at_once(
    fault: Callable[..., Fault], mock_provider: MockProvider, dialect: str, spec: str
) -> None:
    case = fault(HOLD_NOTHING)
    received = post_raw(case, dialect, spec)
    exchange = mock_provider.exchange(received.headers[MOCK_ID])
    assert isinstance(received.error, httpx2.RemoteProtocolError), received.error  # the cut, as a cut
    assert received.took < PROMPT_BOUND_S
    assert exchange.sent.startswith(received.body)
    assert not any(is_error_event(dialect, event.raw) for event in parse_all(received.body) if event.data)
    record = wait_record(case, received.call_id)
    assert record["verdict"] == "error" and "peer closed connection" in record["error"], record.row
    case.close(f"upstream {spec} mid-stream ({dialect})", "client sees the cut", answer_s=round(received.took, 2))


@pytest.mark.parametrize("policies", [[], REPLACE], ids=["unpoliced", "replace"])
def test_garbage_bytes_are_passed_or_withheld_never_hang(
    fault: Callable[..., Fault], policies: list[dict[str, Any]]
) -> None:
    case = fault(policies)
    for dialect in DIALECTS:
        received = post_raw(case, dialect, "garbage")
        assert received.status == 200 and received.error is None
        assert received.took < PROMPT_BOUND_S
        # Unpoliced: byte for byte. Policed: one unparsable "event" the rewriter forwards as
        # it came (nothing in it for a policy to hold or change).
        assert received.body == b"".join(GARBAGE)
        record = wait_record(case, received.call_id)
        assert record["response_text"] is None
        assert record.stages["response_original"]["raw"] == b"".join(GARBAGE)
        assert record.stages["response_original"]["note"], "the record says the stream was not understood"
    case.close(f"garbage SSE ({'policed' if policies else 'unpoliced'})", "bytes as sent, noted")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_html_500_reaches_the_sdk_as_its_status_error(fault: Callable[..., Fault], dialect: str) -> None:
    case = fault(REPLACE)
    outcome = sdk_call(case, dialect, "error_500_html", stream=True)
    error = outcome.error
    assert isinstance(error, openai.InternalServerError | anthropic.InternalServerError), error
    assert error.status_code == 500 and "Internal Server Error" in error.response.text
    assert outcome.took < PROMPT_BOUND_S
    record = wait_record(case, outcome.call_id)
    assert record["status"] == 500 and "HTTP 500" in record["error"]
    case.close(f"HTML 500 ({dialect})", "SDK status error", answer_s=round(outcome.took, 2))


# --- compressed streams -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate", "zstd"])
def test_a_compressed_stream_with_no_response_policy_is_forwarded_as_sent(
    fault: Callable[..., Fault], mock_provider: MockProvider, encoding: str
) -> None:
    case = fault()
    for dialect in DIALECTS:
        received = post_raw(case, dialect, f"tools2+{encoding}")
        exchange = mock_provider.exchange(received.headers[MOCK_ID])
        assert received.headers["content-encoding"] == encoding
        assert received.body == exchange.sent  # compressed, byte for byte
        decoded = unpacked(exchange.sent, encoding)
        assert len(received.chunks) > 1  # streamed, not buffered
        record = wait_record(case, received.call_id)
        assert record.stages["response_original"]["raw"] == decoded  # the record reads the events
        assert record.stages["response_original"]["note"] is None
        assert record["response_text"] == "".join(SCENARIOS["tools2"].text)
        message = record.stage_body("response_final")
        assert isinstance(message, dict) and sdk_summary(dialect, message) == sdk_summary(dialect, decoded)
    case.close(f"{encoding} SSE, no response policy", "forwarded compressed, recorded decoded")


@pytest.mark.parametrize("encoding", ["gzip", "br"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_compressed_stream_is_policed_live_and_sent_as_identity(
    fault: Callable[..., Fault], mock_provider: MockProvider, dialect: str, encoding: str
) -> None:
    """`replace` rewrites the text and `deny_tools` holds and blocks get_weather, on a
    compressed stream paced at 50 ms an event: policed as it passes, never buffered."""
    case = fault([*REPLACE, *HOLD_WEATHER])
    received = post_raw(case, dialect, f"tool+{encoding}+slow")
    exchange = mock_provider.exchange(received.headers[MOCK_ID])
    assert "content-encoding" not in received.headers and "content-length" not in received.headers
    assert stream_violations(dialect, received.body) == []
    text, tools, _ = sdk_summary(dialect, received.body)
    assert tools == [] and "blocked" in text.lower()  # the call was held and blocked
    upstream = unpacked(exchange.sent, encoding)
    assert b"get_weather" in upstream
    first_piece = received.chunks[0][0] - received.started
    assert first_piece < received.took - 0.2  # the client read the start long before the end
    record = wait_record(case, received.call_id)
    assert record.stages["response_original"]["raw"] == upstream
    assert record.stages["response_final"]["raw"] == received.body
    assert record["verdict"] == "blocked"
    case.close(f"{encoding} SSE, policed ({dialect})", "policed live, identity", answer_s=round(received.took, 2))


@pytest.mark.parametrize("policies", [[], REPLACE], ids=["unpoliced", "replace"])
def test_a_compressed_whole_body_is_decoded_and_kept_consistent(
    fault: Callable[..., Fault], mock_provider: MockProvider, policies: list[dict[str, Any]]
) -> None:
    """Non-streamed: mitmproxy decodes the body; unchanged it goes out as upstream sent
    it, rewritten it is encoded again under the same `content-encoding`."""
    case = fault(policies)
    expected = TEXT.replace("mock provider", "real vendor") if policies else TEXT
    for dialect in DIALECTS:
        received = post_raw(case, dialect, "gzip", stream=False)
        exchange = mock_provider.exchange(received.headers[MOCK_ID])
        assert received.status == 200 and received.headers["content-encoding"] == "gzip"
        if not policies:
            assert received.body == exchange.sent
        assert sdk_summary(dialect, json.loads(unpacked(received.body, "gzip")))[0] == expected
        outcome = sdk_call(case, dialect, "gzip", stream=False)  # the SDK decodes what it gets
        assert outcome.error is None and outcome.text == expected
        record = wait_record(case, received.call_id)
        assert record["verdict"] == ("modified" if policies else "pass")
        assert record["response_text"] == expected
    case.close(f"gzip JSON body ({'policed' if policies else 'unpoliced'})", "decoded, consistent encoding")
