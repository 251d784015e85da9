"""Tool calls through the engine: parallel calls where some are denied, all denied, and
rules on arguments (`rm -rf /`, `git push --force`), streamed and not, both dialects.

What the client gets is read back with the official SDKs: the surviving calls keep their
ids, names and arguments; each removed call becomes a readable notice (tool name,
pretty-printed arguments, the rule) placed before the surviving calls; the stop reason
becomes `end_turn` / `stop` only when no call survives.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion
from openai.types.responses import Response
from policy_fixtures import (
    DIALECTS,
    anthropic_sdk_message,
    body_violations,
    chain_of,
    gemini_sdk_summary,
    openai_sdk_completion,
    openai_sdk_response,
    police_body,
    police_stream,
    stream_violations,
)
from wire_scenarios import (
    Scenario,
    ScenarioToolCall,
    anthropic_tool_id,
    json_for,
    openai_tool_id,
    sse_for,
)

from interlock.sse import parse_all

MODEL = "test-model"


def bash(stem: str, command: str) -> ScenarioToolCall:
    arguments = json.dumps({"command": command, "description": "run it"})
    third = len(arguments) // 3
    return ScenarioToolCall(
        id=stem, name="Bash", argument_pieces=[arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]
    )


READ = ScenarioToolCall(id="01Read", name="Read", argument_pieces=['{"file_path"', ': "/etc/hosts"}'])
LS = bash("01Ls", "ls -la")
RM = bash("01Rm", "rm -rf / --no-preserve-root")
PUSH = bash("01Push", "git push --force origin main")
DENY_RULES: dict[str, Any] = {
    "policy": "deny_tools",
    "rules": [
        {"tool": "Bash", "pattern": r"rm\s+-[a-zA-Z]*r[a-zA-Z]*f?\s+/(\s|\"|$)", "reason": "recursive delete of /"},
        {"tool": "Bash", "pattern": r"git\s+push\s+.*(--force|-f\b)", "reason": "force push"},
    ],
}


def scenario(*calls: ScenarioToolCall, text: bool = True) -> Scenario:
    return Scenario(text=["I will run", " these now."] if text else [], tool_calls=list(calls))


def wire(dialect: str, s: Scenario) -> tuple[list[bytes], dict[str, Any]]:
    return sse_for(dialect, s, MODEL), json_for(dialect, s, MODEL)


def tool_id(dialect: str, call: ScenarioToolCall) -> str:
    return anthropic_tool_id(call) if dialect == "anthropic-messages" else openai_tool_id(call)


def read_result(dialect: str, out: bytes | dict[str, Any]) -> tuple[list[str], list[tuple[str, str, Any]], Any]:
    """(text pieces in order, tool calls (id, name, arguments), stop reason) as the SDK sees them."""
    if dialect == "anthropic-messages":
        message = anthropic_sdk_message(out) if isinstance(out, bytes) else Message.model_validate(out)
        kinds = [block.type for block in message.content]
        assert kinds == sorted(kinds, key=lambda k: k == "tool_use"), kinds  # text never after tool_use
        texts = [b.text for b in message.content if b.type == "text"]
        calls: list[tuple[str, str, Any]] = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
        return texts, calls, message.stop_reason
    if dialect == "gemini":
        payloads = [e.json() for e in parse_all(out)] if isinstance(out, bytes) else [out]
        got = [p for c in payloads if isinstance(c, dict) for p in gemini_parts_of(c)]
        texts = [p["text"] for p in got if p.get("text") and not p.get("thought")]
        calls = [
            (p["functionCall"]["id"], p["functionCall"]["name"], p["functionCall"]["args"])
            for p in got
            if "functionCall" in p
        ]
        assert gemini_sdk_summary(out)[1] == [(name, args) for _, name, args in calls]  # the SDK reads the same
        return texts, calls, gemini_sdk_summary(out)[2]
    if dialect == "openai-responses":
        response = openai_sdk_response(out) if isinstance(out, bytes) else Response.model_validate(out)
        texts = [
            part.text
            for item in response.output
            if item.type == "message"
            for part in item.content
            if part.type == "output_text"
        ]
        calls = [(i.call_id, i.name, json.loads(i.arguments)) for i in response.output if i.type == "function_call"]
        return texts, calls, response.status
    completion = openai_sdk_completion(out) if isinstance(out, bytes) else ChatCompletion.model_validate(out)
    choice = completion.choices[0]
    texts = [choice.message.content] if choice.message.content else []
    calls = [
        (c.id, c.function.name, json.loads(c.function.arguments))
        for c in choice.message.tool_calls or []
        if c.type == "function"
    ]
    return texts, calls, choice.finish_reason


async def both(config: dict[str, Any], dialect: str, s: Scenario) -> list[tuple[list[str], list[Any], Any]]:
    """The SDK's view of the streamed and the non-streamed result, both protocol-checked."""
    chunks, body = wire(dialect, s)
    out, _ = await police_stream(chain_of(config), dialect, chunks)
    assert stream_violations(dialect, out) == []
    whole, _ = await police_body(chain_of(config), dialect, json.loads(json.dumps(body)))
    assert body_violations(dialect, whole) == []
    return [read_result(dialect, out), read_result(dialect, whole)]


