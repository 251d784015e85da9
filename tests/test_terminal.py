"""The terminal call line: one line per call up to the line rate, then one summary line a second."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow
from rich.console import Console

from addons.call_state import announce_call_ended
from addons.terminal import CallLine
from recorder.models import CallRecord


def _record(n: int, verdict: str = "pass") -> CallRecord:
    return CallRecord(
        call_id=f"call-{n}",
        started_at=time.time(),
        provider="openai",
        dialect="openai-chat",
        host="api.openai.com",
        path="/v1/chat/completions",
        model="gpt-4o-mini",
        verdict=verdict,  # type: ignore[arg-type]
    )


def _call_line(window_s: float = 1.0) -> tuple[CallLine, io.StringIO]:
    line = CallLine(window_s)
    out = io.StringIO()
    line._console = Console(file=out, highlight=False, soft_wrap=True, width=300)
    return line, out


async def test_calls_beyond_the_line_rate_are_summed_in_one_line_when_the_second_ends() -> None:
    line, out = _call_line(window_s=0.3)
    with taddons.context(line) as tctx:
        tctx.configure(line, interlock_terminal_lines_per_s=3)
        for n in range(10):
            line.interlock_call_ended(tflow.tflow(), _record(n, "blocked" if n == 9 else "pass"))
        shown = out.getvalue().splitlines()
        assert [s.split()[-1] for s in shown] == ["call-0", "call-1", "call-2"]
        await asyncio.sleep(0.6)
        summary = out.getvalue().splitlines()[3:]
        assert len(summary) == 1
        assert "+7 calls" in summary[0] and "6 pass" in summary[0] and "1 blocked" in summary[0]
        # A new second prints lines again.
        line.interlock_call_ended(tflow.tflow(), _record(10))
        assert out.getvalue().splitlines()[-1].split()[-1] == "call-10"


async def test_no_limit_prints_every_call() -> None:
    line, out = _call_line()
    with taddons.context(line) as tctx:
        tctx.configure(line, interlock_terminal_lines_per_s=0)
        for n in range(50):
            line.interlock_call_ended(tflow.tflow(), _record(n))
        assert len(out.getvalue().splitlines()) == 50


def test_a_negative_line_rate_is_refused_by_name() -> None:
    line, _ = _call_line()
    with taddons.context(line) as tctx, pytest.raises(exceptions.OptionsError, match="interlock_terminal_lines_per_s"):
        tctx.configure(line, interlock_terminal_lines_per_s=-1)


async def test_the_summary_comes_at_done_and_only_once() -> None:
    line, out = _call_line(window_s=0.3)
    with taddons.context(line) as tctx:
        tctx.configure(line, interlock_terminal_lines_per_s=1)
        for n in range(4):
            line.interlock_call_ended(tflow.tflow(), _record(n))
        line.done()
        await asyncio.sleep(0.6)  # the timer of the window was cancelled: no second summary
        lines = out.getvalue().splitlines()
        assert len(lines) == 2 and "+3 calls" in lines[1]


class _Listener:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def interlock_call_ended(self, flow: object, record: CallRecord) -> None:
        self.seen.append(record.call_id)


class _Later(_Listener):
    pass


class _Broken:
    def interlock_call_ended(self, flow: object, record: CallRecord) -> None:
        raise RuntimeError("listener broke")


class _Async:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def interlock_call_ended(self, flow: object, record: CallRecord) -> None:
        await asyncio.sleep(0)
        self.seen.append(record.call_id)


class _Parent:
    def __init__(self, *children: object) -> None:
        self.addons = list(children)


async def test_call_ended_reaches_every_listener_in_order_whatever_one_does(caplog: pytest.LogCaptureFixture) -> None:
    """`interlock_call_ended` goes to every addon that has it (nested ones, async ones),
    and one that raises is logged as an addon error while the rest still get it."""
    first, nested, later = _Listener(), _Async(), _Later()
    with taddons.context(first, _Broken(), _Parent(nested), later) as tctx:
        await announce_call_ended(tctx.master, tflow.tflow(), _record(1))
    assert first.seen == nested.seen == later.seen == ["call-1"]
    assert any("Addon error: listener broke" in message for message in caplog.messages)


class _Halting:
    def interlock_call_ended(self, flow: object, record: CallRecord) -> None:
        raise exceptions.AddonHalt


async def test_a_listener_that_halts_stops_the_announcement_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """As with mitmproxy's own events: `AddonHalt` ends the round, it is not an error."""
    first, later = _Listener(), _Later()
    with taddons.context(first, _Halting(), later) as tctx:
        await announce_call_ended(tctx.master, tflow.tflow(), _record(1))
    assert first.seen == ["call-1"] and later.seen == []
    assert not any("Addon error" in message for message in caplog.messages)
