"""Readable text for a tool call that was removed: the notice clients see."""

from __future__ import annotations

import json
from typing import Any

MAX_ARGUMENT_CHARS = 1500


def pretty_arguments(arguments: Any, limit: int = MAX_ARGUMENT_CHARS) -> str:
    """Arguments as indented JSON, cut (and marked) when longer than `limit`."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, indent=2, ensure_ascii=False)
    if len(text) > limit:
        return f"{text[:limit]}\n… ({len(text) - limit} more characters)"
    return text


def blocked_notice(tool_name: str, arguments: Any, why: str) -> str:
    return (
        f"⛔ Interlock blocked the tool call `{tool_name}`: {why}\n"
        f"Arguments:\n```json\n{pretty_arguments(arguments)}\n```"
    )
