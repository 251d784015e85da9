"""The call-path benchmark (benchmarks/bench_call_path.py) drives the real bundle: each
call it times ends as a scrubbed record of the SDK's request and the mock's tool call,
and the writer commits every one. Catches the benchmark drifting from the bundle (a new
hook, a changed record), which would break `just bench` or time something else."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from benchmarks.bench_call_path import HOOKS, CallPath, hook_cpu_us, measure, report, sdk_request
from benchmarks.workload import API_KEY


async def test_each_timed_call_ends_as_a_scrubbed_record(tmp_path: Path) -> None:
    path = CallPath(tmp_path, [], await sdk_request())
    try:
        spent = await hook_cpu_us(path, 30)
    finally:
        await path.close()
    assert set(spent) == set(HOOKS) and all(value > 0 for value in spent.values())
    assert len(path.records) == 200 + 30  # the warm-up's and the timed calls
    record = path.records[-1]
    assert (record.provider, record.model, record.status, record.verdict) == ("openai", "gpt-4o-mini", 200, "pass")
    assert record.stages[0].headers is not None and "x-stainless-lang" in record.stages[0].headers  # the SDK's own
    answer = record.stages[2].body
    assert isinstance(answer, dict) and answer["choices"][0]["message"]["tool_calls"], answer
    assert API_KEY not in record.model_dump_json()


def test_the_report_has_every_hook_and_the_writer_for_both_configurations(caplog: pytest.LogCaptureFixture) -> None:
    """Measured as `just bench` does, with INFO records reaching the log's handlers."""
    caplog.set_level(logging.INFO)
    figures = measure(calls=5, runs=1, written=20)
    assert set(figures) == {"no policies", "rule policies"}
    lines = report(figures)
    for row in (*(f"`{hook}`" for hook in HOOKS), "writer, per record", "hooks in all"):
        assert any(line.startswith(f"| {row} |") for line in lines), row
