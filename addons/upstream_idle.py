"""Gives up on a provider that sends nothing for `upstream.idle_timeout_s` seconds.

A matched call's timer starts once its request is on its way (after the `request` hooks)
and measures the silence since upstream's latest byte: the response headers, each
streamed chunk (`StreamTap.last_byte_at`) or, for a buffered body, its growth seen at the
previous check. Time a policy spends deciding mid-stream is not upstream's silence. When
the silence reaches the timeout, `addons.upstream_giveup` ends the call: a
`timeout_status` (504) answer with the dialect's error body before any byte reached the
client, the dialect's stream error event after. The record's `error` says
"upstream idle for N s". One loop timer per call, re-armed only when it fires: nothing
runs per chunk but the tap's timestamp. Non-LLM flows are never watched.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import ctx, http

from addons import upstream_giveup
from addons.call_state import CALL_ID_HEADER, CallState, CallStates
from addons.config_watch import ConfigWatch


@dataclass(eq=False)
class Watch:
    """One call's idle timer; also the `Verdict` its stream asks when the timer fires."""

    flow: http.HTTPFlow
    state: CallState
    timeout_s: float
    armed_at: float = field(default_factory=time.time)
    progress_at: float = 0.0  # when a buffered body was last seen to grow
    body_bytes: int = 0
    timer: asyncio.TimerHandle | None = None

    @property
    def reason(self) -> str:
        return f"upstream idle for {self.timeout_s:g} s"

    def last_activity(self) -> float:
        tap = self.state.tap
        response = self.flow.response
        return max(
            self.armed_at,
            self.progress_at,
            (response.timestamp_start or 0.0) if response is not None else 0.0,
            (tap.last_byte_at or 0.0) if tap is not None else 0.0,
        )

    def arm(self) -> None:
        delay = self.last_activity() + self.timeout_s - time.time()
        self.timer = asyncio.get_running_loop().call_later(max(delay, 0.0), self._check)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check(self) -> None:
        self.timer = None
        response = self.flow.response
        if not self.flow.live or (response is not None and response.timestamp_end is not None):
            return  # the call ended meanwhile (upstream finished; its hooks are running)
        policy = self.state.policy_stream
        if policy is not None and policy.waiting:
            self.progress_at = time.time()  # a policy is deciding: upstream's bytes wait in mitmproxy
        if time.time() - self.last_activity() < self.timeout_s:
            self.arm()
            return
        try:
            ctx.master.addons.get("proxyserver").inject_event(upstream_giveup.GiveUp(self.flow, self))
        except ValueError:
            return  # the client's connection is gone: mitmproxy ends the flow itself

    # -- the verdict, asked from inside the stream (addons.upstream_giveup) ------------------

    def progressed(self, body_bytes: int) -> bool:
        if body_bytes == self.body_bytes:
            return False
        self.body_bytes = body_bytes
        self.progress_at = time.time()
        self.arm()
        return True

    def _message(self) -> str:
        return f"Interlock: the provider sent nothing for {self.timeout_s:g} s; the call was abandoned."

    def response(self) -> http.Response:
        self.state.upstream_error = self.reason
        dialect = self.state.dialect
        body = json.dumps(dialect.timeout_error(self._message()), separators=(",", ":")).encode()
        return http.Response.make(
            dialect.timeout_status,
            body,
            {"content-type": "application/json", CALL_ID_HEADER: self.state.call_id},
        )

    def stream_error(self) -> bytes:
        self.state.upstream_error = self.reason
        self.state.stream_tail = self.state.dialect.stream_error(self._message())
        return self.state.stream_tail


class UpstreamIdle:
    def __init__(self, config: ConfigWatch, calls: CallStates) -> None:
        self.config = config
        self.calls = calls
        self.available = False
        self._watches: weakref.WeakKeyDictionary[http.HTTPFlow, Watch] = weakref.WeakKeyDictionary()

    def load(self, loader: Any) -> None:
        self.available = upstream_giveup.install()

    def request(self, flow: http.HTTPFlow) -> None:
        state = self.calls.get(flow)
        loaded = self.config.current
        if state is None or loaded is None or flow.response is not None or not self.available:
            return  # not a call, or answered without upstream (a blocked request, a replay)
        watch = Watch(flow, state, loaded.config.upstream.idle_timeout_s)
        self._watches[flow] = watch
        watch.arm()

    def response(self, flow: http.HTTPFlow) -> None:
        self._disarm(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._disarm(flow)

    def _disarm(self, flow: http.HTTPFlow) -> None:
        watch = self._watches.pop(flow, None)
        if watch is not None:
            watch.disarm()
