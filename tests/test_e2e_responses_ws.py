"""The Responses WebSocket (Codex's default transport) end to end: the real mitmdump, an
aiohttp WebSocket client through it (HTTP CONNECT, the mitmproxy CA trusted, offering
permessage-deflate), the loopback mock serving `GET /v1/responses` as a WebSocket.

Every turn is its own call with four stages; an unpoliced session (and a policed turn
nobody changed) reaches the client frame for frame; deny_tools and the judge block
function calls with a readable notice and a valid stream (the protocol checker runs on
the frames received); a held call stalls nothing else; request policies run on the
`response.create` frame; `pass` alters nothing; `refuse` answers 426.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from harness import MitmCA, ProxyLauncher, ProxyProcess
from harness_db import CallsDB, RecordedCall
from harness_reload import edit_config
from judge_mock import JudgeMock, block, judge_policy
from mock_provider import MockProvider
from policy_fixtures import FailingPolicy, SleepyPolicy, fixture_path
from protocol_check import check_openai_responses_stream
from test_e2e_policies import FIXTURES_ENV
from wire_scenarios import RESPONSES_SCENARIOS, openai_tool_id

from interlock.sse import parse_all

URL = "wss://api.openai.com/v1/responses"
MODEL = "gpt-5-codex"
BETA = {"OpenAI-Beta": "responses_websockets=2026-02-06"}
DENY = {"policy": "deny_tools", "rules": [{"tool": "*", "pattern": "rm -rf", "reason": "recursive delete"}]}
RM_CALL = openai_tool_id(RESPONSES_SCENARIOS["shell"].tool_calls[0])
KEY_ENV = "INTERLOCK_TEST_JUDGE_KEY"
# A request policy that waits, then fails closed.
REQUEST_FAILS = {
    "policies": [
        {
            "policy": fixture_path(FailingPolicy),
            "hook": "on_request",
            "mode": "hang",
            "on_error": "block",
            "timeout_s": 0.3,
        }
    ]
}
HOLD_S = 11.0  # longer than the keepalive interval (10 s): the client gets a ping


@pytest.fixture(scope="module")
def plain(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    """Each test sets the config it needs (live reload: proxies start slowly); started
    with the failing policy, so its module is imported before the tests run."""
    return start_module_proxy(config=REQUEST_FAILS, env=FIXTURES_ENV)


@pytest.fixture(scope="module")
def guarded(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    """A request policy that awaits (the frame waits for it), a model rewrite, a tool
    policy that takes longer than the keepalive interval (a slow judge), deny_tools."""
    sleepy = {"policy": fixture_path(SleepyPolicy), "seconds": 0.3, "hooks": ["on_request"]}
    rewrite = {"policy": "model_rewrite", "map": {"gpt-5-mini": MODEL}}
    slow = {"policy": fixture_path(SleepyPolicy), "seconds": HOLD_S, "timeout_s": HOLD_S + 10}
    return start_module_proxy(config={"policies": [sleepy, rewrite, slow, DENY]}, env=FIXTURES_ENV)


@pytest.fixture(scope="module")
def judged(start_module_proxy: ProxyLauncher, judge: JudgeMock) -> ProxyProcess:
    return start_module_proxy(config={"policies": [judge_policy(judge, KEY_ENV)]}, env={KEY_ENV: "sk-judge-ws"})


def db_of(proxy: ProxyProcess) -> CallsDB:
    assert proxy.db_path is not None
    return CallsDB(proxy.db_path)


def create(text: str, **fields: Any) -> dict[str, Any]:
    return {"type": "response.create", "model": MODEL, "input": [{"role": "user", "content": text}], **fields}


@pytest.fixture(scope="module")
def tls(mitm_ca: MitmCA) -> ssl.SSLContext:
    return mitm_ca.ssl_context()


@asynccontextmanager
async def connect(
    proxy: ProxyProcess, tls: ssl.SSLContext, **options: Any
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A WebSocket to the Responses API through the proxy, offering permessage-deflate."""
    headers = {"authorization": "Bearer sk-test-ws", **BETA}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(URL, proxy=proxy.url, ssl=tls, headers=headers, compress=15, **options) as ws,
    ):
        yield ws


