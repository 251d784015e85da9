"""The fault suite's database cases (issue 9) through a real mitmdump.

Each case breaks the recorder's database while calls flow (read-only, on a read-only
directory, locked by another writer for 10 s, removed, disk full), then ends the fault.
Non-streamed (openai SDK) and streamed (anthropic SDK) calls run during the fault and
after it, beside a concurrent paced stream. Each case asserts: every client got a
well-formed answer within a bound; the paced stream kept its pacing; every call is
accounted for, and every call of the case is in the database once the fault is over
(nothing queued is lost); no secret reached the database; the recorder logged that
recording stopped and that it resumed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from db_faults import Locker, can_mount_tmpfs, fill, immutable, remove_db, small_disk
from fault_kit import PacedStream, assert_accounted, assert_no_secret, report
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB

from recorder.schema import migrate

# Each case measures a concurrent stream's pacing: nothing else runs meanwhile (tests/solo.py).
pytestmark = pytest.mark.solo

CALL_ID = "x-interlock-call-id"
NON_STREAMED = 20  # per phase: during the fault, after it
STREAMED = 5
WORKERS = 2
ANSWER_BOUND_S = 8.0  # below the 10 s lock, generous on a loaded machine: no call waits on the database
RECORDED_BOUND_S = 30.0  # the writer retries every few seconds at most
LOCK_S = 10.0
STOPPED = "recorder stopped recording to"
RESUMED = "recorder resumed recording to"


@dataclass
class Calls:
    """The calls of a case: their ids and how long each client waited for its answer."""

    ids: list[str] = field(default_factory=list)
    answer_s: list[float] = field(default_factory=list)

    @property
    def slowest(self) -> float:
        return max(self.answer_s, default=0.0)


def _non_streamed(clients: ClientFactory, prompt: str) -> tuple[str, float]:
    started = time.monotonic()
    raw = clients.openai().chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    return raw.headers[CALL_ID], time.monotonic() - started


def _streamed(clients: ClientFactory, prompt: str) -> tuple[str, float]:
    started = time.monotonic()
    with clients.anthropic().messages.stream(
        model="claude-sonnet-4-6", max_tokens=256, messages=[{"role": "user", "content": prompt}]
    ) as stream:
        message = stream.get_final_message()
        call_id = stream.response.headers[CALL_ID]
    assert message.content and message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "end_turn"
    return call_id, time.monotonic() - started


def drive(clients: ClientFactory, calls: Calls, prompt: str = "hello") -> None:
    """NON_STREAMED + STREAMED calls, WORKERS at a time; each answer checked and timed."""
    jobs: list[Callable[[], tuple[str, float]]] = [lambda: _non_streamed(clients, prompt)] * NON_STREAMED
    jobs += [lambda: _streamed(clients, prompt)] * STREAMED
    with ThreadPoolExecutor(WORKERS) as pool:
        for call_id, waited in pool.map(lambda job: job(), jobs):
            calls.ids.append(call_id)
            calls.answer_s.append(waited)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = RECORDED_BOUND_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.1)


def wait_logged(proxy: ProxyProcess, line: str) -> None:
    wait_for(lambda: line in proxy.output(), f"the proxy logs {line!r}")


@contextlib.contextmanager
def paced(clients: ClientFactory) -> Iterator[PacedStream]:
    stream = PacedStream(clients)
    stream.start()
    try:
        yield stream
    finally:
        stream.finish()


def finish_case(
    case: str,
    proxy: ProxyProcess,
    calls: Calls,
    stream: PacedStream,
    api_key: str,
    *,
    removed: int = 0,
) -> None:
    """The checks every database case makes once its fault is over, and its figures."""
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    wait_for(lambda: set(calls.ids) <= set(db.call_ids()), "every call of the case is recorded")
    assert calls.slowest < ANSWER_BOUND_S, f"a client waited {calls.slowest:.2f} s"
    stream.assert_paced()
    output = proxy.output()
    assert STOPPED in output and RESUMED in output
    total = len(calls.ids) + stream.calls + removed
    totals = assert_accounted(proxy, total, removed=removed)
    assert totals.dropped == 0  # nothing was queued beyond queue_size, nothing lost at shutdown
    assert_no_secret(proxy.db_path, api_key)
    assert proxy.addon_errors() == []
    report(
        case,
        "answered; recording stopped, resumed; nothing lost",
        answer_s=round(calls.slowest, 3),
        max_gap_s=round(stream.max_gap, 3),
        calls=total,
        written=totals.written,
        dropped=totals.dropped,
    )


def test_database_read_only_then_writable(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    api_key: str,
    tmp_path: Path,
) -> None:
    db = tmp_path / "interlock.db"
    migrate(str(db))
    calls = Calls()
    with contextlib.ExitStack() as fault:
        fault.enter_context(immutable(db))
        proxy = start_proxy(db=db)
        clients = make_clients(proxy)
        with paced(clients) as stream:
            drive(clients, calls)
            wait_logged(proxy, STOPPED)
            assert "readonly" in proxy.output()
            fault.close()  # writable again
            drive(clients, calls)
            wait_logged(proxy, RESUMED)
    finish_case("database read-only", proxy, calls, stream, api_key)


def test_database_on_a_read_only_directory(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    api_key: str,
    tmp_path: Path,
) -> None:
    directory = tmp_path / "read-only"
    directory.mkdir()
    db = directory / "interlock.db"
    calls = Calls()
    with contextlib.ExitStack() as fault:
        fault.enter_context(immutable(directory))
        proxy = start_proxy(db=db)
        clients = make_clients(proxy)
        with paced(clients) as stream:
            drive(clients, calls)
            wait_logged(proxy, STOPPED)
            assert not db.exists()
            fault.close()  # writable again
            drive(clients, calls)
            wait_logged(proxy, RESUMED)
    finish_case("database on a read-only directory", proxy, calls, stream, api_key)


def test_database_locked_by_another_writer_for_10_s(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], api_key: str
) -> None:
    proxy = start_proxy()
    db = proxy.db_path
    assert db is not None
    wait_for(db.exists, "the database is created")
    clients = make_clients(proxy)
    calls = Calls()
    with paced(clients) as stream:
        locker = Locker(db)
        locker.hold()
        locked_at = time.monotonic()
        try:
            drive(clients, calls)
            wait_logged(proxy, STOPPED)
            assert "locked" in proxy.output()
            time.sleep(max(0.0, LOCK_S - (time.monotonic() - locked_at)))
        finally:
            locker.release()
        drive(clients, calls)
        wait_logged(proxy, RESUMED)
    finish_case("database locked by another writer for 10 s", proxy, calls, stream, api_key)


def test_database_removed_while_running(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], api_key: str
) -> None:
    proxy = start_proxy()
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    clients = make_clients(proxy)
    before = Calls()
    drive(clients, before)
    wait_for(lambda: set(before.ids) <= set(db.call_ids()), "the calls before the removal are recorded")
    removed = len(db.call_ids())  # they go with the file
    calls = Calls()
    with paced(clients) as stream:
        remove_db(proxy.db_path)  # rm interlock.db*
        drive(clients, calls)
        wait_logged(proxy, RESUMED)
    assert "removed or replaced" in proxy.output()
    assert not set(before.ids) & set(db.call_ids())
    calls.answer_s += before.answer_s
    finish_case("database removed while running", proxy, calls, stream, api_key, removed=removed)


def test_disk_full_then_space_freed(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    api_key: str,
    tmp_path: Path,
) -> None:
    if not can_mount_tmpfs(tmp_path):
        pytest.skip("needs a small tmpfs (root, mount allowed); test_recorder_faults covers max_page_count")
    calls = Calls()
    with small_disk(tmp_path, 32 * 1024) as disk:  # room for the WAL to grow until the filler takes the rest
        proxy = start_proxy(db=disk / "interlock.db")
        clients = make_clients(proxy)
        wait_for(lambda: (disk / "interlock.db").exists(), "the database is created")
        with paced(clients) as stream:
            filler = fill(disk)
            drive(clients, calls, prompt="fill " + "x" * 20_000)  # more than the WAL has room for
            wait_logged(proxy, STOPPED)
            assert "full" in proxy.output()
            filler.unlink()
            drive(clients, calls)
            wait_logged(proxy, RESUMED)
        finish_case("disk full", proxy, calls, stream, api_key)
