"""The SQLite schema: numbered sqlite-utils migrations, the database's public interface.

Each migration is a small function applied once, in order, and recorded in
`_sqlite_migrations` under the set name "interlock", so a database written by any
older release upgrades itself on open. Never edit an applied migration: add a new one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

MIGRATIONS = Migrations("interlock")


@MIGRATIONS()
def m001_calls(db: Database) -> None:
    """One row per intercepted LLM call."""
    calls = db.table("calls")
    calls.create(
        {
            "call_id": str,
            "started_at": str,
            "ended_at": str,
            "ttfb_ms": float,
            "duration_ms": float,
            "provider": str,
            "dialect": str,
            "host": str,
            "path": str,
            "client": str,
            "session_id": str,
            "model": str,
            "model_final": str,
            "response_model": str,
            "stream": int,
            "status": int,
            "error": str,
            "verdict": str,
            "input_tokens": int,
            "output_tokens": int,
            "cache_read_tokens": int,
            "cache_write_tokens": int,
            "cost_usd": float,
            "pricing_key": str,
            "prompt_text": str,
            "response_text": str,
        },
        pk="call_id",
        not_null={"started_at", "provider", "dialect", "host", "path", "verdict"},
    )
    for column in ("started_at", "model", "provider", "verdict", "session_id"):
        calls.create_index([column])


# The columns of the stages as m002 made them (m011 adds `same_as`): never changed, as
# both migrations must create what they always created.
_STAGE_COLUMNS_M002: dict[str, type] = {
    "call_id": str,
    "stage": str,
    "headers_json": str,
    "body_json": str,
    "raw": bytes,
    "note": str,
    "size_bytes": int,
}


@MIGRATIONS()
def m002_stages(db: Database) -> None:
    """The four views of a call: request/response, original/final."""
    db.table("stages").create(
        _STAGE_COLUMNS_M002,
        pk=("call_id", "stage"),
        foreign_keys=[("call_id", "calls", "call_id")],
    )


@MIGRATIONS()
def m003_policy_events(db: Database) -> None:
    """Decisions policies took on calls."""
    events = db.table("policy_events")
    events.create(
        {
            "id": int,
            "call_id": str,
            "policy": str,
            "action": str,
            "reason": str,
            "details_json": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("call_id", "calls", "call_id")],
        not_null={"call_id", "policy", "action"},
    )
    events.create_index(["call_id"])


@MIGRATIONS()
def m004_judge_decisions(db: Database) -> None:
    """Tool calls an LLM judge ruled on, with the exact prompt and answer."""
    judgements = db.table("judge_decisions")
    judgements.create(
        {
            "id": int,
            "call_id": str,
            "tool_call_id": str,
            "tool_name": str,
            "arguments_json": str,
            "judge_model": str,
            "prompt_json": str,
            "raw_answer": str,
            "probability": float,
            "explanation": str,
            "decision": str,
            "latency_ms": float,
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
            "error": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("call_id", "calls", "call_id")],
        not_null={"call_id", "tool_name", "decision"},
    )
    judgements.create_index(["call_id"])


_REASONS = """(
    select group_concat(e.policy || ': ' || e.reason, '; ')
    from policy_events e
    where e.call_id = c.call_id and e.reason != ''
  ) as reasons"""


@MIGRATIONS()
def m005_views(db: Database) -> None:
    """Views for the questions people ask of the log."""
    db.create_view(
        "blocked_calls",
        f"select c.*, {_REASONS} from calls c where c.verdict = 'blocked'",
    )
    db.create_view(
        "modified_calls",
        f"select c.*, {_REASONS} from calls c where c.verdict in ('modified', 'blocked')",
    )
    db.create_view(
        "cost_by_day_model",
        """select
  date(started_at) as day,
  model,
  count(*) as calls,
  sum(input_tokens) as input_tokens,
  sum(output_tokens) as output_tokens,
  sum(cache_read_tokens) as cache_read_tokens,
  sum(cache_write_tokens) as cache_write_tokens,
  sum(cost_usd) as cost_usd,
  sum(cost_usd is null) as unknown_cost_calls
