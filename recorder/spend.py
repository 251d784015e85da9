"""What recorded calls spent, added up by SQL: the `budget` policy's totals at start-up.

`spent(db_path, columns, since, by_minute)` sums the `calls` that ended at or after
`since` (None: all of them), grouped by the given `calls` columns (`session_id`,
`client`, `user`, `project`) and by the model as sent upstream, with per-minute groups
for a rolling window (so each sum leaves the window about when its calls would). A call
blocked before it went upstream (verdict `blocked`, no usage) spent nothing and is not
counted. The database is migrated first (the proxy's own writer does the same a moment
later), so an older file still answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from recorder.rows import iso
from recorder.schema import read_migrated

GROUP_COLUMNS = frozenset({"session_id", "client", "user", "project"})
# A call is summed by when it ended; the query narrows by the indexed `started_at` first,
# allowing calls that ran this long.
LONGEST_CALL_S = 86400.0
ENDED_SQL = "coalesce(ended_at, started_at)"
# A call with no cost that should have one: it reported usage, or it was answered with
# none (a failed call is not billed, so it is not unpriced).
_PRICEABLE = "input_tokens is not null or output_tokens is not null or (error is null and coalesce(status, 0) < 400)"
TOKENS_SQL = (
    "coalesce(input_tokens, 0) + coalesce(output_tokens, 0)"
    " + coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0)"
)


@dataclass(frozen=True, slots=True)
class Spent:
    """One group of recorded calls."""

    key: tuple[str | None, ...]  # the values of the grouped columns, in their order
    model: str | None  # as sent upstream
    at: float  # when its latest call ended (unix time)
    cost_usd: float  # of its priced calls
    tokens: int  # input, output and cache tokens
    calls: int
    unpriced_calls: int  # calls the price map could not price, or answered without usage
    unpriced_tokens: int  # their tokens


def spent(db_path: str, columns: tuple[str, ...], since: float | None, *, by_minute: bool = False) -> list[Spent]:
    """The groups of calls recorded in `db_path` (none if the file does not exist);
    raises `sqlite3.Error` if it cannot be read."""
    unknown = set(columns) - GROUP_COLUMNS
    if unknown:
        raise ValueError(f"cannot group calls by {', '.join(sorted(unknown))}")
    keys = [*columns, "coalesce(model_final, model)"]
    if by_minute:
        keys.append(f"substr({ENDED_SQL}, 1, 16)")
    where = ["not (verdict = 'blocked' and input_tokens is null and output_tokens is null)"]
    params: dict[str, str] = {}
    if since is not None:
        where += ["started_at >= :early", f"{ENDED_SQL} >= :since"]
        params = {"early": iso(since - LONGEST_CALL_S) or "", "since": iso(since) or ""}
    sql = (
        f"select {', '.join(keys)}, max({ENDED_SQL}), total(cost_usd), total(tokens), count(*),"
        f" total(cost_usd is null and ({_PRICEABLE})), total(case when cost_usd is null then tokens else 0 end)"
        f" from (select *, {TOKENS_SQL} as tokens from calls where {' and '.join(where)})"
        f" group by {', '.join(keys)}"
    )
    (rows,) = read_migrated(db_path, (sql, params))
    width = len(columns)
    return [
        Spent(
            key=tuple(row[:width]),
            model=row[width],
            at=datetime.fromisoformat(row[len(keys)]).timestamp(),
            cost_usd=row[len(keys) + 1],
            tokens=int(row[len(keys) + 2]),
            calls=row[len(keys) + 3],
            unpriced_calls=int(row[len(keys) + 4]),
            unpriced_tokens=int(row[len(keys) + 5]),
        )
        for row in rows
    ]
