"""The UI benchmark's generated database (benchmarks/bench_ui.py) is a recorder database
the UI serves: every page it times answers 200 on a small one. Catches the generator
falling behind the schema (a new column), which would break `just bench`."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from benchmarks.bench_ui import build, time_pages


def test_the_generated_database_serves_every_timed_page(tmp_path: Path) -> None:
    path = tmp_path / "bench-ui.db"
    build(path, 400)
    with sqlite3.connect(path) as db:
        calls = db.execute("select count(*) from calls").fetchone()[0]
        blocked = db.execute("select count(*) from calls where verdict = 'blocked'").fetchone()[0]
    assert calls >= 400 and blocked > 0
    pages = asyncio.run(time_pages(path, repeat=1))  # asserts a 200 for each
    assert len(pages) >= 10
