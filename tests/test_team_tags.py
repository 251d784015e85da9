"""Team mode through the real mitmdump: who made each call, for which project.

A shared proxy in regular mode with `--proxyauth @htpasswd` tags every call with the
authenticated user (never its password, which appears nowhere in the database or the
proxy's output); the project comes from a header, removed before the call goes upstream.
A client without proxy credentials is refused before anything reaches the provider. In
reverse mode (`--mode reverse:https://api.openai.com@PORT`, for clients that take a base
URL) the real openai SDK reaches the same registry match, and the tags come from headers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx2
import openai
import pytest
from harness import MitmCA, ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from mock_provider import MockProvider

from interlock.config import ConfigError, parse_config

PASSWORDS = {"alice": "alice-PASSWORD-7f3e9a", "bob": "bob-PASSWORD-0c4d21"}
MODEL = "gpt-4o-mini"
CALL_ID = "x-interlock-call-id"
MOCK_ID = "x-mock-request-id"
PROJECT = "x-interlock-project"
USER = "x-interlock-user"


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()}" for user, pw in PASSWORDS.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def shared(start_module_proxy: ProxyLauncher, htpasswd: Path) -> ProxyProcess:
    return start_module_proxy(extra_args=["--proxyauth", f"@{htpasswd}"])


@pytest.fixture
def as_user(shared: ProxyProcess, mitm_ca: MitmCA, api_key: str) -> Iterator[dict[str, ClientFactory]]:
    """Client factories whose proxy URL carries each user's credentials."""
    factories = {
        user: ClientFactory(shared.url.replace("http://", f"http://{user}:{pw}@"), mitm_ca, api_key)
        for user, pw in PASSWORDS.items()
    }
    yield factories
    for factory in factories.values():
        factory.close()


def chat(client: openai.OpenAI, **headers: str) -> tuple[str, str]:
    """One chat call: (its call id, the mock's exchange id)."""
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hello"}], extra_headers=headers
    )
    assert raw.parse().choices[0].message.content == "Hello from the mock provider."
    return raw.headers[CALL_ID], raw.headers[MOCK_ID]


def test_each_call_is_tagged_with_its_proxy_user_and_project(
    as_user: dict[str, ClientFactory], shared: ProxyProcess, mock_provider: MockProvider
) -> None:
    assert shared.db_path is not None
    db = CallsDB(shared.db_path)
    alice_call, alice_sent = chat(as_user["alice"].openai(), **{PROJECT: "apollo", USER: "mallory"})
    bob_call, bob_sent = chat(as_user["bob"].openai())
    alice, bob = db.wait_call(alice_call), db.wait_call(bob_call)
    # The authenticated user wins over a user header, which cannot impersonate anyone.
    assert (alice["user"], alice["project"]) == ("alice", "apollo")
    assert (bob["user"], bob["project"]) == ("bob", None)
    upstream = mock_provider.exchange(alice_sent).headers
    assert PROJECT not in upstream and USER not in upstream  # stripped before going upstream
    assert "proxy-authorization" not in upstream
    assert alice.stage_headers("request_original")[PROJECT] == "apollo"  # what the client sent
    assert PROJECT not in alice.stage_headers("request_final")  # what went upstream
    assert "proxy-authorization" not in mock_provider.exchange(bob_sent).headers


def test_proxy_passwords_are_never_recorded(as_user: dict[str, ClientFactory], shared: ProxyProcess) -> None:
    assert shared.db_path is not None
    db = CallsDB(shared.db_path)
    for factory in as_user.values():
        db.wait_call(chat(factory.openai())[0])
    stored = db.file_bytes()
    output = shared.output()
    for user, password in PASSWORDS.items():
        assert password.encode() not in stored
        assert password not in output
        assert user.encode() in stored  # the name is recorded, so the search above looked at the right file


def test_a_client_without_proxy_credentials_is_refused(
    shared: ProxyProcess, mitm_ca: MitmCA, api_key: str, mock_provider: MockProvider
) -> None:
    assert shared.db_path is not None
    before_calls = len(CallsDB(shared.db_path).call_ids())
    before_upstream = len(mock_provider.exchanges)
    wrong = shared.url.replace("http://", "http://alice:not-her-password@")
    for proxy_url in (shared.url, wrong):
        factory = ClientFactory(proxy_url, mitm_ca, api_key)
        try:
            with pytest.raises(openai.APIConnectionError) as refused:
                chat(factory.openai())
            assert "407" in repr(refused.value.__cause__)
        finally:
            factory.close()
    time.sleep(0.3)  # a call that slipped through would be written within the writer's linger
    assert len(mock_provider.exchanges) == before_upstream
    assert len(CallsDB(shared.db_path).call_ids()) == before_calls


# --- reverse mode -----------------------------------------------------------------


@pytest.fixture(scope="module")
def reverse(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    """A proxy in reverse mode only: its port is the base URL's."""
    return start_module_proxy(extra_args=["--mode", "reverse:https://api.openai.com"])


def test_reverse_mode_matches_and_tags_a_base_url_client(
    reverse: ProxyProcess, api_key: str, mock_provider: MockProvider
) -> None:
    proxy = reverse
    assert proxy.db_path is not None
    client = openai.OpenAI(
        api_key=api_key,
        base_url=f"{proxy.url}/v1",
        http_client=httpx2.Client(trust_env=False, timeout=30),
        max_retries=0,
        default_headers={USER: "carol", PROJECT: "gemini-migration"},
    )
    with client:
        stream = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}], stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream.parse() if chunk.choices)
    assert text == "Hello from the mock provider."
    call = CallsDB(proxy.db_path).wait_call(stream.headers[CALL_ID])
    assert (call["provider"], call["dialect"], call["host"]) == ("openai", "openai-chat", "api.openai.com")
    assert (call["user"], call["project"]) == ("carol", "gemini-migration")
    assert call["stream"] == 1 and call["response_text"] == text
    upstream = mock_provider.exchange(stream.headers[MOCK_ID]).headers
    assert USER not in upstream and PROJECT not in upstream
    assert api_key.encode() not in CallsDB(proxy.db_path).file_bytes()


def test_tag_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="tags.user_headr"):
        parse_config({"tags": {"user_headr": "x-who"}})
    assert parse_config({"tags": {"project_header": None}}).tags.project_header is None
