"""Answers matched LLM calls from a cassette (`interlock_replay`), never from upstream.

Options: `interlock_replay` (the cassette; when set, every matched call is answered
from it), `interlock_replay_fast` (no pacing), `interlock_replay_missing` (`error`, the
default: a request no recorded call matches gets the dialect's no-match error naming the
closest call and what differs; `record`: it goes upstream and is appended to the
cassette, replayable at once). At `request`, after the request policies, the request
(scrubbed as the cassette's are) is matched (`interlock.replay_match`, the config's
`replay` section) and the flow pointed at the loopback `ReplayServer` the way map_remote
would, so the answer streams through the policies and the recorder as a live one does.
A WebSocket upgrade to a matched route is pointed there too; its turns are matched as
they come (a turn no recorded one matches gets the dialect's error frame: turns are
never recorded-missing). While replaying, `connection_strategy` is `lazy`: mitmproxy
must not dial the real host on CONNECT. See docs/replay.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mitmproxy import ctx, exceptions, http

from addons.call_state import CALL_ID_HEADER, CallState, CallStates
from addons.config_watch import ConfigWatch
from addons.matcher import request_host
from addons.policing import json_bytes
from interlock import cassette
from interlock.dialects import dialect_for
from interlock.replay_match import IgnoredPaths, Miss, ReplayIndex, ReplayRequest
from interlock.secrets import Scrubber, secret_values
from recorder.cassette_export import NotReplayable, entry_from_record
from recorder.models import CallRecord

if TYPE_CHECKING:
    from addons.replay_server import ReplayServer

logger = logging.getLogger(__name__)

MISSING_MODES = ("error", "record")


class CassetteReplay:
    def __init__(self, config: ConfigWatch, calls: CallStates) -> None:
        self.config = config
        self.calls = calls
        self.path: Path | None = None
        self.index: ReplayIndex | None = None
        self.server: ReplayServer | None = None
        self._starting: asyncio.Task[None] | None = None
        self._misses: set[str] = set()  # call ids of misses going upstream to be recorded
        self._appender: cassette.CassetteAppender | None = None  # writes the misses recorded

    def load(self, loader: Any) -> None:
        loader.add_option(
            "interlock_replay", str, "", "Cassette to answer every matched LLM call from (never upstream)."
        )
        loader.add_option("interlock_replay_fast", bool, False, "Replay without the recorded pacing.")
        loader.add_option(
            "interlock_replay_missing",
            str,
            "error",
            "A replayed request no recorded call matches: error (the dialect's no-match error) or record "
            "(forwarded upstream and appended to the cassette).",
        )

    def configure(self, updated: set[str]) -> None:
        if "interlock_replay_missing" in updated and ctx.options.interlock_replay_missing not in MISSING_MODES:
            raise exceptions.OptionsError(
                f"interlock_replay_missing: {ctx.options.interlock_replay_missing!r} is not one of "
                f"{', '.join(MISSING_MODES)}"
            )
        if {"interlock_replay", "interlock_replay_missing", "interlock_config"} & updated:
            self._load_cassette()
        if self.index is not None and ctx.options.connection_strategy != "lazy":
            logger.info("Interlock replay: connection_strategy set to lazy (no real host is dialled on CONNECT)")
            ctx.options.update(connection_strategy="lazy")

    def _load_cassette(self) -> None:
        name = ctx.options.interlock_replay
        loaded = self.config.current
        if not name or loaded is None:
            self.path = self.index = None
            return
        path = Path(name)
        recording = ctx.options.interlock_replay_missing == "record"
        try:
            entries = cassette.read(path) if path.exists() or not recording else []
        except OSError as error:
            raise exceptions.OptionsError(f"interlock_replay: cannot read {path} ({error.strerror})") from None
        except cassette.CassetteError as error:
            raise exceptions.OptionsError(f"interlock_replay: {error}") from None
        self.path = path
        self.index = ReplayIndex.of(entries, IgnoredPaths(loaded.config.replay.ignored()))
        logger.info(
            "Interlock replay: %d recorded calls from %s (pacing: %s; a miss: %s)",
            len(self.index),
            path,
            "none" if ctx.options.interlock_replay_fast else "as recorded",
            "recorded" if recording else "an error",
        )

    def running(self) -> None:
        if self.index is not None and self.server is None:
            from addons.replay_server import ReplayServer  # aiohttp: only when replaying

            self.server = ReplayServer(self.index, ctx.options.interlock_replay_fast, self.describe)
            self._starting = asyncio.ensure_future(self.server.start())

    def done(self) -> asyncio.Task[None] | None:
        if self._appender is not None:
            self._appender.close()
        if self.server is None:
            return None
        return asyncio.ensure_future(self.server.stop())

    def describe(self, miss: Miss) -> str:
        message = miss.message(self.path.name if self.path is not None else "the cassette")
        logger.warning(message)
        return message

    async def _ready(self) -> ReplayServer | None:
        """The running replay server; None if it could not start (said once, and the
        proxy shuts down: a replay never falls back to live calls)."""
        if self._starting is not None:
            try:
                await self._starting
            except Exception as error:  # noqa: BLE001 - any start failure ends the replay
                if self.server is not None:
                    logger.error("Interlock replay: the replay server could not start (%s); stopping", error)
                    self.server = None
                    ctx.master.shutdown()
                return None
        return self.server

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        """Sync, so that a flow that is not replayed (no cassette, or neither an LLM call
        nor a WebSocket upgrade) costs no coroutine: mitmproxy awaits what a hook returns."""
        if self.index is None or flow.response is not None:
            return None
        state = self.calls.get(flow)
        if state is not None:
            return self._replay(flow, state)
        if flow.request.headers.get("upgrade", "").lower() == "websocket":
            return self._websocket(flow)
        return None

    async def _replay(self, flow: http.HTTPFlow, state: CallState) -> None:
        assert self.index is not None
        scrub = Scrubber(state.secrets(), state.chain.record_detectors)
        body = state.request_final
        text = None if body is not None else flow.request.get_text(strict=False)
        live = ReplayRequest(
            "http",
            state.dialect.name,
            flow.request.method,
            f"https://{state.host}{state.path}",
            scrub(body),
            scrub(text) if text else None,
        )
        found = self.index.take(live)
        if isinstance(found, Miss):
            if ctx.options.interlock_replay_missing == "record":
                self._misses.add(state.call_id)  # goes upstream as it came
                return
            flow.response = http.Response.make(
                state.dialect.no_match_status,
                json_bytes(state.dialect.no_match_error(self.describe(found))),
                {"content-type": "application/json", CALL_ID_HEADER: state.call_id},
            )
            return
        server = await self._ready()
        if server is None:  # never upstream: the proxy is shutting down
            flow.response = http.Response.make(
                503, b"Interlock replay: the replay server is not running\n", {CALL_ID_HEADER: state.call_id}
            )
            return
        self._point(flow, server, server.entry_ticket(found))

    async def _websocket(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        loaded = self.config.current
        if loaded is None:
            return
        host = request_host(request)
        match = loaded.registry.match_route(host, request.path)
        dialect = dialect_for(match.dialect) if match is not None else None
        if dialect is None or dialect.websocket is None:
            return
        from addons.replay_server import SocketReplay

        server = await self._ready()
        if server is None:  # never upstream: the proxy is shutting down
            flow.response = http.Response.make(503, b"Interlock replay: the replay server is not running\n")
            return
        secrets = secret_values(request.headers.items(multi=True), request.path)
        socket = SocketReplay(
            dialect,
            dialect.websocket,
            f"wss://{host}{request.path.split('?', 1)[0]}",
            Scrubber(secrets, loaded.chain.record_detectors),
        )
        self._point(flow, server, server.socket_ticket(socket))

    @staticmethod
    def _point(flow: http.HTTPFlow, server: ReplayServer, ticket: str) -> None:
        """Send the flow to the replay server, as map_remote would."""
        from addons.replay_server import REPLAY_HEADER

        request = flow.request
        request.scheme = "http"
        request.host = "127.0.0.1"
        request.port = server.port
        request.headers[REPLAY_HEADER] = ticket

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """The ticket is not part of the request the record keeps."""
        if self.server is not None:
            from addons.replay_server import REPLAY_HEADER

            flow.request.headers.pop(REPLAY_HEADER, None)

    def error(self, flow: http.HTTPFlow) -> None:
        self.responseheaders(flow)

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        """A miss that went upstream: appended to the cassette, and replayable at once."""
        if record.call_id not in self._misses:
            return
        self._misses.discard(record.call_id)
        if self.index is None or self.path is None:
            return
        try:
            entry = entry_from_record(record)
        except NotReplayable as why:
            logger.warning("Interlock replay: call %s not recorded in %s: %s", record.call_id, self.path, why)
            return
        if self._appender is None:
            self._appender = cassette.CassetteAppender(self.path)
        self._appender.add(entry)  # in a thread of its own: the flow never waits on the disk
        self.index.add(entry)
        logger.info("Interlock replay: call %s recorded in %s", record.call_id, self.path)
