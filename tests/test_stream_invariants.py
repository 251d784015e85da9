"""The stream rewriters keep their promises for any stream, any end, any chain (property tests).

Hypothesis draws, for every dialect (Gemini included: its calls arrive whole, with ids
here so the checks can name them): an assistant turn in the real wire shapes of
`wire_scenarios` (text, 0-3 tool calls whose arguments are cut anywhere; OpenAI calls one
after the other or interleaved by index), keep-alives between events (SSE comments, and
Anthropic pings), an end (clean; an error event at any event boundary before the message
end, and for OpenAI an early `[DONE]`; truncation at any byte; the client gone: feeding stops at any byte and only what was
emitted so far is checked), a split of the bytes into chunks, and a chain (deny_tools by
name and by argument rule, an async policy that waits, a judge-like policy that waits and
blocks by argument, replace and a redact-like replace on text, none at all).

What the client got is read by a parser written here, independent of the codecs, and:
- it holds no tool call the policies did not allow, and each call it holds has exactly
  the arguments upstream sent; every policy that recorded a decision saw the call's
  complete arguments (a `Witness` at the end of each tool chain sees every allowed call);
- after any end but the client leaving, it holds every complete call the policies allowed,
  in order, and a notice for each one they blocked; incomplete calls never appear;
- no delta repeats the role, or a call's id, type or name (OpenAI); block indices count up
  from 0 (Anthropic); output indices count up from 0, deltas only for open items and
  sequence numbers increase (Responses);
- when nothing was blocked or changed it is byte-identical to what upstream sent (a cut-off
  last event is dropped when tool calls are held), a prefix of it while the stream is cut
  short;
- a clean end passes the protocol checker and the official SDK reads the promised text,
  calls and stop reason.

Below the property test, one example per hole of issue 8 (role repeated, interleaved
deltas decided early, held calls leaking at a failed end).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from policy_fixtures import (
    DIALECTS,
    SleepyPolicy,
    chain_of,
    context,
    fixture_path,
    policed_stream,
    sdk_summary,
    split_at,
    stream_violations,
)
from wire_scenarios import (
    SCENARIOS,
    Scenario,
    ScenarioToolCall,
    anthropic_sse,
    anthropic_tool_id,
    openai_chat_sse,
    openai_responses_sse,
    openai_tool_id,
    sse_for,
)

from interlock.neutral import ToolCall
from interlock.policy.base import Keep, Policy, PolicyContext, ReplaceWithText, ToolDecision
from interlock.policy.chain import PolicyChain
from policies.builtin.tool_text import blocked_notice

ANTHROPIC = "anthropic-messages"
RESPONSES = "openai-responses"
GEMINI = "gemini"
NOTICE = "Interlock blocked the tool call"


# --- policies ------------------------------------------------------------------------------


class JudgeLike(Policy):
    """Stands in for the judge: waits (as a network call would), then blocks calls whose
    arguments mention `rm -rf` or `/etc`. Records what it judged."""

    name = "judge_like"

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        await asyncio.sleep(0.001)
        text = json.dumps(call.arguments)
        ctx.record(self.instance_name, "judged", tool_call_id=call.id, tool_name=call.name, arguments=call.arguments)
        if "rm -rf" in text or "/etc" in text:
            why = "the judge thinks it is dangerous"
            return ReplaceWithText(blocked_notice(call.name, call.arguments, why), why)
        return Keep(call)


class Witness(Policy):
    """Last in a chain: records every call the policies before it allowed, as it saw it."""

    name = "witness"

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        ctx.record(self.instance_name, "witnessed", tool_call_id=call.id, tool_name=call.name, arguments=call.arguments)
        return Keep(call)


def _never(name: str, arguments: str) -> bool:
    return False


# Tool chains: their entries and which calls they block (name, arguments as JSON text).
TOOL_CHAINS: dict[str, tuple[list[dict[str, Any]], Any]] = {
    "deny_name": ([{"policy": "deny_tools", "deny": ["get_weather"]}], lambda name, _: name == "get_weather"),
    "deny_rule": ([{"policy": "deny_tools", "rules": [{"pattern": "rm -rf"}]}], lambda _, args: "rm -rf" in args),
    "waits": (
        [{"policy": fixture_path(SleepyPolicy), "seconds": 0.001, "hooks": ["on_text", "on_tool_call"]}],
        _never,
    ),
    "judge": ([{"policy": "test_stream_invariants:JudgeLike"}], lambda _, args: "rm -rf" in args or "/etc" in args),
}
# Text chains: their entries and the rule applied to the whole text (pattern, replacement).
TEXT_CHAINS: dict[str, tuple[list[dict[str, Any]], tuple[str, str]]] = {
    "replace": ([{"policy": "replace", "rules": [{"find": "mock", "replace": "MOCK"}]}], ("mock", "MOCK")),
    "redact": (
        [{"policy": "replace", "rules": [{"find": r"\d{3}-\d{4}", "regex": True, "replace": "[REDACTED]"}]}],
        (r"\d{3}-\d{4}", "[REDACTED]"),
    ),
}
WITNESS = {"policy": "test_stream_invariants:Witness"}


@dataclass
class Chain:
    text: str | None
    tools: list[str]

    def build(self) -> PolicyChain:
        entries = list(TEXT_CHAINS[self.text][0]) if self.text else []
        for name in self.tools:
            entries += TOOL_CHAINS[name][0]
        return chain_of(*entries, *([WITNESS] if self.tools else []))

    @property
    def holds(self) -> bool:
        return bool(self.tools)

    def blocks(self, call: ScenarioToolCall) -> bool:
        return any(TOOL_CHAINS[name][1](call.name, call.arguments) for name in self.tools)

    def rewrite(self, text: str) -> str:
        if self.text is None:
            return text
        pattern, replacement = TEXT_CHAINS[self.text][1]
        return re.sub(pattern, replacement, text)


# --- upstream streams ------------------------------------------------------------------------


def _payload(raw: bytes) -> Any:
    """The JSON of one event's data lines (None for comments, [DONE], cut-off JSON)."""
    lines = [line[5:].lstrip() for line in raw.decode("utf-8", "replace").split("\n") if line.startswith("data:")]
    if not lines:
        return None
    try:
        return json.loads("\n".join(lines))
    except ValueError:
        return None