from calls
group by day, model
order by day desc, cost_usd desc""",
    )
    db.create_view(
        "slowest_calls",
        """select
  call_id, started_at, provider, dialect, model, stream, status, verdict,
  ttfb_ms, duration_ms, input_tokens, output_tokens
from calls
where duration_ms is not null
order by duration_ms desc""",
    )


@MIGRATIONS()
def m006_fts(db: Database) -> None:
    """Full-text search over prompt and response text, kept current by triggers."""
    db.table("calls").enable_fts(["prompt_text", "response_text"], create_triggers=True)


@MIGRATIONS()
def m007_ttft(db: Database) -> None:
    """Time to first token of streamed calls."""
    db.table("calls").add_column("ttft_ms", float)


@MIGRATIONS()
def m008_user_text(db: Database) -> None:
    """`user_text`, the whole last user message, searchable beside `prompt_text` (the
    words the person typed: without the system reminders and tool results an agent sends
    in the same message).

    Releases before had the whole last user message in `prompt_text`: their rows keep it
    there and get a copy in `user_text`. The index is rebuilt over the three columns.
    """
    calls = db.table("calls")
    calls.add_column("user_text", str)
    calls.disable_fts()  # first, so the backfill below does not go through the triggers
    db.execute("update calls set user_text = prompt_text where prompt_text is not null")
    calls.enable_fts(["prompt_text", "user_text", "response_text"], create_triggers=True)


@MIGRATIONS()
def m009_tool_calls(db: Database) -> None:
    """The tool calls of each response, as upstream sent it and as the client got it,
    read by the call's dialect (`Dialect.tool_calls`): queries about tools need not know
    any wire format. Calls recorded before get theirs from their stored response bodies."""
    tool_calls = db.table("tool_calls")
    tool_calls.create(
        {
            "call_id": str,
            "stage": str,
            "position": int,
            "tool_call_id": str,
            "name": str,
            "arguments_json": str,
        },
        pk=("call_id", "stage", "position"),
        foreign_keys=[("call_id", "calls", "call_id")],
        not_null={"name"},
    )
    tool_calls.create_index(["name"])
    _backfill_tool_calls(db)


_BACKFILL_BATCH = 500


def _backfill_tool_calls(db: Database) -> None:
    # Imported here: the dialects are needed by this one migration, on old databases.
    from recorder.rows import TOOL_CALL_COLUMNS, TOOL_CALL_STAGES, insert_sql, tool_call_rows

    marks = ", ".join("?" * len(TOOL_CALL_STAGES))
    bodies = db.execute(
        f"""select s.call_id, s.stage, c.dialect, s.body_json
        from stages s join calls c on c.call_id = s.call_id
        where s.stage in ({marks}) and s.body_json is not null""",
        TOOL_CALL_STAGES,
    )
    insert = insert_sql("tool_calls", TOOL_CALL_COLUMNS)
    while batch := bodies.fetchmany(_BACKFILL_BATCH):
        rows = []
        for call_id, stage, dialect, body_json in batch:
            try:
                body = json.loads(body_json)
            except ValueError:
                continue
            rows += tool_call_rows(call_id, dialect, stage, body)
        db.conn.executemany(insert, rows)


@MIGRATIONS()
def m010_slowest_calls_ttft(db: Database) -> None:
    """`slowest_calls` with the time to first token and the output speed: output tokens
    per second of generation, from the first token to the end when the time to first
    token is known (streams), else over the whole call."""
    db.create_view(
        "slowest_calls",
        """select
  call_id, started_at, provider, dialect, model, stream, status, verdict,
  ttfb_ms, ttft_ms, duration_ms, input_tokens, output_tokens,
  case when output_tokens > 0 and duration_ms > coalesce(ttft_ms, 0)
    then round(output_tokens * 1000.0 / (duration_ms - coalesce(ttft_ms, 0)), 1)
  end as output_tokens_per_s
