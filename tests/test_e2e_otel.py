"""OTLP export end to end: real calls (openai and anthropic SDKs) through the real
mitmdump to the loopback mock, their spans received by an in-process OTLP/HTTP collector
(tests/otlp_receiver.py); export off imports no OpenTelemetry module; a dead or slow
collector leaves the calls alone and the losses are counted at shutdown."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import DEFAULT_CONFIG, ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from otlp_receiver import OtlpReceiver, ReceivedSpan

PROBE = Path(__file__).with_name("otel_probe_addon.py")
NO_HANG_S = 20.0  # generous bound on the calls made while the collector is down or slow


def config(**otel: Any) -> dict[str, Any]:
    base = yaml.safe_load(DEFAULT_CONFIG.read_text()) or {}
    return {**base, "policies": [{"policy": "deny_tools", "deny": ["get_weather"]}], "otel": otel}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


def _calls(clients: ClientFactory, prompt_secret: str) -> None:
    """A streamed chat text call, a chat tool call deny_tools blocks, an Anthropic call."""
    openai = clients.openai()
    stream = openai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"Say hello. My key is {prompt_secret}"}],
        stream=True,
        stream_options={"include_usage": True},
        temperature=0.3,
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    blocked = openai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather in Paris? [[mock:tool]]"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    )
    assert not blocked.choices[0].message.tool_calls  # deny_tools took it out
    message = clients.anthropic().messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi [[mock:cache]]"}]
    )
    assert message.content


def _by_name(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    found: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def test_spans_of_real_calls_follow_the_genai_conventions(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    receiver: OtlpReceiver,
    api_key: str,
) -> None:
    prompt_secret = "sk-proj-" + secrets.token_hex(20)
    proxy = start_proxy(
        config=config(capture_content=True, service_name="interlock-test"),
        extra_args=["--set", f"interlock_otlp_endpoint={receiver.root}"],
    )
    _calls(make_clients(proxy), prompt_secret)
    proxy.stop()  # the export flushes at shutdown
    spans = receiver.wait_for_spans(3)
    assert re.search(r"Interlock OTLP export: 4 spans, 4 exported, 0 failed", proxy.output()), proxy.output()
    chat, anthropic = _by_name(spans)["chat gpt-4o-mini"], _by_name(spans)["chat claude-sonnet-4-5"]
    streamed = next(s for s in chat if s.attributes.get("gen_ai.request.stream"))
    a = streamed.attributes
    assert streamed.service_name == "interlock-test"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.request.temperature"] == 0.3
    assert a["server.address"] == "api.openai.com"
    assert a["gen_ai.response.id"].startswith("chatcmpl-") and a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert 0 <= a["gen_ai.response.time_to_first_chunk"] < (streamed.end_ns - streamed.start_ns) / 1e9 + 1e-6
    assert re.fullmatch(r"[0-9a-f]{32}", a["interlock.call_id"])
    assert a["gen_ai.conversation.id"]
    assert "gen_ai.input.messages" in a and "gen_ai.output.messages" in a
    b = anthropic[0].attributes
    assert b["gen_ai.provider.name"] == "anthropic" and b["server.address"] == "api.anthropic.com"
    assert b["gen_ai.usage.input_tokens"] == 5 + 2048 + 512 and b["gen_ai.usage.cache_read.input_tokens"] == 2048
    # The blocked tool call: a guardrail span under the call's span.
    tool_call = next(s for s in chat if not s.attributes.get("gen_ai.request.stream"))
    (guard,) = _by_name(receiver.spans)["apply_guardrail deny_tools"]
    assert guard.parent_span_id == tool_call.span_id and guard.trace_id == tool_call.trace_id
    assert guard.kind == Span.SPAN_KIND_INTERNAL
    g = guard.attributes
    assert g["gen_ai.operation.name"] == "apply_guardrail"
    assert g["gen_ai.guardrail.source"] == "tool_input" and g["gen_ai.guardrail.result.value"] == "blocked"
    assert g["gen_ai.tool.name"] == "get_weather"
    assert tool_call.attributes["interlock.verdict"] == "blocked"
    assert tool_call.status_code == Status.STATUS_CODE_UNSET
    # No secret anywhere in what the collector got: the API key, the key in the prompt.
    received = b"".join(receiver.raw)
    assert api_key.encode() not in received and prompt_secret.encode() not in received
    assert b"Say hello. My key is" in received  # the content was there, scrubbed
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= receiver.metric_names


def test_content_stays_out_unless_switched_on(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], receiver: OtlpReceiver
) -> None:
    proxy = start_proxy(config=config(endpoint=receiver.root))  # the endpoint from the config file
    _calls(make_clients(proxy), "nothing secret")
    proxy.stop()
    spans = receiver.wait_for_spans(3)
    content = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")
    assert not [key for span in spans for key in span.attributes if key in content]
    assert b"Say hello" not in b"".join(receiver.raw)


def test_export_off_imports_no_opentelemetry_module(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory]
) -> None:
    proxy = start_proxy(config=config(), extra_args=["-s", str(PROBE)])
    _calls(make_clients(proxy), "nothing secret")
    output = proxy.wait_for_output("otel-probe: after call")
    assert "otel-probe: after call: opentelemetry modules: 0" in output, output
    assert "Interlock OTLP export" not in output


@pytest.mark.parametrize("collector", ["down", "slow"])
def test_a_dead_or_slow_collector_never_slows_a_call(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], collector: str
) -> None:
    with OtlpReceiver(delay_s=5.0) as slow:
        if collector == "down":
            slow.stop()  # its port is closed now: nothing listens there
        proxy = start_proxy(
            config=config(max_queue_size=1, shutdown_timeout_s=2, metrics=False),
            extra_args=["--set", f"interlock_otlp_endpoint={slow.root}"],
        )
        clients = make_clients(proxy)
        started = time.monotonic()
        for _ in range(4):
            _calls(clients, "nothing secret")
        assert time.monotonic() - started < NO_HANG_S
        stopped = time.monotonic()
        proxy.stop()
        assert time.monotonic() - stopped < 9  # bounded flush: the harness would have to SIGKILL past 10 s
    found = re.search(
        r"Interlock OTLP export: (\d+) spans, (\d+) exported, (\d+) failed to export, (\d+) dropped", proxy.output()
    )
    assert found, proxy.output()
    ended, exported, failed, dropped = map(int, found.groups())
    assert ended == 4 * 4  # three calls and one guardrail span per round
    assert exported < ended and failed + dropped == ended - exported
