"""Async waits inside a streamed response: Interlock's patch of mitmproxy's HTTP stream.

mitmproxy 12 calls `flow.response.stream` synchronously per chunk, so a policy cannot
await a judge mid-stream (upstream issue #8103). Every layer may, however, yield a
blocking `StartHook`: the core runs the hook's handlers as a task and pauses only that
HTTP stream until they return. This module replaces
`HttpStream.state_stream_response_body` with a version that, for a `PolicyStream` only,
yields `InterlockStreamWaitHook` while a policy is waiting and forwards what it releases
afterwards (the hook also returns when a keepalive is due: it is sent, and the hook
yielded again). Every other stream value takes the original code path. The only other
module that touches mitmproxy internals, `addons.upstream_giveup`, builds on this one.

Verified against the mitmproxy versions in `VERIFIED_VERSIONS`; on another version the
patch is not installed and the addon buffers policed streams instead (see
`Interceptor.responseheaders`). Delete this module once mitmproxy ships async stream
transformers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from mitmproxy import http
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers.http import (
    HttpStream,
    ResponseData,
    ResponseEndOfMessage,
    ResponseTrailers,
    SendHttp,
)
from mitmproxy.proxy.utils import expect
from mitmproxy.version import VERSION

from interlock.engine.stream import PolicyStream

logger = logging.getLogger(__name__)

VERIFIED_VERSIONS = frozenset({"12.3.1"})


@dataclass
class InterlockStreamWaitHook(commands.StartHook):
    """A policy is waiting mid-stream; handlers await `flow.response.stream.wait()`."""

    flow: http.HTTPFlow
    name: ClassVar[str] = "interlock_stream_wait"


_original = HttpStream.state_stream_response_body
_installed = False


def send_chunks(stream: HttpStream, chunks: Iterable[bytes]) -> layer.CommandGenerator[None]:
    """Send streamed pieces to the client (an empty one would end a chunked body)."""
    for chunk in chunks:
        if not chunk:
            continue
        if stream.context.options.store_streamed_bodies:
            stream.response_body_buf += chunk
        yield SendHttp(ResponseData(stream.stream_id, chunk), stream.context.client)


def drain_waits(stream: HttpStream, policy: PolicyStream) -> layer.CommandGenerator[bool]:
    """Wait for the policy while it needs to, sending what `resume()` gives after each
    wait (released events, or a keepalive while the policy still decides); True if the
    flow was killed meanwhile."""
    while policy.waiting:
        yield InterlockStreamWaitHook(stream.flow)
        if (yield from stream.check_killed(True)):
            return True
        yield from send_chunks(stream, policy.resume())
    return False


def end_streamed(stream: HttpStream) -> layer.CommandGenerator[None]:
    """The streamed body is over: keep it if asked, then the response hook and the end."""
    assert stream.flow.response
    if stream.context.options.store_streamed_bodies:
        stream.flow.response.data.content = bytes(stream.response_body_buf)
        stream.response_body_buf.clear()
    yield from stream.send_response(already_streamed=True)


@expect(ResponseData, ResponseTrailers, ResponseEndOfMessage)
def _state_stream_response_body(self: HttpStream, event: events.Event) -> layer.CommandGenerator[None]:
    assert self.flow.response
    policy = self.flow.response.stream
    if not isinstance(policy, PolicyStream):
        yield from _original(self, event)
        return
    if isinstance(event, ResponseData):
        yield from send_chunks(self, policy(event.data))
        yield from drain_waits(self, policy)
    elif isinstance(event, ResponseTrailers):
        self.flow.response.trailers = event.trailers
    elif isinstance(event, ResponseEndOfMessage):
        yield from send_chunks(self, policy(b""))
        if (yield from drain_waits(self, policy)):
            return
        yield from end_streamed(self)


def install() -> bool:
    """Install the patch once; False (and a warning) on an unverified mitmproxy."""
    global _installed
    if _installed:
        return True
    if VERSION not in VERIFIED_VERSIONS:
        logger.warning(
            "Interlock: mid-stream policy waits are verified on mitmproxy %s, not %s; "
            "policed streams will be buffered instead.",
            ", ".join(sorted(VERIFIED_VERSIONS)),
            VERSION,
        )
        return False
    HttpStream.state_stream_response_body = _state_stream_response_body  # type: ignore[method-assign]
    _installed = True
    return True
