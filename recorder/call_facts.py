"""What a recorded call says about who made it and what it cost, for the budgets and the
alert rules: `caller_of` (who, as the policies saw it), `failed` (not billed), and
`call_facts` (what it contributes to the alert rules, `interlock.alerts.engine.CallFacts`),
read from its secret-free record (`facts` builds them from a call's row too:
recorder.alert_history).

Metrics: `calls` (1), `cost_usd` (`record_price`; None, not 0, when the price is not
known, and `unpriced` is then 1), `tokens` (input, cache reads and writes included, plus
output), `errors` (1 for a status of 400 or more or an upstream error), `blocked` (1 for
a blocked verdict), `blocked_tool_calls` (the tool calls a policy blocked), and
`judge_probability` (the highest of the call's judgements; None when nothing was judged).
The price map is file I/O: until it is loaded (at start-up, in a thread) every cost is
unknown, never read on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping

from interlock.alerts.engine import CallFacts, PolicyWarning
from interlock.policy.base import Caller
from recorder.cost import cost_map_loaded
from recorder.models import CallRecord
from recorder.rows import record_price

WARNED = "warned"


def blocked_tool_calls(record: CallRecord) -> int:
    """The policy events that blocked one tool call (they name it)."""
    return sum(
        1
        for event in record.events
        if event.action == "blocked" and ("tool_name" in event.details or "tool_call_id" in event.details)
    )


def caller_of(record: CallRecord) -> Caller:
    """Who made the recorded call, as the policies saw it."""
    return Caller(
        provider=record.provider,
        client=record.client,
        user=record.user,
        project=record.project,
        session_id=record.session_id,
    )


def failed(record: CallRecord) -> bool:
    """The call failed: an upstream error, or a status of 400 or more (not billed)."""
    return record.error is not None or (record.status is not None and record.status >= 400)


def facts(
    call_id: str,
    at: float,
    *,
    cost_usd: float | None,
    tokens: int,
    failed: bool,
    blocked: bool,
    blocked_tool_calls: int,
    judge_probability: float | None,
    scopes: Mapping[str, str | None],
    warnings: tuple[PolicyWarning, ...] = (),
) -> CallFacts:
    """A call's facts from what it says (a live record, or its row in the database)."""
    return CallFacts(
        call_id=call_id,
        at=at,
        metrics={
            "calls": 1.0,
            "cost_usd": cost_usd,
            "unpriced": 1.0 if cost_usd is None else 0.0,
            "tokens": float(tokens),
            "errors": 1.0 if failed else 0.0,
            "blocked": 1.0 if blocked else 0.0,
            "blocked_tool_calls": float(blocked_tool_calls),
            "judge_probability": judge_probability,
        },
        scopes=scopes,
        warnings=warnings,
    )


def call_facts(record: CallRecord) -> CallFacts:
    probabilities = [j.probability for j in record.judgements if j.probability is not None]
    return facts(
        record.call_id,
        record.ended_at or record.started_at,
        cost_usd=record_price(record)[0] if cost_map_loaded() else None,
        tokens=record.usage.total,
        failed=failed(record),
        blocked=record.verdict == "blocked",
        blocked_tool_calls=blocked_tool_calls(record),
        judge_probability=max(probabilities) if probabilities else None,
        scopes=caller_of(record).scopes(record.model_final or record.model),
        warnings=tuple(
            PolicyWarning(event.policy, event.reason, event.details)
            for event in record.events
            if event.action == WARNED
        ),
    )
