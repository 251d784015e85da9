"""RecorderWriter: records into real SQLite files, batching, drops, failures, shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recorder import writer as writer_module
from recorder.cost import load_cost_map
from recorder.models import (
    CallRecord,
    JudgeRecord,
    PolicyEventRecord,
    StageRecord,
    Usage,
)
from recorder.rows import SEARCH_TEXT_MAX_CHARS, iso
from recorder.schema import migrate
from recorder.writer import BUSY_BATCH, RecorderWriter

T0 = 1795433522.123  # 2026-11-23T11:32:02.123Z
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "rm -rf build"}}
SSE = b'event: message_start\ndata: {"type":"message_start"}\n\nevent: ping\ndata: {"type": "ping"}\n\n'


def make_record(call_id: str = "c1", **overrides: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "call_id": call_id,
        "started_at": T0,
        "first_byte_at": T0 + 0.25,
        "ended_at": T0 + 1.5,
        "provider": "anthropic",
        "dialect": "anthropic-messages",
        "host": "api.anthropic.com",
        "path": "/v1/messages",
        "client": "claude-cli/2.0",
        "session_id": "s1",
        "model": "claude-sonnet-4-5",
        "model_final": "claude-sonnet-4-5",
        "response_model": "claude-sonnet-4-5-20250929",
        "stream": True,
        "status": 200,
        "verdict": "blocked",
        "usage": Usage(
            input_tokens=100,
            output_tokens=20,
            cache_read_tokens=1000,
            cache_write_tokens=50,
        ),
        "prompt_text": "delete the build directory",
        "user_text": "<system-reminder>be careful</system-reminder>\ndelete the build directory",
        "response_text": "I will run rm -rf build",
        "stages": [
            StageRecord(
                stage="request_original",
                headers={
                    "content-type": "application/json",
                    "x-api-key": "<redacted len=20>",
                },
                body={
                    "model": "claude-sonnet-4-5",
                    "messages": [{"role": "user", "content": "héllo ✓"}],
                },
            ),
            StageRecord(stage="request_final", headers={}, body={"model": "claude-sonnet-4-5"}),
            StageRecord(stage="response_original", body={"content": [TOOL_USE]}, raw=SSE),
            StageRecord(stage="response_final", raw=b"not json", note="stream cut short"),
        ],
        "events": [
            PolicyEventRecord(
                policy="judge",
                action="blocked",
                reason="destructive",
                details={"p": 0.9},
                at=T0 + 1,
            ),
            PolicyEventRecord(policy="audit", action="allowed", at=T0 + 1.1),
        ],
        "judgements": [
            JudgeRecord(
                tool_call_id="toolu_1",
                tool_name="bash",
                arguments={"command": "rm -rf build"},
                judge_model="gpt-4o-mini",
                prompt=[{"role": "user", "content": "is this safe?"}],
                raw_answer='{"probability": 0.9}',
                probability=0.9,
                explanation="deletes files",
                decision="blocked",
                latency_ms=321.5,
                input_tokens=50,
                output_tokens=10,
                cost_usd=0.0001,
                at=T0 + 0.9,
            )
        ],
    }
    fields.update(overrides)
    return CallRecord(**fields)


def query(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def wait_until(condition: Callable[[], bool]) -> None:
    """Let the writer task run until `condition` holds (a hang, not a time, fails the test)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never became true")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "interlock.db"


