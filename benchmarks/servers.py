"""The side-by-side benchmark's loopback servers, in a process of their own.

`python -m benchmarks.servers` starts the mock provider and two judges (one answering at
once, one after 200 ms), prints their URLs as one JSON line, and serves until its stdin
closes. `Servers()` runs it as a child process: the load generator (the benchmark's own
process) and the servers then do not share one interpreter's lock, so neither slows the
other's measurements.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import IO, Self

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from judge_mock import JudgeMock, allow
from mock_provider import MockProvider
from wire_scenarios import SCENARIOS, Scenario

LONG_STREAM = "bench_long_stream"
LONG_STREAM_DELTAS = 2000
JUDGE_DELAYS_S = {"judge0": 0.0, "judge200": 0.2}


def serve() -> None:
    SCENARIOS[LONG_STREAM] = Scenario(text=[f" word{i % 16}" for i in range(LONG_STREAM_DELTAS)])
    with MockProvider() as mock:
        judges = {name: JudgeMock() for name in JUDGE_DELAYS_S}
        for name, judge in judges.items():
            judge.start()
            judge.reset(default=allow(delay_s=JUDGE_DELAYS_S[name]))
        try:
            urls = {"mock": mock.url, **{name: judge.url for name, judge in judges.items()}}
            print(json.dumps(urls), flush=True)
            sys.stdin.read()  # until the parent closes it
        finally:
            for judge in judges.values():
                judge.stop()


class Servers:
    """The servers' process, as a context manager; `urls` maps mock, judge0, judge200."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.servers"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        stdout: IO[str] | None = self._process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the benchmark servers exited with {self._process.wait(10)}")
        self.urls = json.loads(line)
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None and self._process.stdin is not None:
            self._process.stdin.close()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)


if __name__ == "__main__":
    serve()
