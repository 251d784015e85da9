"""The database file itself: created private (0600), migrated, and known by its identity.

Blocking (file system and sqlite3 calls): the writer runs these in a worker thread.
SQLite creates the `-wal` and `-shm` files with the database file's mode, so a database
created here keeps all three readable by its owner only. An existing file keeps its mode.
"""

from __future__ import annotations

import os
from pathlib import Path

FileId = tuple[int, int]  # (st_dev, st_ino): which file a path names right now

SIDE_FILES = ("-wal", "-shm")
PRIVATE_MODE = 0o600


def file_id(path: str) -> FileId | None:
    """The identity of the file at `path`, or None if there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def prepare(path: str, busy_timeout_ms: int) -> None:
    """Make the database at `path` ready to open: create it (0600) if it is missing, then
    bring its schema up to date (the migrations).

    A missing database's leftover `-wal`/`-shm` (of a database removed while open) are
    removed first: SQLite would otherwise pair them with the new file. Raises OSError or
    sqlite3.Error when the file cannot be created, opened, locked or written.
    """
    # sqlite-utils (about 0.1 s to import) is imported here, in the worker thread, to keep
    # it off the proxy's start-up path; first, so that a database that cannot be created
    # at start-up does not make a later attempt pay for the import while calls flow.
    from recorder.schema import migrate

    if not os.path.exists(path):
        for suffix in SIDE_FILES:
            Path(path + suffix).unlink(missing_ok=True)
        _create_private(path)
    migrate(path, busy_timeout_ms=busy_timeout_ms)


def _create_private(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:  # created meanwhile: whoever did chose its mode
        return
    os.close(fd)
