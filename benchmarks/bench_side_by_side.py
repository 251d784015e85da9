"""Side by side: direct, bare mitmdump and Interlock's configurations, in alternating rounds.

`uv run python -m benchmarks.bench_side_by_side [--rounds 3] [--seconds 2] [--out docs/BENCHMARKS.md]`
(`just bench`): the real `openai` SDK (async) calls the loopback mock (its own process,
`benchmarks.servers`) directly and through each proxy, round after round, every
configuration once per round, so a change in the machine's load falls on all alike.

Per round and configuration: non-streamed calls/s at 1, 20 and 100 concurrent clients
(each client calls again as soon as it has its answer, for `--seconds`); time to the
first streamed chunk; per-event latency (the mock writes its send time into each text
delta, `stamp`, and the client subtracts it from the arrival time); streamed events/s.
Once per proxy: the resident memory of 100 slow streams open at once. Then Interlock's
own figures: the recorder's sustained rate and what a slower disk does, start-up to
ready with and without a judge, and Datasette page times on a 100k-call database.
Everything is written to `--out` (docs/BENCHMARKS.md) with medians, spreads and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import mitmproxy.version
from harness import MitmCA, ProxyLauncher, ProxyProcess, make_ca
from openai import AsyncOpenAI

from benchmarks import bench_call_path, bench_instructions
from benchmarks.bench_instructions import Counts
from benchmarks.bench_judge import KEY_ENV, judge_entry
from benchmarks.servers import LONG_STREAM, LONG_STREAM_DELTAS, Servers
from benchmarks.workload import API_KEY, BARE_ARGS, MESSAGES, RULES, sdk_client, tool_call

log = logging.getLogger("bench_side_by_side")

CONCURRENCY = (1, 20, 100)
STAMP_DELAY_MS = 20  # between the stamped stream's events
OPEN_STREAMS = 100
MEMORY_RUNS = 3
CONNECTIONS = max(*CONCURRENCY, 2 * OPEN_STREAMS) + 10  # the most callers, or the open streams and calls beside


@dataclass
class Target:
    """One configuration under test: no proxy (`proxy` None) or a running mitmdump."""

    name: str
    proxy: ProxyProcess | None
    judge_delay_s: float = 0.0
    figures: dict[str, list[float]] = field(default_factory=dict)

    def add(self, figure: str, value: float) -> None:
        self.figures.setdefault(figure, []).append(value)


# --- one round's figures ---------------------------------------------------------------------


async def calls_per_s(client: AsyncOpenAI, clients: int, seconds: float) -> float:
    """Non-streamed tool-call answers (`tool_call`), `clients` at a time."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def one_client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await tool_call(client)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


async def first_chunk_ms(client: AsyncOpenAI, calls: int = 40) -> float:
    """Streamed calls one at a time, 100 ms apart (the recorder has written the previous
    one), each read to its end on a kept-alive connection; raw HTTP (the SDK's own time
    per call would blur the figure): from sending the request to its first body bytes."""
    times = []
    http = client._client  # the SDK's own HTTP client: its proxy, CA and pool
    url = f"{client.base_url}chat/completions"
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    headers = {"authorization": f"Bearer {API_KEY}"}
    for _ in range(calls):
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        first: float | None = None
        async with http.stream("POST", url, json=body, headers=headers) as response:
            async for _piece in response.aiter_raw():
                first = first or time.perf_counter()
        assert response.status_code == 200 and first is not None
        times.append((first - started) * 1000)
    return statistics.median(times)


async def event_latencies_ms(client: AsyncOpenAI, streams: int = 3) -> list[float]:
    """Arrival minus the mock's send time, per text delta, over `streams` stamped streams."""
    latencies = []
    headers = {"x-mock-scenario": "stamped+stamp", "x-mock-delay-ms": str(STAMP_DELAY_MS)}
    for _ in range(streams):
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers
        )
        async for chunk in stream:
            arrived = time.monotonic_ns()
            if chunk.choices and (content := chunk.choices[0].delta.content):
                latencies.append((arrived - int(content)) / 1e6)
    return latencies


async def events_per_s(client: AsyncOpenAI) -> float:
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-mock-scenario": LONG_STREAM}
    )
    events = 0
    async for _chunk in stream:
        events += 1
    return events / (time.perf_counter() - started)


