"""The database schema: migrations, tables, indexes, views, full-text search."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from recorder.rows import CALL_COLUMNS, EVENT_COLUMNS, JUDGE_COLUMNS, STAGE_COLUMNS, TOOL_CALL_COLUMNS
from recorder.schema import MIGRATIONS, migrate

MIGRATION_NAMES = [
    "m001_calls",
    "m002_stages",
    "m003_policy_events",
    "m004_judge_decisions",
    "m005_views",
    "m006_fts",
    "m007_ttft",
    "m008_user_text",
    "m009_tool_calls",
    "m010_slowest_calls_ttft",
    "m011_stages_stored_once",
    "m012_stage_arrivals",
    "m013_backtests",
    "m014_call_tags",
    "m017_ui_indexes",
    "m018_budget_use",
    "m019_alerts",
]


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    path = str(tmp_path / "interlock.db")
    migrate(path)
    return path


@pytest.fixture
def conn(db_path: str) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(db_path)
    yield connection
    connection.close()


def columns(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    return {row[1]: row[2] for row in conn.execute(f"pragma table_info({table})")}


def names(conn: sqlite3.Connection, kind: str) -> set[str]:
    return {row[0] for row in conn.execute("select name from sqlite_master where type = ?", [kind])}


def test_calls_table(conn: sqlite3.Connection) -> None:
    assert columns(conn, "calls") == {
        "call_id": "TEXT", "started_at": "TEXT", "ended_at": "TEXT",
        "ttfb_ms": "REAL", "duration_ms": "REAL",
        "provider": "TEXT", "dialect": "TEXT", "host": "TEXT", "path": "TEXT",
        "client": "TEXT", "session_id": "TEXT", "user": "TEXT", "project": "TEXT",
        "model": "TEXT", "model_final": "TEXT", "response_model": "TEXT",
        "stream": "INTEGER", "status": "INTEGER", "error": "TEXT", "verdict": "TEXT",
        "input_tokens": "INTEGER", "output_tokens": "INTEGER",
        "cache_read_tokens": "INTEGER", "cache_write_tokens": "INTEGER",
        "cost_usd": "REAL", "pricing_key": "TEXT", "ttft_ms": "REAL",
        "prompt_text": "TEXT", "user_text": "TEXT", "response_text": "TEXT",
    }  # fmt: skip
    pk = [row[1] for row in conn.execute("pragma table_info(calls)") if row[5]]
    assert pk == ["call_id"]


def test_alerts_table(conn: sqlite3.Connection) -> None:
    assert columns(conn, "alerts") == {
        "alert_id": "TEXT", "fired_at": "TEXT", "source": "TEXT", "rule": "TEXT", "condition": "TEXT",
        "value": "REAL", "time_window": "TEXT", "scope": "TEXT", "scope_key": "TEXT", "message": "TEXT",
        "call_ids": "TEXT", "unknown_calls": "INTEGER", "channels": "TEXT", "deliveries": "TEXT",
    }  # fmt: skip
    indexes = {row[1] for row in conn.execute("pragma index_list(alerts)")}
    assert {"idx_alerts_fired_at", "idx_alerts_rule_fired_at"} <= indexes


def test_child_tables(conn: sqlite3.Connection) -> None:
    assert columns(conn, "stage_rows") == {
        "call_id": "TEXT", "stage": "TEXT", "headers_json": "TEXT", "body_json": "TEXT",
        "raw": "BLOB", "note": "TEXT", "size_bytes": "INTEGER", "same_as": "TEXT", "arrivals_json": "TEXT",
    }  # fmt: skip
    assert set(columns(conn, "stages")) == set(columns(conn, "stage_rows"))  # the view, every stage whole
    stage_pk = sorted((row[5], row[1]) for row in conn.execute("pragma table_info(stage_rows)") if row[5])
    assert [name for _, name in stage_pk] == ["call_id", "stage"]
    assert columns(conn, "policy_events") == {
        "id": "INTEGER", "call_id": "TEXT", "policy": "TEXT", "action": "TEXT",
        "reason": "TEXT", "details_json": "TEXT", "created_at": "TEXT",
    }  # fmt: skip
    assert columns(conn, "judge_decisions") == {
        "id": "INTEGER", "call_id": "TEXT", "tool_call_id": "TEXT", "tool_name": "TEXT",
        "arguments_json": "TEXT", "judge_model": "TEXT", "prompt_json": "TEXT",
        "raw_answer": "TEXT", "probability": "REAL", "explanation": "TEXT",
        "decision": "TEXT", "latency_ms": "REAL", "input_tokens": "INTEGER",
        "output_tokens": "INTEGER", "cost_usd": "REAL", "error": "TEXT", "created_at": "TEXT",
    }  # fmt: skip
    assert columns(conn, "tool_calls") == {
        "call_id": "TEXT", "stage": "TEXT", "position": "INTEGER", "tool_call_id": "TEXT",
        "name": "TEXT", "arguments_json": "TEXT",
    }  # fmt: skip
    tool_pk = sorted((row[5], row[1]) for row in conn.execute("pragma table_info(tool_calls)") if row[5])
    assert [name for _, name in tool_pk] == ["call_id", "stage", "position"]
    for table in ("stage_rows", "policy_events", "judge_decisions", "tool_calls"):
        fks = [(row[2], row[3], row[4]) for row in conn.execute(f"pragma foreign_key_list({table})")]
        assert fks == [("calls", "call_id", "call_id")], table


def test_backtest_tables(conn: sqlite3.Connection) -> None:
    from backtest.store import RESULT_COLUMNS

    assert set(columns(conn, "backtest_runs")) == {
        "run_id", "created_at", "finished_at", "config_path", "policies_json", "filter", "max_judge_calls",
        "calls", "changed", "blocked", "errors", "skipped", "judge_calls", "judge_cost_usd",
        "judge_estimate_calls", "judge_estimate_usd",
    }  # fmt: skip
    assert set(columns(conn, "backtest_results")) == set(RESULT_COLUMNS)
    assert columns(conn, "backtest_results")["response_raw"] == "BLOB"
    fks = {(row[2], row[3], row[4]) for row in conn.execute("pragma foreign_key_list(backtest_results)")}
    assert fks == {("backtest_runs", "run_id", "run_id"), ("calls", "call_id", "call_id")}


def test_writer_columns_match_schema(conn: sqlite3.Connection) -> None:
    assert set(CALL_COLUMNS) == set(columns(conn, "calls"))
    assert set(STAGE_COLUMNS) == set(columns(conn, "stage_rows"))
    assert set(EVENT_COLUMNS) == set(columns(conn, "policy_events")) - {"id"}
    assert set(JUDGE_COLUMNS) == set(columns(conn, "judge_decisions")) - {"id"}
    assert set(TOOL_CALL_COLUMNS) == set(columns(conn, "tool_calls"))


def test_indexes(conn: sqlite3.Connection) -> None:
    indexed = {
        (row[0], row[1])
        for row in conn.execute(
            "select m.tbl_name, i.name from sqlite_master m, pragma_index_info(m.name) i "
            "where m.type = 'index' and m.sql is not null"
        )
    }
    for column in ("started_at", "model", "provider", "verdict", "session_id", "user", "project"):
        assert ("calls", column) in indexed
    assert ("policy_events", "call_id") in indexed
    assert ("judge_decisions", "call_id") in indexed
    assert ("tool_calls", "name") in indexed


def test_views_fts_and_triggers_exist(conn: sqlite3.Connection) -> None:
    assert names(conn, "view") == {
        "stages",
        "blocked_calls",
        "modified_calls",
        "cost_by_day_model",
        "slowest_calls",
    }
    assert "calls_fts" in names(conn, "table")
    assert "fts5" in conn.execute("select sql from sqlite_master where name = 'calls_fts'").fetchone()[0].lower()
    assert names(conn, "trigger") == {"calls_ai", "calls_ad", "calls_au"}


def test_wal_and_migrations_recorded(conn: sqlite3.Connection) -> None:
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    rows = conn.execute("select migration_set, name from _sqlite_migrations order by id").fetchall()
    assert rows == [("interlock", name) for name in MIGRATION_NAMES]


def test_migrate_again_is_a_no_op(db_path: str) -> None:
    def snapshot() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        with sqlite3.connect(db_path) as c:
            schema = c.execute("select name, sql from sqlite_master order by name").fetchall()
            applied = c.execute("select name, applied_at from _sqlite_migrations order by id").fetchall()
        return schema, applied

    before = snapshot()
    migrate(db_path)
    assert snapshot() == before


def test_older_database_upgrades(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    MIGRATIONS.apply(Database(path), stop_before="m005_views")
    with sqlite3.connect(path) as c:
        assert names(c, "view") == set()
    migrate(path)
    with sqlite3.connect(path) as c:
        assert [r[0] for r in c.execute("select name from _sqlite_migrations order by id")] == MIGRATION_NAMES
        assert "blocked_calls" in names(c, "view")


TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {"path": "."}}
ANTHROPIC_RESPONSE = {"type": "message", "role": "assistant", "stop_reason": "tool_use",
                      "content": [{"type": "text", "text": "Let me look."}, TOOL_USE]}  # fmt: skip
OPENAI_RESPONSE = {"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
    "role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "not json"}},
    ]}}]}  # fmt: skip


def test_a_database_of_an_older_release_upgrades_with_its_data(tmp_path: Path) -> None:
    """Rows written before `user_text` and `tool_calls` get them: the old prompt_text
    (the whole last user message then) is searchable as user_text, and the tool calls
    are read from the stored response bodies by each call's dialect."""
    path = str(tmp_path / "old.db")
    MIGRATIONS.apply(Database(path), stop_before="m008_user_text")
    reminder = "<system-reminder>mention kumquats</system-reminder>\nlist the files"
    blocked = {**ANTHROPIC_RESPONSE, "content": [{"type": "text", "text": "Blocked."}], "stop_reason": "end_turn"}
    with sqlite3.connect(path) as c:
        insert_call(
            c, "old-anthropic", dialect="anthropic-messages", prompt_text=reminder, response_text="Let me look."
        )
        insert_call(c, "old-openai", prompt_text="weather?")
        insert_call(c, "old-unknown", dialect="a-dialect-no-longer-known")
        stages = [
            ("old-anthropic", "response_original", ANTHROPIC_RESPONSE),
            ("old-anthropic", "response_final", blocked),
            ("old-openai", "request_final", OPENAI_RESPONSE),  # not a response: not read
            ("old-openai", "response_original", OPENAI_RESPONSE),
            ("old-openai", "response_final", None),  # e.g. a stream cut short
            ("old-unknown", "response_original", ANTHROPIC_RESPONSE),
        ]
        c.executemany(
            "insert into stages (call_id, stage, body_json) values (?, ?, ?)",
            [(call_id, stage, None if body is None else json.dumps(body)) for call_id, stage, body in stages],
        )
    migrate(path)
    with sqlite3.connect(path) as c:
        assert c.execute("select user_text from calls where call_id = 'old-anthropic'").fetchone() == (reminder,)
        assert search(c, "kumquats") == ["old-anthropic"]
        assert search(c, "look") == ["old-anthropic"]  # the response text is still indexed
        rows = c.execute(
            "select call_id, stage, position, tool_call_id, name, arguments_json from tool_calls"
            " order by call_id, stage, position"
        ).fetchall()
    assert [(*row[:5], json.loads(row[5])) for row in rows] == [
        ("old-anthropic", "response_original", 0, "toolu_1", "ls", {"path": "."}),
        ("old-openai", "response_original", 0, "call_1", "get_weather", {"location": "Paris"}),
        ("old-openai", "response_original", 1, "call_2", "get_time", "not json"),
    ]


