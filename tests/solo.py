"""The `solo` marker: a test so marked runs while no other test runs.

Under pytest-xdist every test holds a shared lock on a file of the run while it is set
up, run and torn down, and a `solo` test holds it exclusively, so the other workers wait
at their next test until it is done (a turnstile lock lets a waiting `solo` test in
first). For tests that load the whole machine (the soak), so that neither they nor the
tests beside them measure the other. Without xdist there is one process and no lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

MARKER = "solo"


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, mode)
        yield  # closing the file releases the lock


@contextmanager
def turn(directory: Path, solo: bool) -> Iterator[None]:
    """Hold the run's lock in `directory`, exclusively for a solo test, shared otherwise."""
    with ExitStack() as held:
        with _flock(directory / "turnstile.lock", fcntl.LOCK_EX):
            held.enter_context(_flock(directory / "run.lock", fcntl.LOCK_EX if solo else fcntl.LOCK_SH))
        yield


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: runs while no other test runs (under xdist, the others wait)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return (yield)
    # xdist gives each worker the directory `<the run's base temp>/<worker id>`.
    with turn(Path(item.config.option.basetemp).parent, item.get_closest_marker(MARKER) is not None):
        return (yield)
