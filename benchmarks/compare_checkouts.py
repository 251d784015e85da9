"""Compare two checkouts of Interlock through mitmdump, side by side, against one mock.

`uv run python -m benchmarks.compare_checkouts OTHER_CHECKOUT [--rounds 4 --seconds 3]`
starts this checkout's proxy and OTHER_CHECKOUT's (each with its own `.venv` and
`addons/bundle.py`, so OTHER_CHECKOUT must have run `uv sync`), with no policies, the
rule policies and the judge answering at once, in front of the same loopback servers
(`benchmarks.servers`), and measures non-streamed calls/s and the proxy's CPU per call
at 1 and 20 clients in alternating rounds: the like-for-like before/after figure for a
change (two `just bench` runs differ by more than most changes do). Not part of `just bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "tests"))

import harness  # tests/ is on the path now
from harness import ProxyLauncher, make_ca

from benchmarks.bench_judge import KEY_ENV, judge_entry
from benchmarks.bench_side_by_side import Target, calls_per_s, cpu_s
from benchmarks.servers import Servers
from benchmarks.workload import RULES, sdk_client

log = logging.getLogger(__name__)
CLIENTS = (1, 20)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (with its .venv)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure and round")
    args = parser.parse_args()
    figures: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with Servers() as servers, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca = make_ca(root / "confdir")
        launcher = ProxyLauncher(root, ca, servers.urls["mock"])
        configs = {"no policies": [], "rule policies": RULES, "judge": [judge_entry(servers.urls["judge0"])]}
        targets = []
        try:
            for name, checkout in (("this", HERE), ("other", args.other.resolve())):
                harness.MITMDUMP = checkout / ".venv" / "bin" / "mitmdump"
                for label, policies in configs.items():
                    proxy = launcher(
                        script=checkout / "addons" / "bundle.py",
                        config={"policies": policies},
                        env={KEY_ENV: "sk-judge-bench-0123456789abcdef"},
                    )
                    targets.append(Target(f"{name} checkout, {label}", proxy))

            async def rounds() -> None:
                clients = {
                    t.name: sdk_client(t.proxy, servers.urls["mock"], ca, connections=max(CLIENTS)) for t in targets
                }
                for target in targets:
                    await calls_per_s(clients[target.name], 5, 0.5)  # warm up
                for _ in range(args.rounds):
                    for target in targets:
                        assert target.proxy is not None
                        for count in CLIENTS:
                            cpu_before, started = cpu_s(target.proxy.pid), time.perf_counter()
                            rate = await calls_per_s(clients[target.name], count, args.seconds)
                            calls = rate * (time.perf_counter() - started)
                            cpu_ms = (cpu_s(target.proxy.pid) - cpu_before) * 1000 / calls
                            figures.setdefault((target.name, count), []).append((rate, cpu_ms))
                for client in clients.values():
                    await client.close()

            asyncio.run(rounds())
        finally:
            launcher.stop_all()
    for (name, count), runs in sorted(figures.items(), key=lambda item: (item[0][0].split(", ")[1], item[0][1])):
        log.info(
            "%-32s %3d clients: %5.0f calls/s, proxy CPU %5.2f ms a call (rounds %s)",
            name, count, statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs),
            ", ".join(f"{c:.2f}" for _, c in runs),
        )  # fmt: skip


if __name__ == "__main__":
    main()
