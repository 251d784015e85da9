"""Runs the configured policies in order, each seeing the previous one's output.

Every hook call is bounded by the policy's `timeout_s`; an exception or a timeout takes
the policy's `on_error` mode (`allow`: the input passes unchanged; `block`: the content
is replaced by a block notice) and is recorded as a policy event. A policy's own
exception never reaches the caller: `tool_call` and `stream_end` turn a blocking failure
into a decision themselves, while `request`, `text`, `text_end` and `response` raise
`PolicyFailed` for the caller (the addon, the dialect's rewriters) to end the call or
the message the dialect's way. A deliberate refusal (`Refused`, from `on_request`) is
not a failure: it passes through as it is, whatever the policy's `on_error`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar

from interlock.detectors import record_detectors, record_marker
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, Policy, PolicyContext, Refused, ReplaceWithText, StreamEnd, ToolDecision

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChainedPolicy:
    policy: Policy
    on_error: Literal["allow", "block"]
    timeout_s: float

    @property
    def name(self) -> str:
        return self.policy.instance_name


class PolicyFailed(Exception):
    """A policy failed and its `on_error` is `block`."""

    def __init__(self, policy: str, reason: str) -> None:
        super().__init__(f"{policy}: {reason}")
        self.policy = policy
        self.reason = reason

    @property
    def notice(self) -> str:
        return f"[Interlock blocked this content: policy '{self.policy}' failed ({self.reason}).]"


def failure_reason(error: BaseException) -> str:
    """A short, trace-free description of why a hook failed."""
    if isinstance(error, TimeoutError):
        return "timed out"
    text = str(error).splitlines()[0][:200] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class PolicyChain:
    def __init__(self, entries: list[ChainedPolicy]) -> None:
        self.entries = entries
        # What the recorder scrubs from the records of the calls this chain handles.
        self.record_detectors = record_detectors(e.policy.record_patterns for e in entries)
        self.needs_session = any(e.policy.needs_session for e in entries)

        def using(hook: str) -> list[ChainedPolicy]:
            return [e for e in entries if type(e.policy).overrides(hook)]

        self._request = using("on_request")
        self._text = [
            e for e in entries if type(e.policy).overrides("on_text") or type(e.policy).overrides("on_text_end")
        ]
        self._tool = using("on_tool_call")
        self._stream_end = using("on_stream_end")
        self._response = using("on_response")

    @property
    def handles_text(self) -> bool:
        return bool(self._text)

    @property
    def holds_tool_calls(self) -> bool:
        """Tool calls must be held until complete (and all of them until the message
        ends, so text added by a policy can go before them)."""
        return bool(self._tool or self._stream_end)

    @property
    def touches_responses(self) -> bool:
        return bool(self._text or self._tool or self._stream_end or self._response)

    async def _guarded(
        self, ctx: PolicyContext, entry: ChainedPolicy, hook: str, call: Callable[[], Awaitable[T]]
    ) -> T:
        """Run one hook under the policy's timeout; on failure record it and either
        re-raise as `PolicyFailed` (block) or raise `_Allow` (allow). A `Refused` passes."""
        try:
            async with asyncio.timeout(entry.timeout_s):
                return await call()
        except Refused:
            raise
        except Exception as error:  # noqa: BLE001 - a policy's failure must never reach the flow
            # A policy's message may quote what it read: no key goes to the log or the record.
            reason = self.record_detectors.sub(failure_reason(error), record_marker)
            logger.warning("policy %s failed in %s: %s (on_error=%s)", entry.name, hook, reason, entry.on_error)
            ctx.record(entry.name, "error", reason, hook=hook, on_error=entry.on_error)
            if entry.on_error == "block":
                raise PolicyFailed(entry.name, reason) from None
            raise _Allow from None

    async def request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        """Raises `PolicyFailed` when a failing policy blocks, `Refused` when one refuses."""
        return await self._body(ctx, self._request, "on_request", request)

    async def _body(
        self, ctx: PolicyContext, entries: list[ChainedPolicy], hook: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Pass a whole native body through `hook` of each entry in turn."""
        for entry in entries:
            current = body
            try:
                body = await self._guarded(ctx, entry, hook, partial(getattr(entry.policy, hook), ctx, current))
            except _Allow:
                body = current
        return body

    async def text(self, ctx: PolicyContext, text: str, start: int = 0) -> str:
        """Pass a text delta through the text policies from position `start`.
        Raises `PolicyFailed` when a failing policy blocks."""
        for entry in self._text[start:]:
            if not text:
                break
            current = text
            try:
                text = await self._guarded(ctx, entry, "on_text", partial(entry.policy.on_text, ctx, current))
            except _Allow:
                text = current
        return text

    async def text_end(self, ctx: PolicyContext) -> str:
        """Flush every text policy in order; what one releases still passes the later ones."""
        out = ""
        for position, entry in enumerate(self._text):
            try:
                released = await self._guarded(ctx, entry, "on_text_end", partial(entry.policy.on_text_end, ctx))
            except _Allow:
                released = ""
            if released:
                out += await self.text(ctx, released, position + 1)
        return out

    async def tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        decision: ToolDecision = Keep(call)
        for entry in self._tool:
            current = decision.call if isinstance(decision, Keep) else call
            try:
                decision = await self._guarded(
                    ctx, entry, "on_tool_call", partial(entry.policy.on_tool_call, ctx, current)
                )
            except _Allow:
                decision = Keep(current)
            except PolicyFailed as failed:
                return ReplaceWithText(failed.notice, failed.reason)
            if isinstance(decision, ReplaceWithText):
                return decision
        return decision

    async def stream_end(self, ctx: PolicyContext, end: StreamEnd) -> str:
        """Text the policies add at the end. A failing policy that blocks ends the
        message (held tool calls are dropped) and adds its notice."""
        out = ""
        for entry in self._stream_end:
            try:
                out += await self._guarded(ctx, entry, "on_stream_end", partial(entry.policy.on_stream_end, ctx, end))
            except _Allow:
                continue
            except PolicyFailed as failed:
                ctx.end_message(failed.policy, failed.reason)
                return out + failed.notice
        return out

    async def response(self, ctx: PolicyContext, response: dict[str, Any]) -> dict[str, Any]:
        """Raises `PolicyFailed` when a failing policy blocks."""
        return await self._body(ctx, self._response, "on_response", response)


class _Allow(Exception):
    """Internal: the failing policy's `on_error` is `allow`."""
