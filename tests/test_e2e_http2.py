"""HTTP/2 clients (curl and Codex use it) go through the policed stream path too."""

from __future__ import annotations

import httpx2
from harness import ProxyLauncher
from harness_clients import auth_headers, llm_request
from protocol_check import check_anthropic_stream

from interlock.sse import parse_all

DENY = {"policies": [{"policy": "deny_tools", "deny": ["get_weather"]}]}


def test_a_policed_stream_over_http2(start_proxy: ProxyLauncher) -> None:
    proxy = start_proxy(config=DENY)
    body = llm_request(
        "anthropic", "claude-sonnet-4-6", [{"role": "user", "content": "weather? [[mock:tools2]]"}], stream=True
    )
    with httpx2.Client(proxy=proxy.url, verify=start_proxy.ca.ssl_context(), trust_env=False, http2=True) as client:
        response = client.post(
            "https://api.anthropic.com/v1/messages",
            json=body,
            headers={**auth_headers("anthropic", "sk-test-h2"), "accept-encoding": "identity"},
        )
    assert response.http_version == "HTTP/2"
    events = parse_all(response.content)
    assert check_anthropic_stream(events) == []
    text = response.content.decode()
    assert text.count("Interlock blocked the tool call `get_weather`") == 2
    assert '"stop_reason":"end_turn"' in text
    assert "x-interlock-call-id" in response.headers
