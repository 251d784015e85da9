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
from judge_mock import JudgeMock, allow, block
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
JUDGE_WAIT_S = 11.0  # longer than the keepalive interval (10 s): the client gets a ping


@pytest.fixture(scope="module")
def plain(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    """Each test sets the config it needs (live reload): proxies start slowly here."""
    return start_module_proxy(config={}, env=FIXTURES_ENV)


@pytest.fixture(scope="module")
def guarded(start_module_proxy: ProxyLauncher, judge: JudgeMock) -> ProxyProcess:
    """A request policy that awaits (the frame waits for it), a model rewrite, deny_tools
    and the judge (allowing, unless a test says otherwise)."""
    sleepy = {"policy": fixture_path(SleepyPolicy), "seconds": 0.3, "hooks": ["on_request"]}
    rewrite = {"policy": "model_rewrite", "map": {"gpt-5-mini": MODEL}}
    judged = {
        "policy": "tool_call_judge",
        "model": "openai/judge-mock",
        "api_base": judge.url,
        "api_key_env": KEY_ENV,
        "on_error": "block",
        "timeout_s": JUDGE_WAIT_S + 10,
        "retries": 0,
    }
    config = {"policies": [sleepy, rewrite, DENY, judged]}
    return start_module_proxy(config=config, env={**FIXTURES_ENV, KEY_ENV: "sk-judge-ws"})


@pytest.fixture(autouse=True)
def judge_allows(judge: JudgeMock) -> None:
    judge.reset(allow())


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


def as_sse_data(frames: list[bytes]) -> bytes:
    return b"".join(b"data: " + f + b"\n\n" for f in frames)


# --- policed ----------------------------------------------------------------------------


async def test_deny_tools_blocks_a_call_and_the_next_turn_is_accepted(
    guarded: ProxyProcess, mock_provider: MockProvider, tls: ssl.SSLContext
) -> None:
    db = db_of(guarded)
    before = db.call_ids()
    async with connect(guarded, tls) as ws:
        text = await turn(ws, create("hello", model="gpt-5-mini"))
        blocked = await turn(ws, create("[[mock:shell]]"))
        await ws.send_str(json.dumps({"type": "response.processed", "response_id": "x"}))
        response_id = json.loads(blocked[-1])["response"]["id"]
        chained = await turn(ws, create("go on", previous_response_id=response_id))
    exchanges = turns_of(mock_provider, 3)
    assert json.loads(exchanges[0].body)["model"] == MODEL  # the request frame was rewritten
    assert json.loads(exchanges[0].body)["type"] == "response.create"
    assert text == exchanges[0].writes  # policed, nobody changed anything: frame for frame
    assert violations(blocked) == []
    completed = json.loads(blocked[-1])["response"]
    assert [item["type"] for item in completed["output"]] == ["reasoning", "message"]
    notice = completed["output"][-1]["content"][0]["text"]
    assert "exec_command" in notice and "recursive delete" in notice
    assert not any(RM_CALL.encode() in frame for frame in blocked)
    sent_back = json.loads(exchanges[2].body)["input"]
    assert (sent_back[0]["type"], sent_back[0]["call_id"]) == ("function_call_output", RM_CALL)
    assert json.loads(chained[-1])["type"] == "response.completed"  # the mock accepted the chain
    calls = new_calls(db, before, 3)
    assert [c["verdict"] for c in calls] == ["modified", "blocked", "modified"]
    assert calls[1].stage_body("response_final")["output"][-1]["type"] == "message"
    assert calls[1].stage_body("response_original")["output"][-1]["name"] == "exec_command"


async def test_request_blocked_by_a_policy_is_answered_with_an_error_frame(
    plain: ProxyProcess, mock_provider: MockProvider, tls: ssl.SSLContext
) -> None:
    """The policy waits, then fails closed: the turn is answered, nothing goes upstream."""
    failing = {"policy": fixture_path(FailingPolicy), "hook": "on_request", "mode": "hang"}
    edit_config(plain, {"policies": [{**failing, "on_error": "block", "timeout_s": 0.3}]})
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


async def test_refuse_answers_the_upgrade_with_426(plain: ProxyProcess, tls: ssl.SSLContext) -> None:
    edit_config(plain, {"responses_websocket": "refuse"})
    before = db_of(plain).call_ids()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with connect(plain, tls):
            pass
    assert refused.value.status == 426
    assert db_of(plain).call_ids() == before


async def test_a_held_call_stalls_nothing_and_the_client_gets_pings(
    guarded: ProxyProcess, mock_provider: MockProvider, judge: JudgeMock, tls: ssl.SSLContext
) -> None:
    """The judge takes longer than the keepalive interval and blocks the call: meanwhile
    the client's frames reach upstream, another connection's turn completes, the client
    gets pings; then the notice, in a valid stream."""
    judge.reset(block("Destructive.", delay_s=JUDGE_WAIT_S))
    async with connect(guarded, tls, autoping=False) as held, connect(guarded, tls) as other:
        started = time.monotonic()
        await held.send_str(json.dumps(create("[[mock:shell]]")))
        frames: list[bytes] = []
        pings: list[float] = []
        while True:  # until the held call's reasoning is in: the call is held now
            message = await asyncio.wait_for(held.receive(), 30)
            frames.append(message.data.encode())
            if json.loads(message.data)["type"] == "response.output_item.done":
                break
        marker = json.dumps({"type": "response.processed", "response_id": "during-hold"}).encode()
        await held.send_str(marker.decode())
        judge.reset(allow())  # the other connection's judge answers at once
        text = await turn(other, create("hello"))
        assert time.monotonic() - started < JUDGE_WAIT_S / 2  # not stalled by the held call
        assert marker in mock_provider.ws_frames  # the client's frame went through during the hold
        while True:
            message = await asyncio.wait_for(held.receive(), 30)
            if message.type == aiohttp.WSMsgType.PING:
                pings.append(time.monotonic())
                await held.pong(message.data)
                continue
            frames.append(message.data.encode())
            if json.loads(message.data)["type"] == "response.completed":
                break
    assert time.monotonic() - started >= JUDGE_WAIT_S
    assert pings and all(started + 9 < at < started + JUDGE_WAIT_S + 1 for at in pings), pings
    assert text[-1].startswith(b'{"type":"response.completed"')
    assert violations(frames) == []
    output = json.loads(frames[-1])["response"]["output"]
    assert output[-1]["type"] == "message" and "Destructive." in output[-1]["content"][0]["text"]
