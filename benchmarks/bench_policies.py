"""Policy chain overhead: `replace` + `redact` on vs no policies, per streamed event and per call.

Run with `uv run python -m benchmarks.bench_policies [--events N] [--calls N]`.

- in process, per streamed event: the engine's `PolicyStream` fed one event per chunk
  (as mitmproxy feeds it) over a long text stream, against the pass-through tap the addon
  uses when no policy looks at responses; both dialects;
- in process, per call: the request hook (`redact` + `replace` over a 40-message
  conversation) and the non-streamed response rewrite, against no policies;
- through the proxy: the same streamed and non-streamed calls through mitmdump in front of
  the loopback mock, with and without the chain (median wall time per call).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import httpx2
from harness import ProxyLauncher, make_ca
from mock_provider import MockProvider
from policy_fixtures import chain_of, context, police_body, policed_stream
from wire_scenarios import SCENARIOS, Scenario, json_for, sse_for

from benchmarks.workload import RULES
from interlock.dialects import DIALECTS, dialect_for
from interlock.engine.stream import StreamTap
from interlock.policy.chain import PolicyChain

log = logging.getLogger("bench_policies")

# The rule policies' text rewriters: `redact` and `replace` (the shared workload's rules
# without `deny_tools`, which reads tool calls only).
CHAIN: list[dict[str, Any]] = [policy for policy in RULES if policy["policy"] in ("redact", "replace")]
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "streaming",
    "tokens",
    "arrive",
    "one",
    "by",
    "one",
]
BENCH_SCENARIO = "bench_long_text"


def long_text(deltas: int) -> Scenario:
    return Scenario(text=[f" {WORDS[i % len(WORDS)]}" for i in range(deltas)])


def conversation(turns: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for turn in range(turns):
        body = " ".join(WORDS * 8) + f" turn {turn}"
        messages += [{"role": "user", "content": body}, {"role": "assistant", "content": body}]
    messages.append({"role": "user", "content": "and mail me at jane@example.org"})
    return {"model": "gpt-4o-mini", "messages": messages}


def wire(dialect: str, s: Scenario) -> tuple[list[bytes], dict[str, Any]]:
    """The stream and the whole body of scenario `s` in `dialect`'s wire format."""
    return sse_for(dialect, s, "m"), json_for(dialect, s, "m")


def best_of(repeat: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(repeat))


async def stream_seconds(chain: PolicyChain | None, dialect: str, events: list[bytes]) -> float:
    """Feed the events one per chunk: through the policy stream, or the addon's tap
    (which keeps, parses and reassembles the stream for the record)."""
    started = time.perf_counter()
    if chain is None:
        tap = StreamTap(dialect_for(dialect).reassembler())
        for event in [*events, b""]:
            tap.passthrough(event)
    else:
        stream = policed_stream(chain, context(dialect))
        for event in [*events, b""]:
            stream(event)
            while stream.waiting:  # never with these sync policies
                await stream.wait()
                stream.resume()
    return time.perf_counter() - started


def per_event(events_count: int) -> None:
    chain = chain_of(*CHAIN)  # a chain is built once per config load, not per call
    for dialect in DIALECTS:
        events, _ = wire(dialect, long_text(events_count))
        bare = best_of(5, lambda: asyncio.run(stream_seconds(None, dialect, events)))  # noqa: B023 - used at once
        policed = best_of(5, lambda: asyncio.run(stream_seconds(chain, dialect, events)))  # noqa: B023
        log.info(
            "in process, %s stream of %d events: tap %.2f us/event, replace+redact %.2f us/event "
            "(overhead %.2f us/event)",
            dialect, len(events), bare / len(events) * 1e6, policed / len(events) * 1e6,
            (policed - bare) / len(events) * 1e6,
        )  # fmt: skip