@dataclass
class Upstream:
    """An upstream stream as events, with where each call starts and completes."""

    dialect: str
    events: list[bytes]
    calls: list[ScenarioToolCall]
    first: dict[int, int] = field(default_factory=dict)  # call -> event where it first appears
    done: dict[int, int] = field(default_factory=dict)  # call -> event that completes its arguments
    texts: list[tuple[int, str]] = field(default_factory=list)  # (event, text delta)
    message_end: int = 0  # the finish chunk / message_delta
    ends: list[int] = field(default_factory=list)  # byte offset where each event ends
    # Where each event is whole for an SSE reader: one byte early for `\r\n\r\n` (Gemini's
    # frames), whose last `\r` already ends the blank line that dispatches it.
    complete: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        offset, blocks = 0, dict[Any, int]()
        for position, raw in enumerate(self.events):
            offset += len(raw)
            self.ends.append(offset)
            self.complete.append(offset - 1 if raw.endswith(b"\r\n\r\n") else offset)
            payload = _payload(raw)
            if not isinstance(payload, dict):
                continue
            if self.dialect == GEMINI:  # a call arrives whole; the finish rides on the last chunk
                for candidate in payload.get("candidates") or ():
                    for part in (candidate.get("content") or {}).get("parts") or ():
                        if "functionCall" in part:
                            self.first[len(self.first)] = self.done[len(self.done)] = position
                        elif part.get("text") and not part.get("thought"):
                            self.texts.append((position, part["text"]))
                    if candidate.get("finishReason"):
                        self.message_end = position
                continue
            if self.dialect == RESPONSES:
                kind, item = payload.get("type"), payload.get("item") or {}
                if kind == "response.output_item.added" and item.get("type") == "function_call":
                    blocks[payload["output_index"]] = len(blocks)
                    self.first[blocks[payload["output_index"]]] = position
                elif kind == "response.output_item.done" and payload["output_index"] in blocks:
                    self.done[blocks[payload["output_index"]]] = position
                elif kind == "response.output_text.delta":
                    self.texts.append((position, payload["delta"]))
                elif kind == "response.completed":
                    self.message_end = position
                continue
            if self.dialect == ANTHROPIC:
                kind, index = payload.get("type"), payload.get("index")
                if kind == "content_block_start" and payload["content_block"]["type"] == "tool_use":
                    blocks[index] = len(blocks)
                    self.first[blocks[index]] = position
                elif kind == "content_block_stop" and index in blocks:
                    self.done[blocks[index]] = position
                elif kind == "content_block_delta" and payload["delta"].get("type") == "text_delta":
                    self.texts.append((position, payload["delta"]["text"]))
                elif kind == "message_delta":
                    self.message_end = position
                continue
            for choice in payload.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    self.texts.append((position, delta["content"]))
                for tool_delta in delta.get("tool_calls") or ():
                    self.first.setdefault(tool_delta["index"], position)
                    if tool_delta.get("function", {}).get("arguments"):
                        self.done[tool_delta["index"]] = position
                if choice.get("finish_reason") and not self.message_end:
                    self.message_end = position

    @property
    def raw(self) -> bytes:
        return b"".join(self.events)

    def wire_id(self, call: ScenarioToolCall) -> str:
        return anthropic_tool_id(call) if self.dialect == ANTHROPIC else openai_tool_id(call)


