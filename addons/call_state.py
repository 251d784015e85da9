"""Per-flow state of one intercepted LLM call, kept in `flow.metadata`.

Created at `requestheaders` when the provider registry matches, filled in by the later
hooks, and turned into a `CallRecord` once the call ends.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import http

from interlock.engine.stream import PolicyStream
from interlock.providers import Match
from policies.base import PolicyContext
from policies.chain import PolicyChain

METADATA_KEY = "interlock"


def new_call_id() -> str:
    """A sortable id: 12 hex digits of milliseconds, then 20 random hex digits."""
    return f"{int(time.time() * 1000):012x}{uuid.uuid4().hex[:20]}"


@dataclass(slots=True)
class CallState:
    call_id: str
    match: Match
    started_at: float
    host: str  # as the client asked, before any map_remote
    path: str  # without the query string
    request_original: Any | None = None  # parsed JSON of what the client sent
    request_final: Any | None = None  # parsed JSON of what went upstream
    request_note: str | None = None
    request_original_headers: dict[str, str] | None = None
    secrets: list[str] = field(default_factory=list)
    model: str | None = None
    stream_requested: bool = False
    streamed: bool = False
    stream_raw: bytearray = field(default_factory=bytearray)  # upstream bytes, as received
    chunk_times: list[tuple[int, float]] = field(default_factory=list)  # (end offset, time)
    first_byte_at: float | None = None
    chain: PolicyChain | None = None  # the chain in force when the call started
    policy: PolicyContext | None = None
    policy_stream: PolicyStream | None = None  # set when a policed stream is rewritten live
    response_original_body: bytes | None = None  # a whole body before policies rewrote it
    recorded: bool = False

    def tap(self, chunk: bytes) -> bytes:
        """Pass-through stream transformer: keep a copy, forward the bytes unchanged."""
        if chunk:
            now = time.time()
            if self.first_byte_at is None:
                self.first_byte_at = now
            self.stream_raw += chunk
            self.chunk_times.append((len(self.stream_raw), now))
        return chunk

    def time_at_offset(self, offset: int) -> float | None:
        """When the byte at `offset` of the upstream stream arrived."""
        for end, at in self.chunk_times:
            if offset < end:
                return at
        return None


def call_state(flow: http.HTTPFlow) -> CallState | None:
    state = flow.metadata.get(METADATA_KEY)
    return state if isinstance(state, CallState) else None
