"""The first judged call after start-up (issue 12): bounded by `timeout_s` like every later one.

A fresh mitmdump per case, its judge a loopback port that accepts connections and never
answers. Once the proxy says "Interlock ready", the first tool call it judges takes the
fail mode within the timeout: whatever that call needs (litellm's lazy imports, its
HTTP client) was done before ready, or is inside the bound.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from fault_kit import report
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from judge_mock import ConnectionRecorder
from policy_fixtures import sdk_summary
from test_judge_e2e import PARIS, STOPS, Dialect, judge_rows, raw_stream, start_judged_proxy

TIMEOUT_S = 1.0
SLACK_S = 2.0  # generous: only proves there is no multi-second first-call penalty
READY_TIMEOUT_S = 30.0


@pytest.fixture
def silent_judge() -> Iterator[str]:
    """An OpenAI-style base URL whose server accepts connections (the kernel's backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"


@pytest.mark.parametrize(("mode", "dialect"), [("block", "openai-chat"), ("allow", "anthropic-messages")])
def test_the_first_judged_call_keeps_the_timeout(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    trap: ConnectionRecorder,
    silent_judge: str,
    mode: str,
    dialect: Dialect,
) -> None:
    proxy = start_judged_proxy(start_proxy, trap, silent_judge, mode, TIMEOUT_S)
    proxy.wait_for_output("Interlock ready", READY_TIMEOUT_S)
    clients = make_clients(proxy)
    started = time.monotonic()
    received, _, call_id = raw_stream(clients, dialect, "tool")
    first_s = time.monotonic() - started

    assert first_s < TIMEOUT_S + SLACK_S
    text, tools, stop = sdk_summary(dialect, received)
    if mode == "block":
        assert tools == [] and stop == STOPS[dialect][1]
        assert "⛔ Interlock blocked the tool call `get_weather`" in text
    else:
        assert (tools, stop) == ([PARIS], STOPS[dialect][0])
    assert proxy.db_path is not None
    [row] = judge_rows(CallsDB(proxy.db_path), call_id)
    assert row["decision"] == ("blocked" if mode == "block" else "allowed")
    assert row["probability"] is None and "Timeout" in row["error"], row["error"]
    assert proxy.addon_errors() == []
    assert trap.seen == []
    report(
        f"first judged call, judge silent, on_error {mode} ({dialect})",
        f"{row['decision']} within the timeout",
        first_call_s=round(first_s, 2),
        timeout_s=TIMEOUT_S,
    )
