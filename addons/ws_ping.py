"""WebSocket ping frames to a client: Interlock's patch of mitmproxy's WebSocket layer.

mitmproxy injects text and binary messages (`inject.websocket`) but no control frames,
and a held turn must keep its client's connection alive with pings. This module wraps
`WebsocketLayer.relay_messages` so that a `PingInjected` event (sent like an injected
message) makes the layer send a ping frame to the client, while the connection is open;
every other event takes the original code path. The client's pong is relayed upstream
as mitmproxy relays any pong (an unsolicited pong, which RFC 6455 allows).

Verified against the mitmproxy versions in `VERIFIED_VERSIONS` (shared with
`addons.stream_wait`); on another version the patch is not installed and no pings are
sent. Delete this module once mitmproxy can inject control frames.
"""

from __future__ import annotations

import logging

import wsproto.events
from mitmproxy import ctx, http, websocket
from mitmproxy.proxy import events, layer
from mitmproxy.proxy.layers.websocket import WebsocketLayer, WebSocketMessageInjected
from mitmproxy.proxy.utils import expect
from mitmproxy.version import VERSION
from wsproto import ConnectionState
from wsproto.frame_protocol import Opcode

from addons.stream_wait import VERIFIED_VERSIONS

logger = logging.getLogger(__name__)


class PingInjected(WebSocketMessageInjected):
    """Send a ping with the message's content as its payload to the client."""


_original = WebsocketLayer.relay_messages
_installed = False


@expect(events.DataReceived, events.ConnectionClosed, WebSocketMessageInjected)
def _relay_messages(self: WebsocketLayer, event: events.Event) -> layer.CommandGenerator[None]:
    if isinstance(event, PingInjected):
        if self.client_ws.state is ConnectionState.OPEN:
            yield self.client_ws.send2(wsproto.events.Ping(event.message.content))
        return
    yield from _original(self, event)


def install() -> bool:
    """Install the patch once; False (and a warning) on an unverified mitmproxy."""
    global _installed
    if _installed:
        return True
    if VERSION not in VERIFIED_VERSIONS:
        logger.warning("Interlock: WebSocket keepalive pings are verified on mitmproxy %s only.", VERSION)
        return False
    WebsocketLayer.relay_messages = _relay_messages  # type: ignore[method-assign]
    _installed = True
    return True


def send_ping(flow: http.HTTPFlow, payload: bytes = b"interlock") -> None:
    """Ping the client of a live WebSocket flow (nothing if the patch is not installed)."""
    if not _installed:
        return
    message = websocket.WebSocketMessage(Opcode.PING, False, payload)
    try:
        ctx.master.addons.get("proxyserver").inject_event(PingInjected(flow, message))
    except ValueError as error:  # the connection is gone
        logger.debug("Interlock: no ping sent: %s", error)
