"""What the policies learn of a call's caller (`CallStates.policy_context`), and its
session found once: before the policies when one needs it, reused by the record."""

from __future__ import annotations

from mitmproxy import http

from addons.call_state import CallState, CallStates
from addons.call_tags import CallTags
from interlock.config import SessionConfig
from interlock.dialects import dialect_for
from interlock.policy.chain import ChainedPolicy, PolicyChain
from interlock.providers import Match
from policies.builtin.budget import BudgetPolicy
from policies.builtin.budget_limits import BudgetOptions


def headers(*fields: tuple[str, str]) -> http.Headers:
    return http.Headers([(name.encode(), value.encode()) for name, value in fields])


REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}


def chain(scope: str) -> PolicyChain:
    limit = {"name": "l", "metric": "calls", "max": 5, "window": "day", "scope": scope}
    budget = BudgetPolicy(BudgetOptions.model_validate({"limits": [limit]}), "budget")
    return PolicyChain([ChainedPolicy(budget, "allow", 5.0)])


def state(policies: PolicyChain) -> CallState:
    return CallState(
        call_id="c1",
        match=Match("openai", "openai-chat"),
        dialect=dialect_for("openai-chat"),
        started_at=0.0,
        host="api.openai.com",
        path="/v1/chat/completions",
        chain=policies,
        keepalive_s=10.0,
        sessions=SessionConfig(),
        tags=CallTags(user="ann", project="apollo"),
        request_original=REQUEST,
    )


def test_the_session_is_found_before_the_policies_when_one_needs_it_and_kept() -> None:
    calls, call = CallStates(), state(chain("session"))
    context = calls.policy_context(call, REQUEST, headers(("x-interlock-session", "s1"), ("user-agent", "sdk/1")))
    caller = context.caller
    assert (caller.provider, caller.client, caller.user, caller.project, caller.session_id) == (
        "openai",
        "sdk/1",
        "ann",
        "apollo",
        "s1",
    )
    assert calls.session_id(call, headers(("x-interlock-session", "other"))) == "s1"  # not found twice


def test_no_session_is_looked_for_when_no_policy_needs_it() -> None:
    calls, call = CallStates(), state(chain("user"))
    context = calls.policy_context(call, REQUEST, headers(("x-interlock-session", "s1")))
    assert context.caller.session_id is None and call.session is None
    assert calls.session_id(call, headers(("x-interlock-session", "s1"))) == "s1"  # found when recorded
