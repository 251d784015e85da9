"""The recorder benchmark (benchmarks/recorder_load.py) on a small scale: its slower disk
still writes (each transaction later, not failing) and its figures add up. Catches the
benchmark drifting from the writer, which once made every slow-disk commit fail and
`just bench` report 5000 of 5000 records dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import recorder_load


async def test_the_slow_disk_writes_every_record_it_can_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder_load, "SLOW_RATE", 200)
    monkeypatch.setattr(recorder_load, "SLOW_SECONDS", 1)
    figures = await recorder_load.slow_disk(tmp_path / "slow.db")
    assert figures["submitted"] == 200
    assert figures["dropped"] == 0 and figures["written"] == 200, figures
    assert figures["peak"] > 0  # the slower transactions kept some waiting


async def test_sustained_writes_every_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder_load, "SUSTAINED_RECORDS", 300)
    assert await recorder_load.sustained(tmp_path / "sustained.db") > 0
