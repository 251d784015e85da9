"""Fault suite, the client's side (issue 9): a client that leaves mid-stream while a policy
holds a tool call, and a 10 MB request.

Each case runs through a real mitmdump in front of the loopback mock and checks what
`fault_kit` describes: the client's answer (or its own departure) within a bound, a
concurrent paced stream unaffected, every call recorded or counted as dropped, no API
key in the database. Invalid JSON and wrong content types are in `test_e2e_bad_input.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from fault_kit import PacedStream, conclude
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, auth_headers, llm_request
from harness_db import CallsDB
from judge_mock import JudgeMock, allow
from mock_provider import PAUSE_S, MockProvider

# Each case measures a concurrent stream's pacing: nothing else runs meanwhile (tests/solo.py).
pytestmark = pytest.mark.solo

Dialect = Literal["openai-chat", "anthropic-messages"]
DIALECTS: tuple[Dialect, ...] = ("openai-chat", "anthropic-messages")
URLS = {
    "openai-chat": "https://api.openai.com/v1/chat/completions",
    "anthropic-messages": "https://api.anthropic.com/v1/messages",
}
MODELS = {"openai-chat": "gpt-4o-mini", "anthropic-messages": "claude-sonnet-4-6"}
JUDGE_DELAY_S = 1.5  # the judge's answer comes after the client left
JUDGE_TIMEOUT_S = 5.0
RECORD_BOUND_S = 8.0  # the call is recorded this soon after the client left
POLICIES: dict[str, dict[str, Any]] = {
    "deny_tools": {"policy": "deny_tools", "deny": ["get_weather"]},
    "judge": {
        "policy": "tool_call_judge",
        "model": "openai/judge-mock",
        "api_key_env": "INTERLOCK_TEST_JUDGE_KEY",
        "on_error": "block",
        "timeout_s": JUDGE_TIMEOUT_S,
        "retries": 0,
    },
}
BIG_BYTES = 10 * 1024 * 1024
RSS_GROWTH_BOUND_MB = 400  # a 10 MB body is held a few times over, never unboundedly
BIG_BODY_PACING_SLACK_S = 1.5  # see test_a_10_mb_request


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s} s"
        time.sleep(0.01)


def tool_structure(dialect: Dialect, received: bytes) -> bool:
    """Whether what the client got holds a tool call (not merely a notice naming one)."""
    marker = b'"tool_calls"' if dialect == "openai-chat" else b'"type":"tool_use"'
    return marker in received


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("holder", ["deny_tools", "judge"])
def test_client_leaves_while_a_tool_call_is_held(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    judge: JudgeMock,
    api_key: str,
    dialect: Dialect,
    holder: str,
) -> None:
    """The upstream stalls before the message's end with the tool call complete; the
    client leaves while the proxy holds it (deny_tools: OpenAI holds until the message
    ends; the judge: deciding, slowly). The call is recorded with the policy's decision
    and the client's departure; the held call reaches nobody; the proxy keeps serving."""
    judge.reset(default=allow(delay_s=JUDGE_DELAY_S))
    policy = {**POLICIES[holder], "api_base": judge.url} if holder == "judge" else POLICIES[holder]
    proxy = start_proxy(config={"policies": [policy]}, env={"INTERLOCK_TEST_JUDGE_KEY": "sk-judge-unused"})
    clients = make_clients(proxy)
    paced = PacedStream(clients)
    paced.start()
    body = llm_request(
        dialect, MODELS[dialect], [{"role": "user", "content": "Weather? [[mock:tool+pause]]"}], stream=True
    )
    received = bytearray()
    judged_before = len(judge.requests)
    with clients.raw().stream("POST", URLS[dialect], json=body, headers=auth_headers(dialect, api_key)) as response:
        assert response.status_code == 200
        call_id = response.headers["x-interlock-call-id"]
        chunks = response.iter_raw()
        # Read until the mock is in its stall (every tool delta written), then leave
        # once the proxy holds the call (for the judge: once the judge was asked).
        while not received.endswith(b"\n\n") or b"the weather." not in received:
            received += next(chunks)
        time.sleep(0.3)
        if holder == "judge":
            wait_until(lambda: len(judge.requests) > judged_before, 5, "the judge's request")
        left_at = time.monotonic()
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    call = db.wait_call(call_id, timeout_s=RECORD_BOUND_S)
    recorded_after = time.monotonic() - left_at
    # A second call after the departure is served normally.
    again = clients.raw().post(URLS[dialect], json={**body, "stream": False}, headers=auth_headers(dialect, api_key))
    assert again.status_code == 200
    paced.finish()
    paced.assert_paced()
    assert not tool_structure(dialect, bytes(received))
    assert not tool_structure(dialect, call.stages["response_final"]["raw"] or b"")
    assert call["error"] and "client" in call["error"].lower(), call["error"]
    events = db.rows("select policy, action, reason from policy_events where call_id = ?", (call_id,))
    if holder == "deny_tools":
        assert [(e["policy"], e["action"]) for e in events] == [("deny_tools", "blocked")], events
    else:
        decisions = db.rows("select decision from judge_decisions where call_id = ?", (call_id,))
        assert [d["decision"] for d in decisions] == ["allowed"], decisions
    assert recorded_after < PAUSE_S + JUDGE_DELAY_S + 2  # no wait for the stalled upstream or more
    calls = 2 + paced.calls
    conclude(
        proxy,
        calls,
        f"client leaves mid-stream, {holder} holding ({dialect})",
        "recorded with the decision and the departure; nothing released",
        secrets=(api_key,),
        paced=paced,
        recorded_s=round(recorded_after, 2),
    )


