"""The policy interface: async hooks on a neutral view of one LLM call.

A policy subclasses `Policy`, sets `name` (its short name in `mitm_config.yaml`) and
`Options` (a pydantic model of its options), and overrides only the hooks it cares
about; every hook passes its input through unchanged by default. Hooks are async so a
policy may await (a network call, a judge) anywhere, mid-stream included. A hook that
does not actually suspend costs no more than a function call: the chain runs it as an
eager task.

Policies know neither mitmproxy nor the wire format: the engine feeds them text and tool
calls and the dialect turns their decisions into native events. Request edits go
through `ctx.dialect` (`map_request_text`, `add_system_text`, `with_model`). The one
door to the wire is `ctx.native_event` (the upstream SSE event being handled, raw bytes
included), for policies that need a field the neutral view leaves out. `ctx.caller` says
who made the call (client, user, project, session), for policies that count per caller.

A policy that refuses a request on purpose (a spent budget) raises `Refused` from
`on_request`: unlike a failure, it is never turned into `on_error: allow`, and the client
gets the dialect's error body with the refusal's status (429) and retry advice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from interlock.dialects.base import Dialect
from interlock.neutral import ToolCall, Usage
from interlock.policy.records import JudgeRecord, PolicyEventRecord
from interlock.sse import SSEEvent


class PolicyOptions(BaseModel):
    """Base of every policy's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a call, as the proxy knows it when the request arrives. `session_id` is
    filled only when a policy of the chain declares `needs_session` (finding it may
    fingerprint the conversation); the record reuses it."""

    provider: str = ""
    client: str | None = None  # the user-agent
    user: str | None = None
    project: str | None = None
    session_id: str | None = None

    def scopes(self, model: str | None) -> dict[str, str | None]:
        """The call's value for each scope a budget or an alert rule counts per (`model`:
        the one it asks for, or was sent upstream)."""
        return {
            "session": self.session_id,
            "model": model,
            "client": self.client,
            "user": self.user,
            "project": self.project,
        }


NO_CALLER = Caller()


# A refusal that lifts within this many seconds is worth the SDKs' own retries (they wait
# for `retry-after` up to a minute or two); a longer one tells them not to retry.
RETRY_SOON_S = 60


class Refused(Exception):
    """A deliberate refusal of a request (not a failure): answered with `status` and the
    dialect's limit error saying `message`; `retry_after_s` is when trying again may
    succeed (None: not within any time worth waiting)."""

    def __init__(self, policy: str, message: str, *, status: int = 429, retry_after_s: int | None = None) -> None:
        super().__init__(f"{policy}: {message}")
        self.policy = policy
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def retry_soon(self) -> bool:
        """It lifts within `RETRY_SOON_S`: a client retrying after `retry_after_s` may succeed."""
        return self.retry_after_s is not None and self.retry_after_s <= RETRY_SOON_S


@dataclass(frozen=True, slots=True)
class Keep:
    """Let the tool call through (possibly with changed arguments)."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class ReplaceWithText:
    """Remove the tool call and show this text to the client instead."""

    text: str
    reason: str


ToolDecision = Keep | ReplaceWithText


@dataclass(slots=True)
class StreamEnd:
    """How the upstream message ended."""

    stop_reason: str | None
    usage: Usage


@dataclass(slots=True)
class PolicyContext:
    """Per-call context handed to every hook."""

    call_id: str
    dialect: Dialect  # the call's wire format: request edits, readers (`dialect.name`)
    model: str | None
    # The client's request during `on_request` (each hook gets the previous one's output
    # as its argument); from the response hooks on, the request as sent upstream.
    request: dict[str, Any] | None
    streaming: bool = False
    events: list[PolicyEventRecord] = field(default_factory=list)
    judgements: list[JudgeRecord] = field(default_factory=list)
    ended_by: str | None = None  # set when a policy ended the message
    # In a stream, the upstream SSE event being handled when a hook runs (its type, index,
    # raw bytes, fields the neutral view leaves out); None for whole bodies, which hooks
    # get natively through `on_request` / `on_response`.
    native_event: SSEEvent | None = None
    caller: Caller = NO_CALLER
    _scratch: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, policy: str, action: str, reason: str = "", **details: Any) -> None:
        """Record a decision; it becomes a `policy_events` row."""
        self.events.append(
            PolicyEventRecord(policy=policy, action=action, reason=reason, details=details, at=time.time())
        )

    def scratch(self, policy: Policy) -> dict[str, Any]:
        """Per-call, per-policy state (e.g. text held back across deltas)."""
        return self._scratch.setdefault(policy.instance_name, {})

    def end_message(self, policy: str, reason: str) -> None:
        """Ask the engine to end the message here: later content is dropped."""
        if self.ended_by is None:
            self.ended_by = policy
            self.record(policy, "ended", reason)


class Policy:
    """Base class with pass-through hooks."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[PolicyOptions]] = PolicyOptions
    description: ClassVar[str] = ""
    # Named patterns whose matches must never be recorded: the recorder scrubs them from
    # everything it records about the calls this policy's chain handles.
    record_patterns: Mapping[str, str] = MappingProxyType({})
    # The policy reads `ctx.caller.session_id`: the proxy finds the call's session before
    # `on_request` (otherwise only when it records the call).
    needs_session: bool = False

    def __init__(self, options: PolicyOptions, instance_name: str) -> None:
        self.options = options
        self.instance_name = instance_name

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        """The request JSON (native dialect) before it goes upstream."""
        return request

    async def on_text(self, ctx: PolicyContext, text: str) -> str:
        """A piece of assistant text; return what to emit now (hold back the rest in
        `ctx.scratch(self)` and release it in `on_text_end`)."""
        return text

    async def on_text_end(self, ctx: PolicyContext) -> str:
        """The current text block ends: return any held-back text."""
        return ""

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        """A complete tool call (streamed ones are held until complete)."""
        return Keep(call)

    async def on_stream_end(self, ctx: PolicyContext, end: StreamEnd) -> str:
        """The message ends; return text to add before any tool calls (or "")."""
        return ""

    async def on_response(self, ctx: PolicyContext, response: dict[str, Any]) -> dict[str, Any]:
        """A whole non-streamed response (native dialect), after the neutral hooks."""
        return response

    @classmethod
    def overrides(cls, hook: str) -> bool:
        return getattr(cls, hook) is not getattr(Policy, hook)
