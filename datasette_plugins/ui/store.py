"""Reads calls, stages, policy events and judge decisions from a recorder database.

The boundary between the UI and SQLite: every query the pages run is here, each one
bounded (by primary key, by an indexed session id with a LIMIT), and rows come back as
pydantic models. Bodies stay as stored; raw bytes are read only as a short preview. No
query here knows a wire format: where a request keeps its messages is asked of the
call's dialect through the registry (`Dialect.messages_path`).
"""

from __future__ import annotations

import json
from typing import Any

from datasette.database import Database
from pydantic import BaseModel

from datasette_plugins.ui.chart import DAYS, DayCost, window
from datasette_plugins.ui.schema import STAGES
from interlock.dialects import DIALECTS
from interlock.json_text import loads_or_none

RAW_PREVIEW_BYTES = 4096
SESSION_CALLS_LIMIT = 500  # a session page shows at most this many calls
TAIL_MESSAGES = 8  # trailing request messages read per session call (the new input)
SESSION_BODY_MAX = 1_000_000  # response bodies larger than this are not read for a session


class CallRow(BaseModel):
    """A `calls` row; columns added by later migrations (e.g. `ttft_ms`) are optional."""

    call_id: str
    started_at: str
    ended_at: str | None = None
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    provider: str
    dialect: str
    host: str
    path: str
    client: str | None = None
    session_id: str | None = None
    user: str | None = None  # team tags (m014)
    project: str | None = None
    model: str | None = None
    model_final: str | None = None
    response_model: str | None = None
    stream: int | None = None
    status: int | None = None
    error: str | None = None
    verdict: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: float | None = None
    pricing_key: str | None = None
    prompt_text: str | None = None
    user_text: str | None = None
    response_text: str | None = None

    @property
    def total_tokens(self) -> int:
        parts = (self.input_tokens, self.output_tokens, self.cache_read_tokens, self.cache_write_tokens)
        return sum(p or 0 for p in parts)


class StageRow(BaseModel):
    """One stage. `body` is the parsed body_json (None when the column is NULL or, in
    which case `body_error` says so, not JSON); `raw_head` is a preview of `raw`."""

    stage: str
    headers: dict[str, Any] | None = None
    body: Any = None
    has_body: bool = False
    body_error: str | None = None
    body_chars: int = 0
    raw_size: int | None = None
    raw_head: bytes | None = None
    note: str | None = None
    size_bytes: int | None = None


class PolicyEventRow(BaseModel):
    id: int
    policy: str
    action: str
    reason: str | None = None
    details: Any = None
    created_at: str | None = None


class JudgeRow(BaseModel):
    id: int
    tool_call_id: str | None = None
    tool_name: str
    arguments: Any = None
    judge_model: str | None = None
    prompt: Any = None
    raw_answer: str | None = None
    probability: float | None = None
    explanation: str | None = None
    decision: str
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    created_at: str | None = None


class CallData(BaseModel):
    """Everything the call page shows about one call."""

    call: CallRow
    stages: dict[str, StageRow]
    events: list[PolicyEventRow]
    judgements: list[JudgeRow]
    session_position: int | None = None  # 1-based position of the call in its session
    session_calls: int | None = None
    previous_call: str | None = None
    next_call: str | None = None


class SessionCall(BaseModel):
    """A call as the session page needs it: the row, the trailing request messages and
    the response bodies (original only when it differs from final)."""

    call: CallRow
    request_messages: int | None = None
    first_message: str | None = None  # a prefix of the first message's JSON: which thread
    chained_on: str | None = None  # the response this request continues (its thread)
    tail: list[Any] = []
    response: Any = None
    response_original: Any = None
    response_note: str | None = None
    events: list[PolicyEventRow] = []
    judgements: list[JudgeRow] = []


