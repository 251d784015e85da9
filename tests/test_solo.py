"""The `solo` lock (solo.py): a solo test waits for the running tests, then runs alone,
and a test that comes after it waits for it even though the lock is shared meanwhile."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from solo import turn

WAIT_S = 10.0  # a hang guard only


def test_a_solo_test_runs_alone_and_goes_before_later_tests(tmp_path: Path) -> None:
    log: list[str] = []
    first_in, first_may_end = threading.Event(), threading.Event()

    def run(
        name: str, solo: bool, entered: threading.Event | None = None, until: threading.Event | None = None
    ) -> None:
        with turn(tmp_path, solo):
            log.append(f"{name} in")
            if entered is not None:
                entered.set()
            if until is not None:
                assert until.wait(WAIT_S)
            else:
                time.sleep(0.2)  # long enough for a test that should wait to have tried to enter
            log.append(f"{name} out")

    first = threading.Thread(target=run, args=("first", False, first_in, first_may_end))
    first.start()
    assert first_in.wait(WAIT_S)
    solo = threading.Thread(target=run, args=("solo", True))
    solo.start()
    time.sleep(0.2)  # the solo test is waiting at the run lock, holding the turnstile
    later = threading.Thread(target=run, args=("later", False))
    later.start()
    time.sleep(0.2)
    assert log == ["first in"]  # neither has entered while the first test runs
    first_may_end.set()
    for thread in (first, solo, later):
        thread.join(WAIT_S)
    assert log == ["first in", "first out", "solo in", "solo out", "later in", "later out"]


def test_tests_that_are_not_solo_run_together(tmp_path: Path) -> None:
    both_in = threading.Barrier(2, timeout=WAIT_S)

    def run() -> None:
        with turn(tmp_path, solo=False):
            both_in.wait()  # raises BrokenBarrierError if the other cannot enter meanwhile

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert not both_in.broken
