"""Shared fixtures: the loopback mock provider, the mitmproxy CA, real mitmdump proxies
and clients that go through them (see `harness.py` and `harness_clients.py`)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest
from harness import MitmCA, ProxyLauncher, ProxyProcess, make_ca
from harness_clients import ClientFactory
from judge_mock import ConnectionRecorder, JudgeMock
from mock_provider import MockProvider

pytest_plugins = ["solo"]  # the `solo` marker (see solo.py)


@pytest.fixture(scope="session")
def mock_provider() -> Iterator[MockProvider]:
    with MockProvider() as mock:
        yield mock


@pytest.fixture(scope="session")
def mitm_ca(tmp_path_factory: pytest.TempPathFactory) -> MitmCA:
    return make_ca(tmp_path_factory.mktemp("mitmconf"))


def _launcher(
    tmp_path_factory: pytest.TempPathFactory, mitm_ca: MitmCA, mock_provider: MockProvider
) -> Iterator[ProxyLauncher]:
    launcher = ProxyLauncher(tmp_path_factory.mktemp("proxy"), mitm_ca, mock_provider.url)
    yield launcher
    launcher.stop_all()


@pytest.fixture
def start_proxy(
    tmp_path_factory: pytest.TempPathFactory, mitm_ca: MitmCA, mock_provider: MockProvider
) -> Iterator[ProxyLauncher]:
    """Starts mitmdump processes for one test; they are stopped when it ends."""
    yield from _launcher(tmp_path_factory, mitm_ca, mock_provider)


@pytest.fixture(scope="module")
def start_module_proxy(
    tmp_path_factory: pytest.TempPathFactory, mitm_ca: MitmCA, mock_provider: MockProvider
) -> Iterator[ProxyLauncher]:
    """Like `start_proxy`, for proxies a whole test module shares."""
    yield from _launcher(tmp_path_factory, mitm_ca, mock_provider)


@pytest.fixture
def api_key() -> str:
    """A fresh fake key per test, so a test can look for it in what was recorded."""
    return f"sk-test-SECRET-{secrets.token_hex(12)}"


@pytest.fixture
def make_clients(mitm_ca: MitmCA, api_key: str) -> Iterator[Callable[[ProxyProcess], ClientFactory]]:
    """`make_clients(proxy)` gives SDK and raw clients going through that proxy."""
    factories: list[ClientFactory] = []

    def make(proxy: ProxyProcess) -> ClientFactory:
        factory = ClientFactory(proxy.url, mitm_ca, api_key)
        factories.append(factory)
        return factory

    yield make
    for factory in factories:
        factory.close()


@pytest.fixture(scope="module")
def judge() -> Iterator[JudgeMock]:
    """A loopback judge model for a module's tool_call_judge proxies."""
    with JudgeMock() as mock:
        yield mock


@pytest.fixture(scope="module")
def trap() -> Iterator[ConnectionRecorder]:
    """A listener to point a judge proxy's HTTP(S)_PROXY variables at: it must stay unused."""
    with ConnectionRecorder() as recorder:
        yield recorder
