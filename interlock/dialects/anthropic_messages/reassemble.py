"""Reassembly of Anthropic Messages streams, fed event by event.

It rebuilds the event stream into the `message` body the non-streaming endpoint
returns: the `message_start` message, each content block from its start plus deltas
(text, thinking with its signature, tool_use input parsed from the concatenated
`partial_json`), the `message_delta` stop reason, and usage with the later report of
each field winning.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from interlock.dialects.base import Reassembler
from interlock.dialects.common import error_message, int_field, string_field, tool_arguments, typed_payload
from interlock.neutral import Reassembly
from interlock.sse import SSEEvent

# Blocks whose `input` streams as `input_json_delta`.
_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
# Blocks that already carry generated content in their content_block_start.
_GENERATED_AT_START = frozenset({"tool_use", "server_tool_use", "mcp_tool_use", "redacted_thinking"})
# The string field each text-like delta appends to.
_APPENDING_DELTAS = {"text_delta": "text", "thinking_delta": "thinking"}


@dataclass(slots=True)
class _Block:
    body: dict[str, Any]
    json_parts: list[str] = field(default_factory=list)
    stopped: bool = False

    def add(self, delta: dict[str, Any]) -> str | None:
        """Apply one delta; returns a complaint when it does not fit."""
        kind = delta.get("type")
        if kind in _APPENDING_DELTAS:
            key = _APPENDING_DELTAS[kind]
            self.body[key] = (string_field(self.body, key) or "") + (string_field(delta, key) or "")
        elif kind == "input_json_delta":
            self.json_parts.append(string_field(delta, "partial_json") or "")
        elif kind == "signature_delta":
            self.body["signature"] = delta.get("signature")
        elif kind == "citations_delta":
            self.body["citations"] = [
                *(self.body.get("citations") or []),
                delta.get("citation"),
            ]
        else:
            return f"unknown delta type {kind!r}"
        return None

    def finish(self) -> str | None:
        """Settle the block at its stop; returns a complaint when a tool input is not JSON."""
        self.body, complaint = self.settled()
        return complaint

    def settled(self) -> tuple[dict[str, Any], str | None]:
        """The body with a tool block's input parsed from its JSON parts, and a complaint
        when they are not JSON; the block itself is left as it is."""
        if self.body.get("type") not in _INPUT_BLOCKS or not self.json_parts:
            return self.body, None
        raw = "".join(self.json_parts)
        body = {**self.body, "input": tool_arguments(raw)}
        if raw and isinstance(body["input"], str):
            return body, "its input is not valid JSON, kept as the raw string"
        return body, None


class MessagesReassembler(Reassembler):
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.message: dict[str, Any] | None = None
        self.blocks: dict[int, _Block] = {}
        self.stopped = False
        self.position = 0
        self.content_seen = False

    def feed(self, event: SSEEvent) -> bool:
        position, self.position = self.position, self.position + 1
        typed = typed_payload(event, position, self.errors)
        if typed is None:
            return False
        payload, kind = typed
        if self.stopped and kind != "ping":
            self.errors.append(f"event {position} ({kind}) arrived after message_stop")
        if kind == "message_start":
            if self.message is not None:
                self.errors.append(f"event {position}: a second message_start, ignored")
            elif isinstance(payload.get("message"), dict):
                self.message = copy.deepcopy(payload["message"])
            return False
        if self.message is None and kind not in ("ping", "error"):
            self.errors.append(f"event {position} ({kind}) came before message_start")
            self.message = {"type": "message", "role": "assistant", "content": []}
        if kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            self.errors.append(f"error event in stream: {error_message(payload.get('error'))}")
        elif kind == "message_delta" and self.message is not None:
            _apply_message_delta(self.message, payload)
        elif kind.startswith("content_block_"):
            complaint = _apply_block_event(self.blocks, kind, payload)
            if complaint:
                self.errors.append(f"event {position} ({kind}): {complaint}")
            if self.content_seen or not _is_content(kind, payload):
                return False
            self.content_seen = True
            return True
        return False

    def result(self) -> Reassembly:
        errors = list(self.errors)
        if self.message is None:
            errors.append("the stream holds no message_start")
            return Reassembly(message=None, errors=errors)
        content = []
        for index in sorted(self.blocks):
            block = self.blocks[index]
            body = block.body
            if not block.stopped:
                errors.append(f"content block {index} never got content_block_stop")
                body, complaint = block.settled()
                if complaint:
                    errors.append(f"content block {index}: {complaint}")
            content.append(body)
        if not self.stopped:
            errors.append("the stream ended without message_stop")
        message = {**self.message, "content": [*(self.message.get("content") or []), *content]}
        return Reassembly(message=message, errors=errors)


def _is_content(kind: str, payload: dict[str, Any]) -> bool:
    if kind == "content_block_start":
        block = payload.get("content_block")
        return isinstance(block, dict) and block.get("type") in _GENERATED_AT_START
    delta = payload.get("delta") if kind == "content_block_delta" else None
    return isinstance(delta, dict) and any(
        isinstance(value, str) and value and key != "type" for key, value in delta.items()
    )


def _apply_block_event(blocks: dict[int, _Block], kind: str, payload: dict[str, Any]) -> str | None:
    index = int_field(payload, "index")
    if index is None:
        return "no index, skipped"
    if kind == "content_block_start":
        if index in blocks:
            return f"block {index} started twice, the second start ignored"
        start = payload.get("content_block")
        if not isinstance(start, dict):
            return "no content_block, skipped"
        blocks[index] = _Block(body=copy.deepcopy(start))
        return None
    block = blocks.get(index)
    if block is None:
        return f"block {index} was never started, skipped"
    if block.stopped:
        return f"block {index} already stopped, skipped"
    if kind == "content_block_delta":
        delta = payload.get("delta")
        return block.add(delta) if isinstance(delta, dict) else "no delta, skipped"
    if kind == "content_block_stop":
        block.stopped = True
        return block.finish()
    return None  # a future content_block_* event type: nothing to rebuild


def _apply_message_delta(message: dict[str, Any], payload: dict[str, Any]) -> None:
    delta = payload.get("delta")
    for key, value in delta.items() if isinstance(delta, dict) else ():
        if value is not None or message.get(key) is None:
            message[key] = value
    usage = payload.get("usage")
    if isinstance(usage, dict):
        merged = message["usage"] if isinstance(message.get("usage"), dict) else {}
        merged.update({key: value for key, value in usage.items() if value is not None})
        message["usage"] = merged
