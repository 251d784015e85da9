"""The recorder on its own: the rate it sustains with no drops, and a disk slower than the traffic.

Records shaped like an agent's calls (a 40-message request of about 28 KB in both
request stages, a streamed response with its SSE bytes, a policy event) go to a
`RecorderWriter` on a real SQLite file, submitted from the event loop as the proxy does.
Sustained: as fast as the queue takes them, until every record is written. Slow disk:
each transaction made to take 200 ms longer (a stand-in for a slow or contended disk;
no real device here is slow), with records arriving at 1000/s for 5 s into a queue of
2000: what the queue absorbs, what is dropped and counted, and that the flows' side
(`submit`) never waits.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from test_recorder import make_record

from benchmarks.bench_policies import conversation
from recorder.models import CallRecord, StageRecord
from recorder.writer import RecorderWriter

SUSTAINED_RECORDS = 5000
SLOW_COMMIT_S = 0.2
SLOW_RATE = 1000  # records/s
SLOW_SECONDS = 5
SLOW_QUEUE = 2000


def agent_record(number: int) -> CallRecord:
    request = conversation(20)
    record = make_record(f"bench-{number}")
    stages = [
        StageRecord(stage="request_original", headers={"content-type": "application/json"}, body=request),
        StageRecord(stage="request_final", headers={"content-type": "application/json"}, body=request),
        *record.stages[2:],
    ]
    return record.model_copy(update={"stages": stages})


class SlowDiskWriter(RecorderWriter):
    """Each transaction takes SLOW_COMMIT_S longer."""

    async def _commit(self, db: Any, rows: Any) -> None:
        await asyncio.sleep(SLOW_COMMIT_S)
        await super()._commit(db, rows)


async def sustained(path: Path) -> float:
    records = [agent_record(n) for n in range(SUSTAINED_RECORDS)]
    writer = RecorderWriter(str(path))
    await writer.start()
    started = time.perf_counter()
    for record in records:
        while not writer.submit(record):  # never: the queue holds 10 000
            await asyncio.sleep(0.01)
    while writer.stats.written < len(records):
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    await writer.stop()
    assert writer.stats.dropped == 0
    return len(records) / elapsed


async def slow_disk(path: Path) -> dict[str, float]:
    writer = SlowDiskWriter(str(path), queue_size=SLOW_QUEUE)
    await writer.start()
    record = agent_record(0)
    peak, slowest_submit = 0, 0.0
    total = SLOW_RATE * SLOW_SECONDS
    started = time.perf_counter()
    for number in range(total):
        before = time.perf_counter()
        writer.submit(record.model_copy(update={"call_id": f"slow-{number}"}))
        slowest_submit = max(slowest_submit, time.perf_counter() - before)
        peak = max(peak, writer.stats.queue_depth)
        await asyncio.sleep(max(0.0, started + (number + 1) / SLOW_RATE - time.perf_counter()))
    dropped_while_arriving = writer.stats.dropped
    await writer.stop(timeout_s=60)
    return {
        "submitted": total,
        "peak": peak,
        "dropped": dropped_while_arriving,
        "written": writer.stats.written,
        "slowest_submit_us": slowest_submit * 1e6,
    }


@dataclass(frozen=True)
class RecorderFigures:
    sustained_per_s: float
    slow: dict[str, float]


def measure() -> RecorderFigures:
    with tempfile.TemporaryDirectory() as tmp:
        rate = asyncio.run(sustained(Path(tmp) / "sustained.db"))
        slow = asyncio.run(slow_disk(Path(tmp) / "slow.db"))
    return RecorderFigures(rate, slow)


def report(figures: RecorderFigures) -> list[str]:
    rate, slow = figures.sustained_per_s, figures.slow
    return [
        "## The recorder",
        "",
        (
            f"- Sustained, no drops: **{rate:.0f} calls/s** ({SUSTAINED_RECORDS} agent-like records of about 28 KB "
            "each into a fresh SQLite file, batches of up to 200 per transaction)."
        ),
        (
            f"- A disk slower than the traffic (each transaction {SLOW_COMMIT_S * 1000:.0f} ms longer, records "
            f"arriving at {SLOW_RATE}/s for {SLOW_SECONDS} s, queue of {SLOW_QUEUE}): the queue peaked at "
            f"{slow['peak']:.0f}, {slow['dropped']:.0f} records were dropped (counted, logged) while they arrived, "
            f"{slow['written']:.0f} of {slow['submitted']:.0f} were written; `submit` never waited "
            f"(slowest {slow['slowest_submit_us']:.0f} us). Flows never wait on the disk: the queue (10 000 records "
            "by default, `recorder.queue_size`) absorbs a burst, and beyond it records are dropped and counted, "
            "never queued without bound."
        ),
    ]


def main() -> None:
    print("\n".join(report(measure())))


if __name__ == "__main__":
    main()