def test_stages_of_an_older_release_are_folded_and_read_back_whole(tmp_path: Path) -> None:
    """m011: a final stage equal to its original keeps no copy of the body; reading
    `stages` gives every stage as it was."""
    path = str(tmp_path / "old.db")
    MIGRATIONS.apply(Database(path), stop_before="m011_stages_stored_once")
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    stages = [
        ("same", "request_original", body, None), ("same", "request_final", body, None),
        ("same", "response_original", "{}", b"data: {}\n\n"), ("same", "response_final", "{}", b"data: {}\n\n"),
        ("changed", "request_original", body, None), ("changed", "request_final", "{}", None),
        ("changed", "response_original", "{}", b"data: {}\n\n"), ("changed", "response_final", "{}", b"cut"),
    ]  # fmt: skip
    with sqlite3.connect(path) as c:
        insert_call(c, "same")
        insert_call(c, "changed")
        c.executemany("insert into stages (call_id, stage, body_json, raw) values (?, ?, ?, ?)", stages)
    migrate(path)
    with sqlite3.connect(path) as c:
        folded = c.execute("select call_id, stage from stage_rows where same_as is not null order by 1, 2").fetchall()
        assert folded == [("same", "request_final"), ("same", "response_final")]
        assert c.execute(
            "select count(*) from stage_rows where same_as is not null and body_json is not null"
        ).fetchone() == (0,)
        assert sorted(c.execute("select call_id, stage, body_json, raw from stages")) == sorted(stages)