def machine_idle() -> tuple[int, int]:
    """The machine's idle and total CPU time so far, in clock ticks (`/proc/stat`)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks[3] + ticks[4], sum(ticks)  # idle and iowait, of all


def cpu_s(pid: int, thread: int | None = None) -> float:
    """User and system CPU time the process (or its `thread`, by id) has used."""
    stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_round(target: Target, client: AsyncOpenAI, seconds: float) -> None:
    await calls_per_s(client, 5, 0.3)  # warm the connections up
    pid = target.proxy.pid if target.proxy else None
    for clients in CONCURRENCY:
        cpu_before = (cpu_s(pid), cpu_s(pid, thread=pid)) if pid else (0.0, 0.0)  # the main thread's id is the pid
        started, client_before, idle_before = time.perf_counter(), time.process_time(), machine_idle()
        rate = await calls_per_s(client, clients, seconds)
        target.add(f"calls/s, {clients} clients", rate)
        if clients == 20:
            elapsed = time.perf_counter() - started
            calls = rate * elapsed
            target.add("client CPU per call, 20 clients, ms", (time.process_time() - client_before) * 1000 / calls)
            idle, total = (after - before for after, before in zip(machine_idle(), idle_before, strict=True))
            target.add("machine idle, 20 clients, %", idle * 100 / total)
            if pid is not None:
                used, loop_used = cpu_s(pid) - cpu_before[0], cpu_s(pid, thread=pid) - cpu_before[1]
                target.add("proxy CPU per call, 20 clients, ms", used * 1000 / calls)
                target.add("proxy event loop CPU per call, 20 clients, ms", loop_used * 1000 / calls)
                target.add("proxy event loop busy, 20 clients, %", loop_used * 100 / elapsed)
    target.add("first chunk, ms", await first_chunk_ms(client))
    latencies = await event_latencies_ms(client)
    target.add("event latency median, ms", statistics.median(latencies))
    target.add("event latency max, ms", max(latencies))
    target.add("events/s, one stream", await events_per_s(client))


# --- memory ----------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def memory_per_stream_kb(proxy: ProxyProcess, client: AsyncOpenAI) -> float:
    """Resident memory OPEN_STREAMS slow streams open at once add to a fresh proxy (after
    a few calls), per stream."""
    await calls_per_s(client, 5, 0.3)
    before = rss_kb(proxy.pid)
    headers = {"x-mock-scenario": "stamped", "x-mock-delay-ms": "1000"}  # 8 events, 1 s apart
    release = asyncio.Event()
    opened: list[int] = []

    async def slow_stream() -> None:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers
        )
        async for _chunk in stream:
            opened.append(1)
            break
        await release.wait()
        await stream.close()

    tasks = [asyncio.create_task(slow_stream()) for _ in range(OPEN_STREAMS)]
    deadline = time.monotonic() + 30
    while len(opened) < OPEN_STREAMS and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.2)  # an event more on each
    during = rss_kb(proxy.pid)
    release.set()
    await asyncio.gather(*tasks)
    return (during - before) / OPEN_STREAMS


# --- the run ---------------------------------------------------------------------------------


def start_targets(launcher: ProxyLauncher, urls: dict[str, str]) -> list[Target]:
    env = {KEY_ENV: "sk-judge-bench-0123456789abcdef"}

    def judged(name: str) -> dict[str, Any]:
        return {"policies": [judge_entry(f"{urls[name]}")]}

    return [
        Target("direct", None),
        Target("bare mitmdump", launcher(script=None, extra_args=BARE_ARGS)),
        Target("Interlock, no policies", launcher(config={"policies": []})),
        Target("rule policies", launcher(config={"policies": RULES})),
        Target("judge, 0 ms", launcher(config=judged("judge0"), env=env)),
        Target("judge, 200 ms", launcher(config=judged("judge200"), env=env), judge_delay_s=0.2),
    ]


def measure(rounds: int, seconds: float) -> tuple[list[Target], dict[str, float], HookTimes]:
    with Servers() as servers, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca = make_ca(root / "confdir")
        launcher = ProxyLauncher(root, ca, servers.urls["mock"])
        try:
            targets = start_targets(launcher, servers.urls)
            fresh = {
                "bare mitmdump": lambda: launcher(script=None, extra_args=BARE_ARGS),
                "Interlock, no policies": lambda: launcher(config={"policies": []}),
                "rule policies": lambda: launcher(config={"policies": RULES}),
            }

            async def all_rounds() -> dict[str, float]:
                clients = {
                    t.name: sdk_client(t.proxy, servers.urls["mock"], ca, connections=CONNECTIONS) for t in targets
                }
                for number in range(rounds):
                    for target in targets:
                        log.info("round %d/%d: %s", number + 1, rounds, target.name)
                        await run_round(target, clients[target.name], seconds)
                for client in clients.values():
                    await client.close()
                memory: dict[str, list[float]] = {}
                for _ in range(MEMORY_RUNS):  # each on a fresh proxy
                    for name, start in fresh.items():
                        target = Target(name, start())
                        assert target.proxy is not None
                        client = sdk_client(target.proxy, servers.urls["mock"], ca, connections=CONNECTIONS)
                        memory.setdefault(name, []).append(await memory_per_stream_kb(target.proxy, client))
                        await client.close()
                        target.proxy.stop()
                return {name: statistics.median(runs) for name, runs in memory.items()}

            memory = asyncio.run(all_rounds())
            hooks = hook_times(launcher, servers.urls["mock"], ca)
        finally:
            launcher.stop_all()
    return targets, memory, hooks


# --- the report ------------------------------------------------------------------------------


def spread(values: list[float], digits: int) -> str:
    median = statistics.median(values)
    return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_gb:.0f} GiB, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, mitmproxy {mitmproxy.version.VERSION}"
    )


FIGURES: list[tuple[str, int, str]] = [  # figure, digits, how it compares with bare mitmdump
    ("calls/s, 1 clients", 0, "ratio"),
    ("calls/s, 20 clients", 0, "ratio"),
    ("calls/s, 100 clients", 0, "ratio"),
    ("proxy CPU per call, 20 clients, ms", 2, "added"),
    ("proxy event loop CPU per call, 20 clients, ms", 2, "added"),
    ("proxy event loop busy, 20 clients, %", 0, "added"),
    ("client CPU per call, 20 clients, ms", 2, "added"),
    ("machine idle, 20 clients, %", 0, "added"),
    ("first chunk, ms", 2, "added"),
    ("event latency median, ms", 2, "added"),
    ("event latency max, ms", 2, "added"),
    ("events/s, one stream", 0, "ratio"),
]


def side_by_side_table(targets: list[Target]) -> list[str]:
    bare = next(t for t in targets if t.name == "bare mitmdump")
    lines = ["| figure | " + " | ".join(t.name for t in targets) + " |", "|---" * (len(targets) + 1) + "|"]
    for figure, digits, compare in FIGURES:
        cells = []
        base = statistics.median(bare.figures[figure])
        for target in targets:
            if figure not in target.figures:  # no proxy, no proxy CPU
                cells.append("-")
                continue
            value = statistics.median(target.figures[figure])
            cell = spread(target.figures[figure], digits)
            if target is not bare and target.name != "direct":
                cell += f" x{value / base:.2f}" if compare == "ratio" else f" {value - base:+.2f}"
            cells.append(cell)
        lines.append(f"| {figure} | " + " | ".join(cells) + " |")
    return lines


def judge_lines(targets: list[Target]) -> list[str]:
    """The judge's added time per call beyond its own answer, from the 1-client rates."""
    by_name = {t.name: statistics.median(t.figures["calls/s, 1 clients"]) for t in targets}
    base_ms = 1000 / by_name["Interlock, no policies"]
    lines = []
    for target in targets:
        if target.name.startswith("judge"):
            added = 1000 / by_name[target.name] - base_ms - target.judge_delay_s * 1000
            lines.append(
                f"- {target.name}: {1000 / by_name[target.name]:.1f} ms per call against {base_ms:.1f} ms with no "
                f"policies: **{added:+.1f} ms** beyond the judge's own {target.judge_delay_s * 1000:.0f} ms answer"
            )
    return lines