async def test_record_round_trip(db_path: Path) -> None:
    writer = RecorderWriter(str(db_path))
    await writer.start()
    assert writer.submit(make_record())
    await writer.stop()
    assert writer.stats.written == 1
    assert writer.stats.dropped == 0

    [call] = query(db_path, "select * from calls")
    assert call["call_id"] == "c1"
    assert call["started_at"] == "2026-11-23T11:32:02.123Z"
    assert call["ended_at"] == "2026-11-23T11:32:03.623Z"
    assert call["ttfb_ms"] == pytest.approx(250)
    assert call["duration_ms"] == pytest.approx(1500)
    assert (call["provider"], call["dialect"], call["host"], call["path"]) == (
        "anthropic", "anthropic-messages", "api.anthropic.com", "/v1/messages",
    )  # fmt: skip
    assert (call["client"], call["session_id"], call["stream"], call["status"], call["verdict"]) == (
        "claude-cli/2.0", "s1", 1, 200, "blocked",
    )  # fmt: skip
    assert call["response_model"] == "claude-sonnet-4-5-20250929"
    assert (call["input_tokens"], call["output_tokens"], call["cache_read_tokens"], call["cache_write_tokens"]) == (
        100, 20, 1000, 50,
    )  # fmt: skip
    rates = load_cost_map()["claude-sonnet-4-5-20250929"]
    expected = (
        100 * rates["input_cost_per_token"]
        + 20 * rates["output_cost_per_token"]
        + 1000 * rates["cache_read_input_token_cost"]
        + 50 * rates["cache_creation_input_token_cost"]
    )
    assert call["cost_usd"] == pytest.approx(expected)
    assert call["pricing_key"] == "claude-sonnet-4-5-20250929"
    assert call["prompt_text"] == "delete the build directory"
    assert call["user_text"] == "<system-reminder>be careful</system-reminder>\ndelete the build directory"

    stages = {row["stage"]: row for row in query(db_path, "select * from stages where call_id = 'c1'")}
    assert set(stages) == {
        "request_original",
        "request_final",
        "response_original",
        "response_final",
    }
    original = stages["request_original"]
    assert json.loads(original["headers_json"])["x-api-key"] == "<redacted len=20>"
    assert "héllo ✓" in original["body_json"]  # not \\u-escaped
    assert json.loads(original["body_json"])["messages"][0]["content"] == "héllo ✓"
    assert original["raw"] is None
    assert original["size_bytes"] == len(original["body_json"].encode())
    assert stages["response_original"]["raw"] == SSE
    assert stages["response_original"]["size_bytes"] == len(SSE)
    final = stages["response_final"]
    assert (final["body_json"], final["raw"], final["note"], final["headers_json"]) == (
        None, b"not json", "stream cut short", None,
    )  # fmt: skip

    events = query(db_path, "select * from policy_events order by id")
    assert [(e["policy"], e["action"], e["reason"]) for e in events] == [
        ("judge", "blocked", "destructive"),
        ("audit", "allowed", ""),
    ]
    assert json.loads(events[0]["details_json"]) == {"p": 0.9}
    assert events[0]["created_at"] == iso(T0 + 1)

    [judge] = query(db_path, "select * from judge_decisions")
    assert judge["call_id"] == "c1"
    assert (judge["tool_call_id"], judge["tool_name"], judge["decision"]) == (
        "toolu_1",
        "bash",
        "blocked",
    )
    assert json.loads(judge["arguments_json"]) == {"command": "rm -rf build"}
    assert json.loads(judge["prompt_json"]) == [{"role": "user", "content": "is this safe?"}]
    assert (judge["probability"], judge["latency_ms"], judge["cost_usd"]) == (
        0.9,
        321.5,
        0.0001,
    )
    assert judge["created_at"] == "2026-11-23T11:32:03.023Z"

    # Read from the response bodies by the dialect (the final one is not JSON here).
    [tool_call] = query(db_path, "select * from tool_calls")
    assert dict(tool_call) == {
        "call_id": "c1", "stage": "response_original", "position": 0, "tool_call_id": "toolu_1",
        "name": "bash", "arguments_json": '{"command": "rm -rf build"}',
    }  # fmt: skip

    [blocked] = query(db_path, "select call_id, reasons from blocked_calls")
    assert tuple(blocked) == ("c1", "judge: destructive")


