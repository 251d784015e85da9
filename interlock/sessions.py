"""Groups calls into agent sessions.

In order of preference: a session header the client sets (configurable), else the
dialect's own session key read from the request body (Claude Code's session id in
Anthropic's `metadata.user_id`, or a fingerprint of the conversation's start, which
stays the same while an agent re-sends its growing history turn after turn).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.config import SessionConfig
from interlock.dialects.base import Dialect


def session_id_for(dialect: Dialect, request: Any, headers: Mapping[str, str], config: SessionConfig) -> str | None:
    if config.header:
        value = headers.get(config.header)
        if value:
            return value
    if not isinstance(request, dict):
        return None
    return dialect.session_key(request)
