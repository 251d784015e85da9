"""Applies a policy chain to an OpenAI Chat Completions chunk stream, keeping it valid.

Invariants kept: exactly one chunk carries `finish_reason`; tool call deltas keep
contiguous indices; the first delta of each call carries its id, type and name and no
later delta repeats them, nor the role (the openai SDK concatenates strings: a second
role makes it "assistantassistant"); text a policy adds and blocked-call notices go out
as content before the surviving tool calls; `finish_reason` becomes `stop` when every
tool call was removed; the usage chunk and `data: [DONE]` pass through. Chunks nobody
changed are forwarded as their original bytes, so a stream whose calls are all allowed
unchanged is byte-identical to upstream's. Only the first choice is policed (`n` > 1
streams pass through untouched).

Tool calls are held from their first delta: that chunk (often the role and the first
call together) and every event after it wait, in order. A call is decided only when its
arguments are complete, at the choice's `finish_reason` (or `[DONE]`, or the end of the
stream): parallel calls' deltas may interleave by index, so a new index says nothing
about the earlier calls. All held calls are decided concurrently. If every one is
allowed unchanged and nothing is added, the held events go out as they came; otherwise
each surviving call is rebuilt as one delta (index, id, type, name, whole arguments),
and the first rebuilt delta carries the role a held chunk had.

Failed ends: a stream may end without its finish chunk, with an error chunk
(`data: {"error": ...}`), an early `[DONE]`, or a closed connection. Then the text the
policies hold is released, and the held tool calls are decided as usual (awaited) and
sent if allowed, or replaced by their notice; a call whose arguments are not a complete
JSON object is dropped. A held call never reaches the
client undecided. The error chunk or `[DONE]` then passes as it came; after a cut
nothing is invented (no finish chunk, no `[DONE]`). A cut-off last event (no blank line)
goes out last, as it came, only when no policy holds tool calls: it could be the start
of an undecided call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from interlock.dialects.common import tool_arguments
from interlock.dialects.openai_chat import response, wire
from interlock.engine.aligner import TextPiece, send_aligned
from interlock.engine.driver import Step, run, start_eager, wait_for
from interlock.engine.stream import Piece, StreamRewriter
from interlock.engine.text_block import PolicedText
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, PolicyContext, ReplaceWithText, StreamEnd, ToolDecision
from interlock.policy.chain import PolicyChain
from interlock.sse import SSEEvent, parse_all


@dataclass(slots=True)
class _HeldCall:
    index: int
    id: str | None = None
    name: str = ""
    argument_parts: list[str] = field(default_factory=list)
    call: ToolCall | None = None
    decision: asyncio.Task[ToolDecision] | None = None

    @property
    def arguments(self) -> str:
        return "".join(self.argument_parts)

    def complete(self) -> bool:
        """The arguments are a whole JSON object (what an end without a finish chunk
        can go by: a prefix of an object that parses is the whole object)."""
        try:
            return isinstance(json.loads(self.arguments), dict)
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class _HeldChunk:
    """An upstream chunk of tool-call deltas (and perhaps the role), held whole."""

    event: SSEEvent


Decisions = list[tuple[_HeldCall, ToolDecision]]


def _policed_choice(data: Any) -> dict[str, Any] | None:
    """The choice of a chunk this rewriter polices: one choice, index 0."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or len(choices) != 1:
        return None
    choice = choices[0]
    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
        return None
    return choice


def _only_tool_calls(delta: dict[str, Any]) -> bool:
    """The delta says nothing but tool calls and perhaps the role."""
    return all(
        key in ("tool_calls", "role") or value is None or (key == "content" and value == "")
        for key, value in delta.items()
    )