from calls
where duration_ms is not null
order by duration_ms desc""",
        replace=True,
    )


STAGES_VIEW = """select s.call_id, s.stage, s.headers_json,
  case when s.same_as is null then s.body_json
    else (select o.body_json from stage_rows o where o.call_id = s.call_id and o.stage = s.same_as) end as body_json,
  case when s.same_as is null then s.raw
    else (select o.raw from stage_rows o where o.call_id = s.call_id and o.stage = s.same_as) end as raw,
  s.note, s.size_bytes, s.same_as
from stage_rows s"""


@MIGRATIONS()
def m011_stages_stored_once(db: Database) -> None:
    """Stages move to `stage_rows`, where a final stage equal to its original is stored
    once (`same_as`, see `recorder.models.SAME_AS`); `stages` becomes a view with every stage's body, so
    what reads `stages` reads what it read before. Existing rows are folded the same way."""
    db.table("stage_rows").create(
        {**_STAGE_COLUMNS_M002, "same_as": str},
        pk=("call_id", "stage"),
        foreign_keys=[("call_id", "calls", "call_id")],
    )
    db.execute(
        """insert into stage_rows (call_id, stage, headers_json, body_json, raw, note, size_bytes)
        select call_id, stage, headers_json, body_json, raw, note, size_bytes from stages"""
    )
    from recorder.models import SAME_AS  # the models import pydantic: only when migrating

    for final, original in SAME_AS.items():
        db.execute(
            """update stage_rows set same_as = :original, body_json = null, raw = null
            where stage = :final and exists (
              select 1 from stage_rows o where o.call_id = stage_rows.call_id and o.stage = :original
                and o.body_json is stage_rows.body_json and o.raw is stage_rows.raw)""",
            {"original": original, "final": final},
        )
    db.table("stages").drop()
    db.create_view("stages", STAGES_VIEW)


# m011's view with `arrivals_json` (m012).
STAGES_VIEW_ARRIVALS = """select s.call_id, s.stage, s.headers_json,
  case when s.same_as is null then s.body_json
    else (select o.body_json from stage_rows o where o.call_id = s.call_id and o.stage = s.same_as) end as body_json,
  case when s.same_as is null then s.raw
    else (select o.raw from stage_rows o where o.call_id = s.call_id and o.stage = s.same_as) end as raw,
  s.note, s.size_bytes, s.same_as, s.arrivals_json
