"""Applies a policy chain to an Anthropic Messages event stream, keeping it valid.

Invariants kept whatever the policies decide: `message_start` first and `message_stop`
last; every block starts, gets deltas, stops; output indices count up from 0 with no gap;
no empty text block; text is never placed after a tool_use block (blocked-call notices
and text a policy adds go before the surviving tool_use blocks, which are held until the
message ends); `stop_reason` becomes `end_turn` only when it was `tool_use` and no tool
call survived. Events nobody changed are forwarded as their original bytes, in their
place: pings and comments wait behind a text block's start or text the policies still
hold, so a stream nothing changed is byte-identical to upstream's.

A tool call is decided once its block stops (its arguments are complete); the decisions
run concurrently and are collected at `message_delta`. A tool block that never stopped
is incomplete and is dropped, never forwarded.

Failed ends: a stream may end before its `message_delta`, with an `error` event (it can
come after complete blocks) or a closed connection (at an event boundary or mid-event).
Then the open text block gets the text the policies hold, the held tool calls are
decided as usual (awaited) and sent if allowed, or replaced by their notice, and the
error event passes as it came. A held call never reaches the client undecided. After a
cut nothing is invented: no `message_delta`, no `message_stop`. A cut-off last event
(no blank line) goes out last, as it came, only when no policy holds tool calls: it
could be the start of an undecided call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from interlock.dialects.anthropic_messages import response, wire
from interlock.dialects.common import tool_arguments
from interlock.engine.aligner import TextPiece
from interlock.engine.driver import Step, run, start_eager, wait_for
from interlock.engine.stream import Piece, StreamRewriter
from interlock.engine.text_block import PolicedText
from interlock.neutral import ToolCall, Usage
from interlock.policy.base import Keep, PolicyContext, ReplaceWithText, StreamEnd, ToolDecision
from interlock.policy.chain import PolicyChain
from interlock.sse import SSEEvent, parse_event_block


@dataclass(slots=True)
class _TextBlock:
    upstream_index: int
    start: SSEEvent
    start_data: dict[str, Any]
    text: PolicedText
    out_index: int | None = None  # None until its first non-empty text is emitted
    pings: list[SSEEvent] = field(default_factory=list)  # pings that came before it opened


@dataclass(frozen=True, slots=True)
class _HeldEvent:
    """An upstream event of a held tool call, in the tail (not yet output)."""

    event: SSEEvent


@dataclass(slots=True)
class _HeldTool:
    upstream_index: int
    block: dict[str, Any]
    events: list[SSEEvent] = field(default_factory=list)
    json_parts: list[str] = field(default_factory=list)
    call: ToolCall | None = None
    decision: asyncio.Task[ToolDecision] | None = None


class MessagesStreamRewriter(StreamRewriter):
    def __init__(self, chain: PolicyChain, ctx: PolicyContext) -> None:
        super().__init__(chain, ctx)
        self.next_index = 0
        self.index_map: dict[int, int] = {}  # passthrough blocks: upstream -> output index
        self.text_blocks: dict[int, _TextBlock] = {}
        self.held: list[_HeldTool] = []
        self.held_by_index: dict[int, _HeldTool] = {}
        self.released: set[int] = set()  # upstream indices of tool blocks already dealt with
        self.fragment: SSEEvent | None = None  # the cut-off end of a truncated stream
        self.usage = Usage()
        # From the first held tool call to message_delta: upstream tool events (held)
        # and the output produced for everything else, in arrival order.
        self.tail: list[_HeldEvent | Piece] | None = None

    # -- helpers ---------------------------------------------------------------------

    def _allocate(self) -> int:
        index = self.next_index
        self.next_index += 1
        return index

    def _emit_block_event(self, event: SSEEvent, data: dict[str, Any], out_index: int) -> None:
        if data.get("index") == out_index:
            self.emit_raw(event)
        else:
            self.emit_new(wire.reindexed(data, out_index))

    def _open(self, block: _TextBlock) -> int:
        """Emit the block's start if not done yet (lazily: empty text blocks are
        invalid); the original bytes when its index did not move."""
        if block.out_index is None:
            block.out_index = self._allocate()
            self._emit_block_event(block.start, block.start_data, block.out_index)
            self._release_pings(block)
        return block.out_index

    def _release_pings(self, block: _TextBlock) -> None:
        """Forward the pings held while the block waited to open, in their place."""
        self.out.extend(block.pings)
        block.pings.clear()

    def _emit_text(self, block: _TextBlock, text: str) -> None:
        if text:
            self.emit_new(wire.text_delta(self._open(block), text))

    def _emit_aligned(self, block: _TextBlock, pieces: Sequence[TextPiece | SSEEvent]) -> None:
        """Upstream deltas whose text came out unchanged go as their original bytes."""
        for piece in pieces:
            if isinstance(piece, SSEEvent):  # an event that waited behind held text
                self.emit_raw(piece)
                continue
            event, text = piece
            if event is not None and self._open(block) == block.upstream_index:
                self.emit_raw(event)
            else:
                self._emit_text(block, text)

    # -- events ----------------------------------------------------------------------

    def handle(self, event: SSEEvent) -> Step[None]:
        if not event.complete:  # the stream was cut inside this event: see finish()
            self.fragment = event
            return
        data = event.json()
        kind = data.get("type") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(kind, str):
            kind, data = None, {}
        if kind == "error":  # the stream fails here: decide what is held, then the error
            yield from self._failed_end()
            self.emit_raw(event)
        elif self.tail is not None and kind != "message_delta":
            # Tool calls are held: keep everything after the first one in order, so an
            # unchanged message goes out exactly as it came (pings included).
            produced = len(self.out)
            yield from self._dispatch(event, data, kind)
            self.tail.extend(self.out[produced:])
            del self.out[produced:]
        else:
            yield from self._dispatch(event, data, kind)

    def _dispatch(self, event: SSEEvent, data: dict[str, Any], kind: str | None) -> Step[None]:
        if kind == "message_start":
            self._note_usage(data.get("message", {}).get("usage"))
            self.emit_raw(event)
        elif kind == "content_block_start":
            yield from self._block_start(event, data)
        elif kind == "content_block_delta":
            yield from self._block_delta(event, data)
        elif kind == "content_block_stop":
            yield from self._block_stop(event, data)
        elif kind == "message_delta":
            self._note_usage(data.get("usage"))
            yield from self._message_delta(event, data)
        else:  # ping, message_stop, comments, non-JSON, and event types unknown today
            self._emit_other(event)

    def _emit_other(self, event: SSEEvent) -> None:
        """An event that is not content keeps its place (an unchanged stream keeps its
        order): behind the start of a text block waiting to open, or behind the text the
        policies still hold."""
        block = next(iter(self.text_blocks.values()), None)
        if block is None:
            self.emit_raw(event)
        elif not block.text.behind.wait(event):
            if block.out_index is None:
                block.pings.append(event)
            else:
                self.emit_raw(event)

    def _note_usage(self, usage: Any) -> None:
        """message_start carries the input counts, message_delta the final output: the
        later value of each field wins."""
        if isinstance(usage, dict):
            update = response.usage({"usage": usage}).model_dump(exclude_none=True)
            self.usage = self.usage.model_copy(update=update)

    def _block_start(self, event: SSEEvent, data: dict[str, Any]) -> Step[None]:
        index = data.get("index")
        block = data.get("content_block") or {}
        if not isinstance(index, int):
            self.emit_raw(event)
            return
        if self.ctx.ended_by is not None:
            return
        block_type = block.get("type")
        if block_type == "text" and self.chain.handles_text:
            initial = block.get("text") or ""
            start_data = {**data, "content_block": {**block, "text": ""}} if initial else data
            text_block = _TextBlock(index, event, start_data, PolicedText(self.chain, self.ctx))
            self.text_blocks[index] = text_block
            if initial:
                text_block.start = parse_event_block(wire.sse("content_block_start", start_data))
                yield from self._text(text_block, None, initial)
        elif block_type == "tool_use" and self.chain.holds_tool_calls:
            held = _HeldTool(upstream_index=index, block=block, events=[event])
            self.held.append(held)
            self.held_by_index[index] = held
            self.tail = [*(self.tail or []), _HeldEvent(event)]
        else:
            out_index = self._allocate()
            self.index_map[index] = out_index
            self._emit_block_event(event, data, out_index)

    def _text(self, block: _TextBlock, event: SSEEvent | None, text: str) -> Step[None]:
        self._emit_aligned(block, (yield from block.text.add(event, text)))

    def _flush_text(self, block: _TextBlock) -> Step[None]:
        """The block's text ends: what the policies still hold goes out."""
        self._emit_aligned(block, (yield from block.text.close()))

    def _block_delta(self, event: SSEEvent, data: dict[str, Any]) -> Step[None]:
        index = data.get("index")
        delta = data.get("delta") or {}
        if self.ctx.ended_by is not None:
            return
        if index in self.text_blocks and delta.get("type") == "text_delta":
            yield from self._text(self.text_blocks[index], event, delta.get("text") or "")
        elif index in self.text_blocks:  # e.g. citations_delta: opens the block, goes as it came
            text_block = self.text_blocks[index]
            out_index = self._open(text_block)
            if out_index != index:
                event = parse_event_block(wire.reindexed(data, out_index))
            if not text_block.text.behind.wait(event):
                self.emit_raw(event)
        elif index in self.released:
            pass  # a tool block already decided or dropped
        elif index in self.held_by_index:
            held = self.held_by_index[index]
            held.events.append(event)
            self._hold(event)
            if delta.get("type") == "input_json_delta":
                held.json_parts.append(delta.get("partial_json") or "")
        elif isinstance(index, int) and index in self.index_map:
            self._emit_block_event(event, data, self.index_map[index])
        else:
            self.emit_raw(event)

    def _block_stop(self, event: SSEEvent, data: dict[str, Any]) -> Step[None]:
        index = data.get("index")
        if index in self.text_blocks:
            text_block = self.text_blocks.pop(index)
            yield from self._flush_text(text_block)
            if text_block.out_index is not None:  # else the block stayed empty: dropped
                self._emit_block_event(event, data, text_block.out_index)
            self._release_pings(text_block)
        elif index in self.released:
            pass  # a tool block already decided or dropped
        elif index in self.held_by_index:
            held = self.held_by_index[index]
            held.events.append(event)
            self._hold(event)
            self._decide(held)
        elif self.ctx.ended_by is not None and index not in self.index_map:
            pass  # a block dropped after the message was ended
        elif isinstance(index, int) and index in self.index_map:
            self._emit_block_event(event, data, self.index_map[index])
        else:
            self.emit_raw(event)

    def _decide(self, held: _HeldTool) -> None:
        """The tool call is complete: start its decision now, collect it at the end."""
        arguments = tool_arguments("".join(held.json_parts))
        held.call = ToolCall(
            id=held.block.get("id"),
            name=str(held.block.get("name", "")),
            arguments=arguments,
            index=len([h for h in self.held if h.call is not None]),
        )
        held.decision = start_eager(self.chain.tool_call(self.ctx, held.call))

    def _message_delta(self, event: SSEEvent, data: dict[str, Any]) -> Step[None]:
        delta = data.get("delta") or {}
        stop_reason = delta.get("stop_reason")
        had_calls = bool(self.held)
        survivors = yield from self._flush_tools(StreamEnd(stop_reason=stop_reason, usage=self.usage))
        new_reason = stop_reason
        if stop_reason == "tool_use" and not survivors and (had_calls or self.ctx.ended_by):
            new_reason = "end_turn"
        if new_reason != stop_reason:
            self.emit_new(wire.sse("message_delta", {**data, "delta": {**delta, "stop_reason": new_reason}}))
        else:
            self.emit_raw(event)

    def _hold(self, event: SSEEvent) -> None:
        assert self.tail is not None
        self.tail.append(_HeldEvent(event))

    def _flush_tools(self, end: StreamEnd | None) -> Step[int]:
        """Emit policy text and blocked-call notices, then the surviving tool calls,
        then whatever else arrived meanwhile; return how many tool calls survived.
        `end` is None when the stream failed before its message end: no stream-end
        hook runs. Tool blocks that never stopped are incomplete: dropped."""
        tail, self.tail = self.tail or [], None
        held, self.held = self.held, []
        self.released.update(h.upstream_index for h in held)
        self.held_by_index.clear()
        decisions: list[tuple[_HeldTool, ToolDecision]] = []
        for h in held:
            if h.decision is not None:  # an incomplete tool block has none
                decisions.append((h, (yield from wait_for(h.decision))))
        extra = ""
        if end is not None and self.chain.holds_tool_calls and self.ctx.ended_by is None:
            extra = yield from run(self.chain.stream_end(self.ctx, end))
        if self.ctx.ended_by is not None:
            if extra:  # the notice of a policy that ended the message at its end
                self.out.extend(wire.text_block(self._allocate(), extra))
            self.out.extend(piece for piece in tail if not isinstance(piece, _HeldEvent))
            return 0  # held tool calls are dropped with the rest of the message
        notices = ([extra] if extra else []) + [d.text for _, d in decisions if isinstance(d, ReplaceWithText)]
        kept = [(h, d.call) for h, d in decisions if isinstance(d, Keep)]
        unchanged = (
            not notices
            and len(kept) == len(held)
            and all(call == h.call for h, call in kept)
            and (not held or self.next_index == held[0].upstream_index)
        )
        if unchanged:
            self.next_index += len(held)
            self.out.extend(piece.event if isinstance(piece, _HeldEvent) else piece for piece in tail)
            return len(kept)
        for notice in notices:
            self.out.extend(wire.text_block(self._allocate(), notice))
        for h, call in kept:
            self._emit_tool(h, call)
        self.out.extend(piece for piece in tail if not isinstance(piece, _HeldEvent))
        return len(kept)

    def _emit_tool(self, held: _HeldTool, call: ToolCall) -> None:
        out_index = self._allocate()
        if out_index == held.upstream_index and call == held.call:
            for event in held.events:
                self.emit_raw(event)
        else:
            self.emit_new(b"".join(wire.tool_use_block(out_index, {**held.block, "input": call.arguments})))

    def _failed_end(self) -> Step[None]:
        """The stream fails before its message end (an error event, a cut): the open
        text block gets what the policies hold (its start goes out even if it stayed
        empty, as upstream sent it), then the held tool calls are decided and sent."""
        produced = len(self.out)
        for text_block in self.text_blocks.values():
            yield from self._flush_text(text_block)
            if self.ctx.ended_by is None:
                self._open(text_block)
            self._release_pings(text_block)
        if self.tail is not None:
            self.tail.extend(self.out[produced:])
            del self.out[produced:]
            yield from self._flush_tools(None)

    def finish(self) -> Step[None]:
        """End of the upstream bytes: a stream cut before its message end (see
        `_failed_end`). Nothing is invented: no message_delta, no message_stop. A
        cut-off last event goes out last, as it came, only when no policy holds tool
        calls (it could be the start of an undecided one)."""
        yield from self._failed_end()
        if self.fragment is not None and not self.chain.holds_tool_calls and self.ctx.ended_by is None:
            self.emit_raw(self.fragment)