HOOK_LOAD_S = 5.0  # the 20-client load under which the hooks' CPU is measured


def _timed_proxy(launcher: ProxyLauncher, name: str) -> ProxyProcess:
    return launcher(
        script=None,
        extra_args=[
            "-s",
            str(REPO / "benchmarks" / "timed_bundle.py"),
            "--set",
            f"interlock_db={launcher.root / name}",
        ],
    )


def _hook_lines(proxy: ProxyProcess) -> list[tuple[str, str, float, float]]:
    """(hook, addon, median wall us, mean CPU us) from `timed_bundle`'s lines at shutdown."""
    found = []
    for line in proxy.output().splitlines():
        if "hook time " in line:
            hook, addon, wall, cpu, _count = line.split("hook time ", 1)[1].split()
            found.append((hook, addon, float(wall), float(cpu)))
    return found


@dataclass
class HookTimes:
    """What `hook_times` measured, in microseconds, and its section of the report."""

    before_first_byte: float  # wall: the hooks a streamed call waits for before its first byte
    hooks_cpu: float  # every hook's CPU per call at 20 clients
    loop_cpu: float  # the event loop's CPU per call in all, in the same run
    lines: list[str]


def hook_times(launcher: ProxyLauncher, mock_url: str, ca: MitmCA, load_s: float = HOOK_LOAD_S) -> HookTimes:
    """Interlock's hooks timed inside mitmdump (`benchmarks/timed_bundle.py`), no policies:
    their wall time over the first-chunk calls (what bounds the added time to the first
    byte), and their CPU under `load_s` of the 20-client load against the event loop's
    per call."""
    first_proxy, load_proxy = _timed_proxy(launcher, "timed.db"), _timed_proxy(launcher, "loaded.db")

    async def calls() -> float:
        """The first-chunk calls, then the load; the loop's CPU per call under the load, in us."""
        client = sdk_client(first_proxy, mock_url, ca, connections=CONNECTIONS)
        await first_chunk_ms(client)
        await client.close()
        client = sdk_client(load_proxy, mock_url, ca, connections=CONNECTIONS)
        await calls_per_s(client, 5, 0.3)
        before, started = cpu_s(load_proxy.pid, thread=load_proxy.pid), time.perf_counter()
        rate = await calls_per_s(client, 20, load_s)
        used = cpu_s(load_proxy.pid, thread=load_proxy.pid) - before
        per_call = used * 1e6 / (rate * (time.perf_counter() - started))
        await client.close()
        return per_call

    loop_cpu = asyncio.run(calls())
    first_proxy.stop()
    load_proxy.stop()
    wall = {(hook, addon): us for hook, addon, us, _ in _hook_lines(first_proxy)}
    cpu = {(hook, addon): us for hook, addon, _, us in _hook_lines(load_proxy)}
    before_first = sum(us for (hook, _), us in wall.items() if hook != "response")
    hooks_cpu = sum(cpu.values())
    lines = [
        "### Interlock's hooks inside mitmdump",
        "",
        (
            "Each of Interlock's addons' hooks timed inside mitmdump (`benchmarks/timed_bundle.py`, no policies): "
            "the median wall time over 40 streamed calls made 100 ms apart (the `requestheaders`, `request` and "
            f"`responseheaders` ones, {before_first:.0f} us in all here, are what a call waits for before its first "
            f"byte), and the mean CPU time of the event loop's thread per non-streamed call under {load_s:g} s "
            "of the 20-client load."
        ),
        "",
        "| hook | addon | wall, first-chunk calls, us | CPU at 20 clients, us |",
        "|---|---|---|---|",
    ]
    for key in dict.fromkeys([*wall, *cpu]):
        shown = [f"{table[key]:.0f}" if key in table else "-" for table in (wall, cpu)]
        lines.append(f"| `{key[0]}` | {key[1]} | {shown[0]} | {shown[1]} |")
    lines += [
        "",
        (
            f"Under that load Interlock's hooks took {hooks_cpu:.0f} us of the event loop's CPU a call, of the "
            f"{loop_cpu:.0f} us the loop spent on each in all (mitmproxy's own work, its hooks handed to every "
            "addon, the garbage of its flows collected, the recorder's batches)."
        ),
    ]
    return HookTimes(before_first, hooks_cpu, loop_cpu, lines)


