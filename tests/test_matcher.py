"""The matcher's reading of a request at `requestheaders`: the host it matches on (the
Host header's parse kept per value) and the headers it keeps of what the client sent,
redacted and searched for secrets only when the call is recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.test import tflow
from test_engine_addon import CHAT_URL, Bundle, addon  # noqa: F401 - `addon` is a fixture
from wire_scenarios import SCENARIOS, openai_chat_json

from addons import matcher
from addons.matcher import HOST_CACHE_SIZE, request_host

KEY = "sk-proj-matcher0123456789abcdef"


def _request(host_header: str | None, http2: bool = False) -> http.Request:
    request = http.Request.make("POST", "https://api.openai.com:8443/v1/chat/completions", b"{}")
    if host_header is None:
        request.headers.pop("host", None)
    else:
        request.headers["host"] = host_header
    if http2:
        request.http_version = "HTTP/2.0"
        request.authority = host_header or ""
        request.headers.pop("host", None)
    return request


@pytest.mark.parametrize(
    ("host_header", "http2", "expected"),
    [
        ("api.openai.com", False, "api.openai.com"),
        ("API.OpenAI.com:443", False, "API.OpenAI.com"),
        ("[::1]:8080", False, "::1"),
        ("not a host!", False, "not a host!"),  # mitmproxy's parse gives it back as it came
        (None, False, "api.openai.com"),  # no Host header: the request's host
        ("generativelanguage.googleapis.com", True, "generativelanguage.googleapis.com"),  # HTTP/2: :authority
    ],
)
def test_the_host_is_what_mitmproxy_makes_of_it_read_after_read(
    host_header: str | None, http2: bool, expected: str
) -> None:
    request = _request(host_header, http2)
    assert request.pretty_host == expected
    assert request_host(request) == expected
    assert request_host(_request(host_header, http2)) == expected  # from the kept parse


def test_the_kept_parses_are_bounded() -> None:
    for number in range(HOST_CACHE_SIZE + 5):
        assert request_host(_request(f"host{number}.example")) == f"host{number}.example"
        assert len(matcher._hosts) <= HOST_CACHE_SIZE


async def test_the_recorded_request_is_what_the_client_sent_its_secrets_scrubbed_everywhere(
    addon: tuple[Bundle, Any],  # noqa: F811 - the fixture
) -> None:
    """The headers are read as they were at `requestheaders`, though the matcher itself
    (accept-encoding) and later addons (map_remote, a policy) change them before the
    request goes upstream; their key, and the query string's, are scrubbed from a body
    that echoes them."""
    bundle, _ = addon
    request = http.Request.make(
        "POST",
        f"{CHAT_URL}?api_key={KEY}-query",
        json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"my key is {KEY}"}]}),
        http.Headers(content_type="application/json", authorization=f"Bearer {KEY}", accept_encoding="gzip"),
    )
    flow = tflow.tflow(req=request)
    flow.response = None
    await bundle.requestheaders(flow)
    assert flow.request.headers["accept-encoding"] == "identity"
    flow.request.headers["authorization"] = "Bearer sk-upstream-replaced-0123456789"
    flow.request.headers["x-added-later"] = "yes"
    await bundle.request(flow)
    answer = openai_chat_json(SCENARIOS["text"], "gpt-4o-mini")
    answer["choices"][0]["message"]["content"] = f"you sent {KEY} and {KEY}-query"
    flow.response = http.Response.make(200, json.dumps(answer), {"content-type": "application/json"})
    await bundle.responseheaders(flow)
    await bundle.response(flow)

    (record,) = bundle.ended.records
    stages = {stage.stage: stage for stage in record.stages}
    original = stages["request_original"].headers
    assert original is not None
    assert original["accept-encoding"] == "gzip"
    assert original["authorization"] == f"Bearer <redacted len={len(KEY)}>"
    assert "x-added-later" not in original
    final = stages["request_final"].headers
    assert final is not None and final["accept-encoding"] == "identity" and final["x-added-later"] == "yes"
    assert KEY not in record.model_dump_json()
