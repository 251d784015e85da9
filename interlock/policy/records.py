"""What policies decide, as records: every decision and every judged tool call, and the
verdict they make of a call.

Policies append these to their `PolicyContext`; the recorder writes them as the
`policy_events` and `judge_decisions` rows, a backtest as its results.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class PolicyEventRecord(BaseModel):
    """A decision a policy took on a call."""

    policy: str
    action: str  # e.g. "modified", "blocked", "redacted", "error", "allowed"
    reason: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
    at: float  # unix time


class JudgeRecord(BaseModel):
    """One judged tool call."""

    tool_call_id: str | None
    tool_name: str
    arguments: Any
    judge_model: str
    prompt: Any  # the exact messages sent to the judge
    raw_answer: str | None = None
    probability: float | None = None
    explanation: str | None = None
    decision: Literal["allowed", "blocked"]
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    at: float


Verdict = Literal["pass", "modified", "blocked", "error"]
BLOCKING_ACTIONS = frozenset({"blocked", "ended"})
MODIFYING_ACTIONS = frozenset({"modified", "redacted"})


def verdict(events: list[PolicyEventRecord], changed: bool, error: str | None) -> Verdict:
    """What the chain did to a call as a whole, from its events, whether the request or
    the response changed, and the call's error."""
    actions = {e.action for e in events}
    # A policy that failed with `on_error: block` blocked what it was looking at.
    failed_closed = any(e.action == "error" and e.details.get("on_error") == "block" for e in events)
    if actions & BLOCKING_ACTIONS or failed_closed:
        return "blocked"
    if error:
        return "error"
    if changed or actions & MODIFYING_ACTIONS:
        return "modified"
    return "pass"
