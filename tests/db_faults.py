"""Real database faults for the recorder's tests: read-only files and directories, a lock
held by another connection, a full disk.

Tests run as root, for whom file modes do not make anything read-only: `immutable()`
uses `chattr +i` (never on a `-shm` file, which SQLite maps: SIGBUS). `small_disk()`
mounts a tmpfs where that works (root, mount allowed) and says so; callers that cannot
have one fall back to SQLite's `max_page_count`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

FILLER_CHUNK = 64 * 1024


def db_files(db: Path) -> list[Path]:
    """The database and its -wal/-shm files that exist."""
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def remove_db(db: Path) -> None:
    """`rm DB DB-wal DB-shm`, as a user would."""
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.unlink(missing_ok=True)


def _chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


@contextlib.contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """`paths` cannot be written, created in (directories), removed or renamed, even by root."""
    done: list[Path] = []
    try:
        for path in paths:
            assert not path.name.endswith("-shm"), "an immutable -shm file crashes SQLite"
            _chattr("+i", path)
            done.append(path)
        yield
    finally:
        for path in done:
            _chattr("-i", path)


class Locker(threading.Thread):
    """Another writer: holds `begin exclusive` on `db` from `start()` until `release()`."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True, name="db-locker")
        self._db = db
        self.locked = threading.Event()
        self._release = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self._db, isolation_level=None, timeout=30)
        try:
            conn.execute("begin exclusive")
            self.locked.set()
            self._release.wait(120)  # a bound: the test releases it long before
            conn.rollback()
        finally:
            conn.close()

    def hold(self) -> None:
        self.start()
        assert self.locked.wait(30), "could not take the exclusive lock"

    def release(self) -> None:
        self._release.set()
        self.join(30)


def can_mount_tmpfs(where: Path) -> bool:
    """Whether this process may mount a tmpfs (root, and mount allowed here)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = where / "tmpfs-probe"
    probe.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], check=False, capture_output=True
        ).returncode
        if mounted == 0:
            subprocess.run(["umount", str(probe)], check=True, capture_output=True)
        return mounted == 0
    finally:
        probe.rmdir()


@contextlib.contextmanager
def small_disk(where: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of `size_kb` mounted on a new directory under `where`, unmounted after."""
    mount = where / "small-disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(mount)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True, capture_output=True)
        mount.rmdir()


def fill(disk: Path) -> Path:
    """Write a filler file until `disk` has no space left; remove it to free the space."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (FILLER_CHUNK, 512, 1):  # big pieces, then whatever still fits
            for _ in range(100_000):  # a bound far above any test disk's size
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler
