"""Groups calls into agent sessions.

In order of preference: a session header the client sets (configurable), the session id
Claude Code puts into Anthropic's `metadata.user_id`, else a fingerprint of the start of
the conversation (system prompt and first user message), which stays the same while an
agent re-sends its growing history turn after turn.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from interlock.config import SessionConfig

_CLAUDE_CODE_SESSION = re.compile(r"session_([0-9a-fA-F-]{8,})")


def _first_user_message(messages: Any) -> Any:
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") == "user":
                return message.get("content")
    return None


def conversation_fingerprint(dialect: str, request: Mapping[str, Any]) -> str | None:
    messages = request.get("messages")
    first_user = _first_user_message(messages)
    if first_user is None:
        return None
    system = request.get("system")
    if system is None and isinstance(messages, list):
        system = [
            m.get("content") for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")
        ]
    prefix = json.dumps([dialect, system, first_user], sort_keys=True, ensure_ascii=False, default=str)
    return "fp-" + hashlib.blake2b(prefix.encode(), digest_size=8).hexdigest()


def session_id_for(dialect: str, request: Any, headers: Mapping[str, str], config: SessionConfig) -> str | None:
    if config.header:
        value = headers.get(config.header)
        if value:
            return value
    if not isinstance(request, dict):
        return None
    metadata = request.get("metadata")
    if isinstance(metadata, dict):
        session = _claude_code_session(metadata.get("user_id"))
        if session:
            return "cc-" + session
    return conversation_fingerprint(dialect, request)


def _claude_code_session(user_id: Any) -> str | None:
    """Claude Code sends a JSON string with `session_id`; older releases a
    `user_..._session_<uuid>` string."""
    if not isinstance(user_id, str):
        return None
    try:
        parsed = json.loads(user_id)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("session_id"), str):
        return str(parsed["session_id"])
    found = _CLAUDE_CODE_SESSION.search(user_id)
    return found.group(1) if found else None
