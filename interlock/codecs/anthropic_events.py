"""Builds Anthropic Messages SSE events and edits Anthropic request/response JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from interlock.codecs.common import edit_message_content


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


def map_request_text(request: dict[str, Any], edit: Callable[[str], str]) -> dict[str, Any]:
    """A copy of the request with `edit` applied to every text: the system prompt, text
    blocks and string contents of messages, and text inside tool results."""
    result = dict(request)
    system = request.get("system")
    if isinstance(system, str):
        result["system"] = edit(system)
    elif isinstance(system, list):
        result["system"] = [_edit_block(b, edit) for b in system]
    messages = request.get("messages")
    if isinstance(messages, list):
        result["messages"] = [edit_message_content(m, edit, _edit_block) for m in messages]
    return result


def _edit_block(block: Any, edit: Callable[[str], str]) -> Any:
    if not isinstance(block, dict):
        return block
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return {**block, "text": edit(block["text"])}
    if block.get("type") == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return {**block, "content": edit(content)}
        if isinstance(content, list):
            return {**block, "content": [_edit_block(b, edit) for b in content]}
    return block


def add_system_text(request: dict[str, Any], text: str, position: str) -> dict[str, Any]:
    """Prepend or append `text` to the system prompt (string or blocks)."""
    system = request.get("system")
    if system is None or system == "" or system == []:
        return {**request, "system": text}
    if isinstance(system, str):
        joined = f"{text}\n\n{system}" if position == "prepend" else f"{system}\n\n{text}"
        return {**request, "system": joined}
    block = {"type": "text", "text": text}
    blocks = list(system)
    return {**request, "system": [block, *blocks] if position == "prepend" else [*blocks, block]}