async def turn(ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> list[bytes]:
    """Send one turn; the text frames received until its last (pings are answered)."""
    await ws.send_str(json.dumps(frame))
    frames: list[bytes] = []
    while True:
        message = await asyncio.wait_for(ws.receive(), 30)
        if message.type == aiohttp.WSMsgType.PING:
            await ws.pong(message.data)
            continue
        assert message.type == aiohttp.WSMsgType.TEXT, message
        frames.append(message.data.encode())
        if json.loads(message.data)["type"] in ("response.completed", "response.failed", "error"):
            return frames


def as_sse(frames: list[bytes]) -> bytes:
    return b"".join(b"event: %s\ndata: %s\n\n" % (json.loads(f)["type"].encode(), f) for f in frames)


def violations(frames: list[bytes]) -> list[str]:
    return check_openai_responses_stream(parse_all(as_sse(frames)))


def new_calls(db: CallsDB, before: list[str], count: int) -> list[RecordedCall]:
    deadline = time.monotonic() + 10
    while len(ids := [c for c in db.call_ids() if c not in before]) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(ids) == count, ids
    return [db.wait_call(call_id) for call_id in ids]


def turns_of(mock: MockProvider, count: int) -> list[Any]:
    return [e for e in mock.exchanges if e.method == "WS"][-count:]


# --- unpoliced --------------------------------------------------------------------------


async def test_turns_are_calls_and_reach_the_client_frame_for_frame(
    plain: ProxyProcess, mock_provider: MockProvider, tls: ssl.SSLContext
) -> None:
    edit_config(plain, {})
    db = db_of(plain)
    before = db.call_ids()
    async with connect(plain, tls) as ws:
        assert ws.compress == 15  # permessage-deflate negotiated through the proxy
        prewarm = await turn(ws, create("warm up", generate=False))
        first = await turn(ws, create("hello", previous_response_id=json.loads(prewarm[-1])["response"]["id"]))
        await ws.send_str(json.dumps({"type": "response.processed", "response_id": "x"}))
        second = await turn(ws, create("[[mock:shell]]"))
    exchanges = turns_of(mock_provider, 3)
    assert "permessage-deflate" in exchanges[0].response_headers.get("Sec-WebSocket-Extensions", "")
    assert [prewarm, first, second] == [e.writes for e in exchanges]  # frame for frame
    assert [json.loads(f)["type"] for f in prewarm] == ["response.created", "response.completed"]
    calls = new_calls(db, before, 3)
    for call, exchange in zip(calls, exchanges, strict=True):
        assert call["dialect"] == "openai-responses" and call["stream"] == 1 and call["verdict"] == "pass"
        assert call.stage_body("request_original") == call.stage_body("request_final") == json.loads(exchange.body)
        assert call.stage_body("response_original") == call.stage_body("response_final")
        assert call.stages["response_original"]["raw"] == as_sse_data(exchange.writes)
    assert calls[1].stage_body("response_final")["output"][0]["type"] == "message"
    assert calls[1]["response_text"] and calls[2]["error"] is None
    assert calls[2].stage_body("response_original")["output"][-1]["name"] == "exec_command"
    assert b"sk-test-ws" not in db.file_bytes()  # the upgrade's key is scrubbed from the records


async def test_a_turn_cut_by_the_client_is_recorded_with_the_reason(plain: ProxyProcess, tls: ssl.SSLContext) -> None:
    edit_config(plain, {"policies": [DENY]})
    before = db_of(plain).call_ids()
    async with connect(plain, tls) as ws:
        await ws.send_str(json.dumps(create("[[mock:shell+pause]]")))
        await asyncio.wait_for(ws.receive(), 30)  # response.created; then the client leaves
    (call,) = new_calls(db_of(plain), before, 1)
    assert "the WebSocket closed before the turn ended" in call["error"]
    assert not any(
        item.get("type") == "function_call" for item in call.stage_body("response_final").get("output") or []
    )  # the held call was never sent


def as_sse_data(frames: list[bytes]) -> bytes:
    return b"".join(b"data: " + f + b"\n\n" for f in frames)


# --- policed ----------------------------------------------------------------------------


async def test_request_blocked_by_a_policy_is_answered_with_an_error_frame(
    plain: ProxyProcess, mock_provider: MockProvider, tls: ssl.SSLContext
) -> None:
    """The policy waits, then fails closed: the turn is answered, nothing goes upstream."""
    edit_config(plain, REQUEST_FAILS)
    before = db_of(plain).call_ids()
    count = len(mock_provider.exchanges)
    async with connect(plain, tls) as ws:
        frames = await turn(ws, create("hello"))
    error = json.loads(frames[0])
    assert len(frames) == 1 and error["type"] == "error" and error["status"] == 403
    assert "failing" in error["error"]["message"]
    assert len(mock_provider.exchanges) == count  # nothing went upstream
    (call,) = new_calls(db_of(plain), before, 1)
    assert call["verdict"] == "blocked"


async def test_pass_records_and_alters_nothing(
    plain: ProxyProcess, mock_provider: MockProvider, tls: ssl.SSLContext
) -> None:
    edit_config(plain, {"responses_websocket": "pass", "policies": [DENY]})
    before = db_of(plain).call_ids()
    async with connect(plain, tls) as ws:
        frames = await turn(ws, create("[[mock:shell]]"))
    assert frames == turns_of(mock_provider, 1)[0].writes
    (call,) = new_calls(db_of(plain), before, 1)
    assert call["verdict"] == "pass"
    assert call.stage_body("response_final")["output"][-1]["name"] == "exec_command"


async def test_text_and_request_policies_on_a_turn(
    plain: ProxyProcess, mock_provider: MockProvider, tls: ssl.SSLContext
) -> None:
    """replace rewrites the streamed text the client gets; redact scrubs a key from the
    `response.create` frame before it goes upstream; system_prompt adds to its
    instructions; the turn's frames stay a valid stream."""
    secret = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
    policies = [
        {"policy": "replace", "rules": [{"find": "mock provider", "replace": "real vendor"}]},
        {"policy": "redact"},
        {"policy": "system_prompt", "text": "Never print secrets.", "position": "append"},
    ]
    edit_config(plain, {"policies": policies})
    before = db_of(plain).call_ids()
    async with connect(plain, tls) as ws:
        frames = await turn(ws, create(f"my key is {secret} [[mock:text]]", instructions="Be brief."))
    assert violations(frames) == []
    text = "".join(
        json.loads(f).get("delta", "") for f in frames if json.loads(f)["type"] == "response.output_text.delta"
    )
    assert text == "Hello from the real vendor."
    upstream = json.loads(mock_provider.ws_frames[-1])
    assert secret not in json.dumps(upstream) and "[REDACTED:openai_key]" in json.dumps(upstream)
    assert upstream["instructions"] == "Be brief.\n\nNever print secrets."
    (call,) = new_calls(db_of(plain), before, 1)
    assert call["verdict"] == "modified"
    assert call.stage_body("response_final")["output"][-1]["content"][0]["text"] == "Hello from the real vendor."


async def test_refuse_answers_the_upgrade_with_426(plain: ProxyProcess, tls: ssl.SSLContext) -> None:
    edit_config(plain, {"responses_websocket": "refuse"})
    before = db_of(plain).call_ids()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with connect(plain, tls):
            pass
    assert refused.value.status == 426
    assert db_of(plain).call_ids() == before


async def test_a_held_call_stalls_nothing_is_blocked_and_the_next_turn_is_accepted(
    guarded: ProxyProcess, mock_provider: MockProvider, tls: ssl.SSLContext
) -> None:
    """While a call is held (longer than the keepalive interval): the client's frames
    reach upstream, another connection's turns complete, the client gets pings. Then the
    call is replaced by its notice in a valid stream, an allowed call held beside it
    arrives as it came, and the next turn chained on the blocked response is accepted."""
    db = db_of(guarded)
    before = db.call_ids()
    async with connect(guarded, tls, autoping=False) as held, connect(guarded, tls) as other:
        started = time.monotonic()
        await held.send_str(json.dumps(create("[[mock:shell]]")))
        allowed = asyncio.ensure_future(turn(other, create("[[mock:tool]]")))
        frames: list[bytes] = []
        while not frames or json.loads(frames[-1])["type"] != "response.output_item.done":
            frames.append((await asyncio.wait_for(held.receive(), 30)).data.encode())  # the reasoning passes
        silent_from = time.monotonic()  # the call is held from here: nothing more until the hold ends
        marker = json.dumps({"type": "response.processed", "response_id": "during-hold"})
        await held.send_str(marker)
        async with connect(guarded, tls) as third:
            text = await turn(third, create("hello", model="gpt-5-mini"))
        assert time.monotonic() - started < HOLD_S / 2  # not stalled by the held calls
        assert marker.encode() in mock_provider.ws_frames  # the client's frame went through during the hold
        text_exchange = next(e for e in reversed(mock_provider.exchanges) if e.method == "WS" and b"hello" in e.body)
        pings: list[float] = []
        while json.loads(frames[-1])["type"] != "response.completed":
            message = await asyncio.wait_for(held.receive(), 30)
            if message.type == aiohttp.WSMsgType.PING:
                pings.append(time.monotonic() - silent_from)
                await held.pong(message.data)
            else:
                frames.append(message.data.encode())
        assert time.monotonic() - started >= HOLD_S
        response_id = json.loads(frames[-1])["response"]["id"]
        chained = await turn(held, create("go on", previous_response_id=response_id))
        weather = await allowed
    assert json.loads(text_exchange.body)["model"] == MODEL  # the request frame was rewritten
    assert json.loads(text_exchange.body)["type"] == "response.create"
    assert text == text_exchange.writes  # policed, nobody changed anything: frame for frame
    assert weather == next(e for e in reversed(mock_provider.exchanges) if b"mock:tool" in e.body).writes
    assert len(pings) == 1 and 9 < pings[0] < HOLD_S, pings  # one ping, ten seconds into the silence
    assert violations(frames) == []
    completed = json.loads(frames[-1])["response"]
    assert [item["type"] for item in completed["output"]] == ["reasoning", "message"]
    notice = completed["output"][-1]["content"][0]["text"]
    assert "exec_command" in notice and "recursive delete" in notice
    assert not any(RM_CALL.encode() in frame for frame in frames)
    chained_exchange = turns_of(mock_provider, 1)[0]
    sent_back = json.loads(chained_exchange.body)["input"][0]
    assert (sent_back["type"], sent_back["call_id"]) == ("function_call_output", RM_CALL)
    assert json.loads(chained[-1])["type"] == "response.completed"  # the mock accepted the chain
    calls = {c.stage_body("request_original")["input"][0]["content"]: c for c in new_calls(db, before, 4)}
    assert calls["hello"]["verdict"] == "modified" and calls["hello"]["model_final"] == MODEL
    assert calls["[[mock:tool]]"]["verdict"] == "pass"
    blocked = calls["[[mock:shell]]"]
    assert blocked["verdict"] == "blocked"
    assert blocked.stage_body("response_final")["output"][-1]["type"] == "message"
    assert blocked.stage_body("response_original")["output"][-1]["name"] == "exec_command"
    assert calls["go on"]["verdict"] == "modified"  # the missing output was added


async def test_the_judge_blocks_a_call_on_the_websocket(
    judged: ProxyProcess, judge: JudgeMock, tls: ssl.SSLContext
) -> None:
    judge.reset(block("Destructive command.", delay_s=0.5))
    async with connect(judged, tls) as ws:
        frames = await turn(ws, create("[[mock:shell]]"))
    assert violations(frames) == []
    output = json.loads(frames[-1])["response"]["output"]
    assert output[-1]["type"] == "message" and "Destructive command." in output[-1]["content"][0]["text"]
    assert not any(RM_CALL.encode() in frame for frame in frames)
    assert len(judge.requests) == 1
