"""Dialect-independent entry points for the request edits policies make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from interlock.codecs import anthropic_events, openai_events

_MAP_TEXT = {
    "anthropic-messages": anthropic_events.map_request_text,
    "openai-chat": openai_events.map_request_text,
}
_ADD_SYSTEM = {
    "anthropic-messages": anthropic_events.add_system_text,
    "openai-chat": openai_events.add_system_text,
}


def map_request_text(dialect: str, request: dict[str, Any], edit: Callable[[str], str]) -> dict[str, Any]:
    """The request with `edit` applied to every text it carries."""
    return _MAP_TEXT[dialect](request, edit)


def add_system_text(
    dialect: str, request: dict[str, Any], text: str, position: Literal["prepend", "append"]
) -> dict[str, Any]:
    """The request with `text` added at the start or end of its system prompt."""
    return _ADD_SYSTEM[dialect](request, text, position)
