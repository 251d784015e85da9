"""Gives up on a call's upstream from inside mitmproxy's HTTP stream (private API).

An addon can neither answer a request while mitmproxy waits for upstream nor end a
stream in progress with bytes of its own. `GiveUp`, a `MessageInjected` event, asks for
it: the addon injects it for the flow through the proxy server (as `inject.websocket`
does), mitmproxy's HTTP layer routes it to the flow's `HttpStream`, and this module wraps
`HttpStream._handle_event` to act on it (every other event takes the original path).
What happens depends on where the response is:

- no response headers yet: the upstream request is cancelled (HTTP/1: its connection
  closed; HTTP/2: only its stream reset) and the client gets the call's error response;
  the `response` hook runs as for any answer;
- a body being buffered (not streamed): if more of it came since the last check, the
  event only reports the progress; otherwise as above (the client has had nothing yet);
- a body streaming: upstream is cancelled, the stream transformer ends as at the end of
  a body (a policy holding a tool call decides it, never releasing it undecided), the
  client gets the dialect's stream error event and the body ends.

Installed with `addons.stream_wait`, on the same verified mitmproxy versions; delete both
once mitmproxy has async stream transformers and a per-request read timeout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from mitmproxy import http
from mitmproxy.proxy import events, layer
from mitmproxy.proxy.layers.http import DropStream, ErrorCode, HttpStream, RequestProtocolError, SendHttp

from addons import stream_wait
from interlock.engine.stream import PolicyStream

logger = logging.getLogger(__name__)


class Verdict(Protocol):
    """What the addon decided about a silent upstream, asked from inside the stream."""

    def progressed(self, body_bytes: int) -> bool:
        """True if a buffered body grew since the last check (then nothing is ended)."""

    def response(self) -> http.Response:
        """The answer to send when nothing has reached the client yet."""

    def stream_error(self) -> bytes:
        """The event that ends a stream already under way."""


@dataclass
class GiveUp(events.MessageInjected[Verdict]):
    """Upstream sent nothing for too long: end this flow's call (see module docstring)."""


_original = HttpStream._handle_event
_installed = False


def _handle_event(self: HttpStream, event: events.Event) -> layer.CommandGenerator[None]:
    if type(event) is GiveUp:
        return _give_up(self, event.message)
    return _original(self, event)


def _give_up(stream: HttpStream, verdict: Verdict) -> layer.CommandGenerator[None]:
    where = stream.server_state
    streaming = where == stream.state_stream_response_body
    buffering = where == stream.state_consume_response_body
    if not (streaming or buffering or where == stream.state_wait_for_response_headers):
        return  # already answered, errored, or a tunnel
    if buffering and verdict.progressed(len(stream.response_body_buf)):
        return
    yield SendHttp(RequestProtocolError(stream.stream_id, "upstream idle", ErrorCode.CANCEL), stream.context.server)
    # The cancelled connection's own errors must not reach the client after our answer.
    yield DropStream(stream.stream_id)
    if streaming:
        yield from _end_stream(stream, verdict)
    else:
        stream.flow.response = verdict.response()
        yield from stream.send_response()


def _end_stream(stream: HttpStream, verdict: Verdict) -> layer.CommandGenerator[None]:
    assert stream.flow.response
    transform = stream.flow.response.stream
    if isinstance(transform, PolicyStream):
        yield from stream_wait.send_chunks(stream, transform(b""))
        if (yield from stream_wait.drain_waits(stream, transform)):
            return
    elif callable(transform):
        tail = transform(b"")
        yield from stream_wait.send_chunks(stream, [tail] if isinstance(tail, bytes) else tail)
    yield from stream_wait.send_chunks(stream, [verdict.stream_error()])
    yield from stream_wait.end_streamed(stream)


def install() -> bool:
    """Install the patch once, where `addons.stream_wait` is; False otherwise."""
    global _installed
    if _installed:
        return True
    if not stream_wait.install():
        logger.warning("Interlock: the upstream idle timeout is off on this mitmproxy version.")
        return False
    HttpStream._handle_event = _handle_event  # type: ignore[method-assign]
    _installed = True
    return True
