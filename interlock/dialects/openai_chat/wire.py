"""Builds OpenAI Chat Completions SSE chunks and response bodies."""

from __future__ import annotations

import json
from typing import Any

from interlock.sse import comment


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


def timeout_error(message: str) -> dict[str, Any]:
    """OpenAI's error body shape, as its SDK reads it (`error.message`)."""
    return {"error": {"message": message, "type": "server_error", "param": None, "code": "upstream_timeout"}}


def no_match_error(message: str) -> dict[str, Any]:
    """A 404 `invalid_request_error`: the openai SDK raises `NotFoundError`, no retry."""
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "replay_no_match"}}


def stream_error(message: str) -> bytes:
    """A chunk holding only `error`: the openai SDK raises `APIError` with its message."""
    return sse(timeout_error(message))


def keepalive() -> bytes:
    """An SSE comment (`: keepalive`): the openai SDK skips comment lines."""
    return comment("keepalive")