def insert_call(conn: sqlite3.Connection, call_id: str, **values: object) -> None:
    row = {
        "call_id": call_id,
        "started_at": "2026-11-23T11:32:02.123Z",
        "provider": "openai",
        "dialect": "openai-chat",
        "host": "api.openai.com",
        "path": "/v1/chat/completions",
        "verdict": "pass",
        **values,
    }
    conn.execute(
        f"insert into calls ({', '.join(row)}) values ({', '.join('?' * len(row))})",
        list(row.values()),
    )


def search(conn: sqlite3.Connection, term: str) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "select c.call_id from calls c join calls_fts f on f.rowid = c.rowid "
            "where calls_fts match ? order by c.call_id",
            [term],
        )
    ]


def test_fts_follows_inserts_and_updates(conn: sqlite3.Connection) -> None:
    insert_call(conn, "a", prompt_text="list the kumquats", user_text="<r>use tangerines</r> list the kumquats",
                response_text="three kumquats")  # fmt: skip
    insert_call(conn, "b", prompt_text="hello", response_text="world")
    assert search(conn, "kumquats") == ["a"]
    assert search(conn, "tangerines") == ["a"]  # only in the whole user message
    conn.execute("update calls set response_text = 'pomelos' where call_id = 'b'")
    assert search(conn, "pomelos") == ["b"]
    assert search(conn, "world") == []
    conn.execute("delete from calls where call_id = 'a'")
    assert search(conn, "kumquats") == []
    assert search(conn, "tangerines") == []


