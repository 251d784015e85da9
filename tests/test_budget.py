"""The `budget` policy in process: limits and their keys, the ledger, the check before a
call (estimate, block, warn, downgrade, unknown prices), the chain letting a refusal
through, the charge from a record, the restore from a database, and each dialect's
429 body."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from addons.budgets import active_since, spend_of, use_row
from interlock.dialects import DIALECTS, dialect_for
from interlock.engine.policing import police_request
from interlock.policy.base import Caller, PolicyContext, Refused
from interlock.policy.chain import ChainedPolicy, PolicyChain
from interlock.windows import Window
from policies.builtin.budget import BudgetPolicy, Spend
from policies.builtin.budget_ledger import Ledger
from policies.builtin.budget_limits import BudgetOptions, Limit, LimitOptions
from recorder.models import CallRecord, Usage
from recorder.rows import iso
from recorder.schema import migrate
from recorder.spend import spent

CHAT = dialect_for("openai-chat")
REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}
ESTIMATE_TOKENS = math.ceil(len(json.dumps(REQUEST, separators=(",", ":"))) / 4)  # the policy's estimate
GPT_4O_INPUT = 2.5e-6  # litellm's price map: $ per input token
NOW = datetime(2026, 12, 3, 10, 20, tzinfo=UTC).timestamp()


def policy(*limits: dict[str, Any], **options: Any) -> BudgetPolicy:
    budget = BudgetPolicy(BudgetOptions.model_validate({"limits": list(limits), **options}), "budget")
    budget.ledger = Ledger()  # not the process-wide one
    return budget


def ctx(session: str = "s1", model: str = "gpt-4o") -> PolicyContext:
    caller = Caller(provider="openai", client="sdk/1", user="ann", project="p", session_id=session)
    return PolicyContext(call_id="c", dialect=CHAT, model=model, request=REQUEST, caller=caller)


def check(budget: BudgetPolicy, context: PolicyContext, request: dict[str, Any] = REQUEST) -> dict[str, Any]:
    return asyncio.run(budget.on_request(context, request))


def spend(session: str = "s1", tokens: int = 46, cost: float | None = 0.001, at: float = NOW) -> Spend:
    caller = Caller(provider="openai", client="sdk/1", user="ann", project="p", session_id=session)
    return Spend(caller, "gpt-4o", tokens, cost, at)


def limit(**fields: Any) -> dict[str, Any]:
    return {"name": "l", "metric": "cost_usd", "max": 0.01, "window": "session", "scope": "session", **fields}


# -- limits --------------------------------------------------------------------------------


def test_a_limit_applies_to_its_models_and_keys_calls_by_its_scope() -> None:
    options = LimitOptions.model_validate(limit(scope=["user", "model"], models=["gpt-4*", "o3"]))
    one = Limit.of("budget", options)
    assert one.applies("gpt-4o") and one.applies("o3") and not one.applies("claude-x") and not one.applies(None)
    assert one.key(ctx().caller, "gpt-4o") == ("ann", "gpt-4o")
    assert one.columns == ("user",)
    assert one.key_of(("bob",), "o3") == ("bob", "o3")
    assert one.describe_scope() == "user+model" and one.describe_key(("bob", None)) == "bob / (none)"
    assert one.id == ("budget", "l", "cost_usd", "session", ("user", "model"))
    overall = Limit.of("budget", LimitOptions.model_validate(limit(scope="overall", models=None)))
    assert overall.key(ctx().caller, None) == () and overall.describe_key(()) == "overall" and overall.applies(None)


def test_a_limit_is_counted_unless_per_call() -> None:
    assert Limit.of("b", LimitOptions.model_validate(limit(window="30m"))).window == Window("rolling", 1800.0)
    assert not Limit.of("b", LimitOptions.model_validate(limit(window="call"))).counted
    assert Limit.of("b", LimitOptions.model_validate(limit(window="day"))).counted


# -- the ledger ------------------------------------------------------------------------------


def test_the_ledger_adds_per_limit_and_key_within_the_window() -> None:
    ledger = Ledger()
    lid = ("b", "l", "calls", "1h", ("session",))
    window = Window("rolling", 3600.0)
    ledger.add(lid, window, ("s1",), NOW, 1.0)
    ledger.add(lid, window, ("s1",), NOW + 1800, 2.0, calls=2, unpriced=1)
    ledger.add(lid, window, ("s2",), NOW, 5.0)
    assert ledger.total(lid, ("s1",), NOW + 1800) == 3.0
    assert ledger.total(lid, ("s1",), NOW + 3601) == 2.0  # the first left the window
    use = ledger.use(lid, ("s1",))
    assert use is not None and use.calls.sum(NOW + 1800) == 3 and use.unpriced.sum(NOW + 1800) == 1
    assert ledger.total(lid, ("s3",), NOW) == 0.0 and ledger.total(("x", "", "", "", ()), ("s1",), NOW) == 0.0
    assert ledger.started(lid) and not ledger.started(("x", "", "", "", ()))
    assert ledger.total(lid, ("s2",), NOW) == 5.0


# -- before the call -------------------------------------------------------------------------


def test_a_call_passes_while_the_total_and_its_estimate_stay_within_max() -> None:
    estimate = ESTIMATE_TOKENS * GPT_4O_INPUT
    budget = policy(limit(max=0.001 + estimate))
    budget.charge(spend(cost=0.001))
    context = ctx()
    assert check(budget, context) is REQUEST and context.events == []
    budget.charge(spend(cost=1e-6))
    with pytest.raises(Refused) as refused:
        check(budget, context)
    assert refused.value.status == 429 and refused.value.retry_after_s is None
    assert "budget 'l' exceeded: $0.001001 of $0.001043 in total for session s1" in refused.value.message
    [event] = context.events
    assert (event.action, event.details["spent"], event.details["estimate"]) == ("blocked", 0.001001, estimate)
    assert check(budget, ctx(session="s2")) is REQUEST  # another session


def test_a_total_that_reached_max_blocks_even_a_free_call() -> None:
    budget = policy(limit(metric="tokens", max=46))
    budget.charge(spend(tokens=46))
    with pytest.raises(Refused, match="46 tokens of 46 tokens"):
        check(budget, ctx())


def test_a_calendar_window_refusal_says_when_it_resets() -> None:
    budget = policy(limit(metric="calls", max=1, window="hour"))
    now = time.time()
    budget.charge(spend(at=now))
    context = ctx()
    with pytest.raises(Refused) as refused:
        check(budget, context)
    assert refused.value.retry_after_s == math.ceil(3600 - now % 3600) or refused.value.retry_after_s == 1
    assert context.events[0].details["resets_at"].endswith(":00:00Z")
    assert "It resets at" in refused.value.message


def test_a_per_call_limit_refuses_a_request_too_big_for_it_whatever_was_spent() -> None:
    budget = policy(limit(metric="tokens", max=10, window="call"))
    big = {**REQUEST, "messages": [{"role": "user", "content": "x" * 400}]}
    with pytest.raises(Refused, match="does not reset by waiting"):
        check(budget, ctx(), big)
    assert check(policy(limit(metric="tokens", max=1000, window="call")), ctx(), big) is big


def test_warn_records_and_passes() -> None:
    budget = policy(limit(metric="calls", max=1, action="warn"))
    budget.charge(spend())
    context = ctx()
    assert check(budget, context) is REQUEST
    [event] = context.events
    assert (event.action, event.details["limit"], event.details["key"], event.details["max"]) == (
        "warned",
        "l",
        "s1",
        1,
    )


def test_downgrade_asks_for_the_cheaper_model_and_block_wins_over_it() -> None:
    down = limit(name="down", metric="calls", max=1, action="downgrade", downgrade_to="gpt-4o-mini")
    budget = policy(down)
    budget.charge(spend())
    context = ctx()
    assert check(budget, context)["model"] == "gpt-4o-mini"
    [event] = context.events
    assert (event.action, event.details["model_from"], event.details["model_to"]) == (
        "modified",
        "gpt-4o",
        "gpt-4o-mini",
    )

    both = policy(down, limit(name="stop", metric="calls", max=1))
    both.charge(spend())
    with pytest.raises(Refused, match="'stop'"):
        check(both, ctx())


@pytest.mark.parametrize(
    ("mode", "rate", "outcome"),
    [("block", None, "refused"), ("allow", None, 0.0), ("count_tokens", 1000.0, ESTIMATE_TOKENS * 1000.0 / 1e6)],
)
def test_an_unknown_price_counts_as_configured(mode: str, rate: float | None, outcome: Any) -> None:
    budget = policy(limit(max=1.0), unknown_cost=mode, unknown_usd_per_million_tokens=rate)
    context = ctx(model="mystery-model")
    request = {**REQUEST, "model": "mystery-model"}
    if outcome == "refused":
        with pytest.raises(Refused, match="price of model mystery-model is unknown"):
            check(budget, context, request)
        assert [e.action for e in context.events] == ["blocked"]
        return
    assert check(budget, context, request) is request
    assert [e.action for e in context.events] == ["unpriced"]
    assert budget._estimated_cost(context, "mystery-model", ESTIMATE_TOKENS, budget.limits) == pytest.approx(outcome)
    [charged] = budget.charge(Spend(context.caller, "mystery-model", 46, None, NOW))
    assert charged.use.amounts.sum(NOW) == pytest.approx(46 * (rate or 0) / 1e6)
    assert charged.use.unpriced.sum(NOW) == 1


def test_an_unknown_price_does_not_matter_to_token_and_call_limits() -> None:
    budget = policy(limit(metric="tokens", max=1000), unknown_cost="block")
    context = ctx(model="mystery-model")
    request = {**REQUEST, "model": "mystery-model"}
    assert check(budget, context, request) is request and context.events == []


def test_a_limit_for_other_models_is_not_checked() -> None:
    budget = policy(limit(metric="calls", max=1, models=["claude-*"]))
    budget.charge(spend())
    assert check(budget, ctx()) is REQUEST
    assert budget.charge(spend()) == []  # nor charged


def test_the_policy_needs_the_session_only_when_a_limit_is_per_session() -> None:
    assert policy(limit(scope=["session", "model"])).needs_session
    assert not policy(limit(scope="user")).needs_session


# -- the chain -------------------------------------------------------------------------------


def test_a_refusal_passes_the_chain_even_with_on_error_allow() -> None:
    budget = policy(limit(metric="tokens", max=1, window="call"))
    chain = PolicyChain([ChainedPolicy(budget, "allow", 5.0)])
    context = ctx()
    policed = asyncio.run(police_request(CHAT, chain, context, REQUEST))
    assert policed.refused is not None and policed.blocked is None and policed.final is REQUEST
    assert [e.action for e in context.events] == ["blocked"]  # no `error` event: not a failure
    assert chain.needs_session


# -- after the call --------------------------------------------------------------------------


def record(**fields: Any) -> CallRecord:
    base: dict[str, Any] = {
        "call_id": "c1",
        "started_at": NOW - 1,
        "ended_at": NOW,
        "provider": "openai",
        "dialect": "openai-chat",
        "host": "api.openai.com",
        "path": "/v1/chat/completions",
        "client": "sdk/1",
        "session_id": "s1",
        "model": "gpt-4o",
        "status": 200,
        "usage": Usage(input_tokens=12, output_tokens=34),
    }
    return CallRecord.model_validate({**base, **fields})


def test_a_record_is_charged_at_its_real_price() -> None:
    spent_ = spend_of(record())
    assert spent_ is not None
    assert (spent_.tokens, spent_.model, spent_.at, spent_.caller.session_id) == (46, "gpt-4o", NOW, "s1")
    assert spent_.cost_usd == pytest.approx(0.00037)
    downgraded = spend_of(record(model_final="gpt-4o-mini"))
    assert downgraded is not None and downgraded.model == "gpt-4o-mini"


def test_what_a_record_without_usage_spent() -> None:
    assert spend_of(record(verdict="blocked", usage=Usage())) is None  # never went upstream
    failed = spend_of(record(status=500, usage=Usage()))
    assert failed is not None and failed.cost_usd == 0.0
    silent = spend_of(record(usage=Usage()))  # an answer that reported no usage
    assert silent is not None and silent.cost_usd is None
    unknown = spend_of(record(model="mystery-model"))
    assert unknown is not None and unknown.cost_usd is None


def test_a_use_row_says_use_max_and_when_it_resets() -> None:
    budget = policy(limit(window="day", max=0.5))
    [charged] = budget.charge(spend(cost=0.25))
    row = use_row(charged, NOW)
    assert row == {
        "policy": "budget",
        "budget": "l",
        "metric": "cost_usd",
        "time_window": "day",
        "scope": "session",
        "scope_key": "s1",
        "used": 0.25,
        "maximum": 0.5,
        "action": "block",
        "calls": 1,
        "unpriced_calls": 0,
        "resets_at": "2026-12-04T00:00:00.000Z",
        "updated_at": iso(NOW),
    }


# -- the restore from a database -------------------------------------------------------------


def calls_db(tmp_path: Path, rows: list[dict[str, Any]]) -> str:
    path = str(tmp_path / "calls.db")
    migrate(path)
    with sqlite3.connect(path) as conn:
        for number, row in enumerate(rows):
            full = {
                "call_id": f"c{number}",
                "provider": "openai",
                "dialect": "openai-chat",
                "host": "h",
                "path": "/p",
                "verdict": "pass",
                "model": "gpt-4o",
                **row,
            }
            full.setdefault("started_at", full["ended_at"])
            conn.execute(
                f"insert into calls ({', '.join(full)}) values ({', '.join('?' * len(full))})", list(full.values())
            )
    return path


def test_the_restore_sums_the_recorded_calls_of_the_window(tmp_path: Path) -> None:
    hour = NOW - NOW % 3600
    path = calls_db(
        tmp_path,
        [
            {"session_id": "a", "ended_at": iso(hour + 10), "cost_usd": 0.1, "input_tokens": 10, "output_tokens": 5},
            {"session_id": "a", "ended_at": iso(hour + 20), "cost_usd": 0.2, "input_tokens": 1, "output_tokens": 1},
            {"session_id": "a", "ended_at": iso(hour - 10), "cost_usd": 5.0, "input_tokens": 1},  # the hour before
            {"session_id": "b", "ended_at": iso(hour + 30), "input_tokens": 100, "model": "mystery"},  # unpriced
            {"session_id": "b", "ended_at": iso(hour + 40), "verdict": "blocked"},  # never went upstream
            {
                "session_id": "b",
                "ended_at": iso(hour + 50),
                "model": "gpt-4o",
                "model_final": "gpt-4o-mini",
                "cost_usd": 0.001,
                "input_tokens": 3,
            },
        ],
    )
    budget = policy(limit(window="hour", max=10.0), unknown_cost="count_tokens", unknown_usd_per_million_tokens=1e4)
    [cost] = budget.limits
    groups = spent(path, cost.columns, cost.window.start(NOW))
    uses = {charged.key: charged.use for charged in budget.restore(cost, groups)}
    assert uses[("a",)].amounts.sum(NOW) == pytest.approx(0.3) and uses[("a",)].calls.sum(NOW) == 2
    assert uses[("b",)].amounts.sum(NOW) == pytest.approx(0.001 + 100 * 1e4 / 1e6)  # unpriced tokens at the rate
    assert uses[("b",)].calls.sum(NOW) == 2 and uses[("b",)].unpriced.sum(NOW) == 1
    assert budget.ledger.started(cost.id)

    by_model = policy(limit(metric="calls", window="ever", scope="model", max=10, models=["gpt-4o*"]))
    [calls] = by_model.limits
    restored = {c.key: c.use.amounts.sum(NOW) for c in by_model.restore(calls, spent(path, calls.columns, None))}
    assert restored == {("gpt-4o",): 3.0, ("gpt-4o-mini",): 1.0}  # the model sent upstream; no mystery


def test_a_rolling_window_is_restored_by_the_minute(tmp_path: Path) -> None:
    path = calls_db(
        tmp_path,
        [
            {"session_id": "a", "ended_at": iso(NOW - 1700), "cost_usd": 1.0, "input_tokens": 1},
            {"session_id": "a", "ended_at": iso(NOW - 60), "cost_usd": 2.0, "input_tokens": 1},
        ],
    )
    budget = policy(limit(window="30m", max=10.0))
    [rolling] = budget.limits
    budget.restore(rolling, spent(path, rolling.columns, rolling.window.start(NOW), by_minute=True))
    assert budget.ledger.total(rolling.id, ("a",), NOW) == pytest.approx(3.0)
    assert budget.ledger.total(rolling.id, ("a",), NOW + 200) == pytest.approx(2.0)  # the first left


def test_the_restore_of_a_missing_database_is_empty(tmp_path: Path) -> None:
    assert spent(str(tmp_path / "none.db"), ("session_id",), None) == []
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(ValueError, match="cannot group calls by cost_usd"):
        spent(str(tmp_path / "none.db"), ("cost_usd",), None)


# -- each dialect's 429 --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_dialect_words_a_limit_as_its_provider_does(name: str) -> None:
    dialect = DIALECTS[name]
    soon, later = dialect.limit_error("spent", True), dialect.limit_error("spent", False)
    error = soon["error"]
    assert error["message"] == "spent" and later["error"]["message"] == "spent"
    if "type" in soon and soon["type"] == "error":  # Anthropic
        assert error["type"] == later["error"]["type"] == "rate_limit_error"
    elif "status" in error:  # Google
        assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    else:  # OpenAI
        assert (error["code"], later["error"]["code"]) == ("rate_limit_exceeded", "insufficient_quota")
        assert later["error"]["type"] == "insufficient_quota" and error["param"] is None


def test_a_per_session_limit_restores_only_the_sessions_still_active(tmp_path: Path) -> None:
    week = 7 * 86400
    path = calls_db(
        tmp_path,
        [
            {"session_id": "old", "ended_at": iso(NOW - 2 * week), "cost_usd": 1.0, "input_tokens": 1},
            {"session_id": "going", "ended_at": iso(NOW - 2 * week), "cost_usd": 1.0, "input_tokens": 1},
            {"session_id": "going", "ended_at": iso(NOW - 60), "cost_usd": 2.0, "input_tokens": 1},
        ],
    )
    budget = policy(limit(max=10.0))
    [life] = budget.limits
    since = active_since(life, NOW)
    assert since == NOW - week
    restored = {c.key: c.use.amounts.sum(NOW) for c in budget.restore(life, spent(path, life.columns, None), since)}
    assert restored == {("going",): pytest.approx(3.0)}  # its whole life, the old session not at all
    assert active_since(policy(limit(scope="user")).limits[0], NOW) is None
    assert active_since(policy(limit(window="day")).limits[0], NOW) is None


def test_the_restore_counts_unpriced_calls_as_the_charge_does(tmp_path: Path) -> None:
    path = calls_db(
        tmp_path,
        [
            {"session_id": "a", "ended_at": iso(NOW - 30), "status": 200},  # answered without usage
            {"session_id": "a", "ended_at": iso(NOW - 20), "status": 500, "error": "HTTP 500"},  # failed: $0
            {"session_id": "a", "ended_at": iso(NOW - 10), "status": 200, "input_tokens": 5, "model": "mystery"},
        ],
    )
    [group_a, group_b] = sorted(spent(path, ("session_id",), None), key=lambda g: g.model or "")
    assert (group_a.model, group_a.calls, group_a.unpriced_calls) == ("gpt-4o", 2, 1)
    assert (group_b.model, group_b.unpriced_calls, group_b.unpriced_tokens) == ("mystery", 1, 5)
    charged = [spend_of(record(usage=Usage())), spend_of(record(status=500, error="HTTP 500", usage=Usage()))]
    assert [s.cost_usd if s else "none" for s in charged] == [None, 0.0]
