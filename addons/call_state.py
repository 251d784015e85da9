"""Per-flow state of one intercepted LLM call, and the hook that announces its end.

A `CallState` is created at `requestheaders` when the provider registry matches, filled
in by the later hooks, and turned into a `CallRecord` once the call ends. It is kept
beside the flow, not in `flow.metadata`: mitmproxy serialises metadata (`-w`, mitmweb),
and this state holds secrets and live objects. `CallStates` also finds a call's session
once (`session_id`: before the policies when one needs it, else when the call is
recorded) and builds the policies' context with who made the call.
"""

from __future__ import annotations

import inspect
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mitmproxy import addonmanager, exceptions, hooks, http

from addons.call_tags import NO_TAGS, CallTags
from interlock.config import SessionConfig
from interlock.dialects.base import Dialect
from interlock.engine.stream import PolicyStream, StreamTap
from interlock.policy.base import Caller, PolicyContext
from interlock.policy.chain import PolicyChain
from interlock.providers import Match
from interlock.secrets import redact_headers, secret_values
from interlock.sessions import ResponseChains, session_id_for
from recorder.models import CallRecord

CALL_ID_METADATA = "interlock_call_id"
DIALECT_METADATA = "interlock_dialect"  # the dialect the call speaks, for the content views
CALL_ID_HEADER = "x-interlock-call-id"


def new_call_id() -> str:
    """A sortable id: 12 hex digits of milliseconds, then 20 random hex digits."""
    return f"{int(time.time() * 1000):012x}{uuid.uuid4().hex[:20]}"


@dataclass(slots=True)
class CallState:
    call_id: str
    match: Match
    dialect: Dialect
    started_at: float
    host: str  # as the client asked, before any map_remote
    path: str  # without the query string
    chain: PolicyChain  # the chain in force when the call started
    keepalive_s: float  # keepalive.interval_s in force when the call started
    sessions: SessionConfig  # how sessions were found when the call started
    tags: CallTags = NO_TAGS  # who made it, for which project (`addons.call_tags`)
    request_original: Any | None = None  # parsed JSON of what the client sent
    request_final: Any | None = None  # parsed JSON of what went upstream
    request_note: str | None = None
    # The request's headers as the client sent them (mitmproxy replaces this tuple on a
    # change, never mutates it) and its path with the query string: redacted, and their
    # secrets found, only when the call is recorded (`secrets`, `original_headers`), not
    # before the request goes upstream.
    request_fields: tuple[tuple[bytes, bytes], ...] = field(default=(), repr=False)
    request_path_query: str = field(default="", repr=False)
    _secrets_and_headers: tuple[list[str], dict[str, str]] | None = field(default=None, repr=False)
    model: str | None = None
    stream_requested: bool = False
    policy: PolicyContext | None = None
    tap: StreamTap | None = None  # set when the response streams: upstream bytes, reassembled live
    policy_stream: PolicyStream | None = None  # set when a policed stream is rewritten live
    response_original_body: bytes | None = None  # a whole body before policies rewrote it
    upstream_error: str | None = None  # why Interlock gave up on upstream (see addons.upstream_idle)
    stream_tail: bytes = b""  # what Interlock sent after the stream it gave up on (its error event)
    session: tuple[str | None] | None = None  # (session id,) once found: see `CallStates.session_id`

    def secrets(self) -> list[str]:
        """The secret values of the client's headers and query string, for scrubbing."""
        return self._read_client_headers()[0]

    def original_headers(self) -> dict[str, str]:
        """The client's headers, their secrets redacted."""
        return self._read_client_headers()[1]

    def _read_client_headers(self) -> tuple[list[str], dict[str, str]]:
        """(secret values, redacted headers) of the client's request, read the first time asked."""
        if self._secrets_and_headers is None:
            headers = list(http.Headers(self.request_fields).items(multi=True))
            self._secrets_and_headers = (secret_values(headers, self.request_path_query), redact_headers(headers))
        return self._secrets_and_headers

    @property
    def streamed(self) -> bool:
        return self.tap is not None

    def release(self) -> None:
        """Drop the buffers once recorded: mitmweb keeps flows (and so this) alive."""
        self.tap = None
        self.policy_stream = None
        self.response_original_body = None


class CallStates:
    """The states of the calls in flight, looked up by flow."""

    def __init__(self) -> None:
        self._states: weakref.WeakKeyDictionary[http.HTTPFlow, CallState] = weakref.WeakKeyDictionary()
        self.chains = ResponseChains()  # which session a chained call's response belongs to

    def attach(self, flow: http.HTTPFlow, state: CallState) -> None:
        self._states[flow] = state
        flow.metadata[CALL_ID_METADATA] = state.call_id
        flow.metadata[DIALECT_METADATA] = state.match.dialect

    def get(self, flow: http.HTTPFlow) -> CallState | None:
        return self._states.get(flow)

    def detach(self, flow: http.HTTPFlow) -> None:
        state = self._states.pop(flow, None)
        if state is not None:
            state.release()

    def __len__(self) -> int:
        return len(self._states)

    def session_id(self, state: CallState, headers: http.Headers) -> str | None:
        """The call's session, found once (from `headers`, the request as the client
        sent it, and the chains of responses recorded so far) and kept in the state."""
        if state.session is None:
            found = session_id_for(state.dialect, state.request_original, headers, state.sessions, self.chains)
            state.session = (found,)
        return state.session[0]

    def policy_context(self, state: CallState, request: dict[str, Any], headers: http.Headers) -> PolicyContext:
        """The context the policies get for the call's `request` (its parsed body)."""
        caller = Caller(
            provider=state.match.provider,
            client=headers.get("user-agent"),
            user=state.tags.user,
            project=state.tags.project,
            session_id=self.session_id(state, headers) if state.chain.needs_session else None,
        )
        return PolicyContext(
            call_id=state.call_id,
            dialect=state.dialect,
            model=state.model,
            request=request,
            streaming=state.stream_requested,
            caller=caller,
        )


async def announce_call_ended(master: Any, flow: http.HTTPFlow, record: CallRecord) -> None:
    """Call `interlock_call_ended(flow, record)` on every addon that has it, as mitmproxy's
    `trigger_event(CallEndedHook(...))` would (nested addons included, an addon's error
    logged as "Addon error", async handlers awaited), without visiting each of the ~55
    addons through its generic dispatch: that took about 0.3 ms a call inside mitmdump."""
    for addon in addonmanager.traverse(master.addons.chain):
        handler = getattr(addon, CallEndedHook.name, None)
        if not callable(handler):
            continue
        try:
            result = handler(flow, record)
            if inspect.isawaitable(result):
                await result
        except exceptions.AddonHalt:
            return
        except Exception:
            with addonmanager.safecall():  # only for its "Addon error" log line
                raise


@dataclass
class CallEndedHook(hooks.Hook):
    """A matched call ended and its secret-free record is built (and queued for the
    database when recording is on). Addons implement `interlock_call_ended(flow, record)`."""

    flow: http.HTTPFlow
    record: CallRecord
    name: ClassVar[str] = "interlock_call_ended"
