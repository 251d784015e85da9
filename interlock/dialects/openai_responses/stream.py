"""Applies a policy chain to an OpenAI Responses event stream, keeping it valid.

The stream is typed events (`event:` + `data:`), each payload with its `type` and a
`sequence_number`; output items open with `response.output_item.added`, get their parts
and deltas, and close with `response.output_item.done`; one terminal event
(`response.completed`, `.incomplete`, `.failed`) carries the whole response last.
Invariants kept whatever the policies decide: sequence numbers strictly increase (an
event keeps upstream's number unless an event the rewriter added took it; removed events
leave gaps, which clients accept); every item sent is added and done at the same `output_index`, and indices
count up from 0 with no gap; deltas only between an item's added and done; the `.done`
events of text a policy changed carry the text the client was sent; the terminal
event's `output` is exactly the items sent. Events nobody changed whose numbers did not
move go out as their original bytes, so an unpoliced stream is byte-identical.

Numbering is done when an event is sent (`_send`), not when it is read: a held call
replaced by a notice, or removed, moves the output indices of the items after it.

Tool calls (`function_call`, `custom_tool_call` items) are held from their added event;
each is decided when its done event arrives (its arguments or input are complete), the
decisions run concurrently and are collected at the terminal event, where the held
calls go out in their place: as they came, rebuilt with changed arguments, or replaced
by a message item with the policy's notice. Everything after the first held call waits
behind it, so an unchanged stream keeps its order. Text a policy adds at the end goes
out as a message item before the first held call. A removed call is remembered for the
next request chained on this response (`chained`).

Failed ends: an `error` event, or the connection closing before a terminal event: held
text is flushed, held calls whose done event arrived are decided and sent (or replaced),
the others are dropped, never forwarded; the error passes as it came; nothing is
invented after a cut. A cut-off last event goes out only when no policy holds tool calls.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from interlock.dialects.common import int_field, string_field
from interlock.dialects.openai_responses import chained, response, wire
from interlock.dialects.openai_responses.chained import blocking_policy
from interlock.dialects.openai_responses.reassemble import TERMINAL
from interlock.dialects.openai_responses.request import CALL_ITEMS
from interlock.engine.aligner import TextPiece
from interlock.engine.driver import Step, run, start_eager, wait_for
from interlock.engine.stream import StreamRewriter
from interlock.engine.text_block import PolicedText
from interlock.neutral import ToolCall
from interlock.policy.base import PolicyContext, ReplaceWithText, StreamEnd, ToolDecision
from interlock.policy.chain import PolicyChain
from interlock.sse import SSEEvent


@dataclass(slots=True)
class _Out:
    """An event to send: upstream's (`event`, forwarded as it came when `payload` is
    still its data and its numbers stay) or a new one (`event` None); `key` names its
    output item."""

    payload: dict[str, Any]
    key: Hashable | None
    event: SSEEvent | None = None


@dataclass(slots=True)
class _Held:
    key: int
    item: dict[str, Any]
    events: list[_Out] = field(default_factory=list)
    done: dict[str, Any] | None = None  # the item as its done event gave it
    call: ToolCall | None = None
    decision: asyncio.Task[ToolDecision] | None = None


@dataclass(slots=True)
class _TextPart:
    template: dict[str, Any]  # the first delta's fields, for new deltas
    text: PolicedText
    sent: list[str] = field(default_factory=list)


class ResponsesStreamRewriter(StreamRewriter):
    def __init__(self, chain: PolicyChain, ctx: PolicyContext) -> None:
        super().__init__(chain, ctx)
        self.sequence = -1  # the last sequence number sent
        self.indices: dict[Hashable, int] = {}  # item key -> output_index sent
        self.sent_items: list[dict[str, Any]] = []  # done items as sent, in order
        self.texts: dict[tuple[int, int], _TextPart] = {}
        self.held: dict[int, _Held] = {}
        self.tail: list[_Out | _Held] | None = None  # from the first held call on
        self.dropped: set[int] = set()  # upstream items not sent (opened after the end)
        self.response_id: str | None = None
        self.new_items = 0
        self.fragment: SSEEvent | None = None
        self.terminated = False

    # -- sending -----------------------------------------------------------------------

    def _queue(self, out: _Out | _Held) -> None:
        if self.tail is not None:
            self.tail.append(out)
        elif isinstance(out, _Out):
            self._send(out)

    def _send(self, out: _Out) -> None:
        payload, kind = out.payload, out.payload.get("type")
        # An event kept as it came (`_other`: a comment, or JSON that is no typed event) has no payload.
        changed = out.event is None or (
            bool(payload) and payload is not out.event.json() and out.event.data is not None
        )
        if kind == "response.output_item.added" and out.key is not None:
            self.indices[out.key] = len(self.indices)
        if "output_index" in payload:
            index = self.indices.get(out.key) if out.key is not None else None
            if index is None:
                return  # an item that was never opened: its events are not sent
            if payload["output_index"] != index:
                payload, changed = {**payload, "output_index": index}, True
        if "sequence_number" in payload:
            upstream = payload["sequence_number"]
            keeps = out.event is not None and isinstance(upstream, int) and upstream > self.sequence
            number = upstream if keeps else self.sequence + 1
            if number != upstream:
                payload, changed = {**payload, "sequence_number": number}, True
            self.sequence = number
        if kind == "response.output_item.done" and isinstance(payload.get("item"), dict):
            self.sent_items.append(payload["item"])
        elif kind in TERMINAL and isinstance(payload.get("response"), dict):
            body = payload["response"]
            if body.get("output") != self.sent_items:
                payload, changed = {**payload, "response": {**body, "output": list(self.sent_items)}}, True
        if changed or out.event is None:
            self.emit_new(wire.sse(payload))
        else:
            self.emit_raw(out.event)

    def _new_item(self, events: list[dict[str, Any]]) -> list[_Out]:
        self.new_items += 1
        key = ("new", self.new_items)
        return [_Out({**payload, "sequence_number": -1}, key) for payload in events]

    def _notice(self, text: str) -> list[_Out]:
        item_id = f"msg_interlock_{self.ctx.call_id}_{self.new_items + 1}"
        return self._new_item(wire.message_events(item_id, text))

    # -- events ------------------------------------------------------------------------

    def handle(self, event: SSEEvent) -> Step[None]:
        if not event.complete:
            self.fragment = event
            return
        payload = event.json()
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or not isinstance(kind, str):
            self._other(event)
            return
        index = int_field(payload, "output_index")
        if kind == "response.created" and isinstance(payload.get("response"), dict):
            self.response_id = string_field(payload["response"], "id")
        if kind in TERMINAL:
            yield from self._terminal(event, payload)
        elif kind == "error":
            yield from self._failed_end()
            self._send(_Out(payload, None, event))
        elif index is None:
            self._queue(_Out(payload, None, event))
        elif index in self.held:
            self._hold(self.held[index], event, payload)
        elif kind == "response.output_item.added":
            self._added(event, payload, index)
        elif index in self.dropped:
            return
        elif kind == "response.output_item.done":
            self._queue(_Out(self._with_sent_text(payload, index), index, event))
        elif (index, int_field(payload, "content_index") or 0) in self.texts or (
            kind == "response.output_text.delta" and self.chain.handles_text
        ):
            yield from self._text_event(event, payload, index)
        else:
            self._queue(_Out(payload, index, event))

    def _other(self, event: SSEEvent) -> None:
        """A comment or non-JSON event keeps its place: behind held text, inside an open
        held call, or where it came."""
        if any(part.text.behind.wait(event) for part in self.texts.values() if part.text.open):
            return
        open_calls = [held for held in self.held.values() if held.done is None]
        if open_calls:
            open_calls[-1].events.append(_Out({}, None, event))
        else:
            self._queue(_Out({}, None, event))

    def _added(self, event: SSEEvent, payload: dict[str, Any], index: int) -> None:
        found = payload.get("item")
        item: dict[str, Any] = found if isinstance(found, dict) else {}
        if self.ctx.ended_by is not None:
            self.dropped.add(index)
        elif item.get("type") in CALL_ITEMS and self.chain.holds_tool_calls:
            held = _Held(index, item, [_Out(payload, index, event)])
            self.held[index] = held
            self.tail = self.tail if self.tail is not None else []
            self.tail.append(held)
        else:
            self._queue(_Out(payload, index, event))

    def _hold(self, held: _Held, event: SSEEvent, payload: dict[str, Any]) -> None:
        held.events.append(_Out(payload, held.key, event))
        if payload.get("type") == "response.output_item.done" and isinstance(payload.get("item"), dict):
            held.done = payload["item"]
            held.call = response.call_of(held.done, len([h for h in self.held.values() if h.call is not None]))
            if held.call is not None and self.ctx.ended_by is None:
                held.decision = start_eager(self.chain.tool_call(self.ctx, held.call))

    # -- text --------------------------------------------------------------------------

    def _text_event(self, event: SSEEvent, payload: dict[str, Any], index: int) -> Step[None]:
        kind = payload["type"]
        part_key = (index, int_field(payload, "content_index") or 0)
        part = self.texts.get(part_key)
        if kind == "response.output_text.delta":
            if part is None:
                template = {k: v for k, v in payload.items() if k not in ("delta", "obfuscation")}
                part = self.texts[part_key] = _TextPart(template, PolicedText(self.chain, self.ctx))
            if self.ctx.ended_by is not None:
                return
            delta = payload.get("delta")
            self._emit_text(part, (yield from part.text.add(event, delta if isinstance(delta, str) else "")))
            return
        assert part is not None
        if kind == "response.output_text.done":
            yield from self._flush(part)
            payload = self._with_text(payload, "text", "".join(part.sent))
        elif kind == "response.content_part.done" and isinstance(payload.get("part"), dict):
            payload = self._with_text(payload, "part", {**payload["part"], "text": "".join(part.sent)})
        self._queue(_Out(payload, index, event))

    def _flush(self, part: _TextPart) -> Step[None]:
        """The part's text ends (or the stream fails): what the policies hold goes out."""
        self._emit_text(part, (yield from part.text.close()))

    def _emit_text(self, part: _TextPart, pieces: list[TextPiece | SSEEvent]) -> None:
        index = part.template.get("output_index")
        for piece in pieces:
            if isinstance(piece, SSEEvent):  # a comment that waited behind held text
                self._queue(_Out({}, None, piece))
                continue
            upstream, text = piece
            if upstream is not None:
                self._queue(_Out(upstream.json() or {}, index, upstream))
            elif text:
                self._queue(_Out({**part.template, "delta": text, "sequence_number": -1}, index))
            part.sent.append(text)

    @staticmethod
    def _with_text(payload: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
        return payload if payload.get(key) == value else {**payload, key: value}

    def _with_sent_text(self, payload: dict[str, Any], index: int) -> dict[str, Any]:
        """A message's done item with the text its policed parts were sent."""
        item = payload.get("item")
        parts = [(ci, p) for (i, ci), p in self.texts.items() if i == index]
        if not parts or not isinstance(item, dict) or not isinstance(item.get("content"), list):
            return payload
        content = copy.deepcopy(item["content"])
        for ci, part in parts:
            if ci < len(content) and isinstance(content[ci], dict):
                content[ci]["text"] = "".join(part.sent)
        return self._with_text(payload, "item", {**item, "content": content})

    # -- ends --------------------------------------------------------------------------

    def _terminal(self, event: SSEEvent, payload: dict[str, Any]) -> Step[None]:
        found = payload.get("response")
        body: dict[str, Any] = found if isinstance(found, dict) else {}
        extra = ""
        decisions = yield from self._decisions()
        if self.chain.holds_tool_calls and self.ctx.ended_by is None:
            end = StreamEnd(response.stop_reason(body), response.usage(body))
            extra = yield from run(self.chain.stream_end(self.ctx, end))
        self._release(decisions, extra)
        self.terminated = True
        self._send(_Out(payload, None, event))

    def _decisions(self) -> Step[dict[int, ToolDecision]]:
        decisions: dict[int, ToolDecision] = {}
        for held in self.held.values():
            if held.decision is not None:
                decisions[held.key] = yield from wait_for(held.decision)
        return decisions

    def _release(self, decisions: dict[int, ToolDecision], extra: str) -> None:
        """Send the tail: each held call as it came, rebuilt, or replaced by its notice;
        `extra` (text a policy added at the end) before the first of them."""
        tail, self.tail = self.tail or [], None
        self.held = {}
        if extra and not any(isinstance(piece, _Held) for piece in tail):
            tail.append(_Held(-1, {}))  # where the extra text goes
        for piece in tail:
            if isinstance(piece, _Out):
                self._send(piece)
                continue
            for out in self._notice(extra) if extra else []:
                self._send(out)
            extra = ""
            for out in self._held_output(piece, decisions.get(piece.key)):
                self._send(out)

    def _held_output(self, held: _Held, decision: ToolDecision | None) -> list[_Out]:
        if held.done is None or held.call is None:
            return []  # never completed (or a placeholder): never forwarded
        if decision is None or self.ctx.ended_by is not None:
            self._remember(held, self.ctx.ended_by or "interlock", "the message was ended by a policy")
            return []
        if isinstance(decision, ReplaceWithText):
            self._remember(held, blocking_policy(self.ctx, held.call.id), decision.reason)
            return self._notice(decision.text)
        if decision.call == held.call:
            return held.events
        return self._new_item(wire.call_events(wire.call_item(held.done, decision.call.name, decision.call.arguments)))

    def _remember(self, held: _Held, policy: str, reason: str) -> None:
        if self.response_id and held.call is not None:
            chained.remember(self.response_id, held.done or {}, held.call.name, policy, reason)

    def _failed_end(self) -> Step[None]:
        for part in self.texts.values():
            yield from self._flush(part)
        if self.tail is not None:
            decisions = yield from self._decisions()
            self._release(decisions, "")

    def finish(self) -> Step[None]:
        if not self.terminated:
            yield from self._failed_end()
        if self.fragment is not None and not self.chain.holds_tool_calls and self.ctx.ended_by is None:
            self.emit_raw(self.fragment)
