"""Codec for OpenAI Chat Completions (`/v1/chat/completions`) and compatible hosts.

Reassembly rebuilds `chat.completion.chunk` events into the `chat.completion` body the
non-streaming endpoint returns: per choice, text and refusal concatenated, tool calls
merged by their `index` (arguments concatenated), the finish reason, and the usage of
the trailing `choices: []` chunk when the client asked for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from interlock.codecs.base import Codec, Reassembly, ToolCall
from interlock.codecs.common import (
    content_text,
    error_message,
    int_field,
    json_events,
    parse_arguments,
    string_field,
)
from interlock.sse import SSEEvent
from recorder.models import Usage

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


class OpenAIChatCodec(Codec):
    dialect: ClassVar[str] = "openai-chat"

    def response_text(self, response: dict[str, Any]) -> str:
        return "".join(content_text(message.get("content")) for message in _messages(response))

    def response_model(self, response: dict[str, Any]) -> str | None:
        return string_field(response, "model")

    def usage(self, response: dict[str, Any]) -> Usage:
        usage = response.get("usage")
        if not isinstance(usage, dict):
            return Usage()
        prompt = int_field(usage, "prompt_tokens")
        cached = int_field(usage.get("prompt_tokens_details"), "cached_tokens")
        return Usage(
            input_tokens=None if prompt is None else prompt - (cached or 0),
            output_tokens=int_field(usage, "completion_tokens"),
            cache_read_tokens=cached,
            cache_write_tokens=None,
        )

    def stop_reason(self, response: dict[str, Any]) -> str | None:
        choices = response.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            return string_field(choices[0], "finish_reason")
        return None

    def tool_calls(self, response: dict[str, Any]) -> list[ToolCall]:
        found: list[ToolCall] = []
        for message in _messages(response):
            calls = message.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    found.append(_tool_call(string_field(call, "id"), function, len(found)))
            if isinstance(message.get("function_call"), dict):
                found.append(_tool_call(None, message["function_call"], len(found)))
        return found

    def is_content_event(self, event: SSEEvent) -> bool:
        payload = event.json()
        choices = payload.get("choices") if isinstance(payload, dict) else None
        return isinstance(choices, list) and any(
            isinstance(choice, dict) and _has_content(choice.get("delta")) for choice in choices
        )

    def reassemble(self, events: Iterable[SSEEvent]) -> Reassembly:
        errors: list[str] = []
        top: dict[str, Any] = {}
        choices: dict[int, _ChoiceParts] = {}
        usage: Any = None
        chunks = done = 0
        for position, payload in enumerate(json_events(events, errors, frozenset({DONE}))):
            if payload == DONE:
                done += 1
                continue
            if done:
                errors.append(f"chunk {position} arrived after [DONE]")
            if not isinstance(payload, dict):
                errors.append(f"chunk {position} is not a JSON object, skipped")
                continue
            if payload.get("error") is not None:
                errors.append(f"error in stream: {error_message(payload['error'])}")
                continue
            chunks += 1
            for key, value in payload.items():
                if key not in _NOT_COPIED and not top.get(key):
                    top[key] = value
            if payload.get("usage") is not None:
                usage = payload["usage"]
            for choice in payload.get("choices") or ():
                index = int_field(choice, "index")
                if index is None:
                    errors.append(f"chunk {position}: choice without an index, skipped")
                    continue
                parts = choices.setdefault(index, _ChoiceParts())
                if isinstance(choice.get("delta"), dict):
                    parts.add(choice["delta"], position, errors)
                parts.add_logprobs(choice.get("logprobs"))
                if choice.get("finish_reason") is not None:
                    parts.finish_reason = choice["finish_reason"]
        if not chunks:
            errors.append("the stream holds no chat.completion.chunk")
            return Reassembly(message=None, errors=errors)
        for index, parts in choices.items():
            if parts.finish_reason is None:
                errors.append(f"choice {index} never got a finish_reason (truncated stream?)")
        if not done:
            errors.append("the stream ended without data: [DONE]")
        message: dict[str, Any] = {**top, "object": "chat.completion"}
        message["choices"] = [
            {
                "index": index,
                "message": choices[index].message(index, errors),
                "logprobs": choices[index].logprobs,
                "finish_reason": choices[index].finish_reason,
            }
            for index in sorted(choices)
        ]
        if usage is not None:
            message["usage"] = usage
        return Reassembly(message=message, errors=errors)


def _messages(response: dict[str, Any]) -> list[dict[str, Any]]:
    choices = response.get("choices")
    if not isinstance(choices, list):
        return []
    return [
        choice["message"] for choice in choices if isinstance(choice, dict) and isinstance(choice.get("message"), dict)
    ]


def _has_content(delta: Any) -> bool:
    """A delta with generated text, refusal, reasoning or a tool call in it."""
    if not isinstance(delta, dict):
        return False
    return bool(delta.get("tool_calls") or delta.get("function_call")) or any(
        isinstance(delta.get(key), str) and delta[key] for key in _CONTENT_KEYS
    )


def _tool_call(call_id: str | None, function: dict[str, Any], index: int) -> ToolCall:
    arguments = function.get("arguments")
    return ToolCall(
        id=call_id,
        name=string_field(function, "name") or "",
        arguments=parse_arguments(arguments) if isinstance(arguments, str) else arguments,
        index=index,
    )
