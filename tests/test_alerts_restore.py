"""The alerts addon's start-up restore, in process: the recorded calls are read in a
thread while calls that end meanwhile wait in a backlog, fed (and alerting) once the
history is in; the flow's hook never waits for the database."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml
from test_alert_history import T0, blocked, record
from ui_fixtures import write_records

import addons.alerts as alerts_addon
from addons.alerts import Alerts
from addons.live_config import load
from interlock.alerts.engine import Firing

BURST = {"name": "blocked-burst", "when": "count(blocked_tool_calls) >= 3", "window": "10m", "per": "session"}
HOOK_BOUND_S = 1.0  # generous: the hook must not wait for the restore (held for 10 s here)
RESTORE_BOUND_S = 10.0


def blocked_call(call_id: str, at: float) -> Any:
    return record(call_id, at, verdict="blocked", events=[blocked(tool_name="get_weather")], session_id="looping")


def burst_addon(tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Alerts, list[Firing]]:
    """The addon with the burst rule, recording to `db`; the alerts it sends."""
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump({"alerts": {"rules": [BURST]}}))
    config = SimpleNamespace(current=load(str(config_file)), live=None)
    recording = SimpleNamespace(writer=SimpleNamespace(db_path=str(db)), side_writer=lambda: None)
    addon = Alerts(cast(Any, config), cast(Any, recording))
    sent: list[Firing] = []
    monkeypatch.setattr(addon, "_send", sent.append)
    return addon, sent


async def restored(addon: Alerts) -> None:
    deadline = time.monotonic() + RESTORE_BOUND_S
    while addon._backlog is not None:
        assert time.monotonic() < deadline, "the restore never finished"
        await asyncio.sleep(0.01)


async def test_calls_that_end_while_the_rules_are_restored_are_fed_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    db = tmp_path / "interlock.db"
    await write_records(db, [blocked_call("h1", now - 60), blocked_call("h2", now - 30), blocked_call("old", T0)])
    release = threading.Event()
    read = alerts_addon.recorded

    def held(*args: Any, **kwargs: Any) -> Any:
        assert release.wait(RESTORE_BOUND_S), "never released"
        return read(*args, **kwargs)

    monkeypatch.setattr(alerts_addon, "recorded", held)
    addon, sent = burst_addon(tmp_path, db, monkeypatch)

    addon.running()
    started = time.monotonic()
    addon.interlock_call_ended(cast(Any, None), blocked_call("live", time.time()))
    assert time.monotonic() - started < HOOK_BOUND_S and sent == []  # waiting in the backlog
    release.set()
    await restored(addon)
    (firing,) = sent
    assert (firing.rule, firing.key, firing.call_ids) == ("blocked-burst", "looping", ("h1", "h2", "live"))
    addon.interlock_call_ended(cast(Any, None), blocked_call("after", time.time()))  # the same episode
    assert len(sent) == 1
    addon.done()


async def test_an_unreadable_database_starts_the_rules_empty_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "interlock.db"
    db.write_bytes(b"this is not a database" * 100)
    addon, sent = burst_addon(tmp_path, db, monkeypatch)
    addon.running()
    await restored(addon)
    assert "tallies not restored from" in caplog.text
    for n in range(3):
        addon.interlock_call_ended(cast(Any, None), blocked_call(f"c{n}", time.time()))
    assert [f.call_ids for f in sent] == [("c0", "c1", "c2")]
    addon.done()
