"""Per-flow state of one intercepted LLM call.

Created at `requestheaders` when the provider registry matches, filled in by the later
hooks, and turned into a `CallRecord` once the call ends. It is kept beside the flow,
not in `flow.metadata`: mitmproxy serialises metadata (`-w`, mitmweb), and this state
holds secrets and live objects.
"""

from __future__ import annotations

import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import http

from interlock.engine.stream import PolicyStream
from interlock.providers import Match
from policies.base import PolicyContext
from policies.chain import PolicyChain

CALL_ID_METADATA = "interlock_call_id"


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
    secrets: list[str] = field(default_factory=list, repr=False)
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

    def tap(self, chunk: bytes) -> bytes:
        """Pass-through stream transformer: keep a copy, forward the bytes unchanged."""
        if chunk:
            now = time.time()
            if self.first_byte_at is None:
                self.first_byte_at = now
            self.stream_raw += chunk
            self.chunk_times.append((len(self.stream_raw), now))
        return chunk

    def release(self) -> None:
        """Drop the buffers once recorded: mitmweb keeps flows (and so this) alive."""
        self.stream_raw = bytearray()
        self.chunk_times = []
        self.policy_stream = None
        self.response_original_body = None

    def time_at_offset(self, offset: int) -> float | None:
        """When the byte at `offset` of the upstream stream arrived."""
        for end, at in self.chunk_times:
            if offset < end:
                return at
        return None


class CallStates:
    """The states of the calls in flight, looked up by flow."""

    def __init__(self) -> None:
        self._states: weakref.WeakKeyDictionary[http.HTTPFlow, CallState] = weakref.WeakKeyDictionary()

    def attach(self, flow: http.HTTPFlow, state: CallState) -> None:
        self._states[flow] = state
        flow.metadata[CALL_ID_METADATA] = state.call_id

    def get(self, flow: http.HTTPFlow) -> CallState | None:
        return self._states.get(flow)

    def detach(self, flow: http.HTTPFlow) -> None:
        state = self._states.pop(flow, None)
        if state is not None:
            state.release()

    def __len__(self) -> int:
        return len(self._states)
