"""The replay addon's `request` hook costs nothing on flows it does not replay: with no
cassette, and for a flow that is neither an LLM call nor a WebSocket upgrade while
replaying, it returns None (no coroutine); an upgrade gets one for mitmproxy to await."""

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