async def test_a_stage_equal_to_its_original_is_stored_once(db_path: Path) -> None:
    """Nobody changed the request, nor the (streamed) response: each final stage's row
    names its original and holds no body, and the `stages` view reads back every stage
    exactly as recorded. A changed stage is stored on its own."""
    request = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x" * 100_000}]}
    message = {"content": [TOOL_USE]}
    unchanged = make_record(
        "same",
        stages=[
            StageRecord(stage="request_original", headers={"a": "1"}, body=request),
            StageRecord(stage="request_final", headers={"a": "2"}, body=json.loads(json.dumps(request))),
            StageRecord(stage="response_original", body=message, raw=SSE),
            StageRecord(stage="response_final", body=message, raw=SSE, note="as sent"),
        ],
    )
    changed = make_record(
        "changed",
        stages=[
            StageRecord(stage="request_original", body=request),
            StageRecord(stage="request_final", body={**request, "model": "claude-haiku-4-5"}),
            StageRecord(stage="response_original", body=message, raw=SSE),
            StageRecord(stage="response_final", body=message, raw=SSE + b": more\n\n"),
        ],
    )
    writer = RecorderWriter(str(db_path))
    await writer.start()
    writer.submit(unchanged)
    writer.submit(changed)
    await writer.stop()

    stored = {
        (row["call_id"], row["stage"]): row
        for row in query(
            db_path, "select call_id, stage, body_json is null as empty, raw is null as no_raw, same_as from stage_rows"
        )
    }
    assert {key: tuple(row)[2:] for key, row in stored.items() if key[0] == "same"} == {
        ("same", "request_original"): (0, 1, None),
        ("same", "request_final"): (1, 1, "request_original"),
        ("same", "response_original"): (0, 0, None),
        ("same", "response_final"): (1, 1, "response_original"),
    }
    assert all(row["same_as"] is None for key, row in stored.items() if key[0] == "changed")
    for record in (unchanged, changed):
        read = {
            row["stage"]: row for row in query(db_path, "select * from stages where call_id = ?", (record.call_id,))
        }
        for stage in record.stages:
            row = read[stage.stage]
            assert json.loads(row["body_json"]) == stage.body
            assert (row["raw"], row["note"]) == (stage.raw, stage.note)
            assert json.loads(row["headers_json"] or "null") == stage.headers
    sizes = {row["stage"]: row["size_bytes"] for row in query(db_path, "select * from stages where call_id = 'same'")}
    assert sizes["request_final"] == sizes["request_original"] > 100_000


async def test_arrivals_are_stored_and_exact_bytes_are_not(db_path: Path) -> None:
    """A stream's chunk arrivals are stored with its original response (the pacing a
    cassette replays); a whole body's exact bytes stay in the record only."""
    arrivals = [(0.25, 10), (0.5, len(SSE) - 10)]
    record = make_record(
        stages=[
            StageRecord(stage="request_original", body={"model": "m"}),
            StageRecord(stage="request_final", body={"model": "m"}),
            StageRecord(stage="response_original", body={"content": []}, raw=SSE, arrivals=arrivals),
            StageRecord(stage="response_final", body={"content": []}, exact=b'{"content": []}'),
        ]
    )
    assert "exact" not in record.stages[3].model_dump()
    writer = RecorderWriter(str(db_path))
    await writer.start()
    writer.submit(record)
    await writer.stop()
    rows = {row["stage"]: row for row in query(db_path, "select stage, arrivals_json, raw from stages")}
    assert json.loads(rows["response_original"]["arrivals_json"]) == [list(pair) for pair in arrivals]
    assert rows["response_final"]["arrivals_json"] is None
    assert rows["response_final"]["raw"] is None


async def test_searchable_texts_are_capped(db_path: Path) -> None:
    """What goes into the full-text index is at most SEARCH_TEXT_MAX_CHARS a column; the
    stages keep the whole message."""
    long = "word " * 20_000
    writer = RecorderWriter(str(db_path))
    await writer.start()
    writer.submit(make_record(user_text=long, prompt_text=long, response_text="short"))
    await writer.stop()
    [row] = query(db_path, "select prompt_text, user_text, response_text from calls")
    assert tuple(row) == (long[:SEARCH_TEXT_MAX_CHARS], long[:SEARCH_TEXT_MAX_CHARS], "short")


async def test_unknown_model_cost_is_null(db_path: Path) -> None:
    writer = RecorderWriter(str(db_path))
    await writer.start()
    writer.submit(make_record(model="house-model-x", model_final="house-model-x", response_model=None))
    writer.submit(make_record("no-usage", usage=Usage()))
    await writer.stop()
    rows = {r["call_id"]: r for r in query(db_path, "select call_id, cost_usd, pricing_key from calls")}
    assert (rows["c1"]["cost_usd"], rows["c1"]["pricing_key"]) == (None, None)
    assert (rows["no-usage"]["cost_usd"], rows["no-usage"]["pricing_key"]) == (
        None,
        None,
    )


async def test_same_call_written_again_replaces_it(db_path: Path) -> None:
    writer = RecorderWriter(str(db_path))
    await writer.start()
    writer.submit(make_record())
    await wait_until(lambda: writer.stats.written == 1)
    writer.submit(make_record(verdict="pass", stages=[], events=[make_record().events[0]]))
    await writer.stop()
    assert [tuple(r) for r in query(db_path, "select call_id, verdict from calls")] == [("c1", "pass")]
    assert query(db_path, "select count(*) from stages")[0][0] == 0
    assert query(db_path, "select count(*) from policy_events")[0][0] == 1
    assert query(db_path, "select count(*) from judge_decisions")[0][0] == 1
    assert query(db_path, "select count(*) from tool_calls")[0][0] == 0


