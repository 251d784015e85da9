"""The replay addon's `request` hook costs nothing on flows it does not replay: with no
cassette, and for a flow that is neither an LLM call nor a WebSocket upgrade while
replaying, it returns None (no coroutine); an upgrade gets one for mitmproxy to await. The replay server never hands one
WebSocket ticket to two upgrades."""

from __future__ import annotations

import inspect
from typing import Any

from mitmproxy.test import tflow

from addons.call_state import CallStates
from addons.cassette_replay import CassetteReplay
from interlock.replay_match import IgnoredPaths, ReplayIndex


def addon(replaying: bool) -> CassetteReplay:
    replay = CassetteReplay(config=None, calls=CallStates())  # type: ignore[arg-type]  # the hook reads no config here
    if replaying:
        replay.index = ReplayIndex.of([], IgnoredPaths([]))
    return replay


def test_no_coroutine_without_a_cassette() -> None:
    assert addon(replaying=False).request(tflow.tflow()) is None


def test_no_coroutine_for_a_flow_that_is_not_replayed() -> None:
    assert addon(replaying=True).request(tflow.tflow()) is None


def test_a_websocket_upgrade_is_awaited() -> None:
    flow = tflow.tflow()
    flow.request.headers["upgrade"] = "websocket"
    returned: Any = addon(replaying=True).request(flow)
    assert inspect.iscoroutine(returned)
    returned.close()


def test_a_websocket_ticket_is_never_reused_while_another_waits() -> None:
    from addons.replay_server import ReplayServer, SocketReplay

    server = ReplayServer(ReplayIndex.of([], IgnoredPaths([])), fast=True, describe_miss=str)
    sockets = [object.__new__(SocketReplay) for _ in range(3)]
    first = server.socket_ticket(sockets[0])
    second = server.socket_ticket(sockets[1])
    del server._sockets[first]  # the first upgrade arrived and took its ticket
    third = server.socket_ticket(sockets[2])
    assert len({first, second, third}) == 3
    assert server._sockets[second] is sockets[1] and server._sockets[third] is sockets[2]


async def test_a_replay_server_that_failed_to_start_answers_and_stops_the_proxy(monkeypatch: Any) -> None:
    """No live call: a flow gets a 503 of Interlock's own, and the proxy shuts down (once)."""
    import asyncio

    from mitmproxy.test import taddons

    replay = addon(replaying=True)
    replay.server = object()  # type: ignore[assignment]  # stands for the server that failed

    async def fail() -> None:
        raise OSError("address in use")

    replay._starting = asyncio.ensure_future(fail())
    flow = tflow.tflow()
    flow.request.headers["upgrade"] = "websocket"
    with taddons.context() as context:
        shutdowns: list[bool] = []
        monkeypatch.setattr(context.master, "shutdown", lambda: shutdowns.append(True))
        assert await replay._ready() is None
        assert await replay._ready() is None
        assert shutdowns == [True]
