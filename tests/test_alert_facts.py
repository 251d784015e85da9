"""What an ended call contributes to the alert rules (recorder.call_facts): every metric a
rule can name, an unknown price as unknown (never $0), blocked tool calls counted from
the policy events that name them, budget warnings picked out."""

from __future__ import annotations

from typing import get_args

from interlock.alerts.expression import Metric
from interlock.neutral import Usage
from interlock.policy.records import JudgeRecord, PolicyEventRecord
from recorder.call_facts import call_facts
from recorder.cost import load_cost_map
from recorder.models import CallRecord


def record(**fields: object) -> CallRecord:
    base: dict[str, object] = {
        "call_id": "c1",
        "started_at": 100.0,
        "ended_at": 101.0,
        "provider": "openai",
        "dialect": "d",
        "host": "api.openai.com",
        "path": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "session_id": "s1",
        "usage": Usage(input_tokens=10, output_tokens=5, cache_read_tokens=3),
    }
    return CallRecord.model_validate({**base, **fields})


def judged(probability: float | None) -> JudgeRecord:
    return JudgeRecord(
        tool_call_id="t", tool_name="rm", arguments={}, judge_model="m", prompt=[], probability=probability,
        decision="blocked", at=1.0,
    )  # fmt: skip


def test_every_metric_a_rule_can_name_is_computed() -> None:
    load_cost_map()
    events = [
        PolicyEventRecord(policy="deny_tools", action="blocked", reason="x", details={"tool_name": "rm"}, at=1),
        PolicyEventRecord(policy="deny_tools", action="blocked", reason="y", details={"tool_name": "rm"}, at=1),
        PolicyEventRecord(policy="p", action="blocked", reason="whole request", at=1),
        PolicyEventRecord(policy="budget", action="warned", reason="80%", details={"limit": "day"}, at=1),
    ]
    facts = call_facts(
        record(status=200, verdict="blocked", events=events, judgements=[judged(0.4), judged(0.95), judged(None)])
    )
    assert set(facts.metrics) == set(get_args(Metric))
    cost = facts.metrics["cost_usd"]
    assert cost is not None and cost > 0 and facts.metrics["unpriced"] == 0.0
    assert {k: facts.metrics[k] for k in ("calls", "tokens", "errors", "blocked", "blocked_tool_calls")} == {
        "calls": 1.0, "tokens": 18.0, "errors": 0.0, "blocked": 1.0, "blocked_tool_calls": 2.0,
    }  # fmt: skip
    assert facts.metrics["judge_probability"] == 0.95
    assert [(w.policy, w.reason) for w in facts.warnings] == [("budget", "80%")]
    assert (facts.call_id, facts.at, facts.scopes["session"], facts.scopes["model"]) == (
        "c1",
        101.0,
        "s1",
        "gpt-4o-mini",
    )


def test_unknown_price_is_unknown_and_errors_count() -> None:
    load_cost_map()
    facts = call_facts(record(model="no-such-model-anywhere", status=502))
    assert facts.metrics["cost_usd"] is None and facts.metrics["unpriced"] == 1.0
    assert facts.metrics["errors"] == 1.0 and facts.metrics["judge_probability"] is None
    assert call_facts(record(status=None, error="upstream went silent")).metrics["errors"] == 1.0
