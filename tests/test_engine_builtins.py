"""Each built-in policy through the engine, streamed and not, both dialects, every scenario.

For every output: the protocol checker finds nothing, the official SDK accumulates or
parses it, and it says what the policy promised (text replaced, tool calls removed with a
readable notice, stop reason corrected). A chain that changes nothing leaves the stream
byte-identical, and so do request-only policies.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_fixtures import (
    DIALECTS,
    NoopPolicy,
    SleepyPolicy,
    body_violations,
    chain_of,
    fixture_path,
    police_body,
    police_stream,
    sdk_summary,
    split_at,
    stream_violations,
)
from wire_scenarios import (
    SCENARIOS,
    Scenario,
    ScenarioToolCall,
    json_for,
    sse_for,
)

from interlock.policy.chain import PolicyChain

MODEL = "test-model"
REPLACE_RULES: list[dict[str, Any]] = [
    {"find": "mock", "replace": "MOCK"},
    {"find": r"\b[Hh]\w{1,8}", "regex": True, "replace": r"<\g<0>>"},
    {"find": "日本", "replace": "Japan"},
    {"find": "WEATHER", "ignore_case": True, "replace": "climate"},
]
CONFIGS: dict[str, list[dict[str, Any]]] = {
    "replace": [{"policy": "replace", "rules": REPLACE_RULES}],
    "deny_tools": [{"policy": "deny_tools", "deny": ["get_weather"]}],
    "deny_tools_allow_only": [{"policy": "deny_tools", "allow_only": ["get_weather"]}],
    "deny_tools_rule": [{"policy": "deny_tools", "rules": [{"pattern": "Tokyo|find \\.|rm -rf"}]}],
    "redact": [{"policy": "redact"}],
    "model_rewrite": [{"policy": "model_rewrite", "map": {"*": "cheap-model"}}],
    "system_prompt": [{"policy": "system_prompt", "text": "Be brief."}],
    "all": [
        {"policy": "redact"},
        {"policy": "model_rewrite", "map": {"*": "cheap-model"}},
        {"policy": "system_prompt", "text": "Be brief."},
        {"policy": "replace", "rules": REPLACE_RULES},
        {"policy": "deny_tools", "rules": [{"pattern": "Tokyo|find \\."}]},
    ],
}


def wire(dialect: str, s: Scenario) -> tuple[list[bytes], dict[str, Any]]:
    return sse_for(dialect, s, MODEL), json_for(dialect, s, MODEL)


def replaced(text: str, rules: list[dict[str, Any]]) -> str:
    """The rules applied to the whole text at once, with Python's re."""
    for rule in rules:
        pattern = rule["find"] if rule.get("regex") else re.escape(rule["find"])
        flags = re.IGNORECASE if rule.get("ignore_case") else 0
        replacement = rule["replace"] if rule.get("regex") else rule["replace"].replace("\\", "\\\\")
        text = re.sub(pattern, replacement, text, flags=flags)
    return text


def denied(config: list[dict[str, Any]], call: ScenarioToolCall) -> bool:
    for entry in config:
        if entry["policy"] != "deny_tools":
            continue
        if call.name in entry.get("deny", []):
            return True
        if "allow_only" in entry and call.name not in entry["allow_only"]:
            return True
        if any(re.search(rule["pattern"], call.arguments) for rule in entry.get("rules", [])):
            return True
    return False


def expected(
    dialect: str, s: Scenario, config: list[dict[str, Any]]
) -> tuple[str, list[tuple[str, Any]], list[str], str]:
    """(text before any notice, surviving tool calls, names of blocked tools, stop reason)."""
    text = "".join(s.text)
    for entry in config:
        if entry["policy"] == "replace":
            text = replaced(text, entry["rules"])
    kept = [(c.name, json.loads(c.arguments)) for c in s.tool_calls if not denied(config, c)]
    blocked = [c.name for c in s.tool_calls if denied(config, c)]
    anthropic = dialect == "anthropic-messages"
    if dialect == "openai-responses":  # a response's status says nothing of tool calls
        return text, kept, blocked, "completed"
    if dialect == "gemini":  # the finish reason stays as it came: STOP, with calls or not
        return text, kept, blocked, "STOP"
    if s.tool_calls and not kept:
        stop = "end_turn" if anthropic else "stop"
    elif s.tool_calls:
        stop = "tool_use" if anthropic else "tool_calls"
    else:
        stop = "end_turn" if anthropic else "stop"
    return text, kept, blocked, stop


