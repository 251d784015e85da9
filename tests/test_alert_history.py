"""What the alert rules restore from the database (recorder.alert_history): each
recorded call's facts equal what `call_facts` makes of its live record, the calls are
those inside the windows, oldest first and bounded, and the recorded alerts come back."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_budget import record as budget_record
from ui_fixtures import write_records

from interlock.alerts.engine import CallFacts, RecordedAlert
from interlock.neutral import Usage
from interlock.policy.records import JudgeRecord, PolicyEventRecord
from interlock.windows import parse_window
from recorder.alert_history import EVER_LOOKBACK_S, history_since, recorded
from recorder.call_facts import call_facts
from recorder.cost import load_cost_map
from recorder.models import CallRecord
from recorder.rows import iso

T0 = 1_796_169_000.0


def recorded_history(db: str, since: float, max_calls: int = 200_000) -> list[CallFacts]:
    return recorded(db, since, since, max_calls)[0]


def record(call_id: str, at: float, **fields: Any) -> CallRecord:
    """A gpt-4o call of session s1 that ended at `at` (12 input, 34 output tokens)."""
    return budget_record(**{"call_id": call_id, "started_at": at - 1.0, "ended_at": at, **fields})


def blocked(**details: Any) -> PolicyEventRecord:
    return PolicyEventRecord(policy="deny_tools", action="blocked", reason="denied", details=details, at=T0)


def judged(probability: float | None) -> JudgeRecord:
    return JudgeRecord(
        tool_call_id="t", tool_name="bash", arguments={}, judge_model="m", prompt=[], probability=probability,
        decision="allowed", at=T0,
    )  # fmt: skip


RECORDS = [
    record("plain", T0 + 1.001),
    record(
        "tools",
        T0 + 2.5,
        verdict="blocked",
        events=[blocked(tool_name="get_weather"), blocked(tool_call_id="call_2"), blocked(note="whole request")],
        judgements=[judged(0.2), judged(0.93), judged(None)],
        user="ana",
        project="billing",
        model_final="gpt-4o-mini",
        usage=Usage(input_tokens=100, output_tokens=20, cache_read_tokens=1000, cache_write_tokens=50),
    ),
    record("limited", T0 + 3.0, status=429, usage=Usage(), session_id=None),
    record("broken", T0 + 4.5, status=None, error="upstream closed the connection", ended_at=None),
    record("unpriced", T0 + 5.0, model="no-such-model-anywhere", provider="openai"),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    load_cost_map()
    path = tmp_path_factory.mktemp("alert-history") / "interlock.db"
    asyncio.run(write_records(path, [record("old", T0 - 7200), *RECORDS]))
    return str(path)


def test_each_recorded_calls_facts_equal_those_of_its_live_record(db: str) -> None:
    restored = recorded_history(db, T0)
    assert [f.call_id for f in restored] == [r.call_id for r in RECORDS]  # oldest first, "old" outside
    for got, live in zip(restored, map(call_facts, RECORDS), strict=True):
        assert got.at == pytest.approx(live.at, abs=0.001)  # the database keeps milliseconds
        assert dict(got.metrics) == pytest.approx(dict(live.metrics)), got.call_id
        assert dict(got.scopes) == dict(live.scopes), got.call_id
    tools = restored[1].metrics
    assert (tools["blocked_tool_calls"], tools["judge_probability"], tools["tokens"]) == (2.0, 0.93, 1170.0)
    assert restored[2].metrics["errors"] == restored[3].metrics["errors"] == 1.0
    assert restored[4].metrics["cost_usd"] is None and restored[4].metrics["unpriced"] == 1.0


def test_the_newest_calls_are_kept_when_there_are_more_than_the_bound(db: str) -> None:
    assert [f.call_id for f in recorded_history(db, T0, max_calls=2)] == ["broken", "unpriced"]
    assert recorded_history(db, T0 + 10) == []
    assert recorded_history(str(Path(db).with_name("missing.db")), T0) == []


def test_the_windows_say_how_far_back_to_read() -> None:
    now = T0 + 1800.0  # 2026-12-02 00:20 UTC
    assert history_since([parse_window("call")], now) is None
    assert history_since([parse_window("10m"), parse_window("call")], now) == now - 600
    assert history_since([parse_window("10m"), parse_window("day")], now) == 1_796_169_600.0  # midnight UTC
    assert history_since([parse_window("session")], now) == now - EVER_LOOKBACK_S


def test_recorded_alerts_come_back_from_the_table(db: str) -> None:
    rows = [
        ("a1", T0 + 10, "rule", "burst", "count(errors) >= 2", "looping"),
        ("a2", T0 + 20, "policy", "budget", "daily", "s1"),
        ("a0", T0 - 10, "rule", "burst", "count(errors) >= 2", "early"),
    ]
    with sqlite3.connect(db) as conn:
        for alert_id, at, source, rule, condition, key in rows:
            conn.execute(
                "insert into alerts (alert_id, fired_at, source, rule, condition, scope_key, message, call_ids)"
                " values (?, ?, ?, ?, ?, ?, 'm', ?)",
                (alert_id, iso(at), source, rule, condition, key, json.dumps([])),
            )
    got = recorded(db, None, T0)[1]
    assert [(a.source, a.rule, a.condition, a.key) for a in got] == [
        ("rule", "burst", "count(errors) >= 2", "looping"),
        ("policy", "budget", "daily", "s1"),
    ]
    assert got[0].fired_at == pytest.approx(T0 + 10, abs=0.001)
    assert isinstance(got[0], RecordedAlert)
