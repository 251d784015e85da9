"""Helpers shared by the dialects: decoding stream events, text of message contents, edits."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from interlock.neutral import RequestSettings
from interlock.sse import SSEEvent


class Undecodable:
    """Marks an event whose data could not be decoded (see `event_payload`)."""


UNDECODABLE = Undecodable()


def event_payload(event: SSEEvent, position: int, errors: list[str], sentinels: frozenset[str] = frozenset()) -> Any:
    """The JSON payload of one event; None for comment-only and data-less events.

    A data field listed in `sentinels` (OpenAI's `[DONE]`) is returned as the string
    itself. Data that is not JSON gives `UNDECODABLE` with a note in `errors`, so one bad
    event never stops a reassembly.
    """
    if event.data is None:
        return None
    if event.data in sentinels:
        return event.data
    payload = event.json()
    if payload is None and event.data.strip() != "null":
        where = "the stream ended inside it" if not event.complete else "its data is not JSON"
        errors.append(f"event {position} skipped: {where}: {event.data[:80]!r}")
        return UNDECODABLE
    return payload


def typed_payload(event: SSEEvent, position: int, errors: list[str]) -> tuple[dict[str, Any], str] | None:
    """The payload of a typed-event stream's event and its `type`; None (noted in
    `errors` when it is not a comment or data-less event) when it has neither."""
    payload = event_payload(event, position, errors)
    if payload is None or payload is UNDECODABLE:
        return None
    kind = payload.get("type") if isinstance(payload, dict) else None
    if not isinstance(kind, str):
        errors.append(f"event {position} has no type, skipped")
        return None
    return payload, kind


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


TEXT_PART_TYPES = frozenset({"text"})


def content_text(content: Any, text_types: frozenset[str] = TEXT_PART_TYPES) -> str:
    """Text of a message `content`: a string, or a list of parts whose text parts (of
    one of `text_types`) count, joined by newlines."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(
        part["text"]
        for part in content
        if isinstance(part, dict) and part.get("type") in text_types and isinstance(part.get("text"), str)
    )


def request_messages(request: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The entries of a request's `messages` that are objects."""
    found = (request or {}).get("messages")
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


def _user_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request_messages(request) if m.get("role") == "user"]


def last_user_text(request: dict[str, Any]) -> str:
    """Text of the last `role: user` entry of a request's `messages`."""
    users = _user_messages(request)
    return content_text(users[-1].get("content")) if users else ""


# What agents wrap around the user's words: Claude Code's `<system-reminder>` sections,
# its command and hook output tags.
_AGENT_WRAPPERS = re.compile(
    r"<(system-reminder|local-command-stdout|local-command-stderr|command-message|user-prompt-submit-hook)>"
    r".*?</\1>",
    re.DOTALL,
)


def without_agent_wrappers(text: str) -> str:
    """The user's own words: `text` without agent wrappers, stripped."""
    return _AGENT_WRAPPERS.sub("", text).strip()


def typed_text(request: dict[str, Any]) -> str:
    """The words of the latest user message that has any once agent wrappers (system
    reminders, hook output) are taken out; tool-result-only messages are skipped."""
    for message in reversed(_user_messages(request)):
        text = without_agent_wrappers(content_text(message.get("content")))
        if text:
            return text
    return ""


def conversation_fingerprint(dialect: str, system: Any, first_user: Any) -> str | None:
    """A key for the conversation that starts with this system prompt and first user
    message: it stays the same while an agent re-sends its growing history."""
    if first_user is None:
        return None
    prefix = json.dumps([dialect, system, first_user], sort_keys=True, ensure_ascii=False, default=str)
    return "fp-" + hashlib.blake2b(prefix.encode(), digest_size=8).hexdigest()


def first_user_content(request: dict[str, Any]) -> Any:
    users = _user_messages(request)
    return users[0].get("content") if users else None


def string_field(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def int_field(obj: Any, key: str) -> int | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_INT_SETTINGS = frozenset({"max_tokens", "seed", "choice_count"})


def settings_from(params: Any, names: Mapping[str, tuple[str, ...]]) -> RequestSettings:
    """The settings of `params` (a request body, or its generation config): each
    `RequestSettings` field named in `names` read from the first of its native keys the
    request holds with a value of the right type (a lone stop string is a sequence of one)."""
    found: dict[str, Any] = {}
    for name, keys in names.items():
        for key in keys:
            value = params.get(key) if isinstance(params, dict) else None
            if name == "stop_sequences":
                value = (value,) if isinstance(value, str) else value
                if isinstance(value, (list, tuple)) and all(isinstance(stop, str) for stop in value):
                    found[name] = tuple(value)
                    break
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            elif name in _INT_SETTINGS:
                if isinstance(value, int):
                    found[name] = value
                    break
            else:
                found[name] = float(value)
                break
    return RequestSettings(**found)


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


def openai_limit_error(message: str, retry: bool) -> dict[str, Any]:
    """OpenAI's 429 bodies (Chat Completions and Responses alike): a rate limit (`code:
    rate_limit_exceeded`, clients back off and retry) when `retry`, else a spent quota
    (`insufficient_quota`: the openai SDK raises `RateLimitError` all the same, and agents
    such as Codex stop instead of retrying)."""
    if retry:
        return {"error": {"message": message, "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    return {"error": {"message": message, "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}