from stage_rows s"""


@MIGRATIONS()
def m012_stage_arrivals(db: Database) -> None:
    """`arrivals_json` on a streamed `response_original`: when each chunk (or WebSocket
    frame) arrived, as [seconds since the call started, bytes] pairs, the pacing a
    cassette replays (`interlock.cassette`). The `stages` view shows it."""
    db.table("stage_rows").add_column("arrivals_json", str)
    db.execute("drop view stages")
    db.create_view("stages", STAGES_VIEW_ARRIVALS)


@MIGRATIONS()
def m013_backtests(db: Database) -> None:
    """Backtests (`just backtest`): a policy chain re-run over recorded calls, with no
    upstream call. `backtest_runs` has one row per run (its config, filter and counts),
    `backtest_results` one per call it covered: the would-be verdict, events, request
    and response."""
    db.table("backtest_runs").create(
        {
            "run_id": str,
            "created_at": str,
            "finished_at": str,
            "config_path": str,
            "policies_json": str,
            "filter": str,
            "max_judge_calls": int,
            "calls": int,
            "changed": int,
            "blocked": int,
            "errors": int,
            "skipped": int,
            "judge_calls": int,
            "judge_cost_usd": float,
            "judge_estimate_calls": int,
            "judge_estimate_usd": float,
        },
        pk="run_id",
        not_null={"created_at", "policies_json", "filter"},
    )
    results = db.table("backtest_results")
    results.create(
        {
            "run_id": str,
            "call_id": str,
            "verdict": str,
            "changed": int,
            "status": int,
            "events_json": str,
            "judgements_json": str,
            "request_json": str,
            "response_json": str,
            "response_raw": bytes,
            "note": str,
            "error": str,
        },
        pk=("run_id", "call_id"),
        foreign_keys=[("run_id", "backtest_runs", "run_id"), ("call_id", "calls", "call_id")],
    )
    results.create_index(["call_id"])
    results.create_index(["run_id", "verdict"])


@MIGRATIONS()
def m014_call_tags(db: Database) -> None:
    """Who made a call (`user`: the proxy-auth user name, else the user header) and for
    which project (`project`: the project header), for a proxy a team shares
    (docs/team.md). Calls recorded before have neither."""
    calls = db.table("calls")
    for column in ("user", "project"):
        calls.add_column(column, str)
        calls.create_index([column])


@MIGRATIONS()
def m017_ui_indexes(db: Database) -> None:
    """Indexes that answer the UI's slow pages from the index alone (docs/BENCHMARKS.md):
    the calls list filtered by verdict counts its provider and model facets from
    (verdict, provider, model), and the sessions list finds the latest sessions from
    (session_id, started_at). Each replaces the one-column index it starts with."""
    calls = db.table("calls")
    for column, extra in (("verdict", ["provider", "model"]), ("session_id", ["started_at"])):
        db.execute(f"drop index if exists idx_calls_{column}")
        calls.create_index([column, *extra])


@MIGRATIONS()
def m018_budget_use(db: Database) -> None:
    """The `budget` policy's running totals (docs/budgets.md): one row per limit and
    scope key, upserted by the proxy as calls end; the UI's Budgets page reads it. The
    proxy's own totals live in memory (restored from `calls` at start-up): this table
    says what they were when last written."""
    db.table("budget_use").create(
        {
            "policy": str,
            "budget": str,
            "metric": str,
            "time_window": str,
            "scope": str,
            "scope_key": str,
            "used": float,
            "maximum": float,
            "action": str,
            "calls": int,
            "unpriced_calls": int,
            "resets_at": str,
            "updated_at": str,
        },
        pk=("policy", "budget", "metric", "time_window", "scope", "scope_key"),
        not_null={"used", "maximum", "action", "updated_at"},
    )


@MIGRATIONS()
def m019_alerts(db: Database) -> None:
    """The alerts that fired (docs/alerts.md): one row per alert, inserted by the proxy
    when a rule's condition becomes true (or a policy warned), then replaced once its
    channels have been tried, with what each said; the UI's Alerts page reads it."""
    alerts = db.table("alerts")
    alerts.create(
        {
            "alert_id": str,
            "fired_at": str,
            "source": str,
            "rule": str,
            "condition": str,
            "value": float,
            "time_window": str,
            "scope": str,
            "scope_key": str,
            "message": str,
            "call_ids": str,
            "unknown_calls": int,
            "channels": str,
            "deliveries": str,
        },
        pk="alert_id",
        not_null={"fired_at", "source", "rule", "message", "call_ids"},
    )
    alerts.create_index(["fired_at"])
    alerts.create_index(["rule", "fired_at"])


def migrate(db_path: str, *, busy_timeout_ms: int = 5000) -> None:
    """Bring the database at `db_path` up to date and switch it to WAL mode.

    Idempotent: applied migrations are skipped. Waits at most `busy_timeout_ms` for a
    lock held by another connection; raises `sqlite3.Error` if the file cannot be
    opened, locked or written.
    """
    conn = sqlite3.connect(db_path, timeout=busy_timeout_ms / 1000)
    try:
        db = Database(conn)
        db.enable_wal()
        MIGRATIONS.apply(db)
    finally:
        conn.close()


def read_migrated(db_path: str, *queries: tuple[str, Mapping[str, Any]]) -> list[list[sqlite3.Row]]:
    """Each query's rows from the database at `db_path`, migrated first (so an older file
    answers), over one read-only connection; no rows when the file does not exist.
    Raises `sqlite3.Error` if it cannot be read."""
    if not Path(db_path).exists():
        return [[] for _ in queries]
    migrate(db_path)
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [conn.execute(sql, params).fetchall() for sql, params in queries]
    finally:
        conn.close()
