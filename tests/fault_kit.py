"""What every case of the fault suite (issue 9) checks, and the table its figures make.

Each case runs a fault through a real mitmdump and asserts: the client got a well-formed
answer or a clean error in its dialect within a bound; a concurrent stream kept its
pacing (`PacedStream`); every call is recorded or counted as dropped
(`recorder_totals`, read from the recorder's shutdown line); no secret reached the
database (`assert_no_secret`). `report()` appends the case's figures to
`test-artifacts/fault-suite.jsonl`; `python tests/fault_kit.py` prints them as a table.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import REPO, ProxyProcess
from harness_clients import ClientFactory, auth_headers, llm_request, timed_chunks
from harness_db import CallsDB
from mock_provider import SLOW_DELAY_MS

FIGURES = REPO / "test-artifacts" / "fault-suite.jsonl"
PACING_SLACK_S = 0.5  # a concurrent 50 ms/event stream may lag this much, never seconds
_TOTALS = re.compile(r"recorder (?P<db>\S+): (?P<written>\d+) calls written, (?P<dropped>\d+) dropped")


class PacedStream(threading.Thread):
    """Streams "[[mock:slow]]" chat completions (one event per SLOW_DELAY_MS) through the
    proxy, one after another, until `finish()`; `max_gap` is the longest wait between
    two pieces the client received."""

    def __init__(self, clients: ClientFactory, max_calls: int = 100) -> None:
        super().__init__(daemon=True, name="paced-stream")
        self._client = clients.raw()
        self._headers = auth_headers("openai", clients.api_key)
        self._max_calls = max_calls  # a bound, so the loop stops by itself
        self._finished = threading.Event()
        self.gaps: list[float] = []
        self.calls = 0
        self.failures: list[str] = []

    def run(self) -> None:
        body = llm_request("openai", "gpt-4o-mini", [{"role": "user", "content": "[[mock:slow]] pace"}], stream=True)
        while not self._finished.is_set() and self.calls < self._max_calls:
            self.calls += 1
            try:
                with self._client.stream(
                    "POST", "https://api.openai.com/v1/chat/completions", json=body, headers=self._headers
                ) as response:
                    times = [arrival.at for arrival in timed_chunks(response)]
                    if response.status_code != 200:
                        self.failures.append(f"HTTP {response.status_code}")
            except Exception as exc:  # noqa: BLE001 - a failure of the paced stream is the finding
                self.failures.append(repr(exc))
                continue
            self.gaps += [b - a for a, b in itertools.pairwise(times)]

    def finish(self, timeout_s: float = 30.0) -> None:
        """Let the stream in progress end, then stop; fails if it hangs."""
        self._finished.set()
        self.join(timeout_s)
        assert not self.is_alive(), "the paced stream hung"

    @property
    def max_gap(self) -> float:
        return max(self.gaps, default=0.0)

    def assert_paced(self, slack_s: float = PACING_SLACK_S) -> None:
        """No failure, and no gap beyond the pace plus `slack_s` (a case that makes the
        proxy do seconds-scale CPU work on one flow says so with a larger slack)."""
        assert self.failures == [], self.failures
        assert self.gaps, "the paced stream received nothing"
        assert self.max_gap < SLOW_DELAY_MS / 1000 + slack_s, f"max gap {self.max_gap:.3f} s"


@dataclass(frozen=True)
class RecorderTotals:
    """The recorder's own count at shutdown."""

    written: int
    dropped: int


def recorder_totals(proxy: ProxyProcess) -> RecorderTotals:
    """Stop the proxy (the recorder drains) and read its shutdown line."""
    proxy.stop()
    found = list(_TOTALS.finditer(proxy.output()))
    assert found, f"no recorder totals in the proxy's output:\n{proxy.output()[-2000:]}"
    last = found[-1]
    return RecorderTotals(int(last["written"]), int(last["dropped"]))


def assert_accounted(proxy: ProxyProcess, calls: int, *, removed: int = 0) -> RecorderTotals:
    """Every call the clients made is either in the database or counted as dropped, and
    what the recorder says it wrote is what the database holds (plus the `removed`
    records the test deleted with the database file)."""
    totals = recorder_totals(proxy)
    assert proxy.db_path is not None
    stored = len(CallsDB(proxy.db_path).call_ids()) if proxy.db_path.exists() else 0
    assert totals.written == stored + removed, (
        f"recorder says {totals.written} written, the database holds {stored} (+{removed} removed)"
    )
    assert totals.written + totals.dropped >= calls, f"{calls} calls, {totals} accounted"
    return totals


def conclude(
    proxy: ProxyProcess,
    calls: int,
    case: str,
    outcome: str,
    *,
    secrets: tuple[str, ...],
    paced: PacedStream,
    **figures: Any,
) -> RecorderTotals:
    """The end of a case that must lose nothing: every call recorded and none dropped
    (`assert_accounted`), no secret in the database; its figures reported."""
    totals = assert_accounted(proxy, calls)
    assert totals.dropped == 0, totals
    assert_no_secret(proxy.db_path, *secrets)
    report(
        case,
        outcome,
        **figures,
        records=totals.written,
        calls=calls,
        dropped=totals.dropped,
        paced_max_gap_s=round(paced.max_gap, 3),
    )
    return totals


def assert_no_secret(db_path: Path | None, *secrets: str) -> None:
    """None of `secrets` is anywhere in the database's files (WAL and shm included)."""
    if db_path is None or not db_path.exists():
        return
    data = CallsDB(db_path).file_bytes()
    for secret in secrets:
        assert secret.encode() not in data, f"secret {secret[:6]}... found in {db_path}"


def report(case: str, outcome: str, **figures: Any) -> None:
    """Add one case's figures to the suite's table (`test-artifacts/fault-suite.jsonl`)."""
    FIGURES.parent.mkdir(exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"case": case, "outcome": outcome, "at": time.time(), **figures}) + "\n")


def _table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    latest = {row["case"]: row for row in rows}  # the last run of each case
    lines = ["| case | outcome | figures |", "|---|---|---|"]
    for row in latest.values():
        figures = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("case", "outcome", "at"))
        lines.append(f"| {row['case']} | {row['outcome']} | {figures} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(Path(sys.argv[1]) if len(sys.argv) > 1 else FIGURES))