class ChatStreamRewriter(StreamRewriter):
    def __init__(self, chain: PolicyChain, ctx: PolicyContext) -> None:
        super().__init__(chain, ctx)
        self.held: dict[int, _HeldCall] = {}
        # From the first held tool delta to the message's end: held chunks and the output
        # for everything else, in arrival order.
        self.tail: list[_HeldChunk | Piece] | None = None
        self.rebuild = False  # a chunk with tool deltas was rebuilt: the calls must be too
        self.held_role: str | None = None  # the role a held chunk carries
        self.role_seen = False  # a chunk with the role was seen (held or not)
        self.role_pending: str | None = None  # goes into the next chunk built
        self.finished = False
        self.fragment: SSEEvent | None = None  # the cut-off end of a truncated stream
        self.template: dict[str, Any] | None = None
        self.sent_text = False  # content reached the client: notices start a new paragraph
        self.text_block = PolicedText(chain, ctx)  # the message's one text

    # While tool calls are held, everything sent waits behind them, in order.

    def emit_raw(self, event: SSEEvent) -> None:
        if self.tail is None:
            super().emit_raw(event)
        else:
            self.tail.append(event)

    def emit_new(self, data: bytes) -> None:
        if self.tail is None:
            super().emit_new(data)
        else:
            self.tail.append(data)

    def _send_chunk(self, chunk: dict[str, Any]) -> None:
        """Send a chunk built here; it carries the role if a held chunk's role is owed."""
        if self.role_pending is not None:
            choice = chunk["choices"][0]
            delta = {"role": self.role_pending, **choice["delta"]}
            chunk = {**chunk, "choices": [{**choice, "delta": delta}, *chunk["choices"][1:]]}
            self.role_pending = None
        self.emit_new(wire.sse(chunk))

    # -- events ----------------------------------------------------------------------

    def handle(self, event: SSEEvent) -> Step[None]:
        if not event.complete:  # the stream was cut inside this event: see finish()
            self.fragment = event
            return
        data = event.json()
        choice = _policed_choice(data)
        if choice is None:  # [DONE], the usage chunk, errors, comments, n > 1, anything unknown
            if not self.finished and (event.data == "[DONE]" or (isinstance(data, dict) and "error" in data)):
                yield from self._failed_end()
            if not self.text_block.behind.wait(event):
                self.emit_raw(event)
            return
        assert isinstance(data, dict)  # it has a choice
        yield from self._choice(event, data, choice)

    def _choice(self, event: SSEEvent, data: dict[str, Any], choice: dict[str, Any]) -> Step[None]:
        self.template = data
        delta = choice.get("delta") or {}
        new_delta = dict(delta)
        text_changed = False
        content = delta.get("content")
        tool_deltas = delta.get("tool_calls")
        finish_reason = choice.get("finish_reason")
        ends_text = bool(tool_deltas) or finish_reason is not None
        role_seen, self.role_seen = self.role_seen, self.role_seen or isinstance(delta.get("role"), str)
        if isinstance(content, str) and content and self.chain.handles_text:
            out = "" if self.ctx.ended_by is not None else (yield from self.text_block.released(content))
            only_text = finish_reason is None and all(v is None for k, v in delta.items() if k != "content")
            if only_text and self.ctx.ended_by is None:
                self._emit_aligned(self.text_block.line_up(event, content, out))
                return
            out = self.text_block.aligner.abandon() + out  # a chunk with more than text is rebuilt
            self._emit_aligned(self.text_block.behind.abandon())
            if ends_text:
                closed = yield from self.text_block.close()
                out += "".join(piece[1] for piece in closed if not isinstance(piece, SSEEvent))
                self._emit_aligned([piece for piece in closed if isinstance(piece, SSEEvent)])
            if out != content:
                new_delta["content"] = out
                text_changed = True
        elif ends_text:  # tool calls or the finish follow the text: release what is held first
            self._emit_aligned((yield from self.text_block.close()))
        holding = (
            isinstance(tool_deltas, list)
            and bool(tool_deltas)
            and (self.chain.holds_tool_calls or self.ctx.ended_by is not None)
        )
        if holding:
            assert isinstance(tool_deltas, list)
            if self.tail is None:
                self.tail = []
            self._hold(tool_deltas)
            del new_delta["tool_calls"]
            if not _only_tool_calls(delta):
                self.rebuild = True  # this chunk's own bytes cannot go out: nor can its calls'
            elif finish_reason is None:
                self.tail.append(_HeldChunk(event))
                role = delta.get("role")
                if isinstance(role, str) and not role_seen:
                    self.held_role = role
                return
        if finish_reason is not None:
            yield from self._message_end(event, data, choice, new_delta, text_changed, holding)
            return
        self.sent_text = self.sent_text or bool(new_delta.get("content"))
        if not (text_changed or holding):
            if not self.text_block.behind.wait(event):
                self.emit_raw(event)
            return
        if new_delta.get("content") == "":
            del new_delta["content"]
        if all(value is None for value in new_delta.values()):
            return
        self._send_chunk({**data, "choices": [{**choice, "delta": new_delta}]})

    def _emit_aligned(self, pieces: Sequence[TextPiece | SSEEvent]) -> None:
        """Upstream chunks whose text came out unchanged go as their original bytes."""
        if send_aligned(pieces, self.emit_raw, self._emit_content):
            self.sent_text = True

    def _hold(self, tool_deltas: list[Any]) -> None:
        """Collect the deltas of each call by index; nothing is decided here."""
        for tool_delta in tool_deltas:
            if not isinstance(tool_delta, dict):
                continue
            index = tool_delta.get("index", 0)
            index = index if isinstance(index, int) else 0
            held = self.held.setdefault(index, _HeldCall(index=index))
            held.id = tool_delta.get("id") or held.id
            function = tool_delta.get("function") or {}
            held.name = function.get("name") or held.name
            if function.get("arguments"):
                held.argument_parts.append(function["arguments"])

    # -- ends ------------------------------------------------------------------------

    def _decisions(self, complete_only: bool) -> Step[Decisions]:
        """Decide the held calls (all started before any is awaited, so they run
        concurrently); with `complete_only`, calls with incomplete arguments get none."""
        if self.ctx.ended_by is not None:
            return []  # the message was ended: held tool calls are dropped with the rest
        calls = [held for held in self.held.values() if not complete_only or held.complete()]
        for held in calls:
            held.call = ToolCall(id=held.id, name=held.name, arguments=tool_arguments(held.arguments), index=held.index)
            held.decision = start_eager(self.chain.tool_call(self.ctx, held.call))
        decisions: Decisions = []
        for held in calls:
            assert held.decision is not None
            decisions.append((held, (yield from wait_for(held.decision))))
        return decisions

    def _release(self, decisions: Decisions, extra: str, lead: str) -> tuple[bool, int]:
        """Send what waited behind the held calls, then the calls. Unchanged (every call
        allowed as it was, nothing added): as it came. Otherwise the other events, `lead`
        (the finish chunk's own text), `extra` and the notices as content, then each
        surviving call rebuilt. Returns (unchanged, surviving calls)."""
        tail, self.tail = self.tail or [], None
        held, self.held = self.held, {}
        role, self.held_role = self.held_role, None
        rebuild, self.rebuild = self.rebuild, False
        kept = [(h, d.call) for h, d in decisions if isinstance(d, Keep)]
        notices = ([extra] if extra else []) + [d.text for _, d in decisions if isinstance(d, ReplaceWithText)]
        if not notices and not rebuild and len(kept) == len(held) and all(call == h.call for h, call in kept):
            self.out.extend(piece.event if isinstance(piece, _HeldChunk) else piece for piece in tail)
            return True, len(kept)
        self.role_pending = self.role_pending or role
        for piece in tail:
            if not isinstance(piece, _HeldChunk):
                self._release_piece(piece)
        self._emit_content(lead)
        for notice in notices:
            self._emit_content(notice, paragraph=True)
        for position, (h, call) in enumerate(kept):
            arguments = (
                call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments, ensure_ascii=False)
            )
            delta = {"tool_calls": [wire.tool_call_delta(position, h.id, call.name, arguments)]}
            self._send_chunk(wire.chunk_like(self.template or {}, delta))
        return False, len(kept)

    def _release_piece(self, piece: Piece) -> None:
        """A piece that waited behind held calls; the first chunk gets an owed role."""
        if self.role_pending is None:
            self.out.append(piece)
            return
        for event in [piece] if isinstance(piece, SSEEvent) else parse_all(piece):
            data = event.json()
            if self.role_pending is not None and isinstance(data, dict) and _policed_choice(data) is not None:
                self._send_chunk(data)
            else:
                self.out.append(event)

    def _message_end(
        self,
        event: SSEEvent,
        data: dict[str, Any],
        choice: dict[str, Any],
        new_delta: dict[str, Any],
        text_changed: bool,
        holding: bool,
    ) -> Step[None]:
        """The finish chunk: decide the held calls, send what they held back, then the
        finish chunk (its reason `stop` if every call was removed)."""
        self.finished = True
        finish_reason = choice["finish_reason"]
        had_calls = bool(self.held)
        decisions = yield from self._decisions(complete_only=False)
        extra = ""
        if self.chain.holds_tool_calls and self.ctx.ended_by is None:
            extra = yield from run(self.chain.stream_end(self.ctx, StreamEnd(finish_reason, response.usage(data))))
        if self.ctx.ended_by is not None:
            decisions = []  # a policy ended the message at its end: the calls go with it
        own_role = new_delta.pop("role", None)
        self.role_pending = own_role if isinstance(own_role, str) else None
        unchanged, kept = self._release(decisions, extra, lead=new_delta.get("content") or "")
        new_reason = "stop" if finish_reason == "tool_calls" and had_calls and not kept else finish_reason
        if unchanged:
            if not text_changed:  # as it came (with its tool deltas, if it had any)
                self.role_pending = None
                self.emit_raw(event)
                return
            rest = new_delta  # only this chunk's text changed: it carries no tool call
        else:  # its text went out before the notices; the calls were rebuilt
            lead = bool(new_delta.get("content"))
            plain = not (text_changed or holding or own_role or lead) and self.role_pending is None
            if plain and new_reason == finish_reason:  # nothing in it changed or went out earlier
                self.emit_raw(event)
                return
            rest = {k: v for k, v in new_delta.items() if k not in ("content", "tool_calls")}
        self.sent_text = self.sent_text or bool(rest.get("content"))
        if rest.get("content") == "":
            del rest["content"]
        self._send_chunk({**data, "choices": [{**choice, "delta": rest, "finish_reason": new_reason}]})

    def _emit_content(self, text: str, paragraph: bool = False) -> None:
        """Send content; a `paragraph` (a notice) is set apart from text sent before it."""
        if text and self.template is not None:
            if paragraph and self.sent_text:
                text = f"\n\n{text}"
            self._send_chunk(wire.chunk_like(self.template, {"content": text}))
            self.sent_text = True

    def _failed_end(self) -> Step[None]:
        """The stream ends without its finish chunk: release held text, decide the held
        calls whose arguments are complete (the others are dropped) and send what survives."""
        self._emit_aligned((yield from self.text_block.close()))
        if self.tail is None:
            return
        decisions = yield from self._decisions(complete_only=True)
        self._release(decisions, extra="", lead="")

    def finish(self) -> Step[None]:
        """End of the upstream bytes. A stream cut before its finish chunk: see the
        module docstring (failed ends)."""
        if not self.finished or self.tail is not None:
            yield from self._failed_end()
        if self.fragment is not None and not self.chain.holds_tool_calls and self.ctx.ended_by is None:
            self.emit_raw(self.fragment)
