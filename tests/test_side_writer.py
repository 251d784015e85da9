"""recorder.side_writer: rows beside the calls, written off the caller's thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from recorder.schema import migrate
from recorder.side_writer import SideWriter


def make_table(path: Path) -> None:
    migrate(str(path))
    with sqlite3.connect(path) as db:
        db.execute("create table if not exists things (name text primary key, value integer)")
        db.execute("create table if not exists log (message text)")


def test_rows_are_written_and_upserts_coalesce(tmp_path: Path) -> None:
    path = tmp_path / "side.db"
    make_table(path)
    writer = SideWriter(str(path))
    for value in range(50):
        writer.put("things", {"name": "a", "value": value}, key="a")
    writer.put("log", {"message": "one"})
    writer.put("log", {"message": "two"})
    assert writer.flush(10)
    with sqlite3.connect(path) as db:
        assert db.execute("select name, value from things").fetchall() == [("a", 49)]
        assert db.execute("select message from log order by rowid").fetchall() == [("one",), ("two",)]
    assert writer.written("log") == 2
    assert 1 <= writer.written("things") <= 50
    writer.close()
    assert writer.dropped == 0


def test_a_failing_database_is_retried_and_nothing_reported_written(tmp_path: Path) -> None:
    path = tmp_path / "side.db"
    make_table(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("begin exclusive")  # another process holds the database: every write fails
    writer = SideWriter(str(path), busy_timeout_ms=50)
    try:
        writer.put("log", {"message": "waiting"})
        assert not writer.flush(0.5)
        assert writer.written("log") == 0 and writer.failed_attempts >= 1
    finally:
        holder.execute("rollback")
        holder.close()
    assert writer.flush(15)  # the next attempt succeeds
    assert writer.written("log") == 1
    writer.close()
    with sqlite3.connect(path) as db:
        assert db.execute("select message from log").fetchall() == [("waiting",)]


def test_beyond_max_pending_the_oldest_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "side.db"  # cannot be created: nothing is written
    writer = SideWriter(str(path), max_pending=3)
    for number in range(5):
        writer.put("log", {"message": str(number)})
    assert writer.dropped == 2
    writer.close(timeout_s=0.3)
    assert writer.dropped == 5  # the 3 left at shutdown are reported too
