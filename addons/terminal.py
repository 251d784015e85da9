"""The one rich-formatted terminal line printed per finished LLM call, and mitmweb's
mark and comment on the flows a policy changed or blocked."""

from __future__ import annotations

from datetime import datetime

from mitmproxy import http
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


class CallLine:
    """Prints a call line per finished call with rich; colours only on a terminal."""

    def __init__(self) -> None:
        self._console = Console(highlight=False, soft_wrap=True)

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        # Loading the price map is file I/O: never on the event loop (it loads at start-up).
        cost_usd = record_price(record)[0] if cost_map_loaded() else None
        self._console.print(format_call_line(record, cost_usd))


class FlowMarks:
    """Marks and comments, in mitmweb, the flows whose call a policy changed or blocked."""

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        if record.verdict == "pass":
            return
        flow.marked = ":warning:" if record.verdict == "modified" else ":no_entry:"
        reasons = "; ".join(f"{e.policy}: {e.action} {e.reason}".strip() for e in record.events)
        flow.comment = f"interlock {record.call_id} {record.verdict}" + (f": {reasons}" if reasons else "")