@dataclass
class End:
    """How the stream ends: `kind` and where (an event position, or a byte offset)."""

    kind: str  # clean, error, done_early (OpenAI's [DONE] before the finish chunk), truncate, gone
    at: int = 0

    def delivered(self, up: Upstream) -> bytes:
        if self.kind == "clean":
            return up.raw
        if self.kind == "error":
            return b"".join(up.events[: self.at]) + error_event(up.dialect)
        if self.kind == "done_early":
            return b"".join(up.events[: self.at]) + b"data: [DONE]\n\n"
        return up.raw[: self.at]

    def received(self, up: Upstream, position: int) -> bool:
        """Upstream's event at `position` arrived whole (before the error, or the cut)."""
        if self.kind == "clean":
            return True
        if self.kind in ("error", "done_early"):
            return position < self.at
        return up.complete[position] <= self.at

    def whole_events(self, up: Upstream) -> bytes:
        """The delivered bytes without a cut-off last event."""
        if self.kind in ("truncate", "gone"):
            whole = [min(end, self.at) for end, done in zip(up.ends, up.complete, strict=True) if done <= self.at]
            return up.raw[: max([0, *whole])]
        return self.delivered(up)


def error_event(dialect: str) -> bytes:
    if dialect == GEMINI:
        return b'data: {"error": {"code": 503,"message": "Overloaded","status": "UNAVAILABLE"}}\r\n\r\n'
    if dialect == RESPONSES:  # numbered above any event of the drawn streams
        return b'event: error\ndata: {"type":"error","sequence_number":100000,"code":"server_error","message":"Overloaded","param":null}\n\n'
    if dialect == ANTHROPIC:
        return b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    return b'data: {"error":{"message":"Overloaded","type":"server_error","param":null,"code":null}}\n\n'


WORDS = ["Hello", " mock", " world", " 555-1234", " ok", "\n", " 日本", " mo", "ck"]
COMMANDS = ["ls -la", "rm -rf /", "cat /etc/hosts", "echo mock", "git status"]
NAMES = ["Bash", "get_weather", "read_file"]
KEEPALIVES = {
    ANTHROPIC: [b'event: ping\ndata: {"type": "ping"}\n\n', b": keep-alive\n\n"],
    "openai-chat": [b": keep-alive\n\n", b": OPENROUTER PROCESSING\n\n"],
    RESPONSES: [b": keep-alive\n\n"],
    GEMINI: [b": keep-alive\n\n"],
}