def test_a_10_mb_request(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    api_key: str,
) -> None:
    """Forwarded intact through the request policies, recorded, memory stays sane."""
    proxy = start_proxy(config={"policies": [{"policy": "redact"}, {"policy": "system_prompt", "text": "Be brief."}]})
    clients = make_clients(proxy)
    before_mb = rss_mb(proxy.pid)
    filler = "lorem ipsum dolor sit amet " * (BIG_BYTES // 27)
    body = llm_request("openai", "gpt-4o-mini", [{"role": "user", "content": filler}], stream=False)
    # Serialised before, and parsed after, the paced stream runs: the test's own work on
    # 10 MB (in the paced client's process) must not show as the proxy's stall.
    payload = json.dumps(body).encode()
    headers = {**auth_headers("openai", api_key), "content-type": "application/json"}
    paced = PacedStream(clients)
    paced.start()
    started = time.monotonic()
    response = clients.raw().post(URLS["openai-chat"], content=payload, headers=headers)
    answered_s = time.monotonic() - started
    paced.finish()
    # Known cost, not hidden: the proxy parses, polices, re-serialises and scrubs the
    # 10 MB body on its event loop (and the recorder encodes it holding the GIL), which
    # stalls a concurrent stream once by about 0.5 s on this machine (the figure is
    # reported). The bound proves what this case is about: no stall of seconds, no hang.
    paced.assert_paced(slack_s=BIG_BODY_PACING_SLACK_S)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the mock provider."
    exchange = mock_provider.exchange(response.headers["x-mock-request-id"])
    forwarded = json.loads(exchange.body)
    assert len(exchange.body) > BIG_BYTES
    assert forwarded["messages"][-1] == {"role": "user", "content": filler}  # intact
    assert forwarded["messages"][0] == {"role": "system", "content": "Be brief."}
    after_mb = rss_mb(proxy.pid)
    assert proxy.db_path is not None
    call = CallsDB(proxy.db_path).wait_call(response.headers["x-interlock-call-id"])
    assert json.loads(call.stages["request_original"]["body_json"])["messages"][0]["content"] == filler
    assert call["status"] == 200 and call["error"] is None
    assert after_mb - before_mb < RSS_GROWTH_BOUND_MB, (before_mb, after_mb)
    calls = 1 + paced.calls
    conclude(
        proxy,
        calls,
        "10 MB request",
        "forwarded intact, recorded",
        secrets=(api_key,),
        paced=paced,
        answer_s=round(answered_s, 2),
        rss_growth_mb=round(after_mb - before_mb, 1),
    )
