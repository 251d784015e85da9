"""tool_call_judge costs: latency added beyond the judge's own time, memory per held tool call.

Run with `uv run python -m benchmarks.bench_judge [--runs N]`. Everything is loopback: the
mock provider and `tests/judge_mock.py` (`openai/judge-mock` through litellm).

- latency, in process: the policy's decision time minus the judge's scripted delay
  (prompt building, litellm, HTTP to the judge, parsing, recording);
- latency, end to end: a streamed tool-call response through mitmdump with the judge,
  minus the same response through mitmdump without policies, minus the judge's delay;
- memory: tracemalloc of the engine's state for N held tool calls (the judge not
  answering yet), per call: the engine alone (a policy that just waits), and with the
  judge's pending litellm requests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from harness import ProxyLauncher, make_ca
from harness_clients import ClientFactory
from harness_db import CallsDB
from judge_mock import JudgeMock, allow
from mock_provider import MockProvider
from policy_fixtures import chain_of, context, policed_stream
from wire_scenarios import Scenario, ScenarioToolCall, anthropic_sse

from interlock.neutral import ToolCall
from interlock.policy.base import Keep, Policy, PolicyContext, ToolDecision
from interlock.policy.chain import ChainedPolicy, PolicyChain

KEY_ENV = "INTERLOCK_BENCH_JUDGE_KEY"
_LAST_JUDGEMENTS = "select latency_ms from judge_decisions order by id desc limit ?"
JUDGE_DELAYS_S = (0.0, 0.2)
HELD_CALLS = 200


def judge_entry(api_base: str) -> dict[str, object]:
    return {
        "policy": "tool_call_judge",
        "model": "openai/judge-mock",
        "api_base": api_base,
        "api_key_env": KEY_ENV,
        "timeout_s": 30.0,
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# --- latency in process ----------------------------------------------------------------


async def decision_times(chain: PolicyChain, runs: int) -> list[float]:
    call = ToolCall(id="call_1", name="Bash", arguments={"command": "ls -la", "description": "List files"})
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await chain.tool_call(context("openai-chat"), call)
        times.append(time.perf_counter() - started)
    return times


def latency_in_process(judge: JudgeMock, runs: int) -> None:
    chain = chain_of(judge_entry(judge.url))
    for delay in JUDGE_DELAYS_S:
        judge.reset(default=allow(delay_s=delay))
        asyncio.run(decision_times(chain, 3))  # warm the connection pool
        times = asyncio.run(decision_times(chain, runs))
        added = statistics.median(times) - delay
        print(f"in process, judge delay {ms(delay)}: decision median {ms(statistics.median(times))}, "
              f"p90 {ms(statistics.quantiles(times, n=10)[-1])}; added beyond the judge: {ms(added)}")  # fmt: skip


# --- latency end to end ----------------------------------------------------------------


def stream_times(clients: ClientFactory, runs: int) -> list[float]:
    client = clients.anthropic()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi [[mock:tool]]"}]
        ) as stream:
            stream.get_final_message()
        times.append(time.perf_counter() - started)
    return times


def latency_end_to_end(judge: JudgeMock, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, MockProvider() as provider:
        root = Path(tmp)
        ca = make_ca(root / "conf")
        launcher = ProxyLauncher(root, ca, provider.url)
        try:
            bare = launcher(config={"policies": []})
            judged = launcher(config={"policies": [judge_entry(judge.url)]}, env={KEY_ENV: "sk-bench"})
            bare_clients = ClientFactory(bare.url, ca, "sk-bench")
            judged_clients = ClientFactory(judged.url, ca, "sk-bench")
            stream_times(bare_clients, 3)
            baseline = statistics.median(stream_times(bare_clients, runs))
            print(f"end to end, no policy: streamed tool-call response median {ms(baseline)}")
            assert judged.db_path is not None
            db = CallsDB(judged.db_path)
            for delay in JUDGE_DELAYS_S:
                judge.reset(default=allow(delay_s=delay))
                stream_times(judged_clients, 3)
                median = statistics.median(stream_times(judged_clients, runs))
                time.sleep(1.5)  # the recorder writes in batches
                latencies = [row["latency_ms"] / 1000 for row in db.rows(_LAST_JUDGEMENTS, (runs,))]
                in_policy = statistics.median(latencies) - delay
                print(f"end to end, judge delay {ms(delay)}: median {ms(median)}; "
                      f"added beyond the judge: {ms(median - baseline - delay)} "
                      f"(of which the judge call inside mitmdump: {ms(in_policy)})")  # fmt: skip
            bare_clients.close()
            judged_clients.close()
        finally:
            launcher.stop_all()


# --- memory per held tool call ---------------------------------------------------------


class WaitingPolicy(Policy):
    """Holds every tool call until `release` is set: the engine's cost alone."""

    name = "waiting"

    def __init__(self) -> None:
        super().__init__(self.Options(), "waiting")
        self.release = asyncio.Event()

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        await self.release.wait()
        return Keep(call)


def many_calls(count: int) -> list[bytes]:
    calls = [
        ScenarioToolCall(
            id=f"{i:023d}",
            name="Bash",
            argument_pieces=['{"command": "grep -rn ', f"TODO{i} src/", '", "description": "find TODOs"}'],
        )
        for i in range(count)
    ]
    return anthropic_sse(Scenario(text=["Working on it."], tool_calls=calls), "claude-sonnet-4-6")


async def held_bytes(chain: PolicyChain, settle_s: float) -> int:
    """Bytes allocated while HELD_CALLS tool calls wait for their decisions."""
    events = many_calls(HELD_CALLS)
    held_part = events[:-2]  # everything up to message_delta: all calls complete, none released
    stream = policed_stream(chain, context("anthropic-messages"))
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for event in held_part:
        stream(event)
    await asyncio.sleep(settle_s)  # let pending judge requests be sent
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


async def held_with_waiting_policy() -> int:
    policy = WaitingPolicy()
    size = await held_bytes(PolicyChain([ChainedPolicy(policy, "allow", 3600.0)]), 0.0)
    policy.release.set()
    await asyncio.sleep(0)
    return size


def memory(judge: JudgeMock) -> None:
    engine = asyncio.run(held_with_waiting_policy())
    print(f"memory, engine alone: {engine / HELD_CALLS / 1024:.1f} KiB per held tool call ({HELD_CALLS} held)")
    judge.reset(default=allow(delay_s=3.0))
    chain = chain_of(judge_entry(judge.url))
    with_judge = asyncio.run(held_bytes(chain, 1.0))
    print(f"memory, with pending judge requests: {with_judge / HELD_CALLS / 1024:.1f} KiB per held tool call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    os.environ[KEY_ENV] = "sk-bench"
    with JudgeMock() as judge:
        latency_in_process(judge, args.runs)
        latency_end_to_end(judge, args.runs)
        memory(judge)


if __name__ == "__main__":
    main()
