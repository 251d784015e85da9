"""The mock provider on its own (no proxy): request specs, transport modes and the
failures e2e tests ask for, read by a raw client and by the official SDKs."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import pytest
from mock_provider import Exchange, MockProvider, Plan, plan_of
from protocol_check import check_anthropic_stream, check_openai_chat_stream
from wire_scenarios import RESPONSES_SCENARIOS, SCENARIOS, anthropic_sse, openai_chat_sse, openai_responses_sse

from interlock.sse import parse_all

PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
HEADERS = {"openai": {"authorization": "Bearer k"}, "anthropic": {"x-api-key": "k"}}
MODEL = "m"


@pytest.fixture(scope="module")
def http(mock_provider: MockProvider) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=mock_provider.url, trust_env=False, timeout=10) as client:
        yield client


def body_for(dialect: str, spec: str, stream: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": f"hi [[mock:{spec}]]"}]}
    if stream:
        body["stream"] = True
    if stream and dialect == "openai":
        body["stream_options"] = {"include_usage": True}
    return body


def exchange_of(
    http: httpx2.Client, mock: MockProvider, dialect: str, spec: str, headers: dict[str, str] | None = None
) -> tuple[httpx2.Response, Exchange]:
    """One streamed request read to its end (a closed connection is not an error here)."""
    with http.stream(
        "POST", PATHS[dialect], json=body_for(dialect, spec), headers={**HEADERS[dialect], **(headers or {})}
    ) as response:
        try:
            response.read()
        except httpx2.RemoteProtocolError:
            pass
    return response, mock.exchange(response.headers["x-mock-request-id"])


def expected_events(dialect: str, scenario: str) -> list[bytes]:
    s = SCENARIOS[scenario]
    return anthropic_sse(s, MODEL) if dialect == "anthropic" else openai_chat_sse(s, MODEL, include_usage=True)


def violations(dialect: str, body: bytes) -> list[str]:
    events = parse_all(body)
    return check_anthropic_stream(events) if dialect == "anthropic" else check_openai_chat_stream(events)


# --- specs --------------------------------------------------------------------------------


def test_plan_of_reads_every_part_in_any_order() -> None:
    assert plan_of("text") == Plan("text")
    assert plan_of("slow") == Plan("text", slow=True)
    assert plan_of("truncated") == Plan("text", "truncated")
    assert plan_of("cut_before_finish") == Plan("tool", "cut_before_finish")
    assert plan_of("split+tools3+error_after_blocks+openrouter") == Plan(
        "tools3", "error_after_blocks", "split", b": OPENROUTER PROCESSING\n\n"
    )
    assert plan_of("tools2", chunking_header="coalesce").chunking == "coalesce"
    assert plan_of("tools2+mixed", chunking_header="coalesce").chunking == "mixed"
    for bad in ("nonsense", "text+tool", "truncated+cut_before_finish", "text+Split"):
        with pytest.raises(ValueError, match="unknown or repeated"):
            plan_of(bad)
    with pytest.raises(ValueError, match="x-mock-chunking"):
        plan_of("text", chunking_header="bytewise")


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_bad_specs_get_a_400(http: httpx2.Client, dialect: str) -> None:
    unknown = http.post(PATHS[dialect], json=body_for(dialect, "tool+nonsense"), headers=HEADERS[dialect])
    assert unknown.status_code == 400 and "'nonsense'" in unknown.text
    headers = {**HEADERS[dialect], "x-mock-chunking": "bytewise"}
    chunking = http.post(PATHS[dialect], json=body_for(dialect, "tool"), headers=headers)
    assert chunking.status_code == 400 and "bytewise" in chunking.text
    needs_stream = http.post(
        PATHS[dialect], json=body_for(dialect, "error_after_blocks", False), headers=HEADERS[dialect]
    )
    assert needs_stream.status_code == 400 and "needs stream: true" in needs_stream.text
    responses_only = http.post(PATHS[dialect], json=body_for(dialect, "response_failed"), headers=HEADERS[dialect])
    assert (
        responses_only.status_code == 400 and "response_failed is served on /v1/responses only" in responses_only.text
    )


# --- transport ----------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
@pytest.mark.parametrize("chunking", ["per-event", "coalesce", "split", "mixed"])
def test_chunking_changes_the_writes_not_the_bytes(
    http: httpx2.Client, mock_provider: MockProvider, dialect: str, chunking: str
) -> None:
    events = expected_events(dialect, "unicode")
    response, exchange = exchange_of(http, mock_provider, dialect, f"unicode+{chunking}")
    assert response.content == exchange.sent == b"".join(events) == b"".join(exchange.writes)
    ends = set(_ends(events))
    write_ends = set(_ends(exchange.writes))
    if chunking == "per-event":
        assert exchange.writes == events
    elif chunking == "coalesce":
        assert write_ends < ends  # every write ends an event, some hold several
        assert len(exchange.writes) < len(events)
    elif chunking == "split":
        assert ends < write_ends and len(exchange.writes) >= 3 * len(events)
        assert any(not _is_utf8(write) for write in exchange.writes)  # a character split in two
    else:
        assert not write_ends <= ends and not ends <= write_ends
        assert any(b"\n\n" in write[:-2] for write in exchange.writes)  # one event ends, the next starts


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("option", "comment"), [("keepalive", b": keep-alive\n\n"), ("openrouter", b": OPENROUTER PROCESSING\n\n")]
)
def test_keepalive_comments(
    http: httpx2.Client, mock_provider: MockProvider, dialect: str, option: str, comment: bytes
) -> None:
    events = expected_events(dialect, "tools2")
    response, _ = exchange_of(http, mock_provider, dialect, f"tools2+{option}")
    assert response.content.startswith(comment)
    assert response.content.count(comment) == -(-len(events) // 3)
    assert response.content.replace(comment, b"") == b"".join(events)
    assert violations(dialect, response.content) == []


def test_stamp_writes_each_events_send_time(http: httpx2.Client) -> None:
    """`stamp`: each text delta says when the mock wrote it (the benchmarks' per-event latency)."""
    headers = {**HEADERS["openai"], "x-mock-delay-ms": "20"}
    arrivals: list[tuple[int, int]] = []  # (sent, received), monotonic ns
    with http.stream("POST", PATHS["openai"], json=body_for("openai", "stamped+stamp"), headers=headers) as response:
        for line in response.iter_lines():
            choices = json.loads(line[6:])["choices"] if line.startswith("data: {") else []
            if choices and choices[0]["delta"].get("content"):
                arrivals.append((int(choices[0]["delta"]["content"]), time.monotonic_ns()))
    assert len(arrivals) == len(SCENARIOS["stamped"].text)
    sent = [s for s, _ in arrivals]
    assert all(later - earlier >= 15_000_000 for earlier, later in itertools.pairwise(sent))  # 20 ms apart
    assert all(0 <= received - s < 1_000_000_000 for s, received in arrivals)


# --- the official SDKs read every transport -----------------------------------------------


@pytest.mark.parametrize("spec", ["interleaved+split", "tools3+mixed+keepalive", "unicode+coalesce+openrouter"])
def test_openai_sdk_reads_the_mock(mock_provider: MockProvider, spec: str) -> None:
    name = spec.split("+")[0]
    with httpx2.Client(trust_env=False) as client:
        sdk = openai.OpenAI(api_key="k", base_url=f"{mock_provider.url}/v1", http_client=client, max_retries=0)
        with sdk.chat.completions.stream(
            model=MODEL,
            messages=[{"role": "user", "content": f"[[mock:{spec}]]"}],
            stream_options={"include_usage": True},
        ) as stream:
            completion = stream.get_final_completion()
    message = completion.choices[0].message
    s = SCENARIOS[name]
    assert message.role == "assistant"
    assert (message.content or "") == "".join(s.text)
    calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or [] if c.type == "function"]
    assert calls == [(f"call_{c.id}", c.name, c.arguments) for c in s.tool_calls]
    assert completion.usage is not None and completion.usage.completion_tokens == s.output_tokens