def per_call(repeat: int) -> None:
    request = conversation(20)
    size = len(json.dumps(request))

    async def request_seconds(chain: PolicyChain) -> float:
        started = time.perf_counter()
        await chain.request(context("openai-chat"), request)
        return time.perf_counter() - started

    async def body_seconds(chain: PolicyChain, dialect: str, body: dict[str, Any]) -> float:
        started = time.perf_counter()
        await police_body(chain, dialect, body)
        return time.perf_counter() - started

    empty, chain = chain_of(), chain_of(*CHAIN)
    bare = statistics.median(asyncio.run(request_seconds(empty)) for _ in range(repeat))
    policed = statistics.median(asyncio.run(request_seconds(chain)) for _ in range(repeat))
    log.info(
        "in process, request hook on a %d KB, 41-message request: no policies %.1f us, replace+redact %.1f us",
        size // 1024, bare * 1e6, policed * 1e6,
    )  # fmt: skip
    for dialect in DIALECTS:
        _, body = wire(dialect, SCENARIOS["tools2"])
        policed = statistics.median(asyncio.run(body_seconds(chain, dialect, body)) for _ in range(repeat))
        log.info("in process, non-streamed %s response rewrite: replace+redact %.1f us", dialect, policed * 1e6)


def through_proxy(calls: int, deltas: int) -> None:
    SCENARIOS[BENCH_SCENARIO] = long_text(deltas)  # the in-process mock serves it by name
    with tempfile.TemporaryDirectory() as tmp, MockProvider() as mock:
        root = Path(tmp)
        launcher = ProxyLauncher(root, make_ca(root / "confdir"), mock.url)
        try:
            results = {}
            for label, policies in (("no policies", []), ("replace+redact", CHAIN)):
                proxy = launcher(config={"policies": policies})
                results[label] = time_calls(proxy.url, launcher.ca.bundle, calls)
            overhead = {}
            for kind in ("stream", "json"):
                bare, policed = results["no policies"][kind], results["replace+redact"][kind]
                overhead[kind] = policed - bare
                log.info(
                    "through mitmdump, %s call (41-message request, %d text deltas): no policies %.2f ms, "
                    "replace+redact %.2f ms (overhead %.2f ms per call), median of %d",
                    kind, deltas, bare * 1e3, policed * 1e3, (policed - bare) * 1e3, calls,
                )  # fmt: skip
            events = deltas + 6  # role, deltas, finish, usage, [DONE]
            log.info(
                "through mitmdump, streamed events beyond the request hook: %.1f us/event",
                (overhead["stream"] - overhead["json"]) / events * 1e6,
            )
        finally:
            launcher.stop_all()


def time_calls(proxy_url: str, bundle: Path, calls: int) -> dict[str, float]:
    import ssl

    medians = {}
    with httpx2.Client(
        proxy=proxy_url, verify=ssl.create_default_context(cafile=str(bundle)), trust_env=False
    ) as client:
        for kind, stream in (("stream", True), ("json", False)):
            body: dict[str, Any] = {
                "model": "gpt-4o-mini",
                "stream": stream,
                "messages": conversation(20)["messages"] + [{"role": "user", "content": f"[[mock:{BENCH_SCENARIO}]]"}],
            }
            times = []
            for _ in range(calls + 3):  # the first calls warm the connection up
                started = time.perf_counter()
                response = client.post(
                    "https://api.openai.com/v1/chat/completions",
                    json=body,
                    headers={"authorization": "Bearer sk-bench", "accept-encoding": "identity"},
                )
                assert response.status_code == 200, response.text[:300]
                times.append(time.perf_counter() - started)
            medians[kind] = statistics.median(times[3:])
    return medians


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "httpx2"):  # one line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="text deltas in the in-process stream")
    parser.add_argument("--calls", type=int, default=30, help="calls per configuration through the proxy")
    parser.add_argument("--deltas", type=int, default=200, help="text deltas per streamed call through the proxy")
    args = parser.parse_args()
    per_event(args.events)
    per_call(50)
    through_proxy(args.calls, args.deltas)


if __name__ == "__main__":
    main()
