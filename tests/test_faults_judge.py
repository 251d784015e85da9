"""Fault suite, the judge's side (issue 9): the judge down (connection refused), slow past
its timeout, answering garbage, or rate limited with a `retry-after` beyond the timeout,
under each fail mode, in both dialects.

The decision comes within the policy's `timeout_s` (plus slack); `on_error: block` gives
the client the readable notice in a valid stream, `allow` lets the call through; the
judge's row says why. Two mitmdumps (one per fail mode) serve every case, since a judge
proxy takes seconds to start: "down" points their judge at a closed port through a live
config reload. Each case checks its calls are all recorded; the recorder's shutdown
count is checked when the module's proxies stop. The tool_call_judge helpers come
from `test_judge_e2e`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fault_kit import PacedStream, assert_accounted, assert_no_secret, report
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from harness_reload import edit_config, read_config
from judge_mock import GARBAGE, ConnectionRecorder, JudgeMock, Reply, allow, closed_port
from policy_fixtures import sdk_summary, stream_violations
from test_judge_e2e import (
    DIALECTS,
    JUDGE_KEY,
    PARIS,
    STOPS,
    TIMEOUT_S,
    Dialect,
    body,
    judge_rows,
    raw_stream,
    start_judged_proxy,
)

# Each case measures a concurrent stream's pacing: nothing else runs meanwhile (tests/solo.py).
pytestmark = pytest.mark.solo

SLACK_S = 1.0  # beyond the policy's timeout_s, for the rest of the stream on a loaded machine
# Each fault: the judge's reply (None: the judge is down), and what its row's error says.
FAULTS: dict[str, tuple[Reply | None, str]] = {
    "down": (None, "(attempts: 2)"),
    "slow": (allow(delay_s=TIMEOUT_S + 3), "Timeout"),
    "garbage": (GARBAGE, "unusable answer"),
    "429": (Reply(status=429, retry_after="30"), "no time left to retry"),
}
MODES = ("block", "allow")
_calls: dict[str, int] = {}  # calls made through each mode's proxy, for the shutdown count


@pytest.fixture(scope="module")
def proxies(
    start_module_proxy: ProxyLauncher, judge: JudgeMock, trap: ConnectionRecorder
) -> Iterator[dict[str, ProxyProcess]]:
    started = {mode: start_judged_proxy(start_module_proxy, trap, judge.url, mode, TIMEOUT_S) for mode in MODES}
    yield started
    for mode, proxy in started.items():
        calls = _calls.get(mode, 0)
        totals = assert_accounted(proxy, calls)
        assert totals.dropped == 0
        report(
            f"judge faults, on_error {mode}: shutdown count",
            "all recorded",
            records=totals.written,
            calls=calls,
            dropped=totals.dropped,
        )


@pytest.fixture(autouse=True)
def quiet(proxies: dict[str, ProxyProcess], trap: ConnectionRecorder) -> Iterator[None]:
    """No addon error, no judge key in the output, nothing sent to the proxy variables."""
    since = {mode: len(proxy.output()) for mode, proxy in proxies.items()}
    yield
    for mode, proxy in proxies.items():
        assert proxy.addon_errors(since[mode]) == []
        assert JUDGE_KEY not in proxy.output()
    assert trap.seen == []


def point_judge(proxy: ProxyProcess, api_base: str) -> None:
    """Point the proxy's judge at `api_base` through a live reload of its config file."""
    config = read_config(proxy)
    [policy] = config["policies"]
    if policy["api_base"] != api_base:
        policy["api_base"] = api_base
        edit_config(proxy, config)


def wait_rows(db: CallsDB, count: int, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (stored := len(db.call_ids())) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return stored


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_judge_takes_the_fail_mode_in_time(
    proxies: dict[str, ProxyProcess],
    make_clients: Callable[[ProxyProcess], ClientFactory],
    judge: JudgeMock,
    api_key: str,
    fault: str,
    mode: str,
    dialect: Dialect,
) -> None:
    reply, error = FAULTS[fault]
    proxy = proxies[mode]
    point_judge(proxy, f"http://127.0.0.1:{closed_port()}/v1" if reply is None else judge.url)
    judge.reset(default=reply)
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    stored_before = len(db.call_ids())
    clients = make_clients(proxy)
    paced = PacedStream(clients)
    paced.start()
    started = time.monotonic()
    received, _, call_id = raw_stream(clients, dialect, "tool")
    answered_s = time.monotonic() - started
    paced.finish()
    paced.assert_paced()
    calls = 1 + paced.calls
    _calls[mode] = _calls.get(mode, 0) + calls

    assert answered_s < TIMEOUT_S + SLACK_S
    assert stream_violations(dialect, received, body(dialect, "tool", True)) == []
    text, tools, stop = sdk_summary(dialect, received)
    if mode == "block":
        assert tools == [] and stop == STOPS[dialect][1]
        assert "⛔ Interlock blocked the tool call `get_weather`" in text and '"location": "Paris, France"' in text
    else:
        assert (text, tools, stop) == ("Let me check the weather.", [PARIS], STOPS[dialect][0])
    [row] = judge_rows(db, call_id)
    assert row["decision"] == ("blocked" if mode == "block" else "allowed")
    assert row["probability"] is None and error in row["error"], row["error"]
    [event] = db.rows("select policy, action from policy_events where call_id = ?", (call_id,))
    assert (event["policy"], event["action"]) == ("tool_call_judge", row["decision"])
    stored = wait_rows(db, stored_before + calls)
    assert stored - stored_before == calls
    assert_no_secret(proxy.db_path, api_key, JUDGE_KEY)  # the 429 echoes the judge's key
    report(
        f"judge {fault}, on_error {mode} ({dialect})",
        f"{row['decision']} within the timeout; reason recorded",
        answer_s=round(answered_s, 2),
        timeout_s=TIMEOUT_S,
        records=stored - stored_before,
        calls=calls,
        paced_max_gap_s=round(paced.max_gap, 3),
    )
