"""Builds Anthropic Messages SSE events and response bodies."""

from __future__ import annotations

import json
from typing import Any


def sse(event_type: str, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event_type}\ndata: {body}\n\n".encode()


def reindexed(data: dict[str, Any], index: int) -> bytes:
    """The same content block event with another index."""
    return sse(str(data["type"]), {**data, "index": index})


def text_block_start(index: int) -> bytes:
    return sse(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
    )


def text_delta(index: int, text: str) -> bytes:
    return sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}},
    )


def block_stop(index: int) -> bytes:
    return sse("content_block_stop", {"type": "content_block_stop", "index": index})


def text_block(index: int, text: str) -> list[bytes]:
    return [text_block_start(index), text_delta(index, text), block_stop(index)]


def tool_use_block(index: int, block: dict[str, Any]) -> list[bytes]:
    """A complete tool_use block as start, one input_json_delta, stop."""
    start = {**block, "input": {}}
    arguments = json.dumps(block.get("input", {}), ensure_ascii=False, separators=(",", ":"))
    return [
        sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": arguments},
            },
        ),
        block_stop(index),
    ]


def blocked_message(message: dict[str, Any], notice: str) -> dict[str, Any]:
    """A non-streamed Message whose content is only `notice` (tool calls dropped)."""
    stop_reason = message.get("stop_reason")
    return {
        **message,
        "content": [{"type": "text", "text": notice}],
        "stop_reason": "end_turn" if stop_reason == "tool_use" else stop_reason,
    }


def timeout_error(message: str) -> dict[str, Any]:
    """Anthropic's error body for a request that timed out (its 504 is `timeout_error`)."""
    return {"type": "error", "error": {"type": "timeout_error", "message": message}}


def limit_error(message: str, retry: bool) -> dict[str, Any]:
    """Anthropic's 429 body (`rate_limit_error`, whether or not it resets soon: the API
    has no other kind); the anthropic SDK raises `RateLimitError`."""
    return {"type": "error", "error": {"type": "rate_limit_error", "message": message}}


def no_match_error(message: str) -> dict[str, Any]:
    """Anthropic's 404 body: the anthropic SDK raises `NotFoundError`, no retry."""
    return {"type": "error", "error": {"type": "not_found_error", "message": message}}


def stream_error(message: str) -> bytes:
    """`event: error`, as the API sends mid-stream: the anthropic SDK raises `APIStatusError`."""
    return sse("error", timeout_error(message))


def keepalive() -> bytes:
    """A ping event, byte for byte as the API sends one now and then: the SDKs skip it."""
    return b'event: ping\ndata: {"type": "ping"}\n\n'
