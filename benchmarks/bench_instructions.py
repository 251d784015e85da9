"""Instructions a call costs inside mitmdump, counted by callgrind: the figure noise leaves alone.

`uv run python -m benchmarks.bench_instructions [--calls 200]` (`just bench instructions`;
`just bench` puts its table in docs/BENCHMARKS.md). On a shared 2-core machine the
side-by-side calls/s of one checkout move by 25 % and more between runs; the instructions
the proxy executes per call move by about 1 %. So this is the figure that tells what a
configuration, or a change, costs.

Each configuration's mitmdump runs under valgrind's callgrind (Debian's `valgrind`), with
its instrumentation off through start-up and a warm-up (valgrind's light speed), then on:
an idle window first (what the process does each second with no calls: the configuration
check, the threads' timed waits), then the counters zeroed, `calls` non-streamed tool-call
answers at 20 clients (the side-by-side's call, the real `openai` SDK), and a dump per
thread. The event loop's figure is the main thread's, where mitmproxy's hooks and
Interlock's run: at 20 clients that thread is nearly always busy, so calls/s go as its
instructions per call. The other threads are the recorder's (SQLite's C, the rows'
Python).

A call takes some 50 times longer under callgrind, so what the event loop does per second
(the configuration check, timers) is counted against few calls: its idle rate over the
load's duration is taken off. The other threads' is not: they are a thread pool's and the
writer's, which wait (or, under callgrind's scheduler, spin) while idle and work under load.
What happens per batch of calls is counted against smaller batches than at full speed:
the terminal prints each call's line under its limit of 10 a second, so the limit is 1 a
second here (at 20 clients it prints about one call in twenty), and the writer commits a
record or two at a time (about 40 at full speed), so the recorder's figures are an upper
bound. `Interlock, no recorder` (`benchmarks/unrecorded_bundle.py`) tells recording's cost
from the rest of Interlock's.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import yaml
from harness import MITMDUMP, MitmCA, ProxyLauncher, ProxyProcess, make_ca
from openai import AsyncOpenAI

from benchmarks.servers import Servers
from benchmarks.workload import BARE_ARGS, RULES, sdk_client, tool_call

CALLS = 200
CLIENTS = 20
WARM_UP_CALLS = 60
IDLE_S = 3.0
OUT_FILE = "callgrind.out"  # in the proxy's work directory; dumps are OUT_FILE.<dump>-<thread>
LINE_LIMIT = ["--set", "interlock_terminal_lines_per_s=1"]


def callgrind_command() -> list[str]:
    """mitmdump under callgrind, instrumentation off until `callgrind_control -i on`."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is missing: run .ci/install-debian-packages.sh")
    return [
        valgrind,
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        "--dump-line=no",
        f"--callgrind-out-file={OUT_FILE}",
        str(MITMDUMP),
    ]


def _unrecorded(launcher: ProxyLauncher) -> ProxyProcess:
    config = launcher.root / "no-policies.yaml"
    config.write_text(yaml.safe_dump({"policies": []}))
    script = REPO / "benchmarks" / "unrecorded_bundle.py"
    return launcher(script=None, extra_args=["-s", str(script), "--set", f"interlock_config={config}"])


CONFIGURATIONS: dict[str, Callable[[ProxyLauncher], ProxyProcess]] = {
    "bare mitmdump": lambda launcher: launcher(script=None, extra_args=BARE_ARGS),
    "Interlock, no recorder": _unrecorded,
    "Interlock, no policies": lambda launcher: launcher(config={"policies": []}, extra_args=LINE_LIMIT),
    "rule policies": lambda launcher: launcher(config={"policies": RULES}, extra_args=LINE_LIMIT),
}


@dataclass
class Counts:
    """Millions of instructions per call: the event loop's thread, and all the others."""

    loop: float
    others: float


def _control(proxy: ProxyProcess, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(proxy.pid)], check=True, capture_output=True, timeout=60)