def verdict(met: bool) -> str:
    return "met" if met else "missed"


def instructions_line(counted: dict[str, Counts], bare_idle: float) -> str:
    """What the instruction counts say bounds the calls/s target."""
    bare, unrecorded, recorded = (
        counted[name].loop for name in ("bare mitmdump", "Interlock, no recorder", "Interlock, no policies")
    )
    return (
        f' Counted by callgrind ("Instructions per call", below), the event loop executes {bare:.2f} M '
        f"instructions a call in bare mitmdump, {unrecorded:.2f} M in Interlock without its recorder "
        f"(x{bare / unrecorded:.2f}) and {recorded:.2f} M with it (x{bare / recorded:.2f}): matching, policing and "
        f"the rest of Interlock {'fit' if bare / unrecorded >= 0.95 else 'do not fit'} in the target's 5 %; "
        "recording each call (its record built, scrubbed and announced, its rows batched to the writer) takes "
        f"x{unrecorded / recorded:.2f} on its own. During bare's 20-client figure the machine was {bare_idle:.0f} % "
        "idle: the client, the mock and the proxy use both cores, so the recorder's work has no spare core to "
        "move to in another thread or process either."
    )


def bounds_lines(
    targets: list[Target], recorder_rate: float | None, hooks: HookTimes, instructions: dict[str, Counts] | None
) -> list[str]:
    """Each target of issue 12 against what was measured, and what bounds a miss."""

    def median(name: str, figure: str) -> float:
        return statistics.median(next(t for t in targets if t.name == name).figures[figure])

    bare_rate, none_rate = (
        median("bare mitmdump", "calls/s, 20 clients"),
        median("Interlock, no policies", "calls/s, 20 clients"),
    )
    cpu = "proxy CPU per call, 20 clients, ms"
    bare_cpu, none_cpu, rules_cpu = (
        median(n, cpu) for n in ("bare mitmdump", "Interlock, no policies", "rule policies")
    )
    judge_cpu = median("judge, 0 ms", cpu)
    loop_cpu, busy = "proxy event loop CPU per call, 20 clients, ms", "proxy event loop busy, 20 clients, %"
    bare_loop, none_loop = median("bare mitmdump", loop_cpu), median("Interlock, no policies", loop_cpu)
    bare_busy, none_busy = median("bare mitmdump", busy), median("Interlock, no policies", busy)
    added_first = median("Interlock, no policies", "first chunk, ms") - median("bare mitmdump", "first chunk, ms")
    bare_first = next(t for t in targets if t.name == "bare mitmdump").figures["first chunk, ms"]
    bare_first_spread = max(bare_first) - min(bare_first)
    added_event = median("rule policies", "event latency median, ms") - median(
        "bare mitmdump", "event latency median, ms"
    )
    recorder = (
        f" (the recorder alone sustains {recorder_rate:.0f} agent-sized records a second, about "
        f"{1000 / recorder_rate:.1f} ms of CPU each)"
        if recorder_rate
        else ""
    )
    return [
        "## Against the targets",
        "",
        (
            f"- **Non-streamed calls/s, 20 clients, recording everything: x{none_rate / bare_rate:.2f} of bare mitmdump "
            f"(target x0.95), {verdict(none_rate / bare_rate >= 0.95)}.** Every proxy's event loop (its main thread: mitmproxy's hooks and Interlock's) "
            f"is nearly as busy as it can be at 20 clients (bare {bare_busy:.0f}%, Interlock {none_busy:.0f}% of a core, "
            f"the rest of the 2 cores taken by the client, the mock and the other threads), so calls/s go as the "
            f"loop's CPU per call: bare mitmdump {bare_loop:.2f} ms, Interlock {none_loop:.2f} ms ({none_loop - bare_loop:+.2f}). "
            f"x0.95 would leave Interlock {bare_loop * (1 / 0.95 - 1):.2f} ms a call on the loop. What it spends there: "
            f"its hooks, {hooks.hooks_cpu / 1000:.2f} ms a call timed inside mitmdump under the same load (below; "
            "matching and reading the request, building the record and scrubbing every text of it of secrets, "
            "announcing it; `just bench call_path` times each in process, where warm caches make them cheaper), "
            "the recorder's batches handed between the loop and its threads, and the writer's threads' Python "
            "(rows, pricing; the SQLite work in C releases the interpreter), which holds the interpreter the loop "
            f"waits for{recorder}. The proxy's CPU per call in all is "
            f"{none_cpu:.2f} ms against bare's {bare_cpu:.2f}; the rule policies' differs from no policies' by "
            f"{rules_cpu - none_cpu:+.2f} ms (`redact` and `replace` read every text of the request and response; "
            "between runs this moves by as much). Closing the gap means recording less per call on the loop (the "
            "record is built and scrubbed there so that no hook, log or terminal line ever sees a secret) or "
            "outside this process; a faster loop elsewhere would not."
            + (
                instructions_line(instructions, median("bare mitmdump", "machine idle, 20 clients, %"))
                if instructions
                else ""
            )
        ),
        (
            f"- **Added time to the first streamed chunk: {added_first:+.2f} ms (target < 0.3 ms), "
            f"{verdict(added_first < 0.3)}** for a call on its own (the spread of bare's own figure is "
            f"{bare_first_spread:.2f} ms). Interlock's own hooks on that path took {hooks.before_first_byte / 1000:.2f} ms "
            "inside mitmdump (below: the request matched and its call state made, the body parsed, the idle timer "
            "armed, the response headers looked at); a call made after 100 ms idle meets this machine's jitter, of "
            "the size of the figures' spreads, so one run can land on either side of the target."
        ),
        (
            f"- **Added latency per streamed event with `replace` and `redact`: {added_event:+.2f} ms (target "
            f"< 0.5 ms where the text cannot match), {verdict(added_event < 0.5)}.** A delta that cannot begin a match is forwarded when it arrives "
            "(the 20.8 ms, one event interval, of the issue is gone)."
        ),
        (
            f"- **The judge**: {judge_cpu - none_cpu:.1f} ms of the proxy's CPU per judged call beyond no policies, "
            "nearly all in litellm's `acompletion` (its aiohttp transport, the logging payload it builds and the "
            "cost it computes for every call, callbacks or not), on the event loop. That bounds judged calls/s "
            "however fast the judge answers."
        ),
    ]


