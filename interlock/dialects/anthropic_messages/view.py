"""Anthropic Messages bodies as neutral blocks, for the UI and mitmweb.

A block this module does not understand becomes an `other` block carrying its JSON, so
nothing is hidden.
"""

from __future__ import annotations

from typing import Any

from interlock.dialects.view_parts import arguments_text, image_text, other
from interlock.neutral import Block, Message, RequestView, ResponseView


def _anthropic_block(block: Any) -> Block:
    if isinstance(block, str):
        return Block("text", block)
    if not isinstance(block, dict):
        return other(block)
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return Block("text", block["text"])
    if kind == "thinking":
        return Block("thinking", str(block.get("thinking", "")))
    if kind == "redacted_thinking":
        data = block.get("data")
        size = f"{len(data):,} characters of encrypted thinking" if isinstance(data, str) else ""
        return Block("redacted_thinking", size)
    if kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        return Block(
            "tool_call",
            arguments_text(block.get("input", {})),
            tool_id=block.get("id"),
            tool_name=str(block.get("name", "")),
            label=None if kind == "tool_use" else kind,
        )
    if kind == "tool_result":
        content = block.get("content")
        parts = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        text = "\n".join(_anthropic_block(part).text for part in parts)
        return Block("tool_result", text, tool_id=block.get("tool_use_id"), is_error=bool(block.get("is_error")))
    if kind == "image":
        return Block("image", image_text(block.get("source")))
    return other(block)


def _anthropic_blocks(content: Any) -> tuple[Block, ...]:
    if content is None:
        return ()
    if isinstance(content, list):
        return tuple(_anthropic_block(block) for block in content)
    return (_anthropic_block(content),)


def message_view(message: Any) -> Message:
    if not isinstance(message, dict):
        return Message("?", (other(message),))
    return Message(str(message.get("role", "?")), _anthropic_blocks(message.get("content")))


def request_view(body: dict[str, Any]) -> RequestView | None:
    """The request as blocks, or None when it has no messages list."""
    if not isinstance(body.get("messages", []), list):
        return None
    messages = body.get("messages")
    parsed = [message_view(m) for m in messages] if isinstance(messages, list) else []
    params = {k: v for k, v in body.items() if k not in ("messages", "system")}
    return RequestView(_anthropic_blocks(body.get("system")), tuple(parsed), params)


def response_view(body: dict[str, Any]) -> ResponseView | None:
    """The response as blocks, or None when it is not a response body."""
    if "content" not in body:
        return None
    message = Message(str(body.get("role", "assistant")), _anthropic_blocks(body.get("content")))
    skip = ("content", "usage", "model", "stop_reason", "role")
    params = {k: v for k, v in body.items() if k not in skip}
    return ResponseView(message, body.get("stop_reason"), body.get("model"), body.get("usage"), params)


def messages_view(messages: list[Any]) -> list[Message]:
    return [message_view(m) for m in messages]
