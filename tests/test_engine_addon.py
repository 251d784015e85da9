"""The addon's policy hooks on bodies that arrive compressed, with mitmproxy's own test
helpers (`taddons`, flows made with `http.Request.make`): a compressed request or a
compressed stream must be policed like any other, never let through untouched."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mitmproxy import http
from mitmproxy.test import taddons, tflow
from policy_fixtures import sdk_summary, stream_violations
from wire_scenarios import SCENARIOS, openai_chat_sse

from addons.call_state import CallStates
from addons.config_watch import ConfigWatch
from addons.matcher import CallMatcher
from addons.policing import Policing
from addons.recording import Recording
from addons.terminal import FlowMarks

CHAT_URL = "https://api.openai.com/v1/chat/completions"


class Bundle:
    """The bundle's addons, each hook called on every addon in the bundle's order, as
    mitmproxy does."""

    def __init__(self) -> None:
        self.config = ConfigWatch()
        calls = CallStates()
        self.addons = [
            self.config,
            CallMatcher(self.config, calls),
            Policing(calls),
            Recording(self.config, calls),
            FlowMarks(),
        ]

    async def hook(self, name: str, flow: http.HTTPFlow) -> None:
        for addon in self.addons:
            handler = getattr(addon, name, None)
            if handler is not None and (result := handler(flow)) is not None:
                await result

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        await self.hook("requestheaders", flow)

    async def request(self, flow: http.HTTPFlow) -> None:
        await self.hook("request", flow)

    async def responseheaders(self, flow: http.HTTPFlow) -> None:
        await self.hook("responseheaders", flow)

    async def response(self, flow: http.HTTPFlow) -> None:
        await self.hook("response", flow)


@pytest.fixture
def addon(tmp_path: Path) -> Iterator[tuple[Bundle, taddons.context]]:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"policies": [{"policy": "redact"}, {"policy": "deny_tools", "deny": ["get_weather"]}]})
    )
    bundle = Bundle()
    with taddons.context(*bundle.addons) as tctx:
        tctx.configure(bundle.config, interlock_config=str(config), interlock_db=str(tmp_path / "calls.db"))
        yield bundle, tctx


def chat_flow(body: dict[str, Any], encoding: str | None) -> http.HTTPFlow:
    headers: dict[str | bytes, str | bytes] = {
        "content-type": "application/json",
        "authorization": "Bearer sk-test-addon",
    }
    if encoding:
        headers["content-encoding"] = encoding
    request = http.Request.make("POST", CHAT_URL, b"", headers)
    request.content = json.dumps(body).encode()  # encoded as the header says
    flow = tflow.tflow(req=request)
    flow.response = None
    return flow


async def test_a_compressed_request_is_policed_and_stays_compressed(addon: tuple[Bundle, Any]) -> None:
    bundle, _ = addon
    flow = chat_flow(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "mail jane@example.org"}]}, "gzip"
    )
    assert flow.request.raw_content is not None and flow.request.raw_content.startswith(b"\x1f\x8b")
    await bundle.requestheaders(flow)
    await bundle.request(flow)
    assert flow.request.headers["content-encoding"] == "gzip"
    sent = json.loads(gzip.decompress(flow.request.raw_content or b""))
    assert sent["messages"][0]["content"] == "mail [REDACTED:email]"


async def test_a_compressed_stream_is_buffered_and_policed_not_let_through(addon: tuple[Bundle, Any]) -> None:
    bundle, _ = addon
    flow = chat_flow({"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}, None)
    await bundle.requestheaders(flow)
    await bundle.request(flow)
    upstream = b"".join(openai_chat_sse(SCENARIOS["tool"], "gpt-4o-mini", include_usage=True))
    flow.response = http.Response.make(200, b"", {"content-type": "text/event-stream", "content-encoding": "gzip"})
    await bundle.responseheaders(flow)
    assert flow.response.stream is False  # not streamed through untouched
    flow.response.content = upstream  # mitmproxy buffered the body, still gzip on the wire
    await bundle.response(flow)
    assert flow.response.headers["content-encoding"] == "gzip"
    final = gzip.decompress(flow.response.raw_content or b"")
    assert stream_violations("openai-chat", final) == []
    text, tools, stop = sdk_summary("openai-chat", final)
    assert tools == [] and stop == "stop"
    assert "Interlock blocked the tool call `get_weather`" in text
    assert flow.marked == ":no_entry:"