class SessionTotals(BaseModel):
    """Sums over every call of a session (not only the ones a page shows)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    unknown_cost_calls: int = 0
    blocked: int = 0
    modified: int = 0
    errors: int = 0
    first_at: str | None = None
    last_at: str | None = None
    models: str | None = None
    clients: str | None = None


async def _rows(db: Database, sql: str, params: dict[str, Any] | tuple[Any, ...]) -> list[dict[str, Any]]:
    results = await db.execute(sql, params)
    return [dict(row) for row in results.rows]


def _stage(row: dict[str, Any]) -> StageRow:
    text = row["body_json"]
    body = error = None
    if text is not None:
        try:
            body = json.loads(text)
        except ValueError as exc:
            error = f"body_json is not valid JSON: {exc}"
    return StageRow(
        stage=row["stage"],
        headers=loads_or_none(row["headers_json"]),
        body=body,
        has_body=text is not None and error is None,
        body_error=error,
        body_chars=len(text or ""),
        raw_size=row["raw_size"],
        raw_head=row["raw_head"],
        note=row["note"],
        size_bytes=row["size_bytes"],
    )


def _event(row: dict[str, Any]) -> PolicyEventRow:
    details = loads_or_none(row.pop("details_json"))
    return PolicyEventRow(**row, details=details)


def _judge(row: dict[str, Any]) -> JudgeRow:
    arguments, prompt = loads_or_none(row.pop("arguments_json")), loads_or_none(row.pop("prompt_json"))
    return JudgeRow(**row, arguments=arguments, prompt=prompt)


async def has_tags(db: Database) -> bool:
    """Whether any call has a user or project tag (both columns are indexed)."""
    columns = set(await db.table_columns("calls"))
    if not {"user", "project"} <= columns:
        return False
    found = await _rows(  # an `or` in one exists would scan the table; each of these is an index probe
        db,
        "select exists(select 1 from calls where user is not null)"
        " or exists(select 1 from calls where project is not null) as t",
        (),
    )
    return bool(found[0]["t"])


async def load_call(db: Database, call_id: str) -> CallData | None:
    calls = await _rows(db, "select * from calls where call_id = ?", (call_id,))
    if not calls:
        return None
    call = CallRow(**calls[0])
    stage_rows = await _rows(
        db,
        f"""select stage, headers_json, body_json, note, size_bytes, length(raw) as raw_size,
        substr(raw, 1, {RAW_PREVIEW_BYTES}) as raw_head from stages where call_id = ?""",
        (call_id,),
    )
    events = await _rows(db, "select * from policy_events where call_id = ? order by id", (call_id,))
    judges = await _rows(db, "select * from judge_decisions where call_id = ? order by id", (call_id,))
    data = CallData(
        call=call,
        stages={row["stage"]: _stage(row) for row in stage_rows if row["stage"] in STAGES},
        events=[_event(row) for row in events],
        judgements=[_judge(row) for row in judges],
    )
    if call.session_id is not None:
        await _place_in_session(db, data)
    return data


async def _place_in_session(db: Database, data: CallData) -> None:
    """Where the call sits in its session: position, count, neighbours (all by index)."""
    call = data.call
    params = {"session": call.session_id, "at": call.started_at, "id": call.call_id}
    position = await _rows(
        db,
        """select
          (select count(*) from calls where session_id = :session) as total,
          (select count(*) from calls where session_id = :session
             and (started_at < :at or (started_at = :at and call_id < :id))) as before,
          (select call_id from calls where session_id = :session
             and (started_at < :at or (started_at = :at and call_id < :id))
             order by started_at desc, call_id desc limit 1) as previous,
          (select call_id from calls where session_id = :session
             and (started_at > :at or (started_at = :at and call_id > :id))
             order by started_at, call_id limit 1) as next""",
        params,
    )
    row = position[0]
    data.session_calls = row["total"]
    data.session_position = row["before"] + 1
    data.previous_call = row["previous"]
    data.next_call = row["next"]


async def load_stage_body(db: Database, call_id: str, stage: str) -> dict[str, Any] | None:
    """body_json, raw and note of one stage, whole (for the raw routes)."""
    rows = await _rows(
        db, "select body_json, raw, note, headers_json from stages where call_id = ? and stage = ?", (call_id, stage)
    )
    return rows[0] if rows else None


def _tail_paths() -> str:
    return ", ".join(f"p.messages || '[#-{n}]'" for n in range(TAIL_MESSAGES, 0, -1))


def _session_sql(dialects: int) -> str:
    """The session's calls, each with the parts of its request the timeline needs, cut
    in SQL (a long session's request bodies are megabytes each): the message count, a
    prefix of the first message and the last TAIL_MESSAGES messages. Where a request
    keeps its messages is the dialect's (`Dialect.messages_path`, bound as `paths`)."""
    paths = ", ".join(f"(:dialect_{i}, :messages_{i}, :chain_{i})" for i in range(dialects)) or "(null, null, null)"
    return f"""
with paths(dialect, messages, chain) as (values {paths})
select c.*,
  case json_type(rq.body_json, p.messages) when 'text' then 1
    else json_array_length(rq.body_json, p.messages) end as request_messages,
  substr(json_extract(rq.body_json, p.messages || '[0]'), 1, 2000) as first_message,
  case json_type(rq.body_json, p.messages) when 'text' then json_array(json_extract(rq.body_json, p.messages))
    else json_extract(rq.body_json, {_tail_paths()}) end as tail_json,
  json_extract(rq.body_json, p.chain) as chained_on,
  case when length(rs.body_json) <= {SESSION_BODY_MAX} then rs.body_json end as response_json,
  case when length(ro.body_json) <= {SESSION_BODY_MAX} and ro.body_json is not rs.body_json
    then ro.body_json end as response_original_json,
  case
    when rs.stage is null then 'response not recorded'
    when length(rs.body_json) > {SESSION_BODY_MAX} then 'response too large to summarise here'
    else rs.note
  end as response_note
from calls c
left join paths p on p.dialect = c.dialect
left join stages rq on rq.call_id = c.call_id and rq.stage = 'request_final'
left join stages rs on rs.call_id = c.call_id and rs.stage = 'response_final'
left join stages ro on ro.call_id = c.call_id and ro.stage = 'response_original'
where c.session_id = :session
order by c.started_at, c.call_id
limit {SESSION_CALLS_LIMIT}
"""


def _session_params(session_id: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {"session": session_id}
    for i, (name, dialect) in enumerate(DIALECTS.items()):
        params[f"dialect_{i}"], params[f"messages_{i}"] = name, dialect.messages_path
        params[f"chain_{i}"] = dialect.chain_path
    return params


_TOTALS_SQL = """
select count(*) as calls,
  coalesce(sum(input_tokens), 0) as input_tokens, coalesce(sum(output_tokens), 0) as output_tokens,
  coalesce(sum(cache_read_tokens), 0) as cache_read_tokens,
  coalesce(sum(cache_write_tokens), 0) as cache_write_tokens,
  sum(cost_usd) as cost_usd, coalesce(sum(cost_usd is null), 0) as unknown_cost_calls,
  coalesce(sum(verdict = 'blocked'), 0) as blocked, coalesce(sum(verdict = 'modified'), 0) as modified,
  coalesce(sum(verdict = 'error'), 0) as errors,
  min(started_at) as first_at, max(coalesce(ended_at, started_at)) as last_at,
  group_concat(distinct coalesce(response_model, model)) as models,
  group_concat(distinct client) as clients
from calls where session_id = ?"""


async def _by_call(db: Database, table: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    if ids:
        marks = ", ".join("?" * len(ids))
        for row in await _rows(db, f"select * from {table} where call_id in ({marks}) order by id", tuple(ids)):
            found.setdefault(row["call_id"], []).append(row)
    return found


async def load_session(db: Database, session_id: str) -> tuple[list[SessionCall], SessionTotals]:
    """The session's first SESSION_CALLS_LIMIT calls in order, and totals over all."""
    totals = SessionTotals(**(await _rows(db, _TOTALS_SQL, (session_id,)))[0])
    rows = await _rows(db, _session_sql(len(DIALECTS)), _session_params(session_id))
    ids = [row["call_id"] for row in rows]
    events = await _by_call(db, "policy_events", ids)
    judges = await _by_call(db, "judge_decisions", ids)
    calls = []
    for row in rows:
        tail = loads_or_none(row.pop("tail_json"))
        extra = {
            "request_messages": row.pop("request_messages"),
            "first_message": row.pop("first_message"),
            "chained_on": row.pop("chained_on"),
            "tail": [m for m in tail if m is not None] if isinstance(tail, list) else [],
            "response": loads_or_none(row.pop("response_json")),
            "response_original": loads_or_none(row.pop("response_original_json")),
            "response_note": row.pop("response_note"),
            "events": [_event(e) for e in events.get(row["call_id"], [])],
            "judgements": [_judge(j) for j in judges.get(row["call_id"], [])],
        }
        calls.append(SessionCall(call=CallRow(**row), **extra))
    return calls, totals


async def daily_costs(db: Database, days: int = DAYS) -> tuple[list[DayCost], list[str]] | None:
    """Cost per day over the `days` days up to the newest call (None: no calls yet)."""
    newest = await _rows(db, "select max(started_at) as at from calls", ())
    if not newest[0]["at"]:
        return None
    days_shown = window(newest[0]["at"][:10], days)
    rows = await _rows(
        db,
        """select substr(started_at, 1, 10) as day, coalesce(sum(cost_usd), 0.0) as cost,
          count(*) as calls, sum(cost_usd is null) as unknown
        from calls where started_at >= :start group by day order by day""",
        {"start": days_shown[0]},
    )
    return [DayCost(**row) for row in rows], days_shown