@pytest.mark.parametrize("spec", ["tools2+split+keepalive", "thinking+mixed", "unicode+coalesce"])
def test_anthropic_sdk_reads_the_mock(mock_provider: MockProvider, spec: str) -> None:
    name = spec.split("+")[0]
    with httpx2.Client(trust_env=False) as client:
        sdk = anthropic.Anthropic(api_key="k", base_url=mock_provider.url, http_client=client, max_retries=0)
        with sdk.messages.stream(
            model=MODEL, max_tokens=256, messages=[{"role": "user", "content": f"[[mock:{spec}]]"}]
        ) as stream:
            message = stream.get_final_message()
    s = SCENARIOS[name]
    assert "".join(b.text for b in message.content if b.type == "text") == "".join(s.text)
    assert [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"] == [
        (f"toolu_{c.id}", c.name, json.loads(c.arguments)) for c in s.tool_calls
    ]
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens, usage.service_tier) == (
        s.input_tokens,
        s.output_tokens,
        "standard",
    )


# --- failures after complete content ------------------------------------------------------


def test_anthropic_error_after_the_tool_block(http: httpx2.Client, mock_provider: MockProvider) -> None:
    events = expected_events("anthropic", "tools2")
    _, exchange = exchange_of(http, mock_provider, "anthropic", "tools2+error_after_blocks")
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    assert exchange.sent == b"".join(events[:-2]) + error
    assert events[-3].startswith(b"event: content_block_stop\n")
    with httpx2.Client(trust_env=False) as client:
        sdk = anthropic.Anthropic(api_key="k", base_url=mock_provider.url, http_client=client, max_retries=0)
        with (
            sdk.messages.stream(
                model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "[[mock:error_after_blocks]]"}]
            ) as stream,
            pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        ):
            stream.get_final_message()


