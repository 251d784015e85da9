"""RecorderWriter against real database faults (issue 9): the file removed or replaced,
read-only, on a read-only directory, locked, a full disk; recovery, counts, log lines,
and the 0600 mode of the database and its -wal/-shm."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from db_faults import Locker, can_mount_tmpfs, db_files, fill, immutable, remove_db, small_disk
from test_recorder import make_record, query, wait_until

from recorder.schema import migrate
from recorder.writer import RecorderWriter

STOPPED = "recorder stopped recording to"
RESUMED = "recorder resumed recording to"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "interlock.db"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="recorder.writer"):
        yield caplog


def lines(logs: pytest.LogCaptureFixture, start: str) -> list[str]:
    return [r.getMessage() for r in logs.records if r.getMessage().startswith(start)]


def call_ids(db: Path) -> list[str]:
    return sorted(r[0] for r in query(db, "select call_id from calls"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_and_its_wal_and_shm_are_private(db_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which would give -rw-r--r--
    try:
        writer = RecorderWriter(str(db_path))
        await writer.start()
        writer.submit(make_record())
        await wait_until(lambda: writer.stats.written == 1)
        files = db_files(db_path)
        assert [p.name for p in files] == ["interlock.db", "interlock.db-wal", "interlock.db-shm"]
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        await writer.stop()
    finally:
        os.umask(old)


async def test_an_existing_database_keeps_its_mode(db_path: Path) -> None:
    migrate(str(db_path))
    db_path.chmod(0o640)
    writer = RecorderWriter(str(db_path))
    await writer.start()
    writer.submit(make_record())
    await writer.stop()
    assert mode(db_path) == 0o640
    assert call_ids(db_path) == ["c1"]


async def test_removed_database_is_recreated_and_the_batch_written_again(
    db_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    writer = RecorderWriter(str(db_path))
    await writer.start()
    writer.submit(make_record("before"))
    await wait_until(lambda: writer.stats.written == 1)
    remove_db(db_path)  # rm interlock.db*, the connection still open
    writer.submit(make_record("after"))
    await wait_until(lambda: writer.stats.written == 2)
    assert writer.stats.dropped == 0
    assert writer.stats.reopened == 1
    # The batch SQLite committed to the removed file was written again into the new one.
    assert call_ids(db_path) == ["after"]
    assert query(db_path, "select count(*) from _sqlite_migrations")[0][0] >= 10  # the whole schema
    assert {p.name: mode(p) for p in db_files(db_path)} == {p.name: 0o600 for p in db_files(db_path)}
    [stopped] = lines(logs, STOPPED)
    assert "removed or replaced" in stopped
    assert len(lines(logs, RESUMED)) == 1
    await writer.stop()
    assert f"recorder {db_path}: 2 calls written, 0 dropped" in logs.text


async def test_replaced_database_gets_the_batch(db_path: Path, tmp_path: Path) -> None:
    writer = RecorderWriter(str(db_path))
    await writer.start()
    writer.submit(make_record("before"))
    await wait_until(lambda: writer.stats.written == 1)
    other = tmp_path / "restored.db"
    migrate(str(other))
    other.replace(db_path)  # e.g. a backup restored over it
    writer.submit(make_record("after"))
    await writer.stop()
    assert (writer.stats.written, writer.stats.dropped, writer.stats.reopened) == (2, 0, 1)
    assert "after" in call_ids(db_path)  # ("before" too if the old WAL was still there)
    assert query(db_path, "pragma integrity_check")[0][0] == "ok"


async def test_read_only_database_then_writable_again(db_path: Path, logs: pytest.LogCaptureFixture) -> None:
    migrate(str(db_path))
    assert db_files(db_path) == [db_path]  # a closed WAL database leaves only its main file
    writer = RecorderWriter(str(db_path), busy_timeout_ms=100)
    with immutable(db_path):
        await writer.start()
        for i in range(3):
            assert writer.submit(make_record(f"ro-{i}"))
        await wait_until(lambda: writer.stats.failed_batches >= 2)  # retried
        assert writer.stats.written == 0 and writer.stats.dropped == 0
        assert "readonly" in (writer.stats.last_error or "")
    writer.submit(make_record("after"))
    await wait_until(lambda: writer.stats.written == 4)
    assert call_ids(db_path) == ["after", "ro-0", "ro-1", "ro-2"]
    assert len(lines(logs, STOPPED)) == 1 and len(lines(logs, RESUMED)) == 1
    await writer.stop()
    assert writer.stats.dropped == 0


async def test_database_on_a_read_only_directory(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    db = directory / "interlock.db"
    writer = RecorderWriter(str(db))
    with immutable(directory):
        await writer.start()  # cannot create the database
        assert writer.submit(make_record("while-read-only"))
        await wait_until(lambda: writer.stats.failed_batches >= 1)
        assert not db.exists()
    await wait_until(lambda: writer.stats.written == 1)
    assert call_ids(db) == ["while-read-only"]
    assert mode(db) == 0o600
    [stopped] = lines(logs, STOPPED)
    assert str(db) in stopped
    assert len(lines(logs, RESUMED)) == 1
    await writer.stop()


async def test_locked_for_a_while_loses_nothing(db_path: Path, logs: pytest.LogCaptureFixture) -> None:
    migrate(str(db_path))
    writer = RecorderWriter(str(db_path), busy_timeout_ms=100)
    await writer.start()
    locker = Locker(db_path)
    locker.hold()
    try:
        for i in range(20):
            writer.submit(make_record(f"locked-{i}"))
        await wait_until(lambda: writer.stats.failed_batches >= 3)  # 0.1 s + 0.5 s + 1 s of retries
    finally:
        locker.release()
    await wait_until(lambda: writer.stats.written == 20)
    assert writer.stats.dropped == 0
    assert len(call_ids(db_path)) == 20
    assert len(lines(logs, STOPPED)) == 1 and len(lines(logs, RESUMED)) == 1
    await writer.stop()


async def test_queue_full_while_the_database_is_unusable(db_path: Path, logs: pytest.LogCaptureFixture) -> None:
    migrate(str(db_path))
    writer = RecorderWriter(str(db_path), queue_size=5, batch_size=2, busy_timeout_ms=50)
    await writer.start()
    locker = Locker(db_path)
    locker.hold()
    try:
        writer.submit(make_record("held-0"))
        writer.submit(make_record("held-1"))
        await wait_until(lambda: writer.stats.failed_batches >= 1)  # that batch is out of the queue
        accepted = [writer.submit(make_record(f"queued-{i}")) for i in range(8)]
        assert accepted == [True] * 5 + [False] * 3
        assert writer.stats.dropped == 3
    finally:
        locker.release()
    await wait_until(lambda: writer.stats.written == 7)
    await writer.stop()
    assert (writer.stats.written, writer.stats.dropped) == (7, 3)
    assert len(call_ids(db_path)) == 7
    assert any("queue full" in m for m in lines(logs, "recorder queue full"))
    assert f"recorder {db_path}: 7 calls written, 3 dropped" in logs.text


async def test_stop_during_an_outage_counts_what_is_left_and_does_not_hang(
    db_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    migrate(str(db_path))
    writer = RecorderWriter(str(db_path), batch_size=2, busy_timeout_ms=50)
    await writer.start()
    locker = Locker(db_path)
    locker.hold()
    try:
        for i in range(5):
            writer.submit(make_record(f"c{i}"))
        await wait_until(lambda: writer.stats.failed_batches >= 1)
        await writer.stop(timeout_s=0.5)
    finally:
        locker.release()
    assert (writer.stats.written, writer.stats.dropped, writer.stats.queue_depth) == (0, 5, 0)
    assert f"recorder {db_path}: 0 calls written, 5 dropped" in logs.text


@pytest.mark.parametrize("limit", ["disk", "max_page_count"])
async def test_full_disk_then_space_freed(tmp_path: Path, logs: pytest.LogCaptureFixture, limit: str) -> None:
    """A real full disk (tmpfs) where this process may mount one (else SQLite's own limit
    on the database's size), and that limit (`max_page_count` on the writer's connection)."""
    if limit == "disk" and can_mount_tmpfs(tmp_path):
        with small_disk(tmp_path, 2048) as disk:
            await _full_disk_case(disk / "interlock.db", logs, tmpfs=True)
    else:
        await _full_disk_case(tmp_path / "interlock.db", logs, tmpfs=False)


async def _full_disk_case(db: Path, logs: pytest.LogCaptureFixture, *, tmpfs: bool) -> None:
    writer = RecorderWriter(str(db), busy_timeout_ms=50)
    await writer.start()
    writer.submit(make_record("before"))
    await wait_until(lambda: writer.stats.written == 1)
    filler = fill(db.parent) if tmpfs else None
    if not tmpfs:
        pages = query(db, "pragma page_count")[0][0]
        assert writer._db is not None  # the only way to limit the writer's own connection
        await writer._db.execute(f"pragma max_page_count = {pages}")
    big = "x" * 200_000  # more than any WAL space left from earlier transactions
    for i in range(5):
        writer.submit(make_record(f"full-{i}", prompt_text=big))
    await wait_until(lambda: writer.stats.failed_batches >= 1)
    assert "full" in (writer.stats.last_error or "")
    assert writer.stats.dropped == 0
    if filler is not None:
        filler.unlink()  # space freed (the reopened connection has no max_page_count either)
    await wait_until(lambda: writer.stats.written == 6)
    await writer.stop()
    assert writer.stats.dropped == 0
    assert len(call_ids(db)) == 6
    assert len(lines(logs, STOPPED)) == 1 and len(lines(logs, RESUMED)) == 1


def test_helpers_really_break_the_database(tmp_path: Path) -> None:
    """The faults above are real: what they do to a plain sqlite3 connection."""
    db = tmp_path / "x.db"
    migrate(str(db))
    with immutable(db), pytest.raises(sqlite3.OperationalError, match="readonly"):
        sqlite3.connect(db).execute("insert into calls (call_id) values ('x')")
