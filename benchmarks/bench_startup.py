"""Proxy start to ready: spawn `mitmdump -s addons/bundle.py` until its port accepts.

Without a judge, with a judge configured (litellm imported and warmed up before the
proxy listens), and bare mitmdump. Target < 1.5 s without a judge (litellm must stay off
the start-up path).
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.bench_judge import KEY_ENV, judge_entry

REPO = Path(__file__).resolve().parent.parent
MITMDUMP = Path(sys.executable).parent / "mitmdump"
_LISTENING = re.compile(rb"listening at 127\.0\.0\.1:(\d+)")
RUNS = 5
JUDGE_CONFIG = {"policies": [judge_entry("http://127.0.0.1:9/v1")]}  # never called: start-up only


def start_to_ready(workdir: Path, bundle: bool = True, config: Path | None = None) -> float:
    args = [str(MITMDUMP), "--listen-host", "127.0.0.1", "--listen-port", "0", "--set", f"confdir={workdir}"]
    if bundle:
        args += ["-s", str(REPO / "addons" / "bundle.py"), "--set", f"interlock_db={workdir / 'bench.db'}"]
    if config is not None:
        args += ["--set", f"interlock_config={config}"]
    out = workdir / "out.log"
    env = {**os.environ, KEY_ENV: "sk-bench-judge-0123456789abcdef"}
    started = time.perf_counter()
    with out.open("wb") as handle:
        process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = started + 60
        while time.perf_counter() < deadline:
            found = _LISTENING.search(out.read_bytes())
            if found:
                with socket.create_connection(("127.0.0.1", int(found.group(1))), timeout=1):
                    return time.perf_counter() - started
            time.sleep(0.01)
        raise RuntimeError(f"not ready after 60 s:\n{out.read_text()}")
    finally:
        process.terminate()
        process.wait(10)


def measure() -> dict[str, list[float]]:
    """Seconds to ready, RUNS each: no judge, a judge configured, bare mitmdump."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        judge = workdir / "judge.yaml"
        judge.write_text(yaml.safe_dump(JUDGE_CONFIG))
        start_to_ready(workdir)  # the first start also creates the CA
        return {
            "Interlock, no judge": [start_to_ready(workdir) for _ in range(RUNS)],
            "Interlock, a judge configured": [start_to_ready(workdir, config=judge) for _ in range(RUNS)],
            "bare mitmdump": [start_to_ready(workdir, bundle=False) for _ in range(RUNS)],
        }


def report() -> list[str]:
    lines = [
        "## Start-up to ready",
        "",
        f"`mitmdump` started until its port accepts a connection, median of {RUNS} (min-max):",
        "",
    ]
    for name, times in measure().items():
        lines.append(
            f"- {name}: {statistics.median(times) * 1000:.0f} ms ({min(times) * 1000:.0f}-{max(times) * 1000:.0f})"
        )
    lines += [
        "",
        "Target: < 1500 ms without a judge. With a judge, litellm is imported and warmed up before the proxy listens.",
    ]
    return lines


def main() -> None:
    print("\n".join(report()))


if __name__ == "__main__":
    main()
