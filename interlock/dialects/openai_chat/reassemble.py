"""Reassembly of OpenAI Chat Completions streams, fed chunk by chunk.

It rebuilds `chat.completion.chunk` events into the `chat.completion` body the
non-streaming endpoint returns: per choice, text and refusal concatenated, tool calls
merged by their `index` (arguments concatenated), the finish reason, and the usage of
the trailing `choices: []` chunk when the client asked for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from interlock.dialects.base import Reassembler
from interlock.dialects.common import UNDECODABLE, error_message, event_payload, int_field, string_field
from interlock.neutral import Reassembly
from interlock.sse import SSEEvent

DONE = "[DONE]"
# Top-level chunk fields that do not belong in the complete body: `object` changes
# value, `obfuscation` is per-chunk padding, choices and usage are rebuilt.
_NOT_COPIED = frozenset({"object", "choices", "usage", "obfuscation"})

# Delta fields holding generated text (`reasoning_content`: DeepSeek and others).
_CONTENT_KEYS = ("content", "refusal", "reasoning_content", "reasoning")


@dataclass(slots=True)
class _ToolCallParts:
    id: str | None = None
    type: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _ChoiceParts:
    role: str | None = None
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCallParts] = field(default_factory=dict)
    function_call: _ToolCallParts | None = None  # the legacy single-function form
    logprobs: Any = None
    finish_reason: str | None = None

    def add(self, delta: dict[str, Any], position: int, errors: list[str]) -> None:
        if isinstance(delta.get("role"), str):
            self.role = delta["role"]
        if isinstance(delta.get("content"), str):
            self.content.append(delta["content"])
        if isinstance(delta.get("refusal"), str):
            self.refusal.append(delta["refusal"])
        for call in delta.get("tool_calls") or ():
            index = int_field(call, "index")
            if index is None:
                errors.append(f"chunk {position}: tool call delta without an index, skipped")
                continue
            self._merge_call(self.tool_calls.setdefault(index, _ToolCallParts()), call)
        if isinstance(delta.get("function_call"), dict):
            self.function_call = self.function_call or _ToolCallParts()
            self._merge_call(self.function_call, {"function": delta["function_call"]})

    @staticmethod
    def _merge_call(parts: _ToolCallParts, call: dict[str, Any]) -> None:
        parts.id = string_field(call, "id") or parts.id
        parts.type = string_field(call, "type") or parts.type
        function = call.get("function")
        if isinstance(function, dict):
            parts.name += string_field(function, "name") or ""
            parts.arguments.append(string_field(function, "arguments") or "")

    def add_logprobs(self, logprobs: Any) -> None:
        if not isinstance(logprobs, dict):
            return
        if not isinstance(self.logprobs, dict):
            self.logprobs = {key: None for key in logprobs}
        for key, values in logprobs.items():
            if isinstance(values, list):
                self.logprobs[key] = (self.logprobs.get(key) or []) + values

    def message(self, index: int, errors: list[str]) -> dict[str, Any]:
        text = "".join(self.content)
        message: dict[str, Any] = {
            "role": self.role or "assistant",
            "content": text if text or not self.tool_calls else None,
            "refusal": "".join(self.refusal) if self.refusal else None,
        }
        if self.tool_calls:
            message["tool_calls"] = []
            for call_index in sorted(self.tool_calls):
                parts = self.tool_calls[call_index]
                if parts.id is None or not parts.name:
                    errors.append(f"choice {index}: tool call {call_index} has no id or name")
                message["tool_calls"].append(
                    {
                        "id": parts.id,
                        "type": parts.type or "function",
                        "function": {
                            "name": parts.name,
                            "arguments": "".join(parts.arguments),
                        },
                    }
                )
        if self.function_call is not None:
            message["function_call"] = {
                "name": self.function_call.name,
                "arguments": "".join(self.function_call.arguments),
            }
        return message


class ChatReassembler(Reassembler):
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.top: dict[str, Any] = {}
        self.choices: dict[int, _ChoiceParts] = {}
        self.usage: Any = None
        self.chunks = self.done = self.position = 0
        self.content_seen = False

    def feed(self, event: SSEEvent) -> bool:
        position, self.position = self.position, self.position + 1
        payload = event_payload(event, position, self.errors, frozenset({DONE}))
        if payload is None or payload is UNDECODABLE:
            return False
        if payload == DONE:
            self.done += 1
            return False
        if self.done:
            self.errors.append(f"chunk {position} arrived after [DONE]")
        if not isinstance(payload, dict):
            self.errors.append(f"chunk {position} is not a JSON object, skipped")
            return False
        if payload.get("error") is not None:
            self.errors.append(f"error in stream: {error_message(payload['error'])}")
            return False
        self.chunks += 1
        top = self.top
        for key, value in payload.items():
            if key in top:
                if value and not top[key] and key not in _NOT_COPIED:
                    top[key] = value  # a later chunk fills a field the first left empty
            elif key not in _NOT_COPIED:
                top[key] = value
        if payload.get("usage") is not None:
            self.usage = payload["usage"]
        content = False
        for choice in payload.get("choices") or ():
            index = int_field(choice, "index")
            if index is None:
                self.errors.append(f"chunk {position}: choice without an index, skipped")
                continue
            parts = self.choices.setdefault(index, _ChoiceParts())
            delta = choice.get("delta")
            if isinstance(delta, dict):
                parts.add(delta, position, self.errors)
                content = content or (not self.content_seen and _has_content(delta))
            parts.add_logprobs(choice.get("logprobs"))
            if choice.get("finish_reason") is not None:
                parts.finish_reason = choice["finish_reason"]
        self.content_seen = self.content_seen or content
        return content

    def result(self) -> Reassembly:
        errors = list(self.errors)
        if not self.chunks:
            errors.append("the stream holds no chat.completion.chunk")
            return Reassembly(message=None, errors=errors)
        for index, parts in self.choices.items():
            if parts.finish_reason is None:
                errors.append(f"choice {index} never got a finish_reason (truncated stream?)")
        if not self.done:
            errors.append("the stream ended without data: [DONE]")
        message: dict[str, Any] = {**self.top, "object": "chat.completion"}
        message["choices"] = [
            {
                "index": index,
                "message": self.choices[index].message(index, errors),
                "logprobs": self.choices[index].logprobs,
                "finish_reason": self.choices[index].finish_reason,
            }
            for index in sorted(self.choices)
        ]
        if self.usage is not None:
            message["usage"] = self.usage
        return Reassembly(message=message, errors=errors)


def _has_content(delta: Any) -> bool:
    """A delta with generated text, refusal, reasoning or a tool call in it."""
    if not isinstance(delta, dict):
        return False
    return bool(delta.get("tool_calls") or delta.get("function_call")) or any(
        isinstance(delta.get(key), str) and delta[key] for key in _CONTENT_KEYS
    )
