"""Recorded provider bodies as neutral blocks, for display and diffing.

The dialect that recorded a call reads its bodies (`Dialect.request_view` and friends,
in `interlock/dialects/<name>/view.py`); a dialect this UI does not know, or a body the
dialect does not understand, gives None and the caller shows plain JSON.
"""

from __future__ import annotations

from typing import Any

from interlock.dialects import DIALECTS
from interlock.neutral import Message, RequestView, ResponseView


def parse_request(dialect: str, body: Any) -> RequestView | None:
    """The request as blocks, or None when the dialect or the body is not understood."""
    reader = DIALECTS.get(dialect)
    return reader.request_view(body) if reader is not None and isinstance(body, dict) else None


def parse_response(dialect: str, body: Any) -> ResponseView | None:
    """The response as blocks, or None when the dialect or the body is not understood."""
    reader = DIALECTS.get(dialect)
    return reader.response_view(body) if reader is not None and isinstance(body, dict) else None


def parse_messages(dialect: str, messages: list[Any]) -> list[Message]:
    """Request messages (e.g. the tail of a conversation) as blocks."""
    reader = DIALECTS.get(dialect)
    return reader.messages_view(messages) if reader is not None else []


def response_id(dialect: str, body: Any) -> str | None:
    """The id a later request of the dialect names to continue this response, if any."""
    reader = DIALECTS.get(dialect)
    return reader.response_id(body) if reader is not None and isinstance(body, dict) else None
