"""Codec for Anthropic Messages (`/v1/messages`).

Reassembly rebuilds the event stream into the `message` body the non-streaming endpoint
returns: the `message_start` message, each content block from its start plus deltas
(text, thinking with its signature, tool_use input parsed from the concatenated
`partial_json`), the `message_delta` stop reason, and usage with the later report of
each field winning.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from interlock.codecs.base import Codec, Reassembly, ToolCall
from interlock.codecs.common import (
    error_message,
    int_field,
    json_events,
    string_field,
    tool_arguments,
)
from interlock.sse import SSEEvent
from recorder.models import Usage

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
        """Settle a tool block's input; returns a complaint when it is not JSON."""
        if self.body.get("type") not in _INPUT_BLOCKS or not self.json_parts:
            return None
        raw = "".join(self.json_parts)
        self.body["input"] = tool_arguments(raw)
        if raw and isinstance(self.body["input"], str):
            return "its input is not valid JSON, kept as the raw string"
        return None


class AnthropicMessagesCodec(Codec):
    dialect: ClassVar[str] = "anthropic-messages"

    def response_text(self, response: dict[str, Any]) -> str:
        return "".join(block["text"] for block in _blocks(response, "text") if isinstance(block.get("text"), str))

    def response_model(self, response: dict[str, Any]) -> str | None:
        return string_field(response, "model")

    def usage(self, response: dict[str, Any]) -> Usage:
        usage = response.get("usage")
        return Usage(
            input_tokens=int_field(usage, "input_tokens"),
            output_tokens=int_field(usage, "output_tokens"),
            cache_read_tokens=int_field(usage, "cache_read_input_tokens"),
            cache_write_tokens=int_field(usage, "cache_creation_input_tokens"),
        )

    def stop_reason(self, response: dict[str, Any]) -> str | None:
        return string_field(response, "stop_reason")

    def tool_calls(self, response: dict[str, Any]) -> list[ToolCall]:
        return [
            ToolCall(
                id=string_field(block, "id"),
                name=string_field(block, "name") or "",
                arguments=block.get("input"),
                index=index,
            )
            for index, block in enumerate(_blocks(response, "tool_use"))
        ]

    def is_content_event(self, event: SSEEvent) -> bool:
        if event.event is not None and not event.event.startswith("content_block_"):
            return False  # the cheap path: Anthropic names every event
        payload = event.json()
        if not isinstance(payload, dict):
            return False
        if payload.get("type") == "content_block_start":
            block = payload.get("content_block")
            return isinstance(block, dict) and block.get("type") in _GENERATED_AT_START
        delta = payload.get("delta") if payload.get("type") == "content_block_delta" else None
        return isinstance(delta, dict) and any(
            isinstance(value, str) and value and key != "type" for key, value in delta.items()
        )

    def reassemble(self, events: Iterable[SSEEvent]) -> Reassembly:
        errors: list[str] = []
        message: dict[str, Any] | None = None
        blocks: dict[int, _Block] = {}
        stopped = False
        for position, payload in enumerate(json_events(events, errors)):
            kind = payload.get("type") if isinstance(payload, dict) else None
            if kind is None:
                errors.append(f"event {position} has no type, skipped")
                continue
            if stopped and kind != "ping":
                errors.append(f"event {position} ({kind}) arrived after message_stop")
            if kind == "message_start":
                if message is not None:
                    errors.append(f"event {position}: a second message_start, ignored")
                elif isinstance(payload.get("message"), dict):
                    message = copy.deepcopy(payload["message"])
                continue
            if message is None and kind not in ("ping", "error"):
                errors.append(f"event {position} ({kind}) came before message_start")
                message = {"type": "message", "role": "assistant", "content": []}
            if kind == "message_stop":
                stopped = True
            elif kind == "error":
                errors.append(f"error event in stream: {error_message(payload.get('error'))}")
            elif kind == "message_delta" and message is not None:
                _apply_message_delta(message, payload)
            elif kind.startswith("content_block_"):
                complaint = _apply_block_event(blocks, kind, payload)
                if complaint:
                    errors.append(f"event {position} ({kind}): {complaint}")
        if message is None:
            errors.append("the stream holds no message_start")
            return Reassembly(message=None, errors=errors)
        for index in sorted(blocks):
            block = blocks[index]
            if not block.stopped:
                errors.append(f"content block {index} never got content_block_stop")
                complaint = block.finish()
                if complaint:
                    errors.append(f"content block {index}: {complaint}")
        if not stopped:
            errors.append("the stream ended without message_stop")
        message["content"] = [
            *(message.get("content") or []),
            *(blocks[index].body for index in sorted(blocks)),
        ]
        return Reassembly(message=message, errors=errors)


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


def _blocks(response: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = response.get("content")
    if not isinstance(content, list):
        return []
    return [block for block in content if isinstance(block, dict) and block.get("type") == kind]