async def test_tool_calls_of_both_response_stages_and_of_unknown_dialects(db_path: Path) -> None:
    second = {**TOOL_USE, "id": "toolu_2", "name": "ls", "input": {}}
    stages = [
        StageRecord(stage="response_original", body={"content": [TOOL_USE, {"type": "text", "text": "x"}, second]}),
        StageRecord(stage="response_final", body={"content": [second]}),  # the first was blocked
    ]
    writer = RecorderWriter(str(db_path))
    await writer.start()
    writer.submit(make_record("known", stages=stages))
    writer.submit(make_record("unknown", dialect="not-a-dialect", stages=stages))
    await writer.stop()
    assert writer.stats.written == 2
    rows = query(db_path, "select call_id, stage, position, tool_call_id from tool_calls order by stage, position")
    assert [tuple(r) for r in rows] == [
        ("known", "response_final", 0, "toolu_2"),
        ("known", "response_original", 0, "toolu_1"),
        ("known", "response_original", 1, "toolu_2"),
    ]


async def test_many_records_few_transactions(db_path: Path) -> None:
    writer = RecorderWriter(str(db_path), batch_size=200)
    for i in range(1000):
        assert writer.submit(make_record(f"call-{i}"))
    assert writer.stats.queue_depth == 1000
    await writer.start()
    await writer.stop()
    assert writer.stats.written == 1000
    assert writer.stats.batches == 5
    assert query(db_path, "select count(*) from calls")[0][0] == 1000
    assert query(db_path, "select count(*) from stages")[0][0] == 4000


