"""Soak (issue 9 §5): 100 concurrent streams for 60 s through one mitmdump with the rule
policies on (redact, model_rewrite, system_prompt, replace, deny_tools), both dialects
mixed, the mock pacing its events like a provider (`slow`: 50 ms apart).

`INTERLOCK_SOAK_S` sets the duration (default 60) and `INTERLOCK_SOAK_STREAMS` the
concurrency (default 100). Asserts: every call finishes within a bound (no hung
client), the database holds exactly one row per call and nothing was dropped, and the
proxy's resident memory levels off (the last third of the run grows far less than the
first). Reports the RSS curve (every 10 s) and the time to first byte under load.

The clients read raw bytes on one asyncio loop, parsing nothing, so the proxy is what
is measured; the CPU time of mitmdump and of this process (clients and mock) is reported
to show which one the machine's cores went to.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fault_kit import assert_accounted, assert_no_secret, report
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, auth_headers, llm_request

pytestmark = pytest.mark.solo  # 100 streams load both cores: nothing else runs meanwhile

SOAK_S = float(os.environ.get("INTERLOCK_SOAK_S", "60"))
STREAMS = int(os.environ.get("INTERLOCK_SOAK_STREAMS", "100"))
CALL_BOUND_S = 60.0  # one call under load; a client past this has hung
RSS_EVERY_S = 1.0
CURVE_EVERY_S = 10
# The last third may grow this much, or half the first third's growth if that is more.
RSS_LATE_SLACK_MB = 24.0
URLS = {
    "openai-chat": "https://api.openai.com/v1/chat/completions",
    "anthropic-messages": "https://api.anthropic.com/v1/messages",
}
MODELS = {"openai-chat": "gpt-4o", "anthropic-messages": "claude-opus-4-1"}  # both rewritten
SCENARIOS = ("text+slow", "text+slow", "tool+slow", "tools3+slow")  # tools3 has a denied read_file
POLICIES = {
    "policies": [
        {"policy": "redact"},
        {"policy": "model_rewrite", "map": {"gpt-4o": "gpt-4o-mini", "claude-opus-*": "claude-sonnet-4-6"}},
        {"policy": "system_prompt", "text": "Be brief."},
        {"policy": "replace", "rules": [{"find": "mock", "replace": "MOCK"}]},
        {"policy": "deny_tools", "deny": ["read_file"]},
    ]
}


@dataclass
class Tally:
    """What the clients saw."""

    calls: int = 0
    ttfb_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    slowest_s: float = 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU time a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every second until `stop()`."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._stopped = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self._stopped.is_set():
            self.samples.append((time.monotonic() - started, rss_mb(self.pid)))
            self._stopped.wait(RSS_EVERY_S)

    def stop(self) -> None:
        self._stopped.set()
        self.join(5)

    def at(self, fraction: float) -> float:
        """The sample nearest `fraction` of the run."""
        return self.samples[min(len(self.samples) - 1, round(fraction * (len(self.samples) - 1)))][1]

    def curve(self) -> list[tuple[int, float]]:
        """(seconds, MB) every CURVE_EVERY_S seconds, from the nearest sample."""
        marks = range(0, int(self.samples[-1][0]) + 1, CURVE_EVERY_S)
        return [(mark, round(min(self.samples, key=lambda s: abs(s[0] - mark))[1], 1)) for mark in marks]


async def one_call(client: httpx2.AsyncClient, api_key: str, number: int, tally: Tally) -> None:
    dialect = "openai-chat" if number % 2 == 0 else "anthropic-messages"
    scenario = SCENARIOS[(number // 2) % len(SCENARIOS)]
    content = f"Write to jane.doe@example.com about it. [[mock:{scenario}]]"  # redact scrubs the address
    body = llm_request(dialect, MODELS[dialect], [{"role": "user", "content": content}], stream=True)
    started = time.monotonic()
    first: float | None = None
    tally.calls += 1
    try:
        async with asyncio.timeout(CALL_BOUND_S):
            async with client.stream("POST", URLS[dialect], json=body, headers=auth_headers(dialect, api_key)) as r:
                async for _ in r.aiter_raw():
                    first = first or time.monotonic()
                if r.status_code != 200:
                    tally.failures.append(f"{dialect} HTTP {r.status_code}")
    except Exception as error:  # noqa: BLE001 - a failed or hung call is the finding
        tally.failures.append(f"{dialect} {scenario}: {error!r}")
    if first is not None:
        tally.ttfb_s.append(first - started)
    tally.slowest_s = max(tally.slowest_s, time.monotonic() - started)


async def soak(clients: ClientFactory, until: float) -> Tally:
    tally = Tally()
    limits = httpx2.Limits(max_connections=STREAMS, max_keepalive_connections=STREAMS)
    async with httpx2.AsyncClient(
        proxy=clients.proxy_url,
        verify=clients.ca.ssl_context(),
        trust_env=False,
        timeout=CALL_BOUND_S,
        limits=limits,
        headers={"accept-encoding": "identity"},
    ) as client:

        async def worker(index: int) -> None:
            number = index
            while time.monotonic() < until:
                await one_call(client, clients.api_key, number, tally)
                number += STREAMS

        await asyncio.gather(*(worker(index) for index in range(STREAMS)))
    return tally


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_soak(start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], api_key: str) -> None:
    proxy = start_proxy(config=POLICIES)
    clients = make_clients(proxy)
    sampler = RssSampler(proxy.pid)
    sampler.start()
    started, proxy_cpu, own_cpu = time.monotonic(), cpu_s(proxy.pid), time.process_time()
    tally = asyncio.run(soak(clients, started + SOAK_S))
    elapsed = time.monotonic() - started
    proxy_cpu, own_cpu = cpu_s(proxy.pid) - proxy_cpu, time.process_time() - own_cpu
    sampler.stop()
    assert tally.failures == [], tally.failures[:10]
    assert tally.slowest_s < CALL_BOUND_S and elapsed < SOAK_S + CALL_BOUND_S
    totals = assert_accounted(proxy, tally.calls)
    assert (totals.written, totals.dropped) == (tally.calls, 0)
    assert_no_secret(proxy.db_path, api_key)
    first_third = sampler.at(1 / 3) - sampler.at(0)
    last_third = sampler.at(1) - sampler.at(2 / 3)
    figures: dict[str, Any] = {
        "seconds": round(elapsed),
        "streams": STREAMS,
        "calls": tally.calls,
        "records": totals.written,
        "dropped": totals.dropped,
        "ttfb_p50_ms": round(statistics.median(tally.ttfb_s) * 1000),
        "ttfb_p95_ms": round(percentile(tally.ttfb_s, 0.95) * 1000),
        "ttfb_max_ms": round(max(tally.ttfb_s) * 1000),
        "slowest_call_s": round(tally.slowest_s, 2),
        "proxy_cpu_s": round(proxy_cpu, 1),  # mitmdump's CPU time over the run
        "clients_and_mock_cpu_s": round(own_cpu, 1),  # this process: the clients and the mock
        "rss_first_third_mb": round(first_third, 1),
        "rss_last_third_mb": round(last_third, 1),
        "rss_curve_mb": sampler.curve(),
    }
    print("soak:", figures)
    report("soak", "no hung client, records == calls, memory levels off", **figures)
    assert last_third < max(RSS_LATE_SLACK_MB, first_third / 2), figures
