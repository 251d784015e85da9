"""Async policies mid-stream, in process: the driver and `PolicyStream` fed event by event
as mitmproxy feeds them.

A hook that never suspends costs no pause at all; a hook that awaits pauses only its own
stream (`waiting`), and text the policy does not hold keeps flowing: deltas before a held
tool call go out before the decision. Tool-call decisions run concurrently. While a
stream is held, the dialect's keepalive goes out once per interval, and never otherwise.
(That other flows keep streaming meanwhile is proven end to end, in test_e2e_policies.py;
keepalives through mitmdump in test_keepalive_e2e.py.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from policy_fixtures import (
    DIALECTS,
    FailingPolicy,
    SleepyPolicy,
    chain_of,
    context,
    fixture_path,
    police_stream,
    policed_stream,
    sdk_summary,
    stream_violations,
)
from wire_scenarios import SCENARIOS, sse_for

from interlock.engine.driver import Driver, Step, run
from interlock.engine.stream import Keepalive
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, Policy, PolicyContext, ToolDecision
from interlock.sse import parse_all


def events(dialect: str, scenario: str) -> list[bytes]:
    s = SCENARIOS[scenario]
    return sse_for(dialect, s, "m")


class Gate(Policy):
    """Holds every tool call until the test opens its gate; counts decisions in flight."""

    name = "gate"
    gate: asyncio.Event
    in_flight = 0
    most_in_flight = 0

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        cls = type(self)
        cls.in_flight += 1
        cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        try:
            await cls.gate.wait()
        finally:
            cls.in_flight -= 1
        return Keep(call)


@pytest.fixture
def gate() -> type[Gate]:
    Gate.gate = asyncio.Event()
    Gate.in_flight = Gate.most_in_flight = 0
    return Gate


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_text_flows_while_a_tool_call_waits_for_its_decision(dialect: str, gate: type[Gate]) -> None:
    stream = policed_stream(chain_of({"policy": "test_engine_async:Gate"}), context(dialect))
    sent = bytearray()
    waited_at: list[int] = []
    for position, chunk in enumerate([*events(dialect, "tools2"), b""]):
        sent += b"".join(stream(chunk))
        if stream.waiting:
            waited_at.append(position)
            payloads = json.dumps([e.json() for e in parse_all(bytes(sent))])
            assert "Checking both cities." in payloads  # the text is out already
            assert "get_weather" not in sent.decode()  # the tool calls are held
            assert gate.most_in_flight == 2  # both decisions started when their calls completed
            gate.gate.set()
            await stream.wait()
            sent += b"".join(stream.resume())
    assert len(waited_at) == 1  # one pause, at the end of the message, for both decisions
    assert bytes(sent) == b"".join(events(dialect, "tools2"))


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_sync_chain_never_pauses_the_stream(dialect: str) -> None:
    chain = chain_of({"policy": "replace", "rules": [{"find": "mock", "replace": "MOCK"}]}, {"policy": "deny_tools"})
    stream = policed_stream(chain, context(dialect))
    for chunk in [*events(dialect, "tool"), b""]:
        stream(chunk)
        assert not stream.waiting


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_async_text_policy_pauses_at_each_delta_and_keeps_the_protocol(dialect: str) -> None:
    chain = chain_of({"policy": fixture_path(SleepyPolicy), "seconds": 0.001, "hooks": ["on_text", "on_tool_call"]})
    stream = policed_stream(chain, context(dialect))
    pauses = 0
    out = bytearray()
    for chunk in [*events(dialect, "unicode"), b""]:
        out += b"".join(stream(chunk))
        while stream.waiting:
            pauses += 1
            await stream.wait()
            out += b"".join(stream.resume())
    assert pauses == len(SCENARIOS["unicode"].text) + 1  # each text delta, then the tool decision
    assert bytes(out) == b"".join(events(dialect, "unicode"))


@pytest.mark.parametrize("on_error", ["allow", "block"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_hung_decision_times_out_and_the_stream_completes(dialect: str, on_error: str) -> None:
    entry = {"policy": fixture_path(FailingPolicy), "hook": "on_tool_call", "mode": "hang", "on_error": on_error}
    out, ctx = await police_stream(chain_of({**entry, "timeout_s": 0.05}), dialect, events(dialect, "tools2"))
    assert stream_violations(dialect, out) == []
    _, tools, _ = sdk_summary(dialect, out)
    assert len(tools) == (2 if on_error == "allow" else 0)
    assert [e.reason for e in ctx.events] == ["timed out", "timed out"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_abandoned_stream_decides_what_it_holds_and_sends_nothing(dialect: str) -> None:
    """A connection cut mid-body (mitmproxy never sends the end) before the message's end
    event, with the tool calls that came before it complete and held (Anthropic,
    Responses, Gemini: their decisions under way; OpenAI chat: not started until the
    message ends): they are still decided, so the record has the decisions, and nothing
    more goes out, not even the calls allowed. Gemini's second call comes in its finish
    chunk: only the first one is held when the connection is cut."""
    chain = chain_of({"policy": fixture_path(SleepyPolicy), "seconds": 0.05})
    stream = policed_stream(chain, context(dialect))
    wire = events(dialect, "tools2")
    ends = (b"message_delta", b'"finish_reason":"tool_calls"', b"event: response.completed", b'"finishReason": ')
    end = next(i for i, e in enumerate(wire) if any(marker in e for marker in ends))
    held = 1 if dialect == "gemini" else 2
    sent = b"".join(b"".join(stream(chunk)) for chunk in wire[:end])
    assert b"get_weather" not in sent
    await stream.abandon()
    assert bytes(stream.final) == sent  # what the client got, and no more
    assert not stream.waiting and stream.ended
    actions = [(e.policy, e.action) for e in stream.rewriter.ctx.events]
    assert actions == [("sleepy", "allowed")] * held


KEEPALIVE_S = 0.02
# Gemini's clients skip nothing, so it has no keepalive (see its wire.keepalive).
KEEPALIVE_DIALECTS = [d for d in DIALECTS if context(d).dialect.keepalive() is not None]


def keepalive_of(dialect: str) -> Keepalive:
    data = context(dialect).dialect.keepalive()
    assert data is not None
    return Keepalive(data, KEEPALIVE_S)


@pytest.mark.parametrize("dialect", KEEPALIVE_DIALECTS)
async def test_a_held_stream_gets_keepalives_until_the_decision(dialect: str, gate: type[Gate]) -> None:
    """Held for 0.3 s, keepalives due every 0.02 s: each wake of the wait sends one (no
    spinning), at most one per interval, only between two events; the stream still
    parses in the SDK, and neither its reassembly nor `changed` sees them."""
    keepalive = keepalive_of(dialect)
    stream = policed_stream(chain_of({"policy": "test_engine_async:Gate"}), context(dialect), keepalive)
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, gate.gate.set)
    out = bytearray()
    sent_at: list[float] = []
    wakes = 0
    started = loop.time()
    for chunk in [*events(dialect, "tools2"), b""]:
        out += b"".join(stream(chunk))
        while stream.waiting:
            await stream.wait()
            wakes += 1
            sent = stream.resume()
            if sent == [keepalive.data]:
                sent_at.append(loop.time())
                assert stream.waiting  # keepalives only while the policy still decides
            out += b"".join(sent)
    held_s = loop.time() - started
    assert 2 <= len(sent_at) <= held_s / KEEPALIVE_S + 1
    assert wakes <= len(sent_at) + 2  # the final wake releases the calls
    assert min(b - a for a, b in itertools.pairwise(sent_at)) >= KEEPALIVE_S * 0.5
    assert bytes(stream.final) == bytes(out)
    assert stream.sent_without_keepalives() == b"".join(events(dialect, "tools2"))
    assert not stream.changed
    assert stream.final_reassembly().message == stream.tap.reassembler.result().message
    assert stream_violations(dialect, bytes(out)) == []
    _, tools, _ = sdk_summary(dialect, bytes(out))
    assert len(tools) == 2
    assert bytes(out).count(keepalive.data) >= len(sent_at)


@pytest.mark.parametrize("dialect", KEEPALIVE_DIALECTS)
async def test_no_keepalive_in_a_stream_nothing_holds(dialect: str) -> None:
    """A chain that never waits: the interval passes between events, nothing is added."""
    keepalive = keepalive_of(dialect)
    chain = chain_of({"policy": "replace", "rules": [{"find": "zzz", "replace": "y"}]}, {"policy": "deny_tools"})
    stream = policed_stream(chain, context(dialect), keepalive)
    out = bytearray()
    for chunk in [*events(dialect, "tool"), b""]:
        out += b"".join(stream(chunk))
        assert not stream.waiting
        await asyncio.sleep(KEEPALIVE_S * 1.5)
    assert bytes(out) == b"".join(events(dialect, "tool")) and stream.keepalives == []


async def test_an_abandoned_held_stream_sends_no_keepalive(gate: type[Gate]) -> None:
    keepalive = keepalive_of("anthropic-messages")
    stream = policed_stream(chain_of({"policy": "test_engine_async:Gate"}), context("anthropic-messages"), keepalive)
    for chunk in events("anthropic-messages", "tool"):
        stream(chunk)
    assert stream.waiting
    asyncio.get_running_loop().call_later(0.1, gate.gate.set)
    sent = bytes(stream.final)
    await stream.abandon()
    assert bytes(stream.final) == sent and stream.keepalives == []


# --- the driver --------------------------------------------------------------------------


async def test_a_hook_that_does_not_suspend_runs_inline() -> None:
    async def quick() -> int:
        return 7

    def step(results: list[int]) -> Step[None]:
        results.append((yield from run(quick())))

    results: list[int] = []
    driver = Driver()
    assert driver.start(step(results)) is True
    assert results == [7] and not driver.waiting


async def test_a_hook_that_suspends_pauses_the_driver_until_resumed() -> None:
    async def slow(value: int) -> int:
        await asyncio.sleep(0)
        return value

    async def fails() -> int:
        await asyncio.sleep(0)
        raise ValueError("no")

    def step(results: list[Any]) -> Step[None]:
        results.append((yield from run(slow(1))))
        try:
            yield from run(fails())
        except ValueError as error:
            results.append(str(error))
        results.append((yield from run(slow(2))))

    results: list[Any] = []
    driver = Driver()
    assert driver.start(step(results)) is False
    resumes = 0
    while driver.waiting:
        await driver.wait()
        resumes += 1
        driver.resume()
    assert results == [1, "no", 2]
    assert resumes == 3
