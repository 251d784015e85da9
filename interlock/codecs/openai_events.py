"""Builds OpenAI Chat Completions SSE chunks and edits Chat Completions JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from interlock.codecs.common import edit_message_content


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def chunk_like(template: dict[str, Any], delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """A chunk with the template's id/model/created and one choice with `delta`."""
    chunk = {k: v for k, v in template.items() if k not in ("choices", "usage")}
    if "usage" in template:
        chunk["usage"] = None
    chunk["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    return chunk


def tool_call_delta(index: int, call_id: str | None, name: str, arguments: str) -> dict[str, Any]:
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def blocked_completion(completion: dict[str, Any], notice: str) -> dict[str, Any]:
    """A non-streamed Chat Completion whose first choice says only `notice`."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return completion
    choice = choices[0]
    message = {k: v for k, v in (choice.get("message") or {}).items() if k != "tool_calls"}
    finish_reason = choice.get("finish_reason")
    blocked = {
        **choice,
        "message": {**message, "role": "assistant", "content": notice},
        "finish_reason": "stop" if finish_reason == "tool_calls" else finish_reason,
    }
    return {**completion, "choices": [blocked, *choices[1:]]}


def map_request_text(request: dict[str, Any], edit: Callable[[str], str]) -> dict[str, Any]:
    """A copy of the request with `edit` applied to every message text (system,
    developer, user, assistant and tool messages; string or text-part contents)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return request
    return {**request, "messages": [edit_message_content(m, edit, _edit_part) for m in messages]}


def _edit_part(part: Any, edit: Callable[[str], str]) -> Any:
    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return {**part, "text": edit(part["text"])}
    return part


def add_system_text(request: dict[str, Any], text: str, position: str) -> dict[str, Any]:
    """Prepend or append `text` to the first system/developer message (or add one)."""
    messages = list(request.get("messages") or [])
    for i, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            content = message.get("content")
            if isinstance(content, str):
                joined = f"{text}\n\n{content}" if position == "prepend" else f"{content}\n\n{text}"
                messages[i] = {**message, "content": joined}
            else:
                part = {"type": "text", "text": text}
                parts = list(content or [])
                messages[i] = {**message, "content": [part, *parts] if position == "prepend" else [*parts, part]}
            return {**request, "messages": messages}
    return {**request, "messages": [{"role": "system", "content": text}, *messages]}
