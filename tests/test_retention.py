"""Retention on real SQLite files: `just prune` and the running proxy's scheduled prune.

Records are written by the real recorder; pruning removes exactly the calls older than
the cutoff with their stages, policy events, judge decisions, tool calls and backtest
results, full-text search forgets them, newer calls stay whole, and `--archive` copies
them, searchable, to another file first. The proxy prunes at start-up and again every
`recorder.retention_interval_s`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from harness import REPO, ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from test_recorder import make_record
from ui_fixtures import write_records

from interlock.config import ConfigError, parse_config
from recorder import prune_cli
from recorder.models import CallRecord
from recorder.retention import Retention, prune
from recorder.transfer import CHILD_TABLES

DAY_S = 86_400
NOW = time.time()
WAIT_S = 20.0  # a hang guard


def aged(call_id: str, days: float, word: str) -> CallRecord:
    """A call that started `days` ago, its prompt holding `word` (for full-text search)."""
    start = NOW - days * DAY_S
    return make_record(call_id, started_at=start, first_byte_at=start + 0.2, ended_at=start + 1, prompt_text=word)


OLD = ["old-a", "old-b", "old-c"]
NEW = ["new-a", "new-b"]


def records() -> list[CallRecord]:
    return [
        *(aged(call_id, 40 + i, f"ancientword {call_id}") for i, call_id in enumerate(OLD)),
        *(aged(call_id, 1 + i, f"recentword {call_id}") for i, call_id in enumerate(NEW)),
    ]


def add_backtests(db_path: Path) -> None:
    """Run `mixed` covers an old and a new call; run `stale` only old ones."""
    with sqlite3.connect(db_path) as conn:
        for run_id, covered in (("mixed", ["old-a", "new-a"]), ("stale", ["old-b", "old-c"])):
            conn.execute(
                "insert into backtest_runs (run_id, created_at, policies_json, filter, calls) values (?, ?, '[]', '1', ?)",
                (run_id, "2026-01-01T00:00:00.000Z", len(covered)),
            )
            conn.executemany(
                "insert into backtest_results (run_id, call_id, verdict, changed) values (?, ?, 'pass', 0)",
                [(run_id, call_id) for call_id in covered],
            )


def rows(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def call_ids(db_path: Path) -> set[str]:
    return {row[0] for row in rows(db_path, "select call_id from calls")}


def searched(db_path: Path, word: str) -> set[str]:
    found = "select c.call_id from calls c join calls_fts f on f.rowid = c.rowid where calls_fts match ?"
    return {row[0] for row in rows(db_path, found, (word,))}


def children(db_path: Path, call_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every child row of a call, per table, without surrogate ids."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for table in CHILD_TABLES:
        columns = [r[1] for r in rows(db_path, f"pragma table_info({table})") if r[1] != "id"]
        names = ", ".join(columns)
        found[table] = sorted(rows(db_path, f"select {names} from {table} where call_id = ?", (call_id,)), key=repr)
    return found


def fts_consistent(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("insert into calls_fts(calls_fts) values ('integrity-check')")  # raises when it is not
    finally:
        conn.close()
    assert rows(db_path, "select count(*) from calls_fts") == rows(db_path, "select count(*) from calls")


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    db_path = tmp_path / "interlock.db"
    asyncio.run(write_records(db_path, records()))
    add_backtests(db_path)
    return db_path


def test_prune_removes_exactly_the_old_calls_and_everything_about_them(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {call_id: children(recorded, call_id) for call_id in OLD + NEW}
    assert all(before[call_id]["stage_rows"] and before[call_id]["policy_events"] for call_id in OLD)
    assert searched(recorded, "ancientword") == set(OLD)

    assert prune_cli.main(["--older-than", "30d", str(recorded)]) == 0

    assert "pruned 3 calls" in capsys.readouterr().out
    assert call_ids(recorded) == set(NEW)
    for call_id in OLD:
        assert children(recorded, call_id) == {table: [] for table in CHILD_TABLES}
    for call_id in NEW:
        assert children(recorded, call_id) == before[call_id]
    assert searched(recorded, "ancientword") == set()
    assert searched(recorded, "recentword") == set(NEW)
    fts_consistent(recorded)
    # The run that still covers a call stays; the one left with no call goes.
    assert rows(recorded, "select run_id from backtest_runs") == [("mixed",)]
    assert rows(recorded, "select call_id from backtest_results") == [("new-a",)]


def test_prune_archives_the_old_calls_first(recorded: Path, tmp_path: Path) -> None:
    before = {call_id: children(recorded, call_id) for call_id in OLD}
    calls_before = rows(recorded, "select * from calls where call_id like 'old-%' order by call_id")
    archive = tmp_path / "archive" / "old.db"
    archive.parent.mkdir()

    assert prune_cli.main(["--older-than", "720h", str(recorded), "--archive", str(archive)]) == 0

    assert call_ids(recorded) == set(NEW)
    assert rows(archive, "select * from calls order by call_id") == calls_before
    for call_id in OLD:
        assert children(archive, call_id) == before[call_id]
    assert searched(archive, "ancientword") == set(OLD)
    fts_consistent(archive)
    assert archive.stat().st_mode & 0o777 == 0o600
    assert {r[0] for r in rows(archive, "select run_id from backtest_runs")} == {"mixed", "stale"}


def test_prune_goes_in_batches(recorded: Path) -> None:
    async def run() -> int:
        async with aiosqlite.connect(recorded, isolation_level=None) as db:
            return (await prune(db, Retention(days=30, batch_size=1))).calls

    assert asyncio.run(run()) == 3
    assert call_ids(recorded) == set(NEW)


def test_just_prune_refuses_bad_input(tmp_path: Path, recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert prune_cli.main(["--older-than", "30d", str(tmp_path / "missing.db")]) == 2
    assert "no database at" in capsys.readouterr().err
    for bad in ("soon", "0d", "-3", "30w"):
        with pytest.raises(SystemExit) as refused:
            prune_cli.main(["--older-than", bad, str(recorded)])
        assert refused.value.code == 2
        assert "not a duration" in capsys.readouterr().err
    assert call_ids(recorded) == set(OLD + NEW)


def test_just_prune_through_just(recorded: Path) -> None:
    done = subprocess.run(
        ["just", "prune", "--older-than", "30d", str(recorded)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "pruned 3 calls" in done.stdout
    assert call_ids(recorded) == set(NEW)


# --- the running proxy --------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_the_proxy_prunes_at_start_up_and_on_its_schedule(
    recorded: Path, start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory]
) -> None:
    config = {"recorder": {"retention_days": 30, "retention_interval_s": 1}}
    proxy = start_proxy(config=config, db=recorded)
    wait_for(lambda: call_ids(recorded) == set(NEW), "the start-up prune")

    raw = (
        make_clients(proxy)
        .openai()
        .chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    )
    live = raw.headers["x-interlock-call-id"]
    CallsDB(recorded).wait_call(live)
    asyncio.run(write_records(recorded, [aged("old-late", 45, "ancientword late")]))  # another machine's old call, say
    wait_for(lambda: "old-late" not in call_ids(recorded), "the scheduled prune")

    assert call_ids(recorded) == {*NEW, live}
    assert searched(recorded, "ancientword") == set()
    fts_consistent(recorded)
    assert "recorder pruned 3 calls" in proxy.output()
    assert proxy.addon_errors() == []


def test_retention_settings_are_validated() -> None:
    for bad in ({"retention_days": 0}, {"retention_days": "soon"}, {"retention_interval_s": 0.5}):
        with pytest.raises(ConfigError, match=f"recorder.{next(iter(bad))}"):
            parse_config({"recorder": bad})
    assert parse_config({}).recorder.retention_days is None
