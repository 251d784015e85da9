"""Backtest runs as the UI shows them: the runs, a run's calls whose would-be outcome
differs from another outcome, and one call's recorded final against its would-be final.

Reads `backtest_runs` and `backtest_results` (README, "Database schema"). An outcome is
a call's verdict, its policy events (policy and action) and its final request and
response: as recorded (`calls.verdict`, `policy_events`, the `request_final` and
`response_final` stages) or as a run would have it (a result's `request_json` and
`response_json`, which are NULL when the run would leave them as recorded upstream,
`request_original` and `response_original`). Comparing two outcomes sorts each call
differing between them into newly blocked, no longer blocked, or changed differently.
Every query is bounded (`LIMIT`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from datasette.database import Database
from pydantic import BaseModel

from datasette_plugins.ui.calldiff import CallDiff, pair_diff
from datasette_plugins.ui.store import CallData, CallRow, JudgeRow, PolicyEventRow, StageRow
from interlock.json_text import loads_or_none

RECORDED = "recorded"  # the comparison baseline that is what the proxy recorded, not a run
RUNS_LIMIT = 200
DIFFERENCES_LIMIT = 1000
WOULD_BE_REQUEST = "would_be_request"
WOULD_BE_RESPONSE = "would_be_response"

Category = Literal["newly blocked", "no longer blocked", "changed differently"]
CATEGORIES: tuple[Category, ...] = ("newly blocked", "no longer blocked", "changed differently")


class RunRow(BaseModel):
    run_id: str
    created_at: str
    finished_at: str | None = None
    config_path: str | None = None
    policies_json: str
    filter: str
    max_judge_calls: int | None = None
    calls: int | None = None
    changed: int | None = None
    blocked: int | None = None
    errors: int | None = None
    skipped: int | None = None
    judge_calls: int | None = None
    judge_cost_usd: float | None = None
    judge_estimate_calls: int | None = None
    judge_estimate_usd: float | None = None

    @property
    def policies(self) -> list[str]:
        entries = loads_or_none(self.policies_json)
        if not isinstance(entries, list):
            return []
        return [str(e.get("policy")) for e in entries if isinstance(e, dict)]


async def _rows(db: Database, sql: str, params: dict[str, Any] | tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(row) for row in (await db.execute(sql, params)).rows]


async def has_backtests(db: Database) -> bool:
    return await db.table_exists("backtest_runs") and await db.table_exists("backtest_results")


async def load_runs(db: Database) -> list[RunRow]:
    if not await has_backtests(db):
        return []
    rows = await _rows(db, f"select * from backtest_runs order by created_at desc limit {RUNS_LIMIT}", ())
    return [RunRow(**row) for row in rows]


async def load_run(db: Database, run_id: str) -> RunRow | None:
    if not await has_backtests(db):
        return None
    rows = await _rows(db, "select * from backtest_runs where run_id = ?", (run_id,))
    return RunRow(**rows[0]) if rows else None


def _signature(events: str) -> str:
    """The (policy, action) pairs of a JSON array of events, sorted, as text."""
    return f"""(select group_concat(p || ':' || a, ',') from (
      select json_extract(value, '$.policy') as p, json_extract(value, '$.action') as a
      from json_each({events}) order by p, a))"""


_RECORDED_SIDE = """select c.call_id, c.verdict,
  (select group_concat(p || ':' || a, ',') from (
    select e.policy as p, e.action as a from policy_events e where e.call_id = c.call_id order by p, a)) as events,
  q.body_json as request, f.body_json as response
from calls c
left join stages q on q.call_id = c.call_id and q.stage = 'request_final'
left join stages f on f.call_id = c.call_id and f.stage = 'response_final'
where c.call_id in (select call_id from backtest_results where run_id = :new)"""  # the calls the candidate covers

_RUN_SIDE = f"""select r.call_id, r.verdict, {_signature("r.events_json")} as events,
  coalesce(r.request_json, q.body_json) as request, coalesce(r.response_json, o.body_json) as response
from backtest_results r
left join stages q on q.call_id = r.call_id and q.stage = 'request_original'
left join stages o on o.call_id = r.call_id and o.stage = 'response_original'
where r.run_id = :{{name}} and r.verdict is not null"""


def _side(name: str, run_id: str) -> str:
    return (_RECORDED_SIDE if run_id == RECORDED else _RUN_SIDE).format(name=name)


@dataclass(frozen=True)
class Difference:
    call_id: str
    category: Category
    old_verdict: str | None
    new_verdict: str | None
    old_events: str | None
    new_events: str | None
    request_differs: bool
    response_differs: bool
    started_at: str | None
    model: str | None


def category(old_verdict: str | None, new_verdict: str | None) -> Category:
    if new_verdict == "blocked" and old_verdict != "blocked":
        return "newly blocked"
    if old_verdict == "blocked" and new_verdict != "blocked":
        return "no longer blocked"
    return "changed differently"


async def differences(db: Database, old: str, new: str) -> list[Difference]:
    """The calls whose outcome under `new` (a run) differs from `old` (a run, or
    RECORDED), in the order they started; calls a run did not run are left out."""
    sql = f"""with old as ({_side("old", old)}), new as ({_side("new", new)})
select new.call_id, old.verdict as old_verdict, new.verdict as new_verdict, old.events as old_events,
  new.events as new_events, old.request is not new.request as request_differs,
  old.response is not new.response as response_differs, c.started_at, coalesce(c.model_final, c.model) as model
from new join old on old.call_id = new.call_id join calls c on c.call_id = new.call_id
where old.verdict is not new.verdict or old.events is not new.events
  or old.request is not new.request or old.response is not new.response
