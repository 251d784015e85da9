"""Malformed client traffic, a case of the fault suite (issue 9): a body that is not JSON
(broken JSON, a form) is forwarded as it came and recorded raw, policies or not; a JSON
body under another content type is read as the JSON it is (so policies still apply) and
keeps its content type. The provider's answer reaches the client, a concurrent stream
keeps its pace, every call is recorded, the key never reaches the database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from fault_kit import PacedStream, conclude
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from mock_provider import MockProvider

# Each case measures a concurrent stream's pacing: nothing else runs meanwhile (tests/solo.py).
pytestmark = pytest.mark.solo

URL = "https://api.openai.com/v1/chat/completions"
VALID = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
# name: (body, content type, whether it is JSON)
BODIES = {
    "invalid JSON": (
        b'{"model": "gpt-4o-mini", "messages": [ {"role": "user", "content": "hi"',
        "application/json",
        False,
    ),
    "JSON as text/plain": (VALID, "text/plain", True),
    "form body": (b"model=gpt-4o-mini&messages=hi", "application/x-www-form-urlencoded", False),
}
POLICIES = {
    "policies": [
        {"policy": "redact"},
        {"policy": "system_prompt", "text": "Be brief."},
        {"policy": "replace", "rules": [{"find": "mock", "replace": "MOCK"}]},
    ]
}
ANSWER_BOUND_S = 5.0


@pytest.mark.parametrize("kind", list(BODIES))
@pytest.mark.parametrize("config", [None, POLICIES], ids=["no-policies", "policies"])
def test_bad_input_is_forwarded_and_recorded(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    api_key: str,
    config: dict[str, object] | None,
    kind: str,
) -> None:
    sent, content_type, is_json = BODIES[kind]
    proxy = start_proxy(config=config)
    clients = make_clients(proxy)
    paced = PacedStream(clients)
    paced.start()
    client = clients.raw()
    started = time.monotonic()
    response = client.post(
        URL, content=sent, headers={"authorization": f"Bearer {api_key}", "content-type": content_type}
    )
    answered_s = time.monotonic() - started
    exchange = mock_provider.exchange(response.headers["x-mock-request-id"])
    assert exchange.headers["content-type"] == content_type
    assert response.status_code == (200 if is_json else 400)
    if is_json and config is not None:  # read as JSON: the request and response policies ran
        assert json.loads(exchange.body)["messages"][0] == {"role": "system", "content": "Be brief."}
        assert response.json()["choices"][0]["message"]["content"] == "Hello from the MOCK provider."
    else:
        assert exchange.body == sent
        assert response.content == bytes(exchange.response_body)  # the provider's answer, as it came
    if not is_json:
        assert response.json()["error"]["type"] == "invalid_request_error"  # the dialect's error shape
    # The proxy keeps serving.
    ok = client.post(URL, content=VALID, headers={"authorization": f"Bearer {api_key}"})
    assert ok.status_code == 200
    paced.finish()
    paced.assert_paced()
    assert answered_s < ANSWER_BOUND_S
    assert proxy.db_path is not None
    call = CallsDB(proxy.db_path).wait_call(response.headers["x-interlock-call-id"])
    for stage in ("request_original", "request_final"):
        if is_json:
            assert call.stages[stage]["body_json"] is not None
        else:
            assert call.stages[stage]["raw"] == sent
            assert call.stages[stage]["body_json"] is None
            assert "not JSON" in call.stages[stage]["note"]
    assert call["status"] == response.status_code
    if not is_json:
        assert call["verdict"] == "pass"
    assert proxy.addon_errors() == []
    calls = 2 + paced.calls
    conclude(
        proxy,
        calls,
        f"{kind}, {'policies' if config else 'no policies'}",
        "forwarded, answered, recorded" + ("" if is_json else " raw with a note"),
        secrets=(api_key,),
        paced=paced,
        answer_s=round(answered_s, 2),
        status=response.status_code,
    )