def _dumped(proxy: ProxyProcess, dump: int) -> dict[int, int]:
    """Instructions per thread (1: the main thread) in callgrind's dump number `dump`."""
    counts = {}
    for path in proxy.workdir.glob(f"{OUT_FILE}.{dump}-*"):
        thread = int(path.name.rsplit("-", 1)[1])
        with path.open() as dumped:
            total = next(line for line in dumped if line.startswith(("summary:", "totals:")))
        counts[thread] = int(total.split()[1])
    return counts


def _wait_dumped(proxy: ProxyProcess, dump: int) -> dict[int, int]:
    deadline = time.monotonic() + 60
    while not (counts := _dumped(proxy, dump)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not counts:
        raise RuntimeError(f"callgrind wrote no dump {dump} in {proxy.workdir}")
    return counts


async def _calls(client: AsyncOpenAI, calls: int) -> None:
    """`calls` of the side-by-side's non-streamed calls, CLIENTS at a time."""
    left = calls

    async def one_client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await tool_call(client)

    await asyncio.gather(*(one_client() for _ in range(CLIENTS)))


async def _count(proxy: ProxyProcess, mock_url: str, ca: MitmCA, calls: int, warm_up: int) -> Counts:
    client = sdk_client(proxy, mock_url, ca, connections=CLIENTS)
    await _calls(client, warm_up)
    _control(proxy, "-i", "on")
    _control(proxy, "-z")
    idle_started = time.perf_counter()
    await asyncio.sleep(IDLE_S)
    _control(proxy, "-d")
    idle_s = time.perf_counter() - idle_started
    _control(proxy, "-z")
    started = time.perf_counter()
    await _calls(client, calls)
    load_s = time.perf_counter() - started
    _control(proxy, "-d")
    await client.close()
    idle, load = _wait_dumped(proxy, 1), _wait_dumped(proxy, 2)
    loop = load[1] - idle[1] * load_s / idle_s
    return Counts(loop=loop / calls / 1e6, others=sum(v for t, v in load.items() if t != 1) / calls / 1e6)


def measure(calls: int = CALLS, names: list[str] | None = None, warm_up: int = WARM_UP_CALLS) -> dict[str, Counts]:
    """Each configuration (all by default) in turn: a fresh mitmdump under callgrind."""
    command = callgrind_command()
    counted = {}
    with Servers() as servers, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca = make_ca(root / "confdir")
        launcher = ProxyLauncher(root, ca, servers.urls["mock"], command=command)
        try:
            for name in names or list(CONFIGURATIONS):
                proxy = CONFIGURATIONS[name](launcher)
                counted[name] = asyncio.run(_count(proxy, servers.urls["mock"], ca, calls, warm_up))
                proxy.stop()
        finally:
            launcher.stop_all()
    return counted


def report(counted: dict[str, Counts], calls: int) -> list[str]:
    """The section of docs/BENCHMARKS.md: a table, each against bare mitmdump."""
    bare = counted.get("bare mitmdump")
    lines = [
        "## Instructions per call",
        "",
        (
            f"Each proxy under callgrind (`benchmarks/bench_instructions.py`): millions of instructions per call "
            f"over {calls} non-streamed calls at {CLIENTS} clients, the event loop's own idle rate taken off. The event "
            "loop's thread bounds calls/s (it is nearly always busy at 20 clients), so bare's figure over a "
            "configuration's is the calls/s ratio that configuration can reach at most; the other threads are the "
            "recorder's, whose figures are upper bounds (callgrind's pace makes its batches small)."
        ),
        "",
        "| configuration | event loop | x bare | other threads | the process |",
        "|---|---|---|---|---|",
    ]
    for name, counts in counted.items():
        ratio = f"x{bare.loop / counts.loop:.2f}" if bare is not None and counts.loop else "-"
        lines.append(
            f"| {name} | {counts.loop:.2f} | {ratio} | {counts.others:.2f} | {counts.loop + counts.others:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=CALLS)
    args = parser.parse_args()
    print("\n".join(report(measure(args.calls), args.calls)))


if __name__ == "__main__":
    main()