order by c.started_at, c.call_id
limit {DIFFERENCES_LIMIT}"""
    rows = await _rows(db, sql, {"old": old, "new": new})
    return [
        Difference(
            call_id=row["call_id"],
            category=category(row["old_verdict"], row["new_verdict"]),
            old_verdict=row["old_verdict"],
            new_verdict=row["new_verdict"],
            old_events=row["old_events"],
            new_events=row["new_events"],
            request_differs=bool(row["request_differs"]),
            response_differs=bool(row["response_differs"]),
            started_at=row["started_at"],
            model=row["model"],
        )
        for row in rows
    ]


def by_category(found: list[Difference]) -> dict[Category, list[Difference]]:
    return {name: [d for d in found if d.category == name] for name in CATEGORIES}


class Result(BaseModel):
    """One call's row of a run."""

    run_id: str
    call_id: str
    verdict: str | None = None
    changed: int | None = None
    status: int | None = None
    events_json: str | None = None
    judgements_json: str | None = None
    request_json: str | None = None
    response_json: str | None = None
    response_raw_size: int | None = None
    response_raw_head: bytes | None = None
    note: str | None = None
    error: str | None = None


async def not_run(db: Database, run_id: str) -> list[Result]:
    rows = await _rows(
        db,
        f"""select run_id, call_id, note, error from backtest_results
        where run_id = ? and verdict is null order by call_id limit {DIFFERENCES_LIMIT}""",
        (run_id,),
    )
    return [Result(**row) for row in rows]


def _stage(name: str, text: str | None, raw_size: int | None = None, raw_head: bytes | None = None) -> StageRow:
    body = loads_or_none(text)
    return StageRow(
        stage=name,
        body=body,
        has_body=body is not None,
        body_chars=len(text or ""),
        raw_size=raw_size,
        raw_head=raw_head,
        size_bytes=raw_size if raw_size is not None else len(text or "") or None,
    )


def _events(text: str | None) -> list[PolicyEventRow]:
    events = loads_or_none(text) or []
    return [
        PolicyEventRow(id=i, policy=e.get("policy", ""), action=e.get("action", ""), reason=e.get("reason"),
                       details=e.get("details"))
        for i, e in enumerate(events, 1)
        if isinstance(e, dict)
    ]  # fmt: skip


def _judgements(text: str | None) -> list[JudgeRow]:
    found = loads_or_none(text) or []
    return [JudgeRow(id=i, **{**j, "tool_name": j.get("tool_name", "")}) for i, j in enumerate(found, 1)]


@dataclass
class CallOutcome:
    """One call of a run: the recorded call, its result, and recorded final against
    would-be final (the would-be events and judgements annotate the diff)."""

    call: CallRow
    result: Result
    events: list[PolicyEventRow]
    judgements: list[JudgeRow]
    diff: CallDiff


async def load_call_outcome(db: Database, run_id: str, call_id: str) -> CallOutcome | None:
    rows = await _rows(
        db,
        """select r.run_id, r.call_id, r.verdict, r.changed, r.status, r.events_json, r.judgements_json,
          coalesce(r.request_json, q.body_json) as request_json, coalesce(r.response_json, o.body_json) as response_json,
          length(coalesce(r.response_raw, o.raw)) as response_raw_size,
          substr(coalesce(r.response_raw, o.raw), 1, 4096) as response_raw_head, r.note, r.error,
          qf.body_json as recorded_request, f.body_json as recorded_response,
          length(f.raw) as recorded_raw_size, substr(f.raw, 1, 4096) as recorded_raw_head
        from backtest_results r
        left join stages q on q.call_id = r.call_id and q.stage = 'request_original'
        left join stages o on o.call_id = r.call_id and o.stage = 'response_original'
        left join stages qf on qf.call_id = r.call_id and qf.stage = 'request_final'
        left join stages f on f.call_id = r.call_id and f.stage = 'response_final'
        where r.run_id = ? and r.call_id = ?""",
        (run_id, call_id),
    )
    calls = await _rows(db, "select * from calls where call_id = ?", (call_id,))
    if not rows or not calls:
        return None
    row = rows[0]
    recorded = {
        k: row.pop(k) for k in ("recorded_request", "recorded_response", "recorded_raw_size", "recorded_raw_head")
    }
    result = Result(**row)
    events, judgements = _events(result.events_json), _judgements(result.judgements_json)
    stages = {
        "request_final": _stage("request_final", recorded["recorded_request"]),
        "response_final": _stage(
            "response_final",
            recorded["recorded_response"],
            recorded["recorded_raw_size"],
            recorded["recorded_raw_head"],
        ),
        WOULD_BE_REQUEST: _stage(WOULD_BE_REQUEST, result.request_json),
        WOULD_BE_RESPONSE: _stage(
            WOULD_BE_RESPONSE, result.response_json, result.response_raw_size, result.response_raw_head
        ),
    }
    call = CallRow(**calls[0])
    data = CallData(call=call, stages=stages, events=events, judgements=judgements)
    diff = CallDiff(
        request=pair_diff("Request", ("request_final", WOULD_BE_REQUEST), data, is_request=True),
        response=pair_diff("Response", ("response_final", WOULD_BE_RESPONSE), data, is_request=False),
    )
    return CallOutcome(call, result, events, judgements, diff)


def events_text(signature: str | None) -> str:
    """`policy:action` pairs as people read them."""
    return ", ".join(part.replace(":", " ", 1) for part in (signature or "").split(",") if part) or "none"
