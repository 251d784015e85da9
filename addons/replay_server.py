"""The loopback server that plays a cassette's answers back (see `addons.cassette_replay`).

An aiohttp server on 127.0.0.1 (a free port) inside mitmdump's event loop. The replay
addon points a matched flow at it with a private header (`REPLAY_HEADER`) naming the
entry, so mitmproxy's own upstream handling, the stream policies and the recorder treat
the answer as they treat a live one. It sends the recorded status and headers at the
recorded time, then each chunk at its recorded time after the request reached it (all at
once when `fast`), a whole body at once. A WebSocket upgrade names a socket session
instead: the server accepts it and answers each client frame that starts a turn
(`WebSocketFrames.starts_turn`) with the matching turn's frames, paced the same way,
or with the dialect's error frame when no turn matches; other client frames get no
answer. Imported only when `interlock_replay` is set.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from interlock.cassette import CassetteEntry, Chunk
from interlock.dialects.base import Dialect, WebSocketFrames
from interlock.replay_match import Miss, ReplayIndex, ReplayRequest
from interlock.secrets import Scrubber

logger = logging.getLogger(__name__)

REPLAY_HEADER = "x-interlock-replay"
# A WebSocket turn's request is its frame; cassettes record it as a POST, like HTTP calls.
TURN_METHOD = "POST"


@dataclass(frozen=True, slots=True)
class SocketReplay:
    """What the server needs to match one WebSocket's turns."""

    dialect: Dialect
    frames: WebSocketFrames
    url: str  # as the cassette records it: wss://host/path
    scrubber: Scrubber  # the upgrade's secrets and the chain's record detectors


class ReplayServer:
    def __init__(self, index: ReplayIndex, fast: bool, describe_miss: Callable[[Miss], str]) -> None:
        self.index = index
        self.fast = fast
        self.describe_miss = describe_miss
        self.port = 0
        self._secret = secrets.token_hex(8)  # tickets name entries for this process only
        self._sockets: dict[str, SocketReplay] = {}  # tickets of upgrades not yet arrived
        self._socket_numbers = itertools.count()  # never reused: a ticket names one upgrade
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def entry_ticket(self, number: int) -> str:
        return f"{self._secret}-{number}"

    def socket_ticket(self, socket: SocketReplay) -> str:
        ticket = f"{self._secret}-ws{next(self._socket_numbers)}"
        self._sockets[ticket] = socket
        return ticket

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = asyncio.get_running_loop().time()
        ticket = request.headers.get(REPLAY_HEADER, "")
        socket = self._sockets.pop(ticket, None)
        if socket is not None:
            return await self._socket(request, socket)
        secret, _, number = ticket.partition("-")
        if secret != self._secret or not number.isdigit() or int(number) >= len(self.index):
            return web.Response(status=404, text="Interlock replay: unknown ticket\n")
        return await self._answer(request, self.index.entry(int(number)), arrived)

    async def _at(self, start: float, t: float) -> None:
        if not self.fast:
            delay = start + t - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _answer(self, request: web.Request, entry: CassetteEntry, arrived: float) -> web.StreamResponse:
        recorded = entry.response
        headers = CIMultiDict(recorded.headers)
        await request.read()
        await self._at(arrived, recorded.t)
        if recorded.chunks is None:
            body = recorded.body.data if recorded.body is not None else b""
            return web.Response(status=recorded.status, headers=headers, body=body)
        response = web.StreamResponse(status=recorded.status, headers=headers)
        await response.prepare(request)
        try:
            for chunk in recorded.chunks:
                await self._at(arrived, chunk.t)
                await response.write(chunk.data)
            await response.write_eof()
        except ConnectionResetError:  # the client left mid-stream; the proxy records the call as cut
            logger.debug("Interlock replay: call %s: the client left mid-stream", entry.call_id)
        return response

    async def _socket(self, request: web.Request, socket: SocketReplay) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            arrived = asyncio.get_running_loop().time()
            try:
                payload: Any = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(payload, dict) or not socket.frames.starts_turn(payload):
                continue  # e.g. `response.processed`: the provider answers nothing
            live = ReplayRequest("websocket", socket.dialect.name, TURN_METHOD, socket.url, socket.scrubber(payload))
            found = self.index.take(live)
            if isinstance(found, Miss):
                error = socket.dialect.no_match_error(self.describe_miss(found))
                await ws.send_str(json.dumps(socket.frames.error_frame(socket.dialect.no_match_status, error)))
                continue
            await self._frames(ws, self.index.entry(found).response.chunks or [], arrived)
        return ws

    async def _frames(self, ws: web.WebSocketResponse, frames: list[Chunk], arrived: float) -> None:
        for frame in frames:
            await self._at(arrived, frame.t)
            if frame.text is not None:
                await ws.send_str(frame.text)
            else:
                await ws.send_bytes(frame.data)
