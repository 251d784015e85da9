"""A key in the query string (`?key=AIza...`, as Gemini clients send it) never shows in
what mitmdump prints or logs, for matched and unmatched flows, while upstream still
gets it: the real mitmdump, its default flow line on a wide terminal, and its most
verbose output (flow_detail 3, debug log, proxy_debug)."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx2
import pytest
from harness import ENTRY_SCRIPT, ProxyLauncher, ProxyProcess
from mock_provider import MockProvider

WIDE = {"COLUMNS": "1000", "LINES": "50"}  # the dumper shows the whole URL
VERBOSE = ["--set", "flow_detail=3", "--set", "termlog_verbosity=debug", "--set", "proxy_debug=true"]

# The bundle plus the redaction addon, whether or not the bundle has it already.
ENTRY = f"""
import importlib.util

from addons.output_redaction import OutputRedaction

spec = importlib.util.spec_from_file_location("interlock_bundle", {str(ENTRY_SCRIPT)!r})
bundle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bundle)
addons = [*bundle.addons]
if not any(isinstance(addon, OutputRedaction) for addon in addons):
    addons.append(OutputRedaction())
"""


@pytest.fixture
def key() -> str:
    return "AIzaSy" + secrets.token_urlsafe(26)


def send(proxy: ProxyProcess, verify: object, key: str) -> tuple[httpx2.Response, httpx2.Response]:
    """A matched call and an unmatched request, both with the key in the query."""
    with httpx2.Client(proxy=proxy.url, verify=verify, trust_env=False) as client:  # type: ignore[arg-type]
        matched = client.post(
            f"https://api.openai.com/v1/chat/completions?alt=sse&key={key}",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": "Bearer sk-test-query-key"},
        )
        unmatched = client.get(f"https://api.openai.com/v1/files/f1?key={key}&api_key={key}")
    return matched, unmatched


def leaks(output: str, key: str) -> bool:
    """The key, or a piece of it long enough to matter (a URL cut at the terminal's width)."""
    secret_part = key[6:]
    return any(secret_part[i : i + 10] in output for i in range(len(secret_part) - 9))


@pytest.mark.parametrize("extra", [[], VERBOSE], ids=["flow-line", "verbose"])
def test_query_key_never_reaches_mitmdumps_output(
    start_proxy: ProxyLauncher, mock_provider: MockProvider, key: str, tmp_path: Path, extra: list[str]
) -> None:
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    proxy = start_proxy(script=entry, extra_args=extra, env=WIDE)
    matched, unmatched = send(proxy, start_proxy.ca.ssl_context(), key)
    assert matched.status_code == 200 and "x-interlock-call-id" in matched.headers
    assert unmatched.status_code == 404 and "x-interlock-call-id" not in unmatched.headers
    # What goes upstream is what the client sent.
    assert mock_provider.exchange(matched.headers["x-mock-request-id"]).path.endswith(f"&key={key}")
    assert mock_provider.exchange(unmatched.headers["x-mock-request-id"]).path == (
        f"/v1/files/f1?key={key}&api_key={key}"
    )
    proxy.stop()
    output = proxy.output()
    assert not leaks(output, key), output
    # The flow lines are still there, their URLs redacted.
    assert "/v1/chat/completions?alt=sse&key=<redacted>" in output
    assert "/v1/files/f1?key=<redacted>&api_key=<redacted>" in output
    if extra:  # flow_detail 3 shows a request's query parameters one per line
        assert "key: <redacted>" in output and "api_key: <redacted>" in output
    assert "1 calls written, 0 dropped" in output  # the call was recorded before the proxy stopped
    assert proxy.addon_errors() == []


def test_bare_mitmdump_shows_the_key(start_proxy: ProxyLauncher, key: str) -> None:
    """What the test guards against: without the addon, the flow line carries the key."""
    proxy = start_proxy(script=None, env=WIDE)
    send(proxy, start_proxy.ca.ssl_context(), key)
    proxy.stop()
    assert key in proxy.output()
