"""The request-side built-ins (`redact`, `model_rewrite`, `system_prompt`) and the rules of
`deny_tools`, on native requests of both dialects."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_fixtures import chain_of, context

from interlock.detectors import DETECTORS
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, ReplaceWithText
from interlock.secrets import Scrubber
from policies.builtin.tool_text import MAX_ARGUMENT_CHARS, blocked_notice

SECRETS = {
    "openai_key": "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4",
    "anthropic_key": "sk-ant-api03-" + "x" * 40,
    "github_token": "ghp_" + "a" * 36,
    "slack_token": "xoxb-1234567890-abcdef",
    "google_api_key": "AIza" + "B" * 35,
    "stripe_key": "sk_live_" + "0" * 24,
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "email": "jane.doe@example.org",
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
}


def anthropic_request(text: str) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "system": [{"type": "text", "text": f"system {text}"}],
        "messages": [
            {"role": "user", "content": f"user {text}"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {"p": "x"}}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": f"result {text}"},
                    {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": text}]},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                    {"type": "text", "text": f"block {text}"},
                ],
            },
        ],
    }


def openai_request(text: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "developer", "content": f"dev {text}"},
            {
                "role": "user",
                "content": [{"type": "text", "text": f"part {text}"}, {"type": "image_url", "image_url": {"url": "x"}}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": f"tool {text}"},
        ],
    }


REQUESTS = {"anthropic-messages": anthropic_request, "openai-chat": openai_request}
TEXTS_IN = {"anthropic-messages": 5, "openai-chat": 3}  # how many texts each request carries


@pytest.mark.parametrize("detector", sorted(SECRETS))
@pytest.mark.parametrize("dialect", sorted(REQUESTS))
async def test_redact_scrubs_every_text_of_the_request(dialect: str, detector: str) -> None:
    secret = SECRETS[detector]
    request = REQUESTS[dialect](f"my value is {secret} ok")
    original = copy.deepcopy(request)
    ctx = context(dialect)
    edited = await chain_of({"policy": "redact"}).request(ctx, request)
    assert request == original  # the client's request is not modified in place
    assert secret not in repr(edited)
    assert repr(edited).count(f"[REDACTED:{detector}]") == TEXTS_IN[dialect]
    assert edited == REQUESTS[dialect](f"my value is [REDACTED:{detector}] ok")
    (event,) = ctx.events
    assert (event.policy, event.action, event.details) == (
        "redact",
        "redacted",
        {"counts": {detector: TEXTS_IN[dialect]}},
    )


async def test_redact_counts_each_detector_and_custom_patterns() -> None:
    text = f"{SECRETS['email']} and {SECRETS['aws_access_key_id']}, ticket ACME-1234, again {SECRETS['email']}"
    chain = chain_of({"policy": "redact", "patterns": {"ticket": r"ACME-\d+"}, "replacement": "<{name}>"})
    ctx = context("openai-chat")
    edited = await chain.request(ctx, {"model": "m", "messages": [{"role": "user", "content": text}]})
    assert edited["messages"][0]["content"] == "<email> and <aws_access_key_id>, ticket <ticket>, again <email>"
    assert ctx.events[0].details["counts"] == {"email": 2, "aws_access_key_id": 1, "ticket": 1}
    assert ctx.events[0].reason == "4 item(s) scrubbed from the request"


async def test_redact_only_the_chosen_detectors_and_nothing_when_clean() -> None:
    chain = chain_of({"policy": "redact", "detectors": ["email"]})
    ctx = context("openai-chat")
    request = {"model": "m", "messages": [{"role": "user", "content": f"{SECRETS['aws_access_key_id']} only"}]}
    assert await chain.request(ctx, request) is request
    assert ctx.events == []


@pytest.mark.parametrize(
    ("mapping", "requested", "final"),
    [
        ({"gpt-4o": "gpt-4o-mini"}, "gpt-4o", "gpt-4o-mini"),
        ({"claude-opus-*": "claude-haiku-4-5"}, "claude-opus-4-1", "claude-haiku-4-5"),
        ({"gpt-4o": "x", "gpt-*": "y"}, "gpt-4o", "x"),  # an exact name wins over globs
        ({"gpt-*": "y"}, "claude-sonnet-4-6", None),
        ({"gpt-4o-mini": "gpt-4o-mini"}, "gpt-4o-mini", None),
    ],
)
async def test_model_rewrite(mapping: dict[str, str], requested: str, final: str | None) -> None:
    ctx = context("openai-chat")
    request = {"model": requested, "messages": []}
    edited = await chain_of({"policy": "model_rewrite", "map": mapping}).request(ctx, request)
    if final is None:
        assert edited is request
        assert ctx.events == []
    else:
        assert edited == {"model": final, "messages": []}
        (event,) = ctx.events
        assert event.details == {"side": "request", "model_from": requested, "model_to": final}


@pytest.mark.parametrize(
    ("request_system", "position", "expected"),
    [
        (None, "append", "RULE"),
        ("You help.", "append", "You help.\n\nRULE"),
        ("You help.", "prepend", "RULE\n\nYou help."),
        (
            [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}],
            "append",
            [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "RULE"}],
        ),
        ([{"type": "text", "text": "A"}], "prepend", [{"type": "text", "text": "RULE"}, {"type": "text", "text": "A"}]),
    ],
)
async def test_system_prompt_anthropic(request_system: Any, position: str, expected: Any) -> None:
    request: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if request_system is not None:
        request["system"] = request_system
    chain = chain_of({"policy": "system_prompt", "text": "RULE", "position": position})
    edited = await chain.request(context("anthropic-messages"), request)
    assert edited["system"] == expected
    assert edited["messages"] == request["messages"]


@pytest.mark.parametrize(
    ("messages", "position", "expected"),
    [
        (
            [{"role": "user", "content": "hi"}],
            "append",
            [{"role": "system", "content": "RULE"}, {"role": "user", "content": "hi"}],
        ),
        (
            [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
            "append",
            [{"role": "system", "content": "S\n\nRULE"}, {"role": "user", "content": "hi"}],
        ),
        (
            [{"role": "developer", "content": [{"type": "text", "text": "D"}]}],
            "prepend",
            [{"role": "developer", "content": [{"type": "text", "text": "RULE"}, {"type": "text", "text": "D"}]}],
        ),
    ],
)
async def test_system_prompt_openai(messages: list[Any], position: str, expected: list[Any]) -> None:
    chain = chain_of({"policy": "system_prompt", "text": "RULE", "position": position})
    ctx = context("openai-chat")
    edited = await chain.request(ctx, {"model": "m", "messages": messages})
    assert edited["messages"] == expected
    assert [e.action for e in ctx.events] == ["modified"]


@pytest.mark.parametrize(
    ("arguments", "blocked"),
    [
        ({"command": "rm -rf /"}, True),
        ({"command": "sudo rm -rf / "}, True),
        ({"command": "rm -rf ./build"}, False),
        ({"command": "git push --force-with-lease"}, True),
        ({"command": "git push origin main"}, False),
        ('{"command": "rm -rf /', True),  # unparseable arguments are matched as text
    ],
)
async def test_deny_tools_argument_rules(arguments: Any, blocked: bool) -> None:
    chain = chain_of(
        {
            "policy": "deny_tools",
            "rules": [{"tool": "Bash", "pattern": r"rm -rf /(\s|\"|$)"}, {"pattern": "push --force"}],
        }
    )
    decision = await chain.tool_call(context("anthropic-messages"), ToolCall("t1", "Bash", arguments))
    assert isinstance(decision, ReplaceWithText) == blocked
    other_tool = await chain.tool_call(context("anthropic-messages"), ToolCall("t2", "Write", {"command": "rm -rf /"}))
    assert isinstance(other_tool, Keep)


def test_blocked_notice_is_readable_and_bounded() -> None:
    notice = blocked_notice("Bash", {"command": "rm -rf /", "note": "日本"}, "recursive delete")
    assert notice.startswith("⛔ Interlock blocked the tool call `Bash`: recursive delete\n")
    assert '{\n  "command": "rm -rf /",\n  "note": "日本"\n}' in notice
    long = blocked_notice("Write", {"content": "x" * 5000}, "too long")
    assert len(long) < MAX_ARGUMENT_CHARS + 200
    assert "more characters)" in long


FRAGMENTS = [*SECRETS.values(), "sk-", "AKIA", "@x.io", "a@b", "-----BEGIN ", "eyJ", "_live_", " ", "x", "\n", "ghp_"]


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.sampled_from(FRAGMENTS), max_size=12))
async def test_redact_pre_checks_never_skip_a_detector_that_matches(pieces: list[str]) -> None:
    """The quick pre-checks only skip work: the result is that of all detectors at once."""
    text = "".join(pieces)
    everything = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in DETECTORS.items()))
    expected = everything.sub(lambda m: f"[REDACTED:{m.lastgroup}]", text)
    request = {"model": "m", "messages": [{"role": "user", "content": text}]}
    edited = await chain_of({"policy": "redact"}).request(context("openai-chat"), request)
    assert edited["messages"][0]["content"] == expected


async def test_redact_record_only_leaves_the_request_and_scrubs_the_record() -> None:
    options = {"policy": "redact", "patterns": {"ticket": r"ACME-\d+"}, "mode": "record_only"}
    chain = chain_of(options)
    ctx = context("openai-chat")
    text = f"{SECRETS['aws_access_key_id']} ACME-42 {SECRETS['email']}"
    request = {"model": "m", "messages": [{"role": "user", "content": text}]}
    assert await chain.request(ctx, request) is request
    assert ctx.events == []
    scrubbed = Scrubber([], chain.record_detectors)(text)
    assert scrubbed == "<redacted:aws_access_key_id> <redacted:ticket> <redacted:email>"