def test_blocked_and_modified_views(conn: sqlite3.Connection) -> None:
    insert_call(conn, "blocked", verdict="blocked")
    insert_call(conn, "modified", verdict="modified")
    insert_call(conn, "passed", verdict="pass")
    events = [
        ("blocked", "judge", "blocked", "rm -rf is destructive"),
        ("blocked", "deny", "blocked", "matched rule 3"),
        ("blocked", "audit", "allowed", ""),
        ("modified", "redact", "redacted", "email address"),
    ]
    conn.executemany(
        "insert into policy_events (call_id, policy, action, reason, created_at) values (?, ?, ?, ?, 'x')",
        events,
    )
    blocked = conn.execute("select call_id, reasons from blocked_calls").fetchall()
    assert len(blocked) == 1
    call_id, reasons = blocked[0]
    assert call_id == "blocked"
    assert set(reasons.split("; ")) == {
        "judge: rm -rf is destructive",
        "deny: matched rule 3",
    }
    modified = dict(conn.execute("select call_id, reasons from modified_calls").fetchall())
    assert modified.keys() == {"blocked", "modified"}
    assert modified["modified"] == "redact: email address"


def test_cost_by_day_model_view(conn: sqlite3.Connection) -> None:
    insert_call(conn, "1", model="m", input_tokens=10, output_tokens=1, cost_usd=0.5)
    insert_call(
        conn,
        "2",
        model="m",
        input_tokens=20,
        output_tokens=2,
        cost_usd=0.25,
        cache_read_tokens=7,
    )
    insert_call(conn, "3", model="m", input_tokens=5, output_tokens=3)  # unknown price
    insert_call(
        conn,
        "4",
        model="m",
        started_at="2026-11-24T00:00:00.000Z",
        input_tokens=1,
        cost_usd=1.0,
    )
    insert_call(conn, "5", model="other", input_tokens=1, cost_usd=2.0)
    rows = conn.execute(
        "select day, model, calls, input_tokens, output_tokens, cache_read_tokens, cost_usd, unknown_cost_calls "
        "from cost_by_day_model order by day, model"
    ).fetchall()
    assert rows == [
        ("2026-11-23", "m", 3, 35, 6, 7, 0.75, 1),
        ("2026-11-23", "other", 1, 1, None, None, 2.0, 0),
        ("2026-11-24", "m", 1, 1, None, None, 1.0, 0),
    ]


def test_slowest_calls_view(conn: sqlite3.Connection) -> None:
    insert_call(conn, "fast", duration_ms=10.0)
    insert_call(conn, "slow", duration_ms=2100.0, ttft_ms=100.0, output_tokens=500)  # streamed
    insert_call(conn, "medium", duration_ms=500.0, output_tokens=20)  # not streamed: no ttft
    insert_call(conn, "empty", duration_ms=200.0, ttft_ms=200.0, output_tokens=3)  # nothing after the first token
    insert_call(conn, "unfinished")
    rows = conn.execute("select call_id, ttft_ms, output_tokens_per_s from slowest_calls").fetchall()
    assert rows == [
        ("slow", 100.0, 250.0),  # 500 tokens in the 2 s after the first
        ("medium", None, 40.0),  # 20 tokens over the whole 0.5 s
        ("empty", 200.0, None),
        ("fast", None, None),
    ]


def test_the_ui_filters_are_answered_from_indexes(tmp_path: Path) -> None:
    """The calls list filtered by verdict counts its facets, and the sessions list finds
    the latest sessions, without reading the calls' rows (docs/BENCHMARKS.md)."""
    path = tmp_path / "ui.db"
    migrate(str(path))
    with sqlite3.connect(path) as db:
        facet = db.execute(
            "explain query plan select model, count(*) from calls where verdict = 'blocked' group by model"
        ).fetchall()
        latest = db.execute(
            "explain query plan select session_id, max(started_at) from calls"
            " where session_id is not null group by session_id"
        ).fetchall()
    assert any("COVERING INDEX idx_calls_verdict_provider_model" in row[-1] for row in facet), facet
    assert any("COVERING INDEX idx_calls_session_id_started_at" in row[-1] for row in latest), latest
