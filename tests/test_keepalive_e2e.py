"""Held streams never go silent: keepalives through the real mitmdump, on every dialect.

The judge (`tool_call_judge` asking the loopback judge model, which answers after 25 s)
holds a tool call on each dialect's stream; one proxy serves them all at once (CI pays
the wait once). A raw client reads each stream with arrival
times: it gets the dialect's keepalive (Anthropic `ping`, an SSE comment for OpenAI chat
and Responses) every `keepalive.interval_s` (2 s here) while the policy decides, never
more often, and no gap longer than that plus slack; the same streams through the
official SDKs parse as before. At the same time, streams that nothing holds get none,
even with upstream silent for longer than the interval: a policed one (the policy looks,
holds nothing) and an unpoliced one, both byte for byte what upstream sent.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, auth_headers, timed_chunks
from harness_db import CallsDB
from judge_mock import ConnectionRecorder, JudgeMock, allow
from mock_provider import PAUSE_S, MockProvider
from test_judge_e2e import DIALECTS, PARIS, STOPS, URLS, Dialect, body, sdk_stream, start_judged_proxy

from interlock.dialects import dialect_for

INTERVAL_S = 2
HELD_S = 25.0
SLACK_S = 2.5  # scheduling on a loaded 2-core machine


@dataclass
class Received:
    """One stream as the client got it."""

    body: bytes
    arrivals: list[tuple[float, bytes]]
    call_id: str
    upstream: bytes  # what the mock sent for it

    def keepalive_times(self, keepalive: bytes) -> list[float]:
        return [at for at, data in self.arrivals if data == keepalive]

    def longest_gap(self) -> float:
        return max(b - a for (a, _), (b, _) in itertools.pairwise(self.arrivals))


@pytest.fixture(scope="module")
def held(start_module_proxy: ProxyLauncher, judge: JudgeMock, trap: ConnectionRecorder) -> ProxyProcess:
    """Every tool call waits for the judge, which answers after `HELD_S`."""
    settings = {"keepalive": {"interval_s": INTERVAL_S}}
    return start_judged_proxy(start_module_proxy, trap, judge.url, "block", HELD_S + 30, settings)


@pytest.fixture(scope="module")
def plain(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    return start_module_proxy(config={"policies": [], "keepalive": {"interval_s": INTERVAL_S}})


def read_stream(clients: ClientFactory, mock: MockProvider, dialect: Dialect, scenario: str) -> Received:
    arrivals: list[tuple[float, bytes]] = []
    with clients.raw().stream(
        "POST", URLS[dialect], json=body(dialect, scenario, True), headers=auth_headers(dialect, clients.api_key)
    ) as response:
        assert response.status_code == 200
        arrivals.extend((arrival.at, arrival.data) for arrival in timed_chunks(response))
        call_id, request_id = response.headers["x-interlock-call-id"], response.headers["x-mock-request-id"]
    received = b"".join(data for _, data in arrivals)
    return Received(received, arrivals, call_id, mock.exchange(request_id).sent)


def test_held_streams_get_keepalives_and_others_none(
    held: ProxyProcess,
    plain: ProxyProcess,
    judge: JudgeMock,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
) -> None:
    judge.reset(allow("Reads the weather.", delay_s=HELD_S))
    on_held, on_plain = make_clients(held), make_clients(plain)
    with ThreadPoolExecutor(max_workers=3 * len(DIALECTS)) as pool:
        raw = {d: pool.submit(read_stream, on_held, mock_provider, d, "tool") for d in DIALECTS}
        sdk = {d: pool.submit(sdk_stream, on_held, d, "tool") for d in DIALECTS}
        # Upstream silent for PAUSE_S > INTERVAL_S before the message ends, nothing held:
        slow_policed = pool.submit(read_stream, on_held, mock_provider, "anthropic-messages", "text+pause")
        slow_plain = pool.submit(read_stream, on_plain, mock_provider, "openai-responses", "tool+pause")
        results = {d: future.result() for d, future in raw.items()}
        parsed = {d: future.result() for d, future in sdk.items()}
        quiet = [slow_policed.result(), slow_plain.result()]

    assert len(judge.requests) == 2 * len(DIALECTS)  # each held call was the judge's to decide
    assert held.db_path is not None
    db = CallsDB(held.db_path)
    for dialect, got in results.items():
        keepalive = dialect_for(dialect).keepalive()
        assert keepalive is not None
        times = got.keepalive_times(keepalive)
        assert len(times) >= 2, (dialect, got.arrivals)
        assert min(b - a for a, b in itertools.pairwise(times)) >= INTERVAL_S - 0.1  # at most one per interval
        assert got.longest_gap() < min(INTERVAL_S + SLACK_S, 10), dialect
        # The keepalives, and apart from them byte for byte what upstream sent (allowed).
        added = got.body.count(keepalive) - got.upstream.count(keepalive)  # Anthropic's upstream sends a ping too
        assert added >= 2 and len(times) <= added + got.upstream.count(keepalive)
        assert got.body.replace(keepalive, b"") == got.upstream.replace(keepalive, b"")
        assert got.arrivals[-1][0] - got.arrivals[0][0] >= HELD_S - 1  # really held
        text, tools, stop, _ = parsed[dialect]
        assert (text, tools, stop) == ("Let me check the weather.", [PARIS], STOPS[dialect][0]), dialect
        call = db.wait_call(got.call_id)
        assert call["verdict"] == "pass"  # keepalives are no modification
        assert call.stages["response_final"]["raw"] == got.body  # the record keeps what the client got
        assert call.stages["response_original"]["raw"] == got.upstream
        assert call.stage_body("response_final") == call.stage_body("response_original")
    for got in quiet:
        assert got.body == got.upstream  # no keepalive, nothing changed
        assert got.longest_gap() >= PAUSE_S - 0.5 > INTERVAL_S  # the silence really was longer