async def test_a_busy_writer_waits_longer_for_its_next_batch(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a batch of BUSY_BATCH or more, the next transaction waits LINGER_BUSY_S (1 s
    here) for records, not LINGER_S: a record and others 0.25 s after it are written in
    one transaction, where a writer that is not busy writes the first alone."""
    monkeypatch.setattr(writer_module, "LINGER_BUSY_S", 1.0)
    writer = RecorderWriter(str(db_path))
    await writer.start()

    async def record_then_more_later(prefix: str) -> None:
        written = writer.stats.written
        writer.submit(make_record(f"{prefix}-first"))
        await asyncio.sleep(0.25)
        for i in range(3):
            writer.submit(make_record(f"{prefix}-{i}"))
        await wait_until(lambda: writer.stats.written == written + 4)

    await record_then_more_later("idle")
    assert writer.stats.batches == 2  # not busy: the first record went alone
    for i in range(BUSY_BATCH):
        writer.submit(make_record(f"burst-{i}"))
    await wait_until(lambda: writer.stats.written == 4 + BUSY_BATCH)
    assert writer.stats.batches == 3
    await record_then_more_later("busy")
    assert writer.stats.batches == 4  # busy: one transaction for the four
    await writer.stop()


async def test_full_queue_drops_without_blocking(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    writer = RecorderWriter(str(db_path), queue_size=3)
    with caplog.at_level(logging.WARNING, logger="recorder.writer"):
        results = [writer.submit(make_record(f"c{i}")) for i in range(5)]
        assert results == [True, True, True, False, False]
        assert writer.stats.dropped == 2
        assert writer.stats.queue_depth == 3
        for i in range(5, 205):
            writer.submit(make_record(f"c{i}"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # rate-limited: the first drop, then the 100th and the 200th, each with the running total
    assert len(warnings) == 3
    assert "queue full" in warnings[0] and "1 records dropped" in warnings[0]
    assert "200 records dropped" in warnings[-1]
    assert writer.stats.dropped == 202
    await writer.start()
    await writer.stop()
    assert writer.stats.written == 3


def hold_exclusive_lock(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("create table if not exists t (x)")
    conn.execute("begin exclusive")
    return conn


@pytest.mark.parametrize("kind", ["missing_dir", "directory", "locked"])
async def test_unusable_database_keeps_records_queued_and_never_raises(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    lock: sqlite3.Connection | None = None
    if kind == "missing_dir":
        path = tmp_path / "no" / "such" / "dir" / "x.db"
    elif kind == "directory":
        path = tmp_path
    else:
        path = tmp_path / "locked.db"
        lock = hold_exclusive_lock(path)
    writer = RecorderWriter(str(path), busy_timeout_ms=50)
    assert writer.submit(make_record("queued-before-start"))
    with caplog.at_level(logging.WARNING, logger="recorder.writer"):
        await writer.start()
        assert any(str(path) in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
        assert writer.stats.last_error is not None
        assert writer.submit(make_record("after"))  # kept for a retry, not dropped
        await wait_until(lambda: writer.stats.failed_batches >= 1)
        assert (writer.stats.dropped, writer.stats.queue_depth) == (0, 0)  # the batch is held, retried
        await writer.stop(timeout_s=0.2)
    assert (writer.stats.written, writer.stats.dropped) == (0, 2)
    assert f"recorder {path}: 0 calls written, 2 dropped" in caplog.text
    if lock is not None:
        lock.rollback()
        lock.close()


async def test_locked_batch_is_retried_and_written_after_release(db_path: Path) -> None:
    migrate(str(db_path))
    writer = RecorderWriter(str(db_path), busy_timeout_ms=50)
    await writer.start()
    lock = sqlite3.connect(db_path, isolation_level=None)
    lock.execute("begin immediate")  # holds the write lock
    writer.submit(make_record("while-locked"))
    await wait_until(lambda: writer.stats.failed_batches >= 1)
    assert writer.stats.dropped == 0
    assert writer.stats.last_error is not None and "locked" in writer.stats.last_error
    lock.rollback()
    lock.close()
    await wait_until(lambda: writer.stats.written == 1)
    writer.submit(make_record("after-release"))
    await writer.stop()
    assert (writer.stats.written, writer.stats.dropped) == (2, 0)
    assert sorted(r[0] for r in query(db_path, "select call_id from calls")) == ["after-release", "while-locked"]


async def test_unencodable_record_is_dropped_alone(db_path: Path) -> None:
    writer = RecorderWriter(str(db_path))
    await writer.start()
    bad_stage = StageRecord(stage="request_original", body={"a set": {1, 2}})
    writer.submit(make_record("good-1"))
    writer.submit(make_record("bad", stages=[bad_stage]))
    writer.submit(make_record("good-2"))
    await writer.stop()
    assert (writer.stats.written, writer.stats.dropped) == (2, 1)
    assert writer.stats.last_error is not None and "bad" in writer.stats.last_error
    assert sorted(r[0] for r in query(db_path, "select call_id from calls")) == [
        "good-1",
        "good-2",
    ]


async def test_stop_drains_the_queue(db_path: Path) -> None:
    writer = RecorderWriter(str(db_path), batch_size=7)
    await writer.start()
    for i in range(300):
        writer.submit(make_record(f"call-{i}"))
    await writer.stop()
    assert writer.stats.written == 300
    assert writer.stats.queue_depth == 0
    assert query(db_path, "select count(*) from calls")[0][0] == 300
    assert writer.submit(make_record("late")) is False
    assert writer.stats.dropped == 1


async def test_stop_timeout_counts_the_rest_as_dropped(db_path: Path) -> None:
    migrate(str(db_path))
    writer = RecorderWriter(str(db_path), batch_size=1, busy_timeout_ms=300)
    await writer.start()
    lock = sqlite3.connect(db_path, isolation_level=None)
    lock.execute("begin immediate")
    for i in range(3):
        writer.submit(make_record(f"call-{i}"))
    try:
        await writer.stop(timeout_s=0.01)  # the first batch waits on the lock meanwhile
    finally:
        lock.rollback()
        lock.close()
    assert writer.stats.written == 0
    assert writer.stats.dropped == 3
    assert writer.stats.queue_depth == 0


async def test_stop_while_starting_leaves_no_writer_running(db_path: Path) -> None:
    writer = RecorderWriter(str(db_path))
    writer.submit(make_record())
    starting = asyncio.create_task(writer.start())
    await writer.stop()
    await starting
    assert [t for t in asyncio.all_tasks() if t.get_name() == "interlock-recorder"] == []
    assert writer.stats.dropped == 1
    assert writer.submit(make_record("late")) is False


async def test_stop_while_opening_the_database_writes_what_was_queued(db_path: Path) -> None:
    writer = RecorderWriter(str(db_path))
    starting = asyncio.create_task(writer.start())
    await asyncio.sleep(0)  # start() is now migrating the database in a thread
    assert writer.submit(make_record())
    await writer.stop()
    await starting
    assert writer.stats.written == 1 and writer.stats.dropped == 0
    assert [row["call_id"] for row in query(db_path, "select call_id from calls")] == ["c1"]
