"""Compare two checkouts of Interlock through mitmdump, side by side, against one mock.

`uv run python -m benchmarks.compare_checkouts OTHER_CHECKOUT [--rounds 6 --calls 20]`
starts this checkout's proxy and OTHER_CHECKOUT's (each with its own `.venv` and
`addons/bundle.py`, so OTHER_CHECKOUT must have run `uv sync`), with no policies and with
`replace` + `redact`, in front of the same loopback mock, and times streamed and JSON
calls in alternating rounds: the like-for-like before/after figure for a change, since
each checkout's own `just bench` uses its own mock. Not part of `just bench`.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "tests"))

import harness  # tests/ is on the path now
from harness import ProxyLauncher, make_ca
from mock_provider import MockProvider
from wire_scenarios import SCENARIOS

from benchmarks.bench_policies import BENCH_SCENARIO, CHAIN, long_text, time_calls

log = logging.getLogger(__name__)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (with its .venv)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=20, help="calls per configuration and round")
    parser.add_argument("--deltas", type=int, default=200, help="text deltas per streamed call")
    args = parser.parse_args()
    SCENARIOS[BENCH_SCENARIO] = long_text(args.deltas)
    checkouts = {"this": HERE, "other": args.other.resolve()}
    with MockProvider() as mock, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        launcher = ProxyLauncher(root, make_ca(root / "confdir"), mock.url)
        try:
            proxies = {}
            for name, checkout in checkouts.items():
                harness.MITMDUMP = checkout / ".venv" / "bin" / "mitmdump"
                for label, chain in (("no policies", []), ("replace+redact", CHAIN)):
                    proxies[(name, label)] = launcher(
                        script=checkout / "addons" / "bundle.py", config={"policies": chain}
                    )
            times: dict[tuple[str, str, str], list[float]] = {}
            for _ in range(args.rounds):
                for (name, label), proxy in proxies.items():
                    for kind, seconds in time_calls(proxy.url, launcher.ca.bundle, args.calls).items():
                        times.setdefault((name, label, kind), []).append(seconds)
        finally:
            launcher.stop_all()
    for (name, label, kind), rounds in times.items():
        log.info(
            "%s checkout, %s, %s call: median %.2f ms (rounds %s)",
            name, label, kind, statistics.median(rounds) * 1e3, ", ".join(f"{r * 1e3:.1f}" for r in rounds),
        )  # fmt: skip


if __name__ == "__main__":
    main()
