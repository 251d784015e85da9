"""Applies a policy chain to a Gemini chunk stream (`streamGenerateContent?alt=sse`),
keeping it valid.

Every chunk is a whole GenerateContentResponse; a function call arrives whole in one
part. Invariants kept: exactly one chunk carries the first candidate's `finishReason`
(it stays as it came: Gemini ends a turn with function calls with STOP too); function
call parts keep their `name` and object `args`; no empty text part is added (a text part
left empty is dropped, unless it carries a `thoughtSignature`); every `thoughtSignature`
of the parts that remain goes out exactly as it came; a blocked call's part becomes a
text part with the notice, keeping the part's signature, and when the call that carried
the step's signature is blocked and a later call survives, that call gets the signature
too (Gemini 3 refuses a next turn whose first call has none). Text a policy adds at the
end goes before the surviving calls. Chunks nobody changed are forwarded as their
original bytes, so a stream whose calls are all allowed unchanged is byte-identical to
upstream's. Only a single-candidate stream is policed (`candidateCount` > 1 passes
through untouched). Code Assist's `{response, traceId}` chunks are rewritten inside
their wrapping.

A function call is decided from the moment its chunk arrives (the decisions run
concurrently); the chunk and every chunk after it wait, in order, until the finish
chunk, where the decisions are collected and the stream-end policies run: kept calls
are sent only after that step, and a message a policy ends there (one failing closed)
drops every held call, its notice in their place. Thought parts are not policed.

Failed ends: a stream may end without its finish chunk, with an `{"error": ...}` chunk,
or a closed connection. Then the text the policies hold is released and the held calls
are decided as usual (awaited) and sent if allowed, or replaced by their notice; the
error chunk then passes as it came; after a cut nothing is invented. A cut-off last
frame goes out last, as it came, only when no policy holds tool calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from interlock.dialects.gemini import response, wire
from interlock.dialects.gemini.reassemble import is_plain_text
from interlock.engine.aligner import TextPiece, send_aligned
from interlock.engine.driver import Step, run, start_eager, wait_for
from interlock.engine.stream import Piece, StreamRewriter
from interlock.engine.text_block import PolicedText
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, PolicyContext, ReplaceWithText, StreamEnd, ToolDecision
from interlock.policy.chain import PolicyChain
from interlock.sse import SSEEvent

SIGNATURE = "thoughtSignature"


@dataclass(slots=True)
class _HeldCall:
    part: dict[str, Any]  # the upstream function call part
    call: ToolCall
    decision: asyncio.Task[ToolDecision]
    outcome: ToolDecision | None = None  # None once decided: dropped (the message was ended)


@dataclass(slots=True)
class _HeldChunk:
    """A chunk with held calls, or one that came after one: its parts as the text
    policies left them, a `_HeldCall` standing for each function call part."""

    event: SSEEvent
    chunk: dict[str, Any]  # the GenerateContentResponse
    wrapping: wire.Wrapping
    parts: list[dict[str, Any] | _HeldCall]
    changed: bool  # its own parts changed, whatever the calls' decisions
    finish: bool


Parts = list[dict[str, Any] | _HeldCall]


def single_candidate(chunk: dict[str, Any]) -> dict[str, Any] | None:
    candidates = chunk.get("candidates")
    if isinstance(candidates, list) and len(candidates) == 1 and isinstance(candidates[0], dict):
        return candidates[0]
    return None


def sendable(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Empty text parts are not sent, unless they carry a signature."""
    return [p for p in parts if not (response.is_text(p) and not p["text"] and SIGNATURE not in p)]


def kept_call(part: dict[str, Any], call: ToolCall) -> dict[str, Any]:
    """A kept call's part: as it came, or with the arguments (or name) a policy gave it."""
    old = response.function_call(part) or {}
    if old.get("name") == call.name and old.get("args", {}) == call.arguments:
        return part
    return {**part, "functionCall": {**old, "name": call.name, "args": call.arguments}}


