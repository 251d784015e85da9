"""Groups calls into agent sessions.

In order of preference: a session header the client sets (configurable); the dialect's
session key from the request headers (Codex's conversation ids); its key from the
request body (Claude Code's session id in Anthropic's `metadata.user_id`, Codex's
`prompt_cache_key`, or a fingerprint of the conversation's start, which stays the same
while an agent re-sends its growing history turn after turn); else, for a request
chained on an earlier response (Responses' `previous_response_id`, whose input holds
only the new items), the session of the call that produced that response.

`ResponseChains` remembers, in memory, the session of each response recorded since
start-up (bounded: the oldest are forgotten first), filled as calls end, so finding a
chained call's session never waits for the disk. A response it does not know (recorded
before a restart, or forgotten) starts a session named after it, `chain-<response id>`,
which the rest of the chain then joins: a restart splits a chained conversation in two
sessions at most.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from interlock.config import SessionConfig
from interlock.dialects.base import Dialect

MAX_RESPONSES = 10_000


class ResponseChains:
    """Response id -> session id, for the latest `size` responses recorded."""

    def __init__(self, size: int = MAX_RESPONSES) -> None:
        self.size = size
        self._sessions: OrderedDict[str, str] = OrderedDict()

    def remember(self, dialect: Dialect, response: Any, session_id: str | None) -> None:
        """A call ended: a later call chained on its response joins its session."""
        if session_id is None or not isinstance(response, dict):
            return
        response_id = dialect.response_id(response)
        if response_id is None:
            return
        self._sessions[response_id] = session_id
        self._sessions.move_to_end(response_id)
        while len(self._sessions) > self.size:
            self._sessions.popitem(last=False)

    def session_of(self, response_id: str) -> str | None:
        return self._sessions.get(response_id)

    def __len__(self) -> int:
        return len(self._sessions)


def session_id_for(
    dialect: Dialect,
    request: Any,
    headers: Mapping[str, str],
    config: SessionConfig,
    chains: ResponseChains | None = None,
) -> str | None:
    if config.header:
        value = headers.get(config.header)
        if value:
            return value
    key = dialect.session_header_key(headers)
    if key:
        return key
    if not isinstance(request, dict):
        return None
    key = dialect.session_key(request)
    if key:
        return key
    parent = dialect.chained_on(request)
    if parent is None:
        return None
    return (chains.session_of(parent) if chains is not None else None) or f"chain-{parent}"
