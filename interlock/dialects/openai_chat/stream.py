"""Applies a policy chain to an OpenAI Chat Completions chunk stream, keeping it valid.

Invariants kept: exactly one chunk carries `finish_reason`; tool call deltas keep
contiguous indices and the first delta of each call carries its id and name; text a
policy adds and blocked-call notices go out as content before the surviving tool calls;
`finish_reason` becomes `stop` when every tool call was removed; the usage chunk and
`data: [DONE]` pass through. Chunks nobody changed are forwarded as their original bytes.
Only the first choice is policed (`n` > 1 streams pass through untouched).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from interlock.dialects.common import tool_arguments
from interlock.dialects.openai_chat import response, wire
from interlock.engine.aligner import TextAligner, TextPiece
from interlock.engine.driver import Step, run, start_eager, wait_for
from interlock.engine.stream import StreamRewriter
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, PolicyContext, ReplaceWithText, StreamEnd, ToolDecision
from interlock.policy.chain import PolicyChain, PolicyFailed
from interlock.sse import SSEEvent


@dataclass(slots=True)
class _HeldCall:
    index: int
    id: str | None = None
    name: str = ""
    argument_parts: list[str] = field(default_factory=list)
    call: ToolCall | None = None
    decision: asyncio.Task[ToolDecision] | None = None


class ChatStreamRewriter(StreamRewriter):
    def __init__(self, chain: PolicyChain, ctx: PolicyContext) -> None:
        super().__init__(chain, ctx)
        self.held: dict[int, _HeldCall] = {}
        self.held_chunks: list[SSEEvent] = []  # tool-only chunks, re-sent as they were if nothing changed
        self.mixed_tool_chunks = False
        self.template: dict[str, Any] | None = None
        self.finished = False
        self.sent_text = False  # content reached the client: notices start a new paragraph
        self.aligner = TextAligner()
        self.text_open = False  # text went to the policies and its end was not signalled yet

    def handle(self, event: SSEEvent) -> Step[None]:
        data = event.json()
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(choices, list) or not choices:
            self.emit_raw(event)  # [DONE], the usage chunk, comments, anything unknown
            return
        choice = choices[0]
        if len(choices) > 1 or not isinstance(choice, dict) or choice.get("index", 0) != 0:
            self.emit_raw(event)
            return
        self.template = data
        delta = choice.get("delta") or {}
        new_delta = dict(delta)
        modified = False
        content = delta.get("content")
        tool_deltas = delta.get("tool_calls")
        ends_text = bool(tool_deltas) or choice.get("finish_reason") is not None
        if isinstance(content, str) and content and self.chain.handles_text:
            out = "" if self.ctx.ended_by is not None else (yield from self._text(content))
            only_text = choice.get("finish_reason") is None and all(
                v is None for k, v in delta.items() if k != "content"
            )
            if only_text and self.ctx.ended_by is None:
                self._emit_aligned(self.aligner.add(event, content, out))
                return
            out = self.aligner.abandon() + out  # a chunk with more than text is rebuilt
            if ends_text:
                out += "".join(text for _, text in (yield from self._close_text()))
            if out != content:
                new_delta["content"] = out
                modified = True
        elif ends_text:  # tool calls or the finish follow the text: release what is held first
            self._emit_aligned((yield from self._close_text()))
        if isinstance(tool_deltas, list) and (self.chain.holds_tool_calls or self.ctx.ended_by):
            self._hold(tool_deltas)
            del new_delta["tool_calls"]
            modified = True
            only_tools = all(k in ("tool_calls", "role") or v is None for k, v in delta.items())
            if only_tools and not choice.get("finish_reason"):
                self.held_chunks.append(event)
            else:
                self.mixed_tool_chunks = True
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            produced = len(self.out)
            finish_reason = yield from self._finish(finish_reason, data)
            modified = modified or finish_reason != choice.get("finish_reason")
            added = self.out[produced:]
            if added and new_delta.get("content"):  # this chunk's text goes before what the end adds
                del self.out[produced:]
                lead = {key: new_delta.pop(key) for key in ("role", "content") if key in new_delta}
                self.emit_new(wire.sse(wire.chunk_like(data, lead)))
                self.out.extend(added)
                modified = True
        self.sent_text = self.sent_text or bool(new_delta.get("content"))
        if not modified:
            self.emit_raw(event)
            return
        if new_delta.get("content") == "":
            del new_delta["content"]
        if not new_delta and finish_reason is None:
            return
        chunk = {**data, "choices": [{**choice, "delta": new_delta, "finish_reason": finish_reason}]}
        self.emit_new(wire.sse(chunk))

    def _emit_aligned(self, pieces: list[TextPiece]) -> None:
        """Upstream chunks whose text came out unchanged go as their original bytes."""
        for event, text in pieces:
            if event is None:
                self._emit_content(text)
            else:
                self.emit_raw(event)
                self.sent_text = self.sent_text or bool(text)

    def _text(self, text: str) -> Step[str]:
        self.text_open = True
        try:
            out: str = yield from run(self.chain.text(self.ctx, text))
        except PolicyFailed as failed:
            self.ctx.end_message(failed.policy, failed.reason)
            return failed.notice
        return out

    def _close_text(self) -> Step[list[TextPiece]]:
        """The text is over (tool calls or the finish follow): what the policies held."""
        if not self.text_open or self.ctx.ended_by is not None:
            return []
        self.text_open = False
        try:
            tail = yield from run(self.chain.text_end(self.ctx))
        except PolicyFailed as failed:
            self.ctx.end_message(failed.policy, failed.reason)
            return [(None, self.aligner.abandon() + failed.notice)]
        return self.aligner.flush(tail)

    def _hold(self, tool_deltas: list[Any]) -> None:
        for tool_delta in tool_deltas:
            if not isinstance(tool_delta, dict):
                continue
            index = tool_delta.get("index", 0)
            if index not in self.held:
                for earlier in self.held.values():  # a new index completes the earlier calls
                    self._decide(earlier)
                self.held[index] = _HeldCall(index=index)
            held = self.held[index]
            held.id = tool_delta.get("id") or held.id
            function = tool_delta.get("function") or {}
            held.name = function.get("name") or held.name
            if function.get("arguments"):
                held.argument_parts.append(function["arguments"])

    def _decide(self, held: _HeldCall) -> None:
        if held.decision is not None or self.ctx.ended_by is not None:
            return
        arguments = tool_arguments("".join(held.argument_parts))
        held.call = ToolCall(id=held.id, name=held.name, arguments=arguments, index=held.index)
        held.decision = start_eager(self.chain.tool_call(self.ctx, held.call))

    def _finish(self, finish_reason: str, chunk: dict[str, Any]) -> Step[str]:
        """Flush held text and tool calls before the finish chunk; return the (possibly
        corrected) finish reason."""
        self.finished = True
        for held in self.held.values():
            self._decide(held)
        decisions: list[tuple[_HeldCall, ToolDecision]] = []
        for held in self.held.values():
            if held.decision is not None:
                decisions.append((held, (yield from wait_for(held.decision))))
        if self.chain.holds_tool_calls and self.ctx.ended_by is None:
            extra = yield from run(self.chain.stream_end(self.ctx, StreamEnd(finish_reason, response.usage(chunk))))
            self._emit_content(extra, paragraph=True)
        if self.ctx.ended_by is not None:
            decisions = []  # the message was ended: held tool calls are dropped with the rest
        for _, decision in decisions:
            if isinstance(decision, ReplaceWithText):
                self._emit_content(decision.text, paragraph=True)
        kept = [(held, d.call) for held, d in decisions if isinstance(d, Keep)]
        unchanged = len(kept) == len(self.held) and all(call == held.call for held, call in kept)
        if unchanged and not self.mixed_tool_chunks and self.ctx.ended_by is None:
            for event in self.held_chunks:
                self.emit_raw(event)
        else:
            for position, (held, call) in enumerate(kept):
                arguments = (
                    call.arguments
                    if isinstance(call.arguments, str)
                    else json.dumps(call.arguments, ensure_ascii=False)
                )
                delta = {"tool_calls": [wire.tool_call_delta(position, held.id, call.name, arguments)]}
                self.emit_new(wire.sse(wire.chunk_like(chunk, delta)))
        if finish_reason == "tool_calls" and self.held and (not kept or self.ctx.ended_by):
            return "stop"
        return finish_reason

    def _emit_content(self, text: str, paragraph: bool = False) -> None:
        """Send content; a `paragraph` (a notice) is set apart from text sent before it."""
        if text and self.template is not None:
            if paragraph and self.sent_text:
                text = f"\n\n{text}"
            self.emit_new(wire.sse(wire.chunk_like(self.template, {"content": text})))
            self.sent_text = True

    def finish(self) -> Step[None]:
        """End of the upstream bytes: a stream cut before its finish chunk gets its held
        tool-call chunks back, so the client sees what upstream sent."""
        yield from ()
        if not self.finished:
            for event in self.held_chunks:
                self.emit_raw(event)
