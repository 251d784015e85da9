"""What the alert rules start from after a restart (or a reload that adds a rule): the
recorded calls inside the rules' windows, as `CallFacts`, and the alerts already fired.

`history_since(windows, now)` is the earliest time a set of windows looks back to (None:
none looks back: every window is a single call). `recorded(db_path, since, alerts_since)`
reads, in one read-only pass over the migrated file (`recorder.schema.read_migrated`),
the calls that ended at or after `since` (None: none), oldest first, at most `max_calls`
(the newest), and the `alerts` fired at or after `alerts_since`. Each call's facts are
what `recorder.call_facts.call_facts` makes of its live record: the cost as priced when
it was written, the tool calls a policy blocked (its `policy_events`), the highest judge
probability (its `judge_decisions`). A missing file has no history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

from interlock.alerts.engine import CallFacts, RecordedAlert
from interlock.policy.base import Caller
from interlock.windows import Window
from recorder.call_facts import facts
from recorder.rows import iso
from recorder.schema import read_migrated
from recorder.spend import ENDED_SQL, LONGEST_CALL_S, TOKENS_SQL

EVER_LOOKBACK_S = 7 * 86400.0  # a window over a key's whole life restores its last week
MAX_CALLS = 200_000

_HISTORY = f"""
select call_id, {ENDED_SQL} as at, cost_usd, {TOKENS_SQL} as tokens,
  error is not null or coalesce(status, 0) >= 400 as failed,
  verdict = 'blocked' as blocked,
  (select count(*) from policy_events e where e.call_id = c.call_id and e.action = 'blocked'
     and (json_type(e.details_json, '$.tool_name') is not null
          or json_type(e.details_json, '$.tool_call_id') is not null)) as blocked_tool_calls,
  (select max(probability) from judge_decisions j where j.call_id = c.call_id) as judge_probability,
  provider, client, user, project, session_id, coalesce(model_final, model) as model
from calls c
where started_at >= :early and {ENDED_SQL} >= :since
order by {ENDED_SQL} desc, rowid desc
limit :most
"""
_ALERTS = "select source, rule, condition, scope_key, fired_at from alerts where fired_at >= :since order by fired_at"


def history_since(windows: Iterable[Window], now: float) -> float | None:
    starts = [
        now - EVER_LOOKBACK_S if window.kind == "ever" else window.start(now)
        for window in windows
        if window.kind != "call"
    ]
    return min(starts) if starts else None


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _facts(row: sqlite3.Row) -> CallFacts:
    return facts(
        row["call_id"],
        _at(row["at"]),
        cost_usd=row["cost_usd"],
        tokens=row["tokens"],
        failed=bool(row["failed"]),
        blocked=bool(row["blocked"]),
        blocked_tool_calls=row["blocked_tool_calls"],
        judge_probability=row["judge_probability"],
        scopes=Caller(
            provider=row["provider"],
            client=row["client"],
            user=row["user"],
            project=row["project"],
            session_id=row["session_id"],
        ).scopes(row["model"]),
    )


def _alert(row: sqlite3.Row) -> RecordedAlert:
    return RecordedAlert(
        source="policy" if row["source"] == "policy" else "rule",
        rule=row["rule"],
        condition=row["condition"] or "",
        key=row["scope_key"] or "",
        fired_at=_at(row["fired_at"]),
    )


def recorded(
    db_path: str, since: float | None, alerts_since: float, max_calls: int = MAX_CALLS
) -> tuple[list[CallFacts], list[RecordedAlert]]:
    """(the calls since `since`, oldest first; the alerts since `alerts_since`). Raises
    `sqlite3.Error` if the file cannot be read."""
    queries: list[tuple[str, dict[str, object]]] = [(_ALERTS, {"since": iso(alerts_since)})]
    if since is not None:
        queries.append((_HISTORY, {"early": iso(since - LONGEST_CALL_S), "since": iso(since), "most": max_calls}))
    alerts, *calls = read_migrated(db_path, *queries)
    history = [_facts(row) for row in reversed(calls[0])] if calls else []
    return history, [_alert(row) for row in alerts]
