"""Reassembly of OpenAI Responses streams, fed event by event.

It rebuilds the typed events into the `response` object the non-streaming endpoint
returns, the way the `openai` SDK's accumulator does: the response of the terminal
event (`response.completed`, `.incomplete` or `.failed`) with the output items the
stream carried, each as its `response.output_item.done` gave it (or, for an item that
never got one, as built from its deltas). A terminal `output` that differs from those
items, sequence numbers that do not increase, an `error` event and a stream without a
terminal event are noted.
"""

from __future__ import annotations

import copy
from typing import Any

from interlock.dialects.base import Reassembler
from interlock.dialects.common import error_message, int_field, typed_payload
from interlock.neutral import Reassembly
from interlock.sse import SSEEvent

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
LIFECYCLE = TERMINAL | {"response.created", "response.in_progress", "response.queued"}
# Delta event type -> (where the text goes: item field, or list of parts and index key)
_ITEM_DELTAS = {
    "response.function_call_arguments.delta": "arguments",
    "response.custom_tool_call_input.delta": "input",
}
_PART_DELTAS = {
    "response.output_text.delta": ("content", "content_index", "text"),
    "response.refusal.delta": ("content", "content_index", "refusal"),
    "response.reasoning_text.delta": ("content", "content_index", "text"),
    "response.reasoning_summary_text.delta": ("summary", "summary_index", "text"),
}
CONTENT_DELTAS = frozenset(_ITEM_DELTAS) | frozenset(_PART_DELTAS)


class ResponsesReassembler(Reassembler):
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.response: dict[str, Any] | None = None
        self.terminal: str | None = None
        self.items: dict[int, dict[str, Any]] = {}
        self.last_sequence: int | None = None
        self.position = 0
        self.content_seen = False

    def feed(self, event: SSEEvent) -> bool:
        position, self.position = self.position, self.position + 1
        typed = typed_payload(event, position, self.errors)
        if typed is None:
            return False
        payload, kind = typed
        self._sequence(position, payload)
        if self.terminal is not None:
            self.errors.append(f"event {position} ({kind}) arrived after {self.terminal}")
        if kind == "error":
            self.errors.append(f"error in stream: {error_message(payload.get('error') or payload)}")
        elif kind in LIFECYCLE:
            if isinstance(payload.get("response"), dict):
                self.response = payload["response"]
            if kind in TERMINAL:
                self.terminal = kind
        elif kind in ("response.output_item.added", "response.output_item.done"):
            index = int_field(payload, "output_index")
            if index is not None and isinstance(payload.get("item"), dict):
                self.items[index] = copy.deepcopy(payload["item"])
                return self._content(kind == "response.output_item.added" and payload["item"].get("type") in _CALLS)
        else:
            return self._content(self._delta(kind, payload))
        return False

    def _content(self, found: bool) -> bool:
        first = found and not self.content_seen
        self.content_seen = self.content_seen or found
        return first

    def _sequence(self, position: int, payload: dict[str, Any]) -> None:
        number = int_field(payload, "sequence_number")
        if number is None:
            self.errors.append(f"event {position} has no sequence_number")
        elif self.last_sequence is not None and number <= self.last_sequence:
            self.errors.append(f"event {position}: sequence_number {number} after {self.last_sequence}")
        self.last_sequence = number if number is not None else self.last_sequence

    def _delta(self, kind: str, payload: dict[str, Any]) -> bool:
        """Apply a part or delta event to its item; True for generated content."""
        item = self.items.get(int_field(payload, "output_index") or 0)
        if item is None:
            return False
        delta = payload.get("delta")
        if kind in _ITEM_DELTAS and isinstance(delta, str):
            field = _ITEM_DELTAS[kind]
            item[field] = str(item.get(field) or "") + delta
            return bool(delta)
        if kind in _PART_DELTAS and isinstance(delta, str):
            parts_key, index_key, field = _PART_DELTAS[kind]
            part = _part(item, parts_key, int_field(payload, index_key) or 0, kind)
            part[field] = str(part.get(field) or "") + delta
            return bool(delta)
        if kind in ("response.content_part.added", "response.reasoning_summary_part.added"):
            parts_key = "content" if kind == "response.content_part.added" else "summary"
            if isinstance(payload.get("part"), dict):
                item.setdefault(parts_key, [])
                if isinstance(item[parts_key], list):
                    item[parts_key].append(copy.deepcopy(payload["part"]))
        return False

    def result(self) -> Reassembly:
        errors = list(self.errors)
        if self.response is None:
            errors.append("the stream holds no response event")
            return Reassembly(message=None, errors=errors)
        if self.terminal is None:
            errors.append("the stream ended without response.completed, .incomplete or .failed")
        output = [self.items[index] for index in sorted(self.items)]
        reported = self.response.get("output")
        if self.terminal is not None and reported and reported != output:
            errors.append(f"{self.terminal}: its output differs from the items streamed")
        return Reassembly(message={**self.response, "output": output}, errors=errors)


_CALLS = frozenset({"function_call", "custom_tool_call"})


def _part(item: dict[str, Any], parts_key: str, index: int, kind: str) -> dict[str, Any]:
    """The item's part at `index`, added when a delta comes without its part event."""
    parts = item.get(parts_key)
    if not isinstance(parts, list):
        parts = item[parts_key] = []
    while len(parts) <= index:
        parts.append({"type": "summary_text" if parts_key == "summary" else "output_text", "text": ""})
    part = parts[index]
    return part if isinstance(part, dict) else {}
