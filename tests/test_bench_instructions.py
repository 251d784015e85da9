"""The instruction-count benchmark (`benchmarks/bench_instructions.py`) on a small scale:
real mitmdumps under callgrind, each configuration's figures from its own dumps, in the
order their work says (bare mitmdump does least; recording adds the writer's threads)."""

from __future__ import annotations

from benchmarks.bench_instructions import measure, report

NAMES = ["bare mitmdump", "Interlock, no recorder", "Interlock, no policies"]


def test_each_configuration_is_counted_and_recording_costs_instructions() -> None:
    counted = measure(calls=20, names=NAMES, warm_up=10)
    bare, unrecorded, recorded = (counted[name] for name in NAMES)
    assert 0 < bare.loop < unrecorded.loop < recorded.loop, counted
    assert recorded.others > unrecorded.others, counted  # the writer's thread and the rows' pool
    rows = {line.split(" | ")[0].lstrip("| "): line for line in report(counted, 20) if line.startswith("| ")}
    assert set(NAMES) <= set(rows), rows
    assert "| x1.00 |" in rows["bare mitmdump"]