def assert_result(summary: tuple[str, list[Any], str | None], want: tuple[str, list[Any], list[str], str]) -> None:
    text, tools, stop = summary
    want_text, want_tools, blocked, want_stop = want
    assert text.startswith(want_text)
    notices = text[len(want_text) :]
    assert notices.count("Interlock blocked the tool call") == len(blocked)
    for name in blocked:
        assert f"`{name}`" in notices
    if not blocked:
        assert notices == ""
    assert tools == want_tools
    assert stop == want_stop


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_builtin_policy_keeps_the_protocol_and_does_its_job(dialect: str, config: str, scenario: str) -> None:
    s = SCENARIOS[scenario]
    chunks, body = wire(dialect, s)
    want = expected(dialect, s, CONFIGS[config])

    out, _ = await police_stream(chain_of(*CONFIGS[config]), dialect, chunks)
    assert stream_violations(dialect, out) == []
    assert_result(sdk_summary(dialect, out), want)

    whole, _ = await police_body(chain_of(*CONFIGS[config]), dialect, json.loads(json.dumps(body)))
    assert body_violations(dialect, whole) == []
    assert_result(sdk_summary(dialect, whole), want)


@pytest.mark.parametrize("config", ["redact", "model_rewrite", "system_prompt"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_request_only_policies_do_not_touch_responses(dialect: str, config: str) -> None:
    assert not chain_of(*CONFIGS[config]).touches_responses


NOOP_CHAINS: dict[str, list[dict[str, Any]]] = {
    "noop": [{"policy": fixture_path(NoopPolicy)}],
    "replace_nothing_found": [{"policy": "replace", "rules": [{"find": "no such text anywhere"}]}],
    "deny_nothing_matched": [{"policy": "deny_tools", "deny": ["rm"], "rules": [{"pattern": "git push --force"}]}],
    "async_waits": [{"policy": fixture_path(SleepyPolicy), "seconds": 0.001, "hooks": ["on_text", "on_tool_call"]}],
    "everything_at_once": [
        {"policy": fixture_path(NoopPolicy)},
        {"policy": "replace", "rules": [{"find": "no such text anywhere"}]},
        {"policy": "deny_tools", "deny": ["rm"]},
        {"policy": fixture_path(SleepyPolicy), "seconds": 0.001, "hooks": ["on_text", "on_tool_call"]},
    ],
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("chain", sorted(NOOP_CHAINS))
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_chain_that_changes_nothing_forwards_the_original_bytes(
    dialect: str, chain: str, scenario: str
) -> None:
    chunks, body = wire(dialect, SCENARIOS[scenario])
    out, _ = await police_stream(chain_of(*NOOP_CHAINS[chain]), dialect, chunks)
    assert out == b"".join(chunks)
    whole, _ = await police_body(chain_of(*NOOP_CHAINS[chain]), dialect, json.loads(json.dumps(body)))
    assert whole == body


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_any_split_of_the_upstream_bytes_gives_the_same_output(dialect: str, data: st.DataObject) -> None:
    """mitmproxy hands the stream over in arbitrary chunks (even mid-character)."""
    scenario = data.draw(st.sampled_from(sorted(SCENARIOS)))
    chunks, _ = wire(dialect, SCENARIOS[scenario])
    raw = b"".join(chunks)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=40))
    chain: PolicyChain = chain_of(*CONFIGS["all"])
    reference, _ = await police_stream(chain, dialect, chunks)
    out, _ = await police_stream(chain_of(*CONFIGS["all"]), dialect, split_at(raw, cuts))
    assert out == reference


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Random assistant turns: thinking, text with words the rules look for, tool calls."""
    words = st.sampled_from(["mock", " Hello", " hi", "日本", " weather", "WEATHER", " x", "Tokyo", "\n"])
    text = [draw(words) + draw(words) for _ in range(draw(st.integers(0, 4)))]
    calls = []
    for i in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["get_weather", "Bash", "read_file"]))
        arguments = json.dumps({"q": draw(st.text("ab Tokyo.find", max_size=12))})
        cuts = sorted(draw(st.lists(st.integers(1, len(arguments) - 1), max_size=3)))
        pieces = [arguments[a:b] for a, b in zip([0, *cuts], [*cuts, len(arguments)], strict=True)]
        calls.append(ScenarioToolCall(id=f"r{i}", name=name, argument_pieces=[p for p in pieces if p]))
    thinking = draw(st.lists(st.sampled_from(["hmm", " ok"]), max_size=2))
    return Scenario(model="claude-sonnet-4-5", thinking=thinking, text=text, tool_calls=calls)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=150, deadline=None)
@given(s=scenarios(), config=st.sampled_from(sorted(CONFIGS)))
async def test_random_turns_keep_the_protocol_and_the_promise(dialect: str, s: Scenario, config: str) -> None:
    chunks, body = wire(dialect, s)
    want = expected(dialect, s, CONFIGS[config])
    out, _ = await police_stream(chain_of(*CONFIGS[config]), dialect, chunks)
    assert stream_violations(dialect, out) == []
    assert_result(sdk_summary(dialect, out), want)
    whole, _ = await police_body(chain_of(*CONFIGS[config]), dialect, json.loads(json.dumps(body)))
    assert body_violations(dialect, whole) == []
    assert_result(sdk_summary(dialect, whole), want)
