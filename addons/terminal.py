"""The one rich-formatted terminal line printed per finished LLM call, and mitmweb's
mark and comment on the flows a policy changed or blocked.

Lines are rate-limited: beyond `interlock_terminal_lines_per_s` calls in a second (more
than a person can read), the rest of that second's calls are counted, by verdict, and
printed as one summary line when the second is over; the database has every call.
Rendering a rich line per call costs about a tenth of the process at 450 calls/s.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime
from typing import Any

from mitmproxy import ctx, exceptions, http
from rich.console import Console
from rich.text import Text

from recorder.cost import cost_map_loaded
from recorder.models import CallRecord
from recorder.rows import record_price

_VERDICT_STYLE = {"pass": "green", "modified": "yellow", "blocked": "bold red", "error": "red"}


def _ms(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start) * 1000:.0f}ms"


def format_call_line(record: CallRecord, cost_usd: float | None) -> Text:
    """time provider model stream status tokens cost latency ttft verdict call_id"""
    usage = record.usage
    tokens_in = (usage.input_tokens or 0) + (usage.cache_read_tokens or 0) + (usage.cache_write_tokens or 0)
    cached = usage.cache_read_tokens or 0
    line = Text()
    line.append(datetime.fromtimestamp(record.started_at).strftime("%H:%M:%S"), style="dim")
    line.append(f" {record.provider:<9}", style="cyan")
    line.append(f" {record.model_final or record.model or '?'}", style="bold")
    line.append(" stream" if record.stream else " sync  ", style="magenta")
    status = record.status if record.status is not None else "---"
    line.append(f" {status}", style="green" if record.status and record.status < 400 else "red")
    line.append(f" tok {tokens_in}>{usage.output_tokens or 0}")
    if cached:
        line.append(f" (cache {cached})", style="dim")
    line.append(" $" + (f"{cost_usd:.6f}" if cost_usd is not None else "?"), style="yellow")
    line.append(f" {_ms(record.started_at, record.ended_at)}")
    line.append(f" ttft {_ms(record.started_at, record.first_token_at)}", style="dim")
    line.append(f" {record.verdict}", style=_VERDICT_STYLE[record.verdict])
    line.append(f" {record.call_id}", style="dim")
    if record.error:
        line.append(f" {record.error[:120]}", style="red")
    return line


def format_summary_line(counts: Counter[str], window_s: float) -> Text:
    """The line that stands for the calls not printed in one window."""
    line = Text()
    line.append(datetime.now().strftime("%H:%M:%S"), style="dim")
    line.append(f" +{counts.total()} calls in {window_s:g}s not shown (over the line rate):")
    for verdict, style in _VERDICT_STYLE.items():
        if counts[verdict]:
            line.append(f" {counts[verdict]} {verdict}", style=style)
    return line


class CallLine:
    """Prints a call line per finished call with rich, at most `interlock_terminal_lines_per_s`
    a second (0: no limit), then one summary line a second; colours only on a terminal."""

    def __init__(self, window_s: float = 1.0) -> None:
        self._window_s = window_s
        self._console = Console(highlight=False, soft_wrap=True)
        self._window_start = 0.0
        self._printed = 0
        self._unshown: Counter[str] = Counter()
        self._summary: asyncio.TimerHandle | None = None  # the pending summary line

    def load(self, loader: Any) -> None:
        loader.add_option(
            "interlock_terminal_lines_per_s",
            int,
            10,
            "Most call lines printed a second; the calls beyond are summed in one line a second (0: no limit).",
        )

    def configure(self, updated: set[str]) -> None:
        if "interlock_terminal_lines_per_s" in updated and ctx.options.interlock_terminal_lines_per_s < 0:
            raise exceptions.OptionsError(
                f"interlock_terminal_lines_per_s must be 0 (no limit) or more, not "
                f"{ctx.options.interlock_terminal_lines_per_s}"
            )

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        limit = ctx.options.interlock_terminal_lines_per_s
        if limit > 0 and not self._admit(limit):
            self._unshown[record.verdict] += 1
            return
        # Loading the price map is file I/O: never on the event loop (it loads at start-up).
        cost_usd = record_price(record)[0] if cost_map_loaded() else None
        self._console.print(format_call_line(record, cost_usd))

    def _admit(self, limit: int) -> bool:
        now = time.monotonic()
        if now - self._window_start >= self._window_s:
            self._window_start, self._printed = now, 0
        if self._printed < limit:
            self._printed += 1
            return True
        if not self._unshown:
            self._summary = asyncio.get_running_loop().call_later(
                self._window_start + self._window_s - now, self._flush
            )
        return False

    def _flush(self) -> None:
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
        if self._unshown:
            self._console.print(format_summary_line(self._unshown, self._window_s))
            self._unshown = Counter()

    def done(self) -> None:
        self._flush()


class FlowMarks:
    """Marks and comments, in mitmweb, the flows whose call a policy changed or blocked."""

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        if record.verdict == "pass":
            return
        flow.marked = ":warning:" if record.verdict == "modified" else ":no_entry:"
        reasons = "; ".join(f"{e.policy}: {e.action} {e.reason}".strip() for e in record.events)
        flow.comment = f"interlock {record.call_id} {record.verdict}" + (f": {reasons}" if reasons else "")
