"""Reading Anthropic Messages response bodies (`message`)."""

from __future__ import annotations

from typing import Any

from interlock.dialects.common import int_field, string_field
from interlock.neutral import ToolCall, Usage


def blocks(response: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = response.get("content")
    if not isinstance(content, list):
        return []
    return [block for block in content if isinstance(block, dict) and block.get("type") == kind]


def response_text(response: dict[str, Any]) -> str:
    return "".join(block["text"] for block in blocks(response, "text") if isinstance(block.get("text"), str))


def usage(response: dict[str, Any]) -> Usage:
    reported = response.get("usage")
    return Usage(
        input_tokens=int_field(reported, "input_tokens"),
        output_tokens=int_field(reported, "output_tokens"),
        cache_read_tokens=int_field(reported, "cache_read_input_tokens"),
        cache_write_tokens=int_field(reported, "cache_creation_input_tokens"),
    )


def stop_reason(response: dict[str, Any]) -> str | None:
    return string_field(response, "stop_reason")


def tool_calls(response: dict[str, Any]) -> list[ToolCall]:
    return [
        ToolCall(
            id=string_field(block, "id"),
            name=string_field(block, "name") or "",
            arguments=block.get("input"),
            index=index,
        )
        for index, block in enumerate(blocks(response, "tool_use"))
    ]
