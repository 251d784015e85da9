"""The policy chain: order, failure modes (`on_error`, `timeout_s`) in every hook, and
config errors that name the policy and the key.

Failures are checked through the engine, on the bytes and bodies a client would get:
with `allow` the traffic is unchanged (byte for byte); with `block` it is a valid,
SDK-parseable message carrying the block notice. Every failure is a policy event.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_fixtures import (
    DIALECTS,
    TURN_ENDED,
    FailingPolicy,
    TagPolicy,
    body_violations,
    chain_of,
    context,
    fixture_path,
    police_body,
    police_stream,
    sdk_summary,
    stream_violations,
)
from wire_scenarios import SCENARIOS, json_for, sse_for

from interlock.config import ConfigError, parse_config
from interlock.neutral import ToolCall, Usage
from interlock.policy.base import Keep, Policy, PolicyContext, ReplaceWithText, StreamEnd
from interlock.policy.chain import PolicyFailed
from policies.registry import build_chain

MODEL = "test-model"
NOTICE = "[Interlock blocked this content: policy 'failing' failed"


def wire(dialect: str, scenario: str) -> tuple[list[bytes], dict[str, Any]]:
    """The upstream stream chunks and the non-streamed body of a scenario."""
    s = SCENARIOS[scenario]
    return sse_for(dialect, s, MODEL), json_for(dialect, s, MODEL)


def tags(n: int) -> list[dict[str, Any]]:
    return [{"policy": fixture_path(TagPolicy), "tag": chr(ord("A") + i)} for i in range(n)]


# --- order ------------------------------------------------------------------------------


async def test_each_hook_sees_the_previous_policys_output() -> None:
    chain = chain_of(*tags(3))
    ctx = context("openai-chat")
    assert (await chain.request(ctx, {"model": "m"}))["tags"] == ["A", "B", "C"]
    assert await chain.text(ctx, "hi") == "hi<A><B><C>"
    decision = await chain.tool_call(ctx, ToolCall("id", "bash", {"x": 1}))
    assert isinstance(decision, Keep) and decision.call.name == "bash+A+B+C"
    assert await chain.stream_end(ctx, StreamEnd("stop", Usage())) == ("[A saw stop][B saw stop][C saw stop]")
    assert (await chain.response(ctx, {}))["tags"] == ["A", "B", "C"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_replace_rules_in_different_policies_chain_in_a_stream(dialect: str) -> None:
    """The second policy rewrites what the first produced, including text the first one
    held back and released at the end of the block."""
    chain = chain_of(
        {"policy": "replace", "rules": [{"find": "mock provider", "replace": "fake vendor"}]},
        {"policy": "replace", "rules": [{"find": "fake", "replace": "real"}]},
    )
    chunks, body = wire(dialect, "text")
    out, ctx = await police_stream(chain, dialect, chunks)
    assert stream_violations(dialect, out) == []
    assert sdk_summary(dialect, out)[0] == "Hello from the real vendor."
    whole, _ = await police_body(chain, dialect, body)
    assert sdk_summary(dialect, whole)[0] == "Hello from the real vendor."
    assert [(e.policy, e.action) for e in ctx.events] == [("replace", "modified"), ("replace#2", "modified")]


async def test_a_replaced_tool_call_is_not_shown_to_later_policies() -> None:
    chain = chain_of({"policy": "deny_tools", "deny": ["bash"]}, *tags(1))
    decision = await chain.tool_call(context("openai-chat"), ToolCall("id", "bash", {}))
    assert isinstance(decision, ReplaceWithText)


# --- on_error and timeout_s in every hook -------------------------------------------------

RESPONSE_HOOKS = ("on_text", "on_text_end", "on_tool_call", "on_stream_end")


def failing(hook: str, mode: str, on_error: str) -> dict[str, Any]:
    return {"policy": fixture_path(FailingPolicy), "hook": hook, "mode": mode, "on_error": on_error, "timeout_s": 0.05}


def assert_failure_recorded(ctx: PolicyContext, hook: str, mode: str, on_error: str) -> None:
    errors = [e for e in ctx.events if e.action == "error"]
    assert errors, ctx.events
    assert {e.details["hook"] for e in errors} == {hook}
    assert all(e.policy == "failing" and e.details["on_error"] == on_error for e in errors)
    expected = "timed out" if mode == "hang" else f"RuntimeError: {hook} exploded"
    assert all(e.reason == expected for e in errors)


@pytest.mark.parametrize("mode", ["raise", "hang"])
@pytest.mark.parametrize("hook", RESPONSE_HOOKS)
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_allow_lets_the_stream_through_unchanged(dialect: str, hook: str, mode: str) -> None:
    chunks, _ = wire(dialect, "tool")
    out, ctx = await police_stream(chain_of(failing(hook, mode, "allow")), dialect, chunks)
    assert out == b"".join(chunks)
    assert_failure_recorded(ctx, hook, mode, "allow")
    assert ctx.ended_by is None


@pytest.mark.parametrize("mode", ["raise", "hang"])
@pytest.mark.parametrize("hook", [*RESPONSE_HOOKS, "on_response"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_allow_lets_the_body_through_unchanged(dialect: str, hook: str, mode: str) -> None:
    _, body = wire(dialect, "tool")
    out, ctx = await police_body(chain_of(failing(hook, mode, "allow")), dialect, json.loads(json.dumps(body)))
    assert out == body
    assert_failure_recorded(ctx, hook, mode, "allow")


# What a client reads when the policy fails closed in each hook of the "tool" scenario
# (text "Let me check the weather." then a get_weather call): the text it was looking at
# or the tool call is replaced by the notice; ending the message drops the tool call.
# A stream cannot take back text already sent: only what follows is replaced.
SENT_BEFORE_THE_NOTICE = {
    "on_text": "",  # the first delta already fails: only the notice
    "on_text_end": "Let me check the weather.",
    "on_tool_call": "Let me check the weather.",
    "on_stream_end": "Let me check the weather.",
}
WHOLE_TEXT_BEFORE_THE_NOTICE = {**SENT_BEFORE_THE_NOTICE, "on_text_end": "", "on_response": ""}


def assert_blocked_result(dialect: str, before: str, summary: tuple[str, list[Any], str | None]) -> None:
    text, tools, stop = summary
    assert text.startswith(before)
    assert NOTICE in text
    assert tools == []
    assert stop == TURN_ENDED[dialect]


@pytest.mark.parametrize("mode", ["raise", "hang"])
@pytest.mark.parametrize("hook", RESPONSE_HOOKS)
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_block_gives_a_valid_stream_with_the_notice(dialect: str, hook: str, mode: str) -> None:
    chunks, _ = wire(dialect, "tool")
    out, ctx = await police_stream(chain_of(failing(hook, mode, "block")), dialect, chunks)
    assert stream_violations(dialect, out) == []
    assert_blocked_result(dialect, SENT_BEFORE_THE_NOTICE[hook], sdk_summary(dialect, out))
    assert_failure_recorded(ctx, hook, mode, "block")


@pytest.mark.parametrize("mode", ["raise", "hang"])
@pytest.mark.parametrize("hook", [*RESPONSE_HOOKS, "on_response"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_block_gives_a_valid_body_with_the_notice(dialect: str, hook: str, mode: str) -> None:
    _, body = wire(dialect, "tool")
    out, ctx = await police_body(chain_of(failing(hook, mode, "block")), dialect, body)
    assert body_violations(dialect, out) == []
    assert_blocked_result(dialect, WHOLE_TEXT_BEFORE_THE_NOTICE[hook], sdk_summary(dialect, out))
    assert_failure_recorded(ctx, hook, mode, "block")


@pytest.mark.parametrize("mode", ["raise", "hang"])
async def test_request_hook_failure(mode: str) -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    allow = chain_of(failing("on_request", mode, "allow"), *tags(1))
    ctx = context("openai-chat")
    assert await allow.request(ctx, request) == {**request, "tags": ["A"]}  # later policies still run
    assert_failure_recorded(ctx, "on_request", mode, "allow")
    block = chain_of(failing("on_request", mode, "block"))
    ctx = context("openai-chat")
    with pytest.raises(PolicyFailed) as failed:
        await block.request(ctx, request)
    assert failed.value.policy == "failing"
    assert NOTICE in failed.value.notice
    assert_failure_recorded(ctx, "on_request", mode, "block")


async def test_a_failure_in_one_policy_does_not_stop_the_others() -> None:
    chain = chain_of(*tags(1), failing("on_text", "raise", "allow"), *tags(2)[1:])
    assert await chain.text(context("openai-chat"), "x") == "x<A><B>"


# --- config errors ------------------------------------------------------------------------


class NotAPolicy:
    """Importable, but not a Policy."""


class ExplodingPolicy(Policy):
    name = "exploding"

    def __init__(self, options: Any, instance_name: str) -> None:
        raise ValueError("cannot start: missing credentials")


LIMIT = {"name": "daily", "metric": "cost_usd", "max": 1.0, "window": "day"}


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (
            {"policy": "nope"},
            r"policies\.0 \(nope\)\.policy: unknown policy 'nope'; built-in policies: budget, deny_tools",
        ),
        ({"policy": "no_such_module:Thing"}, r"policies\.0 \(no_such_module:Thing\)\.policy: cannot import"),
        ({"policy": "test_policies_chain:NotAPolicy"}, r"\(test_policies_chain:NotAPolicy\)\.policy: .* not a Policy"),
        ({"policy": "test_policies_chain:Missing"}, r"\(test_policies_chain:Missing\)\.policy"),
        ({"policy": "replace"}, r"policies\.0 \(replace\)\.rules: Field required"),
        ({"policy": "replace", "rules": [{"find": "x"}], "aply_to": "both"}, r"\(replace\)\.aply_to: Extra inputs"),
        ({"policy": "replace", "rules": [{"find": "x"}], "apply_to": "all"}, r"\(replace\)\.apply_to: Input should be"),
        ({"policy": "replace", "rules": "x"}, r"\(replace\)\.rules: Input should be a valid list"),
        ({"policy": "replace", "rules": [{"find": "("}], "x": 1}, r"\(replace\)\.x"),
        (
            {"policy": "replace", "rules": [{"find": "(", "regex": True}]},
            r"\(replace\)\.rules\.0: .*not a valid regular",
        ),
        ({"policy": "replace", "rules": [{"find": r"\b", "regex": True}]}, r"\(replace\)\.rules\.0: .*empty string"),
        ({"policy": "replace", "rules": [{"find": r"(?=a+)b", "regex": True}]}, r"rules\.0: .*max_match_length"),
        ({"policy": "deny_tools", "rules": [{"pattern": "["}]}, r"\(deny_tools\)\.rules\.0: .*not a valid regular"),
        ({"policy": "deny_tools", "deny": "bash"}, r"\(deny_tools\)\.deny: Input should be a valid list"),
        ({"policy": "model_rewrite", "map": {}}, r"\(model_rewrite\)\.map: .*at least 1"),
        ({"policy": "model_rewrite", "map": {"a": 3}}, r"\(model_rewrite\)\.map\.a: Input should be a valid string"),
        ({"policy": "system_prompt", "text": "x", "position": "middle"}, r"\(system_prompt\)\.position"),
        ({"policy": "redact", "patterns": {"mine": "(("}}, r"\(redact\)\.patterns: .*'mine' is not a valid"),
        ({"policy": "redact", "patterns": {"any": ".*"}}, r"\(redact\)\.patterns: .*'any' matches the empty string"),
        ({"policy": "redact", "mode": "upstream"}, r"\(redact\)\.mode: Input should be 'request' or 'record_only'"),
        ({"policy": "budget"}, r"\(budget\)\.limits: Field required"),
        (
            {"policy": "budget", "limits": [{**LIMIT, "metric": "usd"}]},
            r"\(budget\)\.limits\.0\.metric: Input should be",
        ),
        ({"policy": "budget", "limits": [{**LIMIT, "max": 0}]}, r"\(budget\)\.limits\.0\.max: .*greater than 0"),
        ({"policy": "budget", "limits": [{**LIMIT, "window": "fortnight"}]}, r"limits\.0\.window: .*not a window"),
        ({"policy": "budget", "limits": [{**LIMIT, "scope": ["user", "team"]}]}, r"\(budget\)\.limits\.0\.scope"),
        ({"policy": "budget", "limits": [{**LIMIT, "action": "downgrade"}]}, r"limits\.0\.downgrade_to: .*required"),
        ({"policy": "budget", "limits": [{**LIMIT, "downgrade_to": "x"}]}, r"limits\.0\.downgrade_to: .*only with"),
        ({"policy": "budget", "limits": [LIMIT, LIMIT]}, r"\(budget\)\.limits: .*unique: daily"),
        ({"policy": "budget", "limits": [{**LIMIT, "sope": "user"}]}, r"\(budget\)\.limits\.0\.sope: Extra inputs"),
        (
            {"policy": "budget", "limits": [LIMIT], "unknown_cost": "count_tokens"},
            r"\(budget\)\.unknown_usd_per_million_tokens: .*required with unknown_cost count_tokens",
        ),
        (
            {"policy": "test_policies_chain:ExplodingPolicy"},
            r"policies\.0 \(test_policies_chain:ExplodingPolicy\): cannot start",
        ),
    ],
)
def test_config_errors_name_the_policy_and_the_key(entry: dict[str, Any], fragment: str) -> None:
    config = parse_config({"policies": [{"policy": "deny_tools"}, entry]})
    with pytest.raises(ConfigError, match=fragment.replace(r"policies\.0", r"policies\.1")):
        build_chain(config.policies)


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"policy": "replace", "on_error": "ignore"}, "policies.0.on_error"),
        ({"policy": "replace", "timeout_s": 0}, "policies.0.timeout_s"),
        ({"policy": "replace", "timeout_s": "soon"}, "policies.0.timeout_s"),
        ({"on_error": "allow"}, "policies.0.policy"),
    ],
)
def test_chain_keys_are_validated_with_the_config(entry: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config({"policies": [entry]})


def test_repeated_policies_get_distinct_names() -> None:
    chain = chain_of(*tags(3))
    assert [e.name for e in chain.entries] == ["tag", "tag#2", "tag#3"]
