"""The addon's policy hooks on bodies that arrive compressed, with mitmproxy's own test
helpers (`taddons`, flows made with `http.Request.make`): a compressed request or a
compressed stream must be policed like any other, never let through untouched."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mitmproxy import http
from mitmproxy.test import taddons, tflow
from mock_provider import Compressor
from policy_fixtures import sdk_summary, stream_violations
from wire_scenarios import SCENARIOS, anthropic_sse, openai_chat_sse

from addons import record_builder
from addons.call_state import CallStates
from addons.config_watch import ConfigWatch
from addons.matcher import CallMatcher
from addons.policing import Policing
from addons.recording import Recording
from addons.terminal import FlowMarks
from interlock import sse
from recorder.models import CallRecord

CHAT_URL = "https://api.openai.com/v1/chat/completions"


class EndedCalls:
    """Collects what the `interlock_call_ended` hook announces."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        self.records.append(record)


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
        self.ended = EndedCalls()

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
    with taddons.context(*bundle.addons, bundle.ended) as tctx:
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


async def test_a_compressed_stream_is_decoded_and_policed_live_as_identity(addon: tuple[Bundle, Any]) -> None:
    bundle, _ = addon
    flow = chat_flow({"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}, None)
    await bundle.requestheaders(flow)
    await bundle.request(flow)
    events = openai_chat_sse(SCENARIOS["tool"], "gpt-4o-mini", include_usage=True)
    flow.response = http.Response.make(200, b"", {"content-type": "text/event-stream", "content-encoding": "gzip"})
    await bundle.responseheaders(flow)
    stream = flow.response.stream
    assert callable(stream)  # streamed, policed as it passes: never buffered, never let through
    assert "content-encoding" not in flow.response.headers  # the client gets identity
    compressor = Compressor("gzip")  # as a server flushing each event sends it
    pieces = [_bytes_of(stream(compressor.piece(event))) for event in events]
    final = b"".join(pieces) + _bytes_of(stream(compressor.end())) + _bytes_of(stream(b""))
    assert pieces[0] == events[0]  # the first event went out decoded, at once
    assert stream_violations("openai-chat", final) == []
    text, tools, stop = sdk_summary("openai-chat", final)
    assert tools == [] and stop == "stop"
    assert "Interlock blocked the tool call `get_weather`" in text


@pytest.mark.parametrize("policies", [[], [{"policy": "deny_tools", "deny": ["get_weather"]}]])
async def test_a_streamed_call_is_recorded_from_what_passed_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policies: list[dict[str, Any]]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"policies": policies}))
    bundle = Bundle()
    with taddons.context(*bundle.addons, bundle.ended) as tctx:
        tctx.configure(bundle.config, interlock_config=str(config), interlock_db=str(tmp_path / "calls.db"))
        request = {"model": "claude-sonnet-4-6", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        flow = chat_flow(request, None)
        flow.request.url = "https://api.anthropic.com/v1/messages"
        await bundle.requestheaders(flow)
        await bundle.request(flow)
        upstream = anthropic_sse(SCENARIOS["tools2"], "claude-sonnet-4-6")
        flow.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        await bundle.responseheaders(flow)
        stream = flow.response.stream
        assert callable(stream)
        sent = b"".join(_bytes_of(stream(chunk)) for chunk in [*upstream, b""])
        parsed: list[bytes] = []

        def counting_parse_all(body: bytes) -> list[sse.SSEEvent]:
            parsed.append(body)
            return sse.parse_all(body)

        monkeypatch.setattr(record_builder, "parse_all", counting_parse_all)
        await bundle.response(flow)
    assert parsed == []  # the record came from the reassemblers fed as the stream passed
    (record,) = bundle.ended.records
    original, final = record.stages[2], record.stages[3]
    assert original.raw == b"".join(upstream)
    assert final.raw == sent
    assert isinstance(original.body, dict) and isinstance(final.body, dict)
    assert [b["type"] for b in original.body["content"]] == ["text", "tool_use", "tool_use"]
    assert record.first_token_at is not None and record.usage.output_tokens
    names = [b.get("name") for b in final.body["content"] if b["type"] == "tool_use"]
    if policies:  # deny_tools removed get_weather: the final message is what the client got
        assert "get_weather" not in names and record.verdict == "blocked"
        assert "Interlock blocked the tool call `get_weather`" in json.dumps(final.body)
    else:
        assert sent == b"".join(upstream) and final.body == original.body and record.verdict == "pass"


def _bytes_of(out: Iterable[bytes] | bytes) -> bytes:
    """A stream transformer returns bytes (the tap) or pieces (a PolicyStream)."""
    return out if isinstance(out, bytes) else b"".join(out)