def test_openai_error_chunk_before_the_finish(http: httpx2.Client, mock_provider: MockProvider) -> None:
    events = expected_events("openai", "tools2")
    _, exchange = exchange_of(http, mock_provider, "openai", "tools2+error_after_blocks")
    assert exchange.sent.startswith(b"".join(events[:-3]))
    assert exchange.sent[len(b"".join(events[:-3])) :].startswith(b'data: {"error":{"message":"Overloaded"')
    assert b'finish_reason":"' not in exchange.sent and b"[DONE]" not in exchange.sent


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_cut_before_finish_closes_after_complete_tool_calls(
    http: httpx2.Client, mock_provider: MockProvider, dialect: str
) -> None:
    events = expected_events(dialect, "interleaved")
    end = -2 if dialect == "anthropic" else -3  # message_delta / the finish_reason chunk
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        http.stream(
            "POST", PATHS[dialect], json=body_for(dialect, "interleaved+cut_before_finish"), headers=HEADERS[dialect]
        ) as response,
    ):
        response.read()
    exchange = mock_provider.exchange(response.headers["x-mock-request-id"])
    assert exchange.sent == b"".join(events[:end])
    assert not exchange.complete and exchange.error == "truncated on purpose"
    checked = violations(dialect, exchange.sent)
    assert any("message_stop" in v or "finish_reason" in v for v in checked), checked


def _ends(pieces: list[bytes]) -> list[int]:
    """Offsets in the concatenated pieces at which each piece ends."""
    offsets, at = [], 0
    for piece in pieces:
        at += len(piece)
        offsets.append(at)
    return offsets


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def test_responses_websocket(mock_provider: MockProvider) -> None:
    """One frame per SSE payload; a pre-warm turn; the tool-output rule; deflate."""
    url = mock_provider.url.replace("http", "ws") + "/v1/responses"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers={"authorization": "Bearer k"}, compress=15) as ws,
    ):
        assert ws.compress == 15  # permessage-deflate negotiated
        await ws.send_str(json.dumps({"type": "response.create", "model": "m", "generate": False, "input": []}))
        prewarm = [json.loads((await ws.receive()).data) for _ in range(2)]
        assert [e["type"] for e in prewarm] == ["response.created", "response.completed"]
        assert prewarm[1]["response"]["output"] == []
        turn = {"model": "gpt-5-codex", "previous_response_id": prewarm[1]["response"]["id"], "input": "[[mock:shell]]"}
        await ws.send_str(json.dumps({"type": "response.create", **turn}))
        expected = [
            e.data for e in parse_all(b"".join(openai_responses_sse(RESPONSES_SCENARIOS["shell"], "gpt-5-codex")))
        ]
        frames = [(await ws.receive()).data for _ in expected]
        assert frames == expected
        chained = {"previous_response_id": json.loads(frames[-1])["response"]["id"], "input": []}
        await ws.send_str(json.dumps({"type": "response.create", "model": "m", **chained}))
        refusal = json.loads((await ws.receive()).data)
    assert refusal["type"] == "error" and refusal["status"] == 400
    assert refusal["error"]["message"].startswith("No tool output found for function call call_")
    assert [e.method for e in mock_provider.exchanges[-3:]] == ["WS"] * 3
