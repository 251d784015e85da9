"""What the alert rules start from after a restart (or a reload that adds a rule): the
recorded calls inside the rules' windows, as `CallFacts`, and the alerts already fired.

`history_since(windows, now)` is the earliest time a set of windows looks back to (None:
none looks back: every window is a single call). `recorded_history(db_path, since)` reads
the calls that ended at or after `since`, oldest first, at most `max_calls` (the newest);
each call's facts are what `recorder.call_facts.call_facts` makes of its live record: the
cost as priced when it was written, the tool calls a policy blocked (its `policy_events`),
the highest judge probability (its `judge_decisions`). `recorded_alerts(db_path, since)`
reads the `alerts` fired at or after `since`. Both open the file read-only, after
migrating it (as `recorder.spend` does); a missing file has no history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from interlock.alerts.engine import CallFacts, RecordedAlert
from interlock.policy.base import Caller
from interlock.windows import Window
from recorder.call_facts import facts
from recorder.rows import iso
from recorder.schema import migrate
from recorder.spend import LONGEST_CALL_S

EVER_LOOKBACK_S = 7 * 86400.0  # a window over a key's whole life restores its last week
MAX_CALLS = 200_000

_ENDED = "coalesce(ended_at, started_at)"
_HISTORY = f"""
select call_id, {_ENDED} as at, cost_usd,
  coalesce(input_tokens, 0) + coalesce(output_tokens, 0)
    + coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0) as tokens,
  error is not null or coalesce(status, 0) >= 400 as failed,
  verdict = 'blocked' as blocked,
  (select count(*) from policy_events e where e.call_id = c.call_id and e.action = 'blocked'
     and (json_type(e.details_json, '$.tool_name') is not null
          or json_type(e.details_json, '$.tool_call_id') is not null)) as blocked_tool_calls,
  (select max(probability) from judge_decisions j where j.call_id = c.call_id) as judge_probability,
  provider, client, user, project, session_id, coalesce(model_final, model) as model
from calls c
where started_at >= :early and {_ENDED} >= :since
order by {_ENDED} desc, rowid desc
limit :most
"""


def history_since(windows: Iterable[Window], now: float) -> float | None:
    starts = [
        now - EVER_LOOKBACK_S if window.kind == "ever" else window.start(now)
        for window in windows
        if window.kind != "call"
    ]
    return min(starts) if starts else None


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _read(db_path: str, sql: str, params: dict[str, object]) -> list[sqlite3.Row]:
    if not Path(db_path).exists():
        return []
    migrate(db_path)
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def recorded_history(db_path: str, since: float, max_calls: int = MAX_CALLS) -> list[CallFacts]:
    """Raises `sqlite3.Error` if the file cannot be read."""
    params: dict[str, object] = {"early": iso(since - LONGEST_CALL_S), "since": iso(since), "most": max_calls}
    rows = _read(db_path, _HISTORY, params)
    return [
        facts(
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
        for row in reversed(rows)
    ]


def recorded_alerts(db_path: str, since: float) -> list[RecordedAlert]:
    """Raises `sqlite3.Error` if the file cannot be read."""
    sql = "select source, rule, condition, scope_key, fired_at from alerts where fired_at >= :since order by fired_at"
    return [
        RecordedAlert(
            source="policy" if row["source"] == "policy" else "rule",
            rule=row["rule"],
            condition=row["condition"] or "",
            key=row["scope_key"] or "",
            fired_at=_at(row["fired_at"]),
        )
        for row in _read(db_path, sql, {"since": iso(since)})
    ]