class GeminiStreamRewriter(StreamRewriter):
    def __init__(self, chain: PolicyChain, ctx: PolicyContext) -> None:
        super().__init__(chain, ctx)
        self.tail: list[_HeldChunk | Piece] | None = None  # from the first held call on
        self.held: list[_HeldCall] = []
        self.finished = False
        self.fragment: SSEEvent | None = None
        self.template: tuple[dict[str, Any], wire.Wrapping] | None = None
        self.sent_text = False
        self.text_block = PolicedText(chain, ctx)  # the message's one text

    # While calls are held, everything sent waits behind them, in order.

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

    def _pass(self, event: SSEEvent) -> None:
        if not self.text_block.behind.wait(event):
            self.emit_raw(event)

    def _paragraph(self, text: str) -> str:
        """A notice or added text, set apart from text sent before it."""
        out = f"\n\n{text}" if self.sent_text else text
        self.sent_text = True
        return out

    def _emit_text(self, text: str) -> None:
        if text and self.template is not None:
            chunk, wrapping = self.template
            self.emit_new(wire.sse(wrapping.wrap(wire.text_chunk(chunk, text))))
            self.sent_text = True

    def _emit_aligned(self, pieces: Sequence[TextPiece | SSEEvent]) -> None:
        """Upstream chunks whose text came out unchanged go as their original bytes."""
        if send_aligned(pieces, self.emit_raw, self._emit_text):
            self.sent_text = True

    # -- events ----------------------------------------------------------------------

    def handle(self, event: SSEEvent) -> Step[None]:
        if not event.complete:  # the stream was cut inside this frame: see finish()
            self.fragment = event
            return
        payload = event.json()
        if isinstance(payload, dict) and "error" in payload and not self.finished:
            yield from self._failed_end()
        chunk, wrapping = wire.Wrapping.of(payload) if isinstance(payload, dict) else ({}, wire.Wrapping())
        candidate = single_candidate(chunk)
        if candidate is None or self.finished:  # errors, comments, several candidates, anything unknown
            self._pass(event)
            return
        self.template = (chunk, wrapping)
        parts = response.candidate_parts(candidate)
        finish = candidate.get("finishReason") is not None
        texts = [p for p in parts if response.is_text(p) and p["text"]]
        if not self.chain.handles_text or self.ctx.ended_by is not None:
            texts = []
        if texts and texts[0] is parts[0] and len(texts) == 1 and is_plain_text(parts[0]):
            yield from self._leading_text(event, chunk, wrapping, parts, finish)
            return
        ends_text = finish or any(response.function_call(p) is not None for p in parts)
        if not texts and not ends_text and self.ctx.ended_by is None:
            self._pass(event)  # thoughts and other parts alone: as they came, in their place
            return
        if texts:  # text with more around it: this chunk is rebuilt
            self._emit_aligned(self.text_block.abandon())
        else:  # the text ended before this chunk
            self._emit_aligned((yield from self.text_block.close()))
        new_parts, changed = yield from self._parts(parts, finish)
        yield from self._chunk_done(event, chunk, wrapping, new_parts, changed, finish)

    def _chunk_done(
        self, event: SSEEvent, chunk: dict[str, Any], wrapping: wire.Wrapping, parts: Parts, changed: bool, finish: bool
    ) -> Step[None]:
        if finish:
            yield from self._finish(event, chunk, wrapping, parts, changed)
        else:
            self._emit_chunk(event, chunk, wrapping, parts, changed, finish=False)

    def _leading_text(
        self, event: SSEEvent, chunk: dict[str, Any], wrapping: wire.Wrapping, parts: list[dict[str, Any]], finish: bool
    ) -> Step[None]:
        """A chunk whose answer text is its first part (often its only one; the last
        text may share its chunk with a call or the finish): it goes out as it came once
        the policies released its text unchanged and nothing else in it changed."""
        first, rest = parts[0], parts[1:]
        text = str(first["text"])
        out = yield from self.text_block.released(text)
        if self.ctx.ended_by is not None:  # a policy ended the message on this text
            self._emit_aligned(self.text_block.abandon(out))
            yield from self._chunk_done(event, chunk, wrapping, [], True, finish)
            return
        pieces = self.text_block.line_up(event, text, out)
        if not rest and not finish:
            self._emit_aligned(pieces)
            return
        pieces += yield from self.text_block.close()  # a call, the finish or another part follows
        # Its text stays in it only if nothing released comes after that text: what the
        # policies released later (the aligner may match this chunk's text at the start
        # of text that stands for earlier chunks) must not go out before it.
        whole = bool(pieces) and not isinstance(pieces[-1], SSEEvent) and pieces[-1][0] is event
        self._emit_aligned(
            [
                (None, p[1]) if not isinstance(p, SSEEvent) and p[0] is event else p
                for p in pieces[: -1 if whole else None]
            ]
        )
        new_rest, changed = yield from self._parts(rest, finish)
        kept: Parts = [first] if whole else []  # else its text went out as new text
        yield from self._chunk_done(event, chunk, wrapping, [*kept, *new_rest], changed or not whole, finish)

    def _parts(self, parts: list[dict[str, Any]], finish: bool) -> Step[tuple[Parts, bool]]:
        """A chunk's parts after the text policies, each function call held when a policy
        looks at calls; the text closes before a call and at the finish."""
        out: Parts = []
        changed = False
        for part in parts:
            if self.ctx.ended_by is not None:
                changed = True  # a policy ended the message: the rest is dropped
                continue
            call = response.function_call(part)
            if response.is_text(part) and part["text"] and self.chain.handles_text:
                new = yield from self.text_block.released(part["text"])
                changed = changed or new != part["text"]
                out.append({**part, "text": new})
            elif call is not None:
                changed = (yield from self._close_text_into(out)) or changed
                if self.ctx.ended_by is not None:
                    changed = True
                elif self.chain.holds_tool_calls:
                    tool_call = response.to_tool_call(call, len(self.held))
                    held = _HeldCall(part, tool_call, start_eager(self.chain.tool_call(self.ctx, tool_call)))
                    self.held.append(held)
                    out.append(held)
                else:
                    out.append(part)
            else:
                out.append(part)
        if finish:
            changed = (yield from self._close_text_into(out)) or changed
        return out, changed

    def _close_text_into(self, out: Parts) -> Step[bool]:
        """Close the text; what the policies still held joins `out`. True if any did."""
        pieces = yield from self.text_block.close()
        text = "".join(p[1] for p in pieces if not isinstance(p, SSEEvent))
        self._emit_aligned([p for p in pieces if isinstance(p, SSEEvent)])
        if not text:
            return False
        last = out[-1] if out else None
        if isinstance(last, dict) and response.is_text(last) and SIGNATURE not in last:
            out[-1] = {**last, "text": last["text"] + text}
        else:
            out.append({"text": text})
        return True

    def _emit_chunk(
        self, event: SSEEvent, chunk: dict[str, Any], wrapping: wire.Wrapping, parts: Parts, changed: bool, finish: bool
    ) -> None:
        """Send a chunk (as it came when nothing in it changed), or hold it behind calls."""
        if self.tail is None and not any(isinstance(p, _HeldCall) for p in parts):
            plain = sendable([p for p in parts if isinstance(p, dict)])
            self.sent_text = self.sent_text or any(response.is_text(p) and p["text"] for p in plain)
            if not changed:
                self._pass(event)
            elif plain or finish:
                self.emit_new(wire.sse(wrapping.wrap(wire.with_parts(chunk, plain))))
            return
        if self.tail is None:
            self.tail = []
        self.tail.append(_HeldChunk(event, chunk, wrapping, parts, changed, finish))

    def _decide(self) -> Step[None]:
        """Collect the held calls' decisions; a message a policy ended drops them."""
        held, self.held = self.held, []
        for call in held:
            if self.ctx.ended_by is not None:
                call.decision.cancel()
                continue
            call.outcome = yield from wait_for(call.decision)

    def _finish(
        self, event: SSEEvent, chunk: dict[str, Any], wrapping: wire.Wrapping, parts: Parts, changed: bool
    ) -> Step[None]:
        """The finish chunk: decide the held calls, let the policies add text at the end,
        then send what waited behind the calls and the finish chunk."""
        self.finished = True
        yield from self._decide()
        extra = ""
        if self.chain.holds_tool_calls and self.ctx.ended_by is None:
            end = StreamEnd(response.stop_reason(chunk), response.usage(chunk))
            extra = yield from run(self.chain.stream_end(self.ctx, end))
        if self.tail is None and not any(isinstance(p, _HeldCall) for p in parts):
            if extra:
                parts, changed = [*parts, {"text": self._paragraph(extra)}], True
            self._emit_chunk(event, chunk, wrapping, parts, changed, finish=True)
            return
        self._emit_chunk(event, chunk, wrapping, parts, changed, finish=True)
        self._release(extra)

    def _release(self, extra: str) -> None:
        """Send the tail: as it came when every call was kept unchanged and nothing was
        added; otherwise each held chunk rebuilt, blocked calls as their notices and
        `extra` before the first call. Kept calls go out only here, after the stream-end
        step: when a policy ended the message, every held call is dropped (`extra` is
        then the policy's notice)."""
        tail, self.tail = self.tail or [], None
        chunks = [piece for piece in tail if isinstance(piece, _HeldChunk)]
        calls = [p for c in chunks for p in c.parts if isinstance(p, _HeldCall)]
        if self.ctx.ended_by is not None:  # a policy ended the message (at its end, too): no call is sent
            for call in calls:
                call.outcome = None
        if (
            not extra
            and not any(c.changed for c in chunks)
            and all(isinstance(h.outcome, Keep) and h.outcome.call == h.call for h in calls)
        ):
            self.out.extend(piece.event if isinstance(piece, _HeldChunk) else piece for piece in tail)
            return
        owed: str | None = None  # the signature of a blocked call, owed to the next kept call
        signed = False  # a kept call carries a signature
        for piece in tail:
            if not isinstance(piece, _HeldChunk):
                self.out.append(piece)
                continue
            parts: list[dict[str, Any]] = []
            for part in piece.parts:
                if not isinstance(part, _HeldCall):
                    parts.append(part)
                    continue
                if extra:
                    parts.append({"text": self._paragraph(extra)})
                    extra = ""
                if isinstance(part.outcome, Keep):
                    new = kept_call(part.part, part.outcome.call)
                    if SIGNATURE not in new and owed is not None and not signed:
                        new = {**new, SIGNATURE: owed}
                    signed = signed or SIGNATURE in new
                    parts.append(new)
                elif isinstance(part.outcome, ReplaceWithText):
                    notice: dict[str, Any] = {"text": self._paragraph(part.outcome.text)}
                    if SIGNATURE in part.part:
                        notice[SIGNATURE] = part.part[SIGNATURE]
                        owed = owed or str(part.part[SIGNATURE])
                    parts.append(notice)
            if extra and piece.finish:
                parts.append({"text": self._paragraph(extra)})
                extra = ""
            parts = sendable(parts)
            if parts or piece.finish:
                self.out.append(wire.sse(piece.wrapping.wrap(wire.with_parts(piece.chunk, parts))))

    def _failed_end(self) -> Step[None]:
        """The stream ends without its finish chunk: release the held text, decide the
        held calls and send what survives."""
        self._emit_aligned((yield from self.text_block.close()))
        if self.tail is None:
            return
        yield from self._decide()
        self._release(extra="")

    def finish(self) -> Step[None]:
        """End of the upstream bytes; a stream cut before its finish chunk: see the
        module docstring (failed ends)."""
        if not self.finished or self.tail is not None:
            yield from self._failed_end()
        if self.fragment is not None and not self.chain.holds_tool_calls and self.ctx.ended_by is None:
            self.emit_raw(self.fragment)
