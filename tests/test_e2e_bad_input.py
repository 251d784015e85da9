"""Malformed client traffic is forwarded as it came and recorded raw, policies or not."""

from __future__ import annotations

import httpx2
import pytest
from harness import ProxyLauncher
from harness_db import CallsDB
from mock_provider import MockProvider

BROKEN = b'{"model": "gpt-4o-mini", "messages": [ {"role": "user", "content": "hi"'
POLICIES = {
    "policies": [
        {"policy": "redact"},
        {"policy": "system_prompt", "text": "Be brief."},
        {"policy": "replace", "rules": [{"find": "mock", "replace": "MOCK"}]},
    ]
}


@pytest.mark.parametrize("config", [None, POLICIES], ids=["no-policies", "policies"])
def test_invalid_json_request_is_forwarded_as_it_came(
    start_proxy: ProxyLauncher, mock_provider: MockProvider, config: dict[str, object] | None
) -> None:
    proxy = start_proxy(config=config)
    with httpx2.Client(proxy=proxy.url, verify=start_proxy.ca.ssl_context(), trust_env=False) as client:
        response = client.post(
            "https://api.openai.com/v1/chat/completions",
            content=BROKEN,
            headers={"authorization": "Bearer sk-test-broken-json", "content-type": "application/json"},
        )
        exchange = mock_provider.exchange(response.headers["x-mock-request-id"])
        assert exchange.body == BROKEN
        assert response.status_code == 400
        assert response.content == bytes(exchange.response_body)
        # The proxy keeps serving.
        ok = client.post(
            "https://api.openai.com/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": "Bearer sk-test-broken-json"},
        )
        assert ok.status_code == 200
    assert proxy.db_path is not None
    call = CallsDB(proxy.db_path).wait_call(response.headers["x-interlock-call-id"])
    for stage in ("request_original", "request_final"):
        assert call.stages[stage]["raw"] == BROKEN
        assert call.stages[stage]["body_json"] is None
        assert "not JSON" in call.stages[stage]["note"]
    assert call["status"] == 400
    assert call["verdict"] == "pass"
    assert proxy.addon_errors() == []
