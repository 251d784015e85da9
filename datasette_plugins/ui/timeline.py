"""An agent session as a timeline of turns: what the session page shows.

Each recorded call is a turn. Its new input is the tail of its request after the last
assistant message (tool results, a new user prompt); its output is the response's text
and tool calls. A tool call is linked to the turn whose request carries its result, by
tool call id. Calls whose conversations start differently (a sub-agent, a title request)
form side threads of the session tree; a call chained on an earlier response (Responses'
`previous_response_id`, its request holding only the new input) stays in that
response's thread. Turns where a policy acted are interventions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from datasette_plugins.ui import fmt
from datasette_plugins.ui.blocks import parse_messages, parse_response, response_id
from datasette_plugins.ui.calldiff import Note, notes_for
from datasette_plugins.ui.schema import INTERVENING_ACTIONS, POLICY_VERDICTS
from datasette_plugins.ui.store import CallRow, PolicyEventRow, SessionCall, SessionTotals
from interlock.neutral import Block, Message

PREVIEW_CHARS = 600
ARGS_PREVIEW = 400
ONE_LINE_ARGS = 120  # arguments this short are shown on one line


def clip(text: str, limit: int = PREVIEW_CHARS) -> str:
    return fmt.clip(text, limit)


def short_arguments(text: str) -> str:
    """Pretty-printed arguments on one line when they fit, else as they are, clipped."""
    try:
        one_line = json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        one_line = None
    if one_line is not None and len(one_line) <= ONE_LINE_ARGS:
        return one_line
    return clip(text, ARGS_PREVIEW)


def result_anchor(turn: int, tool_id: str | None) -> str:
    return f"result-{turn}-{tool_id}"


@dataclass
class ToolUse:
    """A tool call a turn's response made; `result_turn` is where its result came back."""

    tool_id: str | None
    name: str
    arguments: str
    turn: int
    blocked: bool = False
    notes: tuple[Note, ...] = ()
    result_turn: int | None = None
    result_is_error: bool = False

    @property
    def anchor(self) -> str:
        return f"use-{self.turn}-{self.tool_id or self.name}"

    @property
    def result_anchor(self) -> str | None:
        return None if self.result_turn is None else result_anchor(self.result_turn, self.tool_id)


@dataclass
class ToolResult:
    """A tool result in a turn's request; `call_turn` is the turn that asked for it."""

    tool_id: str | None
    text: str
    is_error: bool
    turn: int
    use: ToolUse | None = None

    @property
    def anchor(self) -> str:
        return result_anchor(self.turn, self.tool_id)


@dataclass
class Turn:
    number: int
    call: CallRow
    thread: int  # 0 is the main conversation
    new_thread: bool  # the first turn of its thread
    request_messages: int | None
    user_text: str
    results: list[ToolResult]
    text: str
    thinking: bool
    tool_uses: list[ToolUse]
    events: list[PolicyEventRow]
    response_note: str | None

    @property
    def intervention(self) -> bool:
        """A policy changed or stopped the call, or did something other than allow."""
        return self.call.verdict in POLICY_VERDICTS or any(e.action in INTERVENING_ACTIONS for e in self.events)


@dataclass
class SessionView:
    session_id: str
    totals: SessionTotals
    turns: list[Turn] = field(default_factory=list)
    threads: int = 0

    @property
    def truncated(self) -> bool:
        return len(self.turns) < self.totals.calls


def _new_input(messages: list[Message]) -> list[Message]:
    """The messages after the last assistant message (all of them if there is none)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "assistant":
            return messages[index + 1 :]
    return messages


def _text_of(blocks: list[Block], kind: str = "text") -> str:
    return "\n\n".join(block.text for block in blocks if block.kind == kind and block.text)


def _tool_uses(call: SessionCall, number: int) -> list[ToolUse]:
    final = parse_response(call.call.dialect, call.response)
    original = parse_response(call.call.dialect, call.response_original) if call.response_original else None
    final_calls = [b for b in final.message.blocks if b.kind == "tool_call"] if final else []
    kept = {(b.tool_id, b.tool_name) for b in final_calls}
    removed = [
        b
        for b in (original.message.blocks if original else ())
        if b.kind == "tool_call" and (b.tool_id, b.tool_name) not in kept
    ]
    uses = []
    for block, blocked in [(b, False) for b in final_calls] + [(b, True) for b in removed]:
        notes = notes_for(block, call.events, call.judgements)
        uses.append(ToolUse(block.tool_id, block.tool_name or "?", short_arguments(block.text), number, blocked, notes))
    return uses


def build_session(session_id: str, calls: list[SessionCall], totals: SessionTotals) -> SessionView:
    view = SessionView(session_id, totals)
    threads: dict[str, int] = {}
    response_threads: dict[str, int] = {}  # response id -> the thread of the call that produced it
    waiting: dict[str, ToolUse] = {}  # tool call id -> the use whose result is not seen yet
    for number, call in enumerate(calls, start=1):
        if call.chained_on is not None and call.chained_on in response_threads:
            new_thread, thread = False, response_threads[call.chained_on]  # it continues that response
        else:
            key = call.first_message or ""
            new_thread = key not in threads
            thread = threads.setdefault(key, len(threads))
        produced = response_id(call.call.dialect, call.response)
        if produced is not None:
            response_threads[produced] = thread
        new_messages = _new_input(parse_messages(call.call.dialect, call.tail))
        blocks = [block for message in new_messages for block in message.blocks]
        results = []
        for block in blocks:
            if block.kind != "tool_result":
                continue
            use = waiting.pop(block.tool_id, None) if block.tool_id else None
            if use is not None:
                use.result_turn, use.result_is_error = number, block.is_error
            results.append(ToolResult(block.tool_id, clip(block.text, ARGS_PREVIEW), block.is_error, number, use))
        response = parse_response(call.call.dialect, call.response)
        response_blocks = list(response.message.blocks) if response else []
        uses = _tool_uses(call, number)
        waiting.update({use.tool_id: use for use in uses if use.tool_id and not use.blocked})
        view.turns.append(
            Turn(
                number=number,
                call=call.call,
                thread=thread,
                new_thread=new_thread and number > 1,
                request_messages=call.request_messages,
                user_text=clip(_text_of(blocks)),
                results=results,
                text=clip(_text_of(response_blocks) if response else call.call.response_text or ""),
                thinking=any(b.kind in ("thinking", "redacted_thinking") for b in response_blocks),
                tool_uses=uses,
                events=call.events,
                response_note=call.response_note,
            )
        )
    view.threads = len(threads)
    return view