def write_report(path: Path, args: argparse.Namespace, targets: list[Target], memory: dict[str, float],
                 extra: list[str]) -> None:  # fmt: skip
    bare_kb = memory["bare mitmdump"]
    text = [
        "# Benchmarks",
        "",
        "Written by `just bench` (`benchmarks/bench_side_by_side.py`); do not edit by hand.",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
        "## Side by side",
        "",
        (
            f"The `openai` SDK (async, one process) calls the loopback mock (its own process) directly and through each "
            f"proxy over plain HTTP upstream; {args.rounds} alternating rounds, each configuration once per round; each "
            f"cell is the median of the rounds (min-max), then its ratio to bare mitmdump, or what it adds to it. "
            f"Calls/s: non-streamed answers with one tool call (the judge judges each), each client calling again at "
            f"once, {args.seconds:g} s per figure. CPU per call: the proxy process's user and system time (and the "
            f"benchmark process's, the client's) during the 20-client figure, over its calls; the event loop's: "
            f"the proxy's main thread's alone (mitmproxy's hooks and Interlock's run there), and how busy it was "
            f"(percent of one core) during that figure; machine idle: the share of all cores' time nobody used "
            f"during it. First chunk: a "
            f"streamed text answer over raw HTTP, median of 40 calls made 100 ms apart on a kept-alive connection. Event latency: "
            f"the client's arrival time minus the mock's send time written into each text delta, "
            f"{STAMP_DELAY_MS} ms apart, 3 streams of 8. Events/s: one stream of {LONG_STREAM_DELTAS} deltas sent as fast as "
            f"the mock can. Bare mitmdump runs `benchmarks/bare_stream.py` (stream SSE) only. Rule policies: `redact`, "
            f"`replace` (a literal and a regular expression, on requests and responses) and `deny_tools`. The judges "
            f"are loopback mocks answering `allow` at once or after 200 ms."
        ),
        "",
        *side_by_side_table(targets),
        "",
        "### The judge's added time",
        "",
        *judge_lines(targets),
        "",
        "### Memory per open stream",
        "",
        (
            f"{OPEN_STREAMS} slow streams (one event a second) open at once on a fresh proxy (after 5 calls): its "
            f"resident memory during them minus before, per stream, median of {MEMORY_RUNS} fresh proxies:"
        ),
        "",
        *(
            f"- {name}: {kb:.0f} KB" + ("" if name == "bare mitmdump" else f" ({kb - bare_kb:+.0f} KB beyond bare)")
            for name, kb in memory.items()
        ),
        "",
        *extra,
    ]
    path.write_text("\n".join(text) + "\n")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per calls/s figure")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    parser.add_argument("--quick", action="store_true", help="skip the recorder, start-up and Datasette sections")
    args = parser.parse_args()
    targets, memory, hooks = measure(args.rounds, args.seconds)
    call_path = bench_call_path.report(bench_call_path.measure())
    extra: list[str] = []
    recorder_rate = None
    instructions = None
    if not args.quick:
        from benchmarks import bench_startup, bench_storage, bench_ui, recorder_load

        recorder = recorder_load.measure()
        recorder_rate = recorder.sustained_per_s
        instructions = bench_instructions.measure()
        sections = (
            bench_instructions.report(instructions, bench_instructions.CALLS),
            recorder_load.report(recorder),
            bench_storage.report(),
            bench_startup.report(),
            bench_ui.report(),
        )
        for section in sections:
            extra += [*section, ""]
    report = [*bounds_lines(targets, recorder_rate, hooks, instructions), "", *hooks.lines, "", *call_path, "", *extra]
    write_report(args.out, args, targets, memory, report)
    log.info("%s", args.out.read_text())


if __name__ == "__main__":
    main()