@st.composite
def tool_calls(draw: st.DrawFn) -> list[ScenarioToolCall]:
    calls = []
    for number in range(draw(st.integers(0, 3))):
        arguments: dict[str, Any] = {"command": draw(st.sampled_from(COMMANDS))}
        if draw(st.booleans()):
            arguments["timeout"] = draw(st.integers(1, 600))
        text = json.dumps(arguments)
        cuts = sorted(set(draw(st.lists(st.integers(1, len(text) - 1), max_size=6))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        calls.append(
            ScenarioToolCall(
                id=f"{number}p{draw(st.integers(0, 99))}", name=draw(st.sampled_from(NAMES)), argument_pieces=pieces
            )
        )
    return calls


@st.composite
def upstreams(draw: st.DrawFn, dialect: str) -> Upstream:
    scenario = Scenario(
        model="claude-sonnet-4-5",
        thinking=draw(st.lists(st.sampled_from(["hmm", " ok"]), max_size=2)) if dialect != "openai-chat" else [],
        text=draw(st.lists(st.sampled_from(WORDS), max_size=4)),
        tool_calls=draw(tool_calls()),
        interleave_tool_calls=draw(st.booleans()),
        ping_between_blocks=draw(st.booleans()),
    )
    if dialect == ANTHROPIC:
        events = anthropic_sse(scenario, "m")
    elif dialect == GEMINI:
        events = sse_for(GEMINI, scenario, "m")
    elif dialect == RESPONSES:
        events = openai_responses_sse(scenario, "m")
    else:
        events = openai_chat_sse(scenario, "m", include_usage=draw(st.booleans()))
    gaps = st.lists(st.integers(1, len(events) - 1), max_size=4) if len(events) > 1 else st.just([])
    for position in sorted(draw(gaps), reverse=True):
        events.insert(position, draw(st.sampled_from(KEEPALIVES[dialect])))
    return Upstream(dialect, events, scenario.tool_calls)


@st.composite
def ends(draw: st.DrawFn, up: Upstream) -> End:
    kinds = ["clean", "truncate", "gone"] + (["done_early"] if up.dialect == "openai-chat" else [])
    kinds += ["error"] if up.message_end >= 1 else []  # a one-chunk Gemini turn has no boundary before its end
    kind = draw(st.sampled_from(kinds))
    if kind == "clean":
        return End(kind)
    if kind in ("error", "done_early"):
        return End(kind, draw(st.integers(1, up.message_end)))
    return End(kind, draw(st.integers(0, len(up.raw))))


chains = st.builds(
    Chain,
    text=st.sampled_from([None, *TEXT_CHAINS]),
    tools=st.lists(st.sampled_from(sorted(TOOL_CHAINS)), unique=True, max_size=2),
)


# --- what the client got, read independently ------------------------------------------------


@dataclass
class ClientCall:
    id: Any
    name: Any
    arguments: str = ""


@dataclass
class Received:
    text: str = ""
    calls: list[ClientCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def client_events(body: bytes) -> list[Any]:
    """The payloads a client dispatches: events ended by a blank line (a cut-off last one
    is never dispatched), comments skipped."""
    *whole, _ = body.split(b"\n\n")
    return [payload for raw in whole if (payload := _payload(raw + b"\n\n")) is not None]


def read_openai(body: bytes) -> Received:
    got = Received()
    calls: dict[int, ClientCall] = {}
    roles = 0
    for payload in client_events(body):
        for choice in payload.get("choices") or () if isinstance(payload, dict) else ():
            delta = choice.get("delta") or {}
            roles += delta.get("role") is not None
            got.text += delta.get("content") or ""
            for tool_delta in delta.get("tool_calls") or ():
                index, function = tool_delta["index"], tool_delta.get("function") or {}
                fields = (tool_delta.get("id"), tool_delta.get("type"), function.get("name"))
                if index not in calls:
                    if index != len(calls):
                        got.problems.append(f"tool call index {index} after {len(calls)} calls")
                    if None in fields:
                        got.problems.append(f"the first delta of call {index} lacks id, type or name")
                    calls[index] = ClientCall(tool_delta.get("id"), function.get("name"))
                elif any(value is not None for value in fields):
                    got.problems.append(f"a later delta of call {index} repeats its id, type or name: {fields}")
                calls[index].arguments += function.get("arguments") or ""
    if roles > 1:
        got.problems.append(f"the role came {roles} times")
    got.calls = list(calls.values())
    return got


def read_anthropic(body: bytes) -> Received:
    got = Received()
    blocks: dict[Any, str] = {}  # index -> block type
    tools: dict[Any, ClientCall] = {}
    for payload in client_events(body):
        kind = payload.get("type") if isinstance(payload, dict) else None
        index: Any = payload.get("index") if isinstance(payload, dict) else None
        if kind == "content_block_start":
            if index != len(blocks):
                got.problems.append(f"block index {index} after {len(blocks)} blocks")
            block = payload["content_block"]
            if block["type"] != "tool_use" and tools:
                got.problems.append(f"a {block['type']} block after a tool_use block")
            blocks[index] = block["type"]
            if block["type"] == "tool_use":
                tools[index] = ClientCall(block.get("id"), block.get("name"))
                got.calls.append(tools[index])
        elif kind == "content_block_delta":
            delta = payload["delta"]
            if index not in blocks:
                got.problems.append(f"a delta for block {index}, never started")
            elif delta.get("type") == "text_delta":
                got.text += delta["text"]
            elif delta.get("type") == "input_json_delta" and index in tools:
                tools[index].arguments += delta["partial_json"]
    return got


def read_responses(body: bytes) -> Received:
    got = Received()
    items: dict[int, tuple[Any, ClientCall | None]] = {}  # output index -> (item id, call)
    closed: set[int] = set()
    last = -1
    for payload in client_events(body):
        if not isinstance(payload, dict):
            continue
        kind, index = payload.get("type"), payload.get("output_index")
        if payload.get("sequence_number", last + 1) <= last:
            got.problems.append(f"sequence_number {payload.get('sequence_number')} after {last}")
        last = payload.get("sequence_number", last)
        if kind == "response.output_item.added":
            item = payload["item"]
            if index != len(items):
                got.problems.append(f"output index {index} after {len(items)} items")
            call = ClientCall(item.get("call_id"), item.get("name")) if item["type"] == "function_call" else None
            items[len(items)] = (item.get("id"), call)
            if call is not None:
                got.calls.append(call)
        elif index is not None:
            if index not in items or index in closed:
                got.problems.append(f"{kind} for output index {index}, which is not open")
                continue
            item_id, call = items[index]
            if kind == "response.output_item.done":
                closed.add(index)
                if payload["item"].get("id") != item_id:
                    got.problems.append(f"item {index} done with another id")
            elif payload.get("item_id") != item_id:
                got.problems.append(f"{kind} for item {index} names another item")
            elif kind == "response.output_text.delta":
                got.text += payload["delta"]
            elif kind == "response.function_call_arguments.delta" and call is not None:
                call.arguments += payload["delta"]
    return got


def read_gemini(body: bytes) -> Received:
    got = Received()
    finished = 0
    # SSE ends a line at \r\n, \r or \n: a frame cut after `\r\n\r` is already whole.
    for payload in client_events(body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")):
        for candidate in payload.get("candidates") or () if isinstance(payload, dict) else ():
            if finished:
                got.problems.append("a chunk after the finishReason")
            finished += candidate.get("finishReason") is not None
            for part in (candidate.get("content") or {}).get("parts") or ():
                if "functionCall" in part:
                    call = part["functionCall"]
                    got.calls.append(ClientCall(call.get("id"), call.get("name"), json.dumps(call.get("args"))))
                elif "text" in part and not part.get("thought"):
                    if not part["text"] and "thoughtSignature" not in part:
                        got.problems.append("an empty text part")
                    got.text += part["text"]
    return got


def read(dialect: str, body: bytes) -> Received:
    if dialect == GEMINI:
        return read_gemini(body)
    if dialect == RESPONSES:
        return read_responses(body)
    return read_anthropic(body) if dialect == ANTHROPIC else read_openai(body)


# --- the property -----------------------------------------------------------------------------


async def feed(chain: PolicyChain, dialect: str, chunks: list[bytes], end: bool) -> tuple[bytes, PolicyContext]:
    """Feed chunks as mitmproxy does, awaiting waits as the addon does; the end-of-stream
    chunk only if `end` (a client that left stops the feeding)."""
    ctx = context(dialect)
    stream = policed_stream(chain, ctx)
    out = bytearray()
    for chunk in [*chunks, *([b""] if end else [])]:
        out += b"".join(stream(chunk))
        while stream.waiting:
            await stream.wait()
            out += b"".join(stream.resume())
    return bytes(out), ctx


def note(label: str) -> None:
    """A line of `--hypothesis-show-statistics` (what the examples covered)."""
    if currently_in_test_context():
        event(label)


def check(up: Upstream, end: End, chain: Chain, out: bytes, ctx: PolicyContext) -> None:
    dialect = up.dialect
    got = read(dialect, out)
    assert got.problems == [], got.problems

    complete = [i for i, _ in enumerate(up.calls) if end.received(up, up.done[i])]
    started = [i for i, _ in enumerate(up.calls) if end.received(up, up.first[i])]
    by_id = {up.wire_id(call): number for number, call in enumerate(up.calls)}
    allowed = [i for i in complete if not chain.blocks(up.calls[i])]
    blocked = [i for i in complete if chain.blocks(up.calls[i])]

    if chain.holds:
        # Decisions were taken on complete arguments only.
        for record in ctx.events:
            if "arguments" in record.details:
                call = up.calls[by_id[record.details["tool_call_id"]]]
                assert record.details["arguments"] == json.loads(call.arguments), (record, call)
        witnessed = {e.details["tool_call_id"]: e.details["arguments"] for e in ctx.events if e.action == "witnessed"}
        for received in got.calls:
            assert received.id in by_id, f"the client got a call upstream never sent: {received}"
            number = by_id[received.id]
            call = up.calls[number]
            assert number in complete, f"the client got call {number}, whose arguments never completed"
            assert not chain.blocks(call), f"the client got call {number} ({call.name} {call.arguments}): blocked"
            assert received.name == call.name
            assert json.loads(received.arguments) == json.loads(call.arguments), "not the allowed arguments"
            assert witnessed.get(received.id) == json.loads(call.arguments), (
                f"call {number} reached the client undecided"
            )
        if end.kind != "gone":
            assert [c.id for c in got.calls] == [up.wire_id(up.calls[i]) for i in allowed]
            assert got.text.count(NOTICE) == len(blocked)
    elif end.kind == "clean":
        assert [(c.id, c.name, c.arguments) for c in got.calls] == [
            (up.wire_id(call), call.name, call.arguments) for call in up.calls
        ]

    text = "".join(piece for position, piece in up.texts if end.received(up, position))
    dropped_incomplete = chain.holds and end.kind not in ("clean", "gone") and set(started) - set(complete)
    note(f"end: {end.kind}")
    note(f"calls: {len(up.calls)}, complete: {len(complete)}, allowed: {len(allowed)}")
    if dropped_incomplete:
        note("an incomplete call was dropped")
    if not blocked and chain.rewrite(text) == text and not dropped_incomplete:
        note(f"unchanged: byte identity checked ({end.kind})")
        delivered = end.delivered(up)
        if end.kind == "gone":
            assert delivered.startswith(out), "an unchanged stream cut short is not a prefix of upstream's"
        elif end.kind == "truncate" and chain.holds:
            assert out == end.whole_events(up), "an unchanged truncated stream differs from upstream's"
        else:
            assert out == delivered, f"an unchanged stream ({end.kind}) is not byte-identical to upstream's"

    if end.kind == "clean":
        assert stream_violations(dialect, out) == []
        sdk_text, sdk_tools, stop = sdk_summary(dialect, out)
        assert sdk_text.startswith(chain.rewrite("".join(piece for _, piece in up.texts)))
        assert sdk_tools == [(up.calls[i].name, json.loads(up.calls[i].arguments)) for i in allowed]
        survivors = bool(allowed)
        assert stop == (
            ("tool_use" if survivors else "end_turn")
            if dialect == ANTHROPIC
            else "completed"
            if dialect == RESPONSES
            else "STOP"
            if dialect == GEMINI
            else ("tool_calls" if survivors else "stop")
        )


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
async def test_any_stream_any_end_any_chain(dialect: str, data: st.DataObject) -> None:
    up = data.draw(upstreams(dialect), label="upstream")
    end = data.draw(ends(up), label="end")
    chain = data.draw(chains, label="chain")
    delivered = end.delivered(up)
    cuts = data.draw(st.lists(st.integers(0, len(delivered)), max_size=30), label="cuts")
    out, ctx = await feed(chain.build(), dialect, split_at(delivered, cuts), end=end.kind != "gone")
    check(up, end, chain, out, ctx)


# --- the three holes of issue 8, one example each ----------------------------------------------


def upstream(dialect: str, scenario: str | Scenario) -> Upstream:
    s = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    events = sse_for(dialect, s, "m")
    return Upstream(dialect, events, s.tool_calls)


async def run_case(up: Upstream, end: End, chain: Chain) -> bytes:
    out, ctx = await feed(chain.build(), up.dialect, [end.delivered(up)], end=end.kind != "gone")
    check(up, end, chain, out, ctx)
    return out


@pytest.mark.parametrize("chain", [Chain(None, ["waits"]), Chain(None, ["deny_name"])])
async def test_a_tool_only_openai_turn_sends_the_role_once(chain: Chain) -> None:
    """Hole 1: OpenAI sends the role with the first tool call; holding that chunk must not
    send the role twice, and an allowed stream goes out byte for byte."""
    up = upstream("openai-chat", "tools3")
    assert b'"role":"assistant","content":null,"tool_calls"' in up.events[0]
    out = await run_case(up, End("clean"), chain)
    assert out.count(b'"role"') == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_interleaved_call_is_decided_on_its_complete_arguments(dialect: str) -> None:
    """Hole 2: call 0 becomes `rm -rf /` only after call 1 started (OpenAI)."""
    up = upstream(dialect, "interleaved")
    out = await run_case(up, End("clean"), Chain(None, ["deny_rule"]))
    got = read(dialect, out)
    assert [c.name for c in got.calls] == ["read_file"]
    assert got.text.count(NOTICE) == 1 and "rm -rf /" in got.text


@pytest.mark.parametrize("blocked", [False, True])
@pytest.mark.parametrize("kind", ["error_after_blocks", "cut_before_finish"])
@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != GEMINI])  # Gemini: in test_gemini_codec.py
async def test_a_held_call_is_decided_however_the_stream_fails(dialect: str, kind: str, blocked: bool) -> None:
    """Hole 3: the stream fails after a complete tool call, before its message end (the
    mock provider's `error_after_blocks` and `cut_before_finish`)."""
    up = upstream(dialect, "tool")
    end = End("error", up.message_end) if kind == "error_after_blocks" else End("truncate", up.ends[up.message_end - 1])
    out = await run_case(up, end, Chain(None, ["deny_name" if blocked else "waits"]))
    got = read(dialect, out)
    assert [c.name for c in got.calls] == ([] if blocked else ["get_weather"])
    assert got.text.count(NOTICE) == blocked
    if kind == "error_after_blocks":
        assert out.endswith(error_event(dialect))


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != GEMINI])  # a Gemini call arrives whole
async def test_an_incomplete_call_is_dropped_at_a_failed_end(dialect: str) -> None:
    """Hole 3: the stream is cut while a call's arguments are still coming."""
    up = upstream(dialect, "long_args")
    for end in (End("error", up.done[0]), End("truncate", up.ends[up.done[0] - 1] + 7)):
        out = await run_case(up, end, Chain(None, ["waits"]))
        assert read(dialect, out).calls == [] and b"xargs" not in out


async def test_a_gemini_call_cut_after_its_frames_last_cr_reaches_the_client() -> None:
    """Found by the property test: a frame cut after `\r\n\r` is whole for an SSE reader
    (the `\r` ends the blank line), so the held call it carries must reach the client."""
    call = ScenarioToolCall(id="0p10", name="Bash", argument_pieces=['{"command": "ls -la"}'])
    up = upstream(GEMINI, Scenario(model="m", thinking=["hmm", "hmm"], text=[" ok"], tool_calls=[call]))
    out = await run_case(up, End("truncate", up.ends[-1] - 1), Chain(None, ["deny_rule"]))
    assert out.endswith(b"}\r\n\r") and [c.id for c in read(GEMINI, out).calls] == ["call_0p10"]