def expected_calls(dialect: str, *calls: ScenarioToolCall) -> list[tuple[str, str, Any]]:
    return [(tool_id(dialect, c), c.name, json.loads(c.arguments)) for c in calls]


STOP = {
    "anthropic-messages": ("tool_use", "end_turn"),
    "openai-chat": ("tool_calls", "stop"),
    "openai-responses": ("completed", "completed"),  # a response's status says nothing of tool calls
    "gemini": ("STOP", "STOP"),  # Gemini ends a turn with calls with STOP too
}


def gemini_parts_of(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    candidates = chunk.get("response", chunk).get("candidates") or [{}]
    parts: list[dict[str, Any]] = (candidates[0].get("content") or {}).get("parts") or []
    return parts


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_one_parallel_call_denied_one_allowed(dialect: str) -> None:
    for texts, calls, stop in await both(DENY_RULES, dialect, scenario(LS, RM)):
        joined = "".join(texts)
        assert joined.startswith("I will run these now.")
        assert "Interlock blocked the tool call `Bash`: recursive delete of /" in joined
        assert '"command": "rm -rf / --no-preserve-root"' in joined  # pretty-printed arguments
        assert "ls -la" not in joined
        assert calls == expected_calls(dialect, LS)
        assert stop == STOP[dialect][0]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_the_allowed_call_keeps_its_place_whichever_comes_first(dialect: str) -> None:
    for _, calls, stop in await both(DENY_RULES, dialect, scenario(RM, READ, PUSH, LS, text=False)):
        assert calls == expected_calls(dialect, READ, LS)
        assert stop == STOP[dialect][0]


@pytest.mark.parametrize("text", [True, False])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_all_calls_denied_ends_the_turn(dialect: str, text: bool) -> None:
    for texts, calls, stop in await both(DENY_RULES, dialect, scenario(RM, PUSH, text=text)):
        joined = "".join(texts)
        assert calls == []
        assert stop == STOP[dialect][1]
        assert "recursive delete of /" in joined
        assert "force push" in joined
        assert joined.index("recursive delete") < joined.index("force push")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_deny_by_name_and_allow_only(dialect: str) -> None:
    by_name = {"policy": "deny_tools", "deny": ["Ba*"]}
    for texts, calls, _ in await both(by_name, dialect, scenario(LS, READ)):
        assert calls == expected_calls(dialect, READ)
        assert "tool `Bash` is denied (rule: deny 'Ba*')" in "".join(texts)
    only = {"policy": "deny_tools", "allow_only": ["Bash"]}
    for texts, calls, _ in await both(only, dialect, scenario(LS, READ)):
        assert calls == expected_calls(dialect, LS)
        assert "tool `Read` is not in allow_only ['Bash']" in "".join(texts)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_harmless_bash_is_untouched(dialect: str) -> None:
    chunks, _ = wire(dialect, scenario(LS, READ))
    out, ctx = await police_stream(chain_of(DENY_RULES), dialect, chunks)
    assert out == b"".join(chunks)
    assert ctx.events == []


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_each_block_is_a_policy_event(dialect: str) -> None:
    chunks, _ = wire(dialect, scenario(RM, LS, PUSH))
    _, ctx = await police_stream(chain_of(DENY_RULES), dialect, chunks)
    assert [(e.policy, e.action, e.reason, e.details["tool_call_id"]) for e in ctx.events] == [
        ("deny_tools", "blocked", "recursive delete of /", tool_id(dialect, RM)),
        ("deny_tools", "blocked", "force push", tool_id(dialect, PUSH)),
    ]
    assert ctx.events[0].details["arguments"] == json.loads(RM.arguments)
