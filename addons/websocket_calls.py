"""Records and polices LLM calls made over a WebSocket (Codex's Responses WebSocket).

A WebSocket upgrade (`GET`) to a matched route whose dialect has a WebSocket transport
(`Dialect.websocket`) becomes a session; the config's `responses_websocket` chooses what
happens to it: `police` (the default) runs the policies, `pass` records and alters
nothing, `refuse` answers the upgrade with HTTP 426 (Codex then uses HTTP+SSE at once).
Every turn (a client frame the dialect says asks for a response) is its own call: its
call id, the four stages and a record, like an HTTP call, built by the same code.

mitmproxy's `websocket_message` hook pauses the whole connection, both directions,
until it returns, so it never waits here: a request the policies must wait for is
dropped and its final frame injected once decided; server frames go through the
dialect's stream rewriter (`interlock.engine.frames`), and what it holds (a tool call
waiting for its judge, and everything after it) is dropped and injected later, in order.
Each direction is a `Lane`: once one frame in it was injected, the frames after it are
injected too until mitmproxy has relayed it, so order is kept. A frame sent on as it
came is not touched, so an unpoliced session reaches the client frame for frame. While
a turn holds frames, the client gets a ping after each `keepalive.interval_s` of silence.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import ctx, http, websocket

from addons import ws_ping
from addons.call_state import CallState
from addons.call_tags import NO_TAGS, CallTags, take_tags
from addons.config_watch import ConfigWatch
from addons.matcher import new_call_state, request_host
from addons.policing import json_bytes
from addons.recording import Recording
from interlock.dialects import dialect_for
from interlock.dialects.base import WebSocketFrames
from interlock.engine.driver import start_eager
from interlock.engine.frames import FrameEvent, FrameStream, frame_event
from interlock.engine.policing import PolicedRequest, police_request
from interlock.engine.stream import StreamTap
from interlock.policy.chain import PolicyFailed
from interlock.providers import Match

logger = logging.getLogger(__name__)

# The longest a held turn leaves its client without a frame. TODO when merging
CLOSED_MID_TURN = "the WebSocket closed before the turn ended"


def _json(frame: bytes) -> Any:
    try:
        return json.loads(frame)
    except ValueError:
        return None


@dataclass
class Lane:
    """One direction of a WebSocket: sends frames in order, in place of the message in
    hand or injected after it."""

    flow: http.HTTPFlow
    to_client: bool
    pending: int = 0  # frames injected that mitmproxy has not relayed yet
    last_sent: float = field(default_factory=time.monotonic)

    def send(self, frames: list[bytes], message: websocket.WebSocketMessage | None = None) -> None:
        """Send `frames` in place of `message` (the one the hook is handling), or after
        everything sent so far when there is none."""
        if message is not None and self.pending == 0 and len(frames) == 1:
            if frames[0] != message.content:
                message.content = frames[0]
            self.last_sent = time.monotonic()
            return
        if message is not None:
            message.drop()
        for frame in frames:
            self.pending += 1
            ctx.master.commands.call("inject.websocket", self.flow, self.to_client, frame, True)

    def relayed(self) -> None:
        """mitmproxy relays a frame this lane injected."""
        self.pending = max(0, self.pending - 1)
        self.last_sent = time.monotonic()


@dataclass
class Turn:
    """One call on the WebSocket, from its request frame to its last server frame."""

    state: CallState
    stream: FrameStream | None = None  # set when the policies look at the response
    holding: bool = False  # upstream frames not sent on yet
    driving: asyncio.Task[None] | None = None  # awaits a policy's wait
    keepalive: asyncio.Task[None] | None = None  # pings the client while holding

    def push(self, event: FrameEvent) -> list[bytes]:
        """One server frame; the frames to send now."""
        if self.stream is None:
            assert self.state.tap is not None
            self.state.tap.take(event)
            return [event.frame]
        frames = self.stream.push(event)
        self.holding = self.stream.waiting or not frames
        return frames


@dataclass
class Session:
    """One WebSocket connection to a matched route."""

    flow: http.HTTPFlow
    match: Match
    host: str  # as the client asked, before any map_remote or replay
    frames: WebSocketFrames
    policed: bool
    upstream: Lane
    downstream: Lane
    turns: deque[Turn] = field(default_factory=deque)  # sent upstream, not ended yet, oldest first
    requesting: asyncio.Task[Any] | None = None  # a request the policies are deciding
    backlog: list[bytes] = field(default_factory=list)  # client frames behind it
    closed: bool = False
    call_ids: list[str] = field(default_factory=list)
    tags: CallTags = NO_TAGS  # of the upgrade request, every turn's


class WebSocketCalls:
    def __init__(self, config: ConfigWatch, recording: Recording) -> None:
        self.config = config
        self.recording = recording
        self.sessions: dict[http.HTTPFlow, Session] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def load(self, loader: Any) -> None:
        ws_ping.install()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        loaded = self.config.current
        request = flow.request
        # An upgrade is a GET (RFC 6455; mitmproxy offers no WebSocket over HTTP/2): an
        # LLM call's POST, and most other flows, are let go without a header look-up.
        if loaded is None or request.method != "GET" or request.headers.get("upgrade", "").lower() != "websocket":
            return
        host = request_host(request)
        match = loaded.registry.match_route(host, request.path)
        frames = dialect_for(match.dialect).websocket if match is not None else None
        if match is None or frames is None:
            return
        mode = loaded.config.responses_websocket
        if mode == "refuse":
            notice = "Interlock refuses this WebSocket (responses_websocket: refuse): use HTTP."
            body = dialect_for(match.dialect).blocked_request(notice)
            flow.response = http.Response.make(426, json_bytes(body), {"content-type": "application/json"})
            return
        self.sessions[flow] = Session(
            flow,
            match,
            host,
            frames,
            mode == "police",
            Lane(flow, to_client=False),
            Lane(flow, to_client=True),
            tags=take_tags(flow, loaded.config.tags),
        )
        flow.comment = "interlock websocket"

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        session = self.sessions.get(flow)
        if session is None or flow.websocket is None:
            return
        message = flow.websocket.messages[-1]
        lane = session.upstream if message.from_client else session.downstream
        if message.injected:
            lane.relayed()
        elif message.type != websocket.Opcode.TEXT:
            lane.send([message.content], message)
        elif message.from_client:
            self._from_client(session, message.content, message)
        else:
            self._from_server(session, message)

    # -- requests ----------------------------------------------------------------------

    def _from_client(self, session: Session, frame: bytes, message: websocket.WebSocketMessage | None) -> None:
        if session.requesting is not None:  # behind a request still being decided
            if message is not None:
                message.drop()
            session.backlog.append(frame)
            return
        payload = _json(frame)
        loaded = self.config.current
        if loaded is None or not isinstance(payload, dict) or not session.frames.starts_turn(payload):
            session.upstream.send([frame], message)
            return
        flow = session.flow
        state = new_call_state(session.match, flow.request, loaded, time.time(), session.host)
        state.tags = session.tags
        state.request_original = state.request_final = payload
        state.model = state.dialect.request_model(payload)
        state.stream_requested = True
        state.tap = StreamTap(state.dialect.reassembler())
        session.call_ids.append(state.call_id)
        flow.comment = f"interlock websocket {' '.join(session.call_ids)}"
        turn = Turn(state)
        if not session.policed:
            session.turns.append(turn)
            session.upstream.send([frame], message)
            return
        state.policy = self.recording.calls.policy_context(state, payload, flow.request.headers)
        task = start_eager(self._police_request(state, payload))
        if task.done():
            self._requested(session, turn, frame, task, message)
            return
        if message is not None:
            message.drop()
        session.requesting = task
        task.add_done_callback(lambda done: self._requested_later(session, turn, frame, done))

    async def _police_request(self, state: CallState, payload: dict[str, Any]) -> PolicedRequest:
        """The turn's request through the chain, as an HTTP call's (`police_request`);
        Interlock's own failure blocks it: a turn is never sent undecided."""
        assert state.policy is not None
        try:
            return await police_request(state.dialect, state.chain, state.policy, payload)
        except Exception as error:
            logger.exception("Interlock could not police call %s", state.call_id)
            failed = PolicyFailed("interlock", f"internal error: {type(error).__name__}")
            state.policy.end_message(failed.policy, failed.reason)
            return PolicedRequest(payload, failed)

    def _requested_later(self, session: Session, turn: Turn, frame: bytes, task: asyncio.Task[Any]) -> None:
        session.requesting = None
        if session.closed:
            self._record(session, turn, CLOSED_MID_TURN)
            return
        self._requested(session, turn, frame, task, None)
        backlog, session.backlog = session.backlog, []
        for waiting in backlog:
            self._from_client(session, waiting, None)

    def _requested(
        self,
        session: Session,
        turn: Turn,
        frame: bytes,
        task: asyncio.Task[Any],
        message: websocket.WebSocketMessage | None,
    ) -> None:
        """The request's policies decided: the final frame goes upstream, or the turn
        is answered with the dialect's error frame and nothing goes upstream."""
        state = turn.state
        assert state.policy is not None and state.tap is not None
        policed: PolicedRequest = task.result()
        if policed.blocked is not None or policed.refused is not None:
            answer = json_bytes(self._refusal_frame(session, state, policed))
            if message is not None:
                message.drop()
            session.downstream.send([answer])
            state.tap.take(frame_event(answer))
            self._record(session, turn, None)
            return
        final = policed.final
        if final is not state.request_original:
            state.request_final = final
            frame = json_bytes(final)
        if state.chain.touches_responses:
            rewriter = state.dialect.stream_rewriter(state.chain, state.policy)
            turn.stream = state.policy_stream = FrameStream(rewriter, state.tap, state.dialect.reassembler())
        session.turns.append(turn)
        session.upstream.send([frame], message)

    @staticmethod
    def _refusal_frame(session: Session, state: CallState, policed: PolicedRequest) -> dict[str, Any]:
        """The error frame for a turn a policy blocked or refused."""
        if policed.refused is not None:
            refused = policed.refused
            return session.frames.error_frame(
                refused.status, state.dialect.limit_error(refused.message, refused.retry_soon)
            )
        assert policed.blocked is not None
        return session.frames.blocked_frame(state.dialect.blocked_status, policed.blocked.notice)

    # -- responses ---------------------------------------------------------------------

    def _from_server(self, session: Session, message: websocket.WebSocketMessage) -> None:
        if not session.turns:  # between turns (or a frame no turn asked for)
            session.downstream.send([message.content], message)
            return
        turn = session.turns[0]
        event = frame_event(message.content)
        session.downstream.send(turn.push(event), message)
        payload = event.json()  # parsed once, by the reassembler
        if isinstance(payload, dict) and session.frames.ends_turn(payload):
            session.turns.popleft()
            if turn.stream is not None:
                session.downstream.send(turn.stream.end())
                turn.holding = turn.stream.waiting
        self._follow(session, turn)

    def _follow(self, session: Session, turn: Turn) -> None:
        """After a frame: drive a policy's wait, keep a holding client alive, or record
        a turn that is over."""
        stream = turn.stream
        if stream is not None and stream.waiting and turn.driving is None:
            turn.driving = self._spawn(self._drive(session, turn))
        if turn.holding and turn.keepalive is None:
            turn.keepalive = self._spawn(self._keepalive(session, turn))
        if (stream is None or (stream.ended and not stream.waiting)) and turn not in session.turns:
            self._record(session, turn, None)

    async def _drive(self, session: Session, turn: Turn) -> None:
        """Await what a policy waits for and send what it releases (injected, after
        what was sent before)."""
        stream = turn.stream
        assert stream is not None
        while stream.waiting and not session.closed:
            await stream.wait()
            frames = stream.resume()
            session.downstream.send(frames)
            turn.holding = stream.waiting or (turn.holding and not frames)
        turn.driving = None
        if not session.closed:
            self._follow(session, turn)

    async def _keepalive(self, session: Session, turn: Turn) -> None:
        """Ping the client while the turn holds frames, after each keepalive interval of silence."""
        while turn.holding and not session.closed:
            due = session.downstream.last_sent + turn.state.keepalive_s - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
            elif turn.holding:
                self._ping(session)
        turn.keepalive = None

    def _ping(self, session: Session) -> None:
        ws_ping.send_ping(session.flow)
        session.downstream.last_sent = time.monotonic()

    # -- ends --------------------------------------------------------------------------

    async def websocket_end(self, flow: http.HTTPFlow) -> None:
        """The connection closed: turns still open are ended for their policies (sending
        nothing) and recorded with the reason."""
        session = self.sessions.pop(flow, None)
        if session is None:
            return
        session.closed = True
        while session.turns:
            turn = session.turns.popleft()
            if turn.driving is not None:
                turn.driving.cancel()  # `abandon` awaits the policies from here
            if turn.stream is not None:
                await turn.stream.abandon()
            self._record(session, turn, CLOSED_MID_TURN)

    def _record(self, session: Session, turn: Turn, error: str | None) -> None:
        turn.holding = False
        self._spawn(self.recording.record(turn.state, session.flow, error))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        session = self.sessions.get(flow)
        if session is not None and flow.response is not None and flow.response.status_code != 101:
            del self.sessions[flow]  # the upgrade was refused upstream: an HTTP answer, not a session

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:  # the upgrade failed
            self.sessions.pop(flow, None)

    def done(self) -> None:
        for task in self._tasks:
            task.cancel()
