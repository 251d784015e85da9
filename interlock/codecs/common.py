"""Helpers shared by the dialect codecs: decoding stream events, text of content parts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from interlock.sse import SSEEvent


def json_events(
    events: Iterable[SSEEvent],
    errors: list[str],
    sentinels: frozenset[str] = frozenset(),
) -> Iterator[Any]:
    """The JSON payload of every event that carries data, in order.

    Comment-only and data-less events are skipped. A data field listed in `sentinels`
    (OpenAI's `[DONE]`) is yielded as the string itself. Data that is not JSON is
    skipped with a note in `errors`, so one bad event never stops a reassembly.
    """
    for position, event in enumerate(events):
        if event.data is None:
            continue
        if event.data in sentinels:
            yield event.data
            continue
        try:
            yield json.loads(event.data)
        except ValueError:
            where = "the stream ended inside it" if not event.complete else "its data is not JSON"
            errors.append(f"event {position} skipped: {where}: {event.data[:80]!r}")


def parse_arguments(raw: str) -> Any:
    """Tool arguments as parsed JSON, or the raw string when they do not parse."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def tool_arguments(raw: Any) -> Any:
    """A tool call's arguments as policies see them: parsed JSON, `{}` for none, the raw
    string when it does not parse; anything already parsed as it is."""
    if not isinstance(raw, str):
        return raw
    return parse_arguments(raw) if raw else {}


def content_text(content: Any) -> str:
    """Text of a message `content`: a string, or a list of parts whose text parts count."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(
        part["text"]
        for part in content
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
    )


def last_user_text(request: dict[str, Any]) -> str:
    """Text of the last `role: user` entry of a request's `messages`."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def string_field(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def int_field(obj: Any, key: str) -> int | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def error_message(error: Any) -> str:
    """A provider's error object (`{"type", "message", ...}`) as one line."""
    if isinstance(error, dict):
        return f"{error.get('type') or 'error'}: {error.get('message') or error}"
    return str(error)


TextEdit = Callable[[str], str]


def edit_message_content(message: Any, edit: TextEdit, edit_part: Callable[[Any, TextEdit], Any]) -> Any:
    """A message with `edit` applied to its string content, or `edit_part` to each of its
    content parts (both dialects' messages carry one or the other)."""
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": edit(content)}
    if isinstance(content, list):
        return {**message, "content": [edit_part(part, edit) for part in content]}
    return message
