"""The `interlock_replay` pytest fixture: recorded LLM answers, replayed through Interlock,
for the clients under test in any language (registered as the `interlock` pytest11 plugin).

    def test_summary(interlock_replay, monkeypatch):
        proxy = interlock_replay("cassettes/summary.jsonl")  # relative to this test file
        for name, value in proxy.env.items():
            monkeypatch.setenv(name, value)
        assert summarise("...") == "..."  # its openai client goes through the proxy

Each call starts `mitmdump` with the Interlock bundle on a free loopback port, answering the
matched LLM calls from the cassette (`--set interlock_replay=...`; docs/pytest-plugin.md),
and stops it when the test ends. `env` holds HTTPS_PROXY and the CA variables for Python,
Node, curl and Codex (`interlock.trust`). pytest loads this module in every run where
Interlock is installed: it imports nothing beyond the standard library until a test asks
for the fixture.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pytest

BUNDLE = Path(__file__).resolve().parent.parent / "addons" / "bundle.py"
START_TIMEOUT_S = 120.0  # a hang guard: start-up takes about 2 s, a judge's litellm import more on a loaded machine
STOP_TIMEOUT_S = 10.0
_LISTENING = re.compile(r"proxy listening at 127\.0\.0\.1:(\d+)")
# Logged by the bundle's `running` hook: mitmdump prints where it listens before it checks
# the start-up errors (a bad option or config) and exits, but gets to `running` only without them.
_READY = "Interlock ready:"
# Inherited settings that would send the proxy's own traffic elsewhere or change its trust store.
_CLEARED_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
Missing = Literal["error", "record"]
Config = str | Path | Mapping[str, Any] | None


class ReplayProxyError(RuntimeError):
    """The replaying proxy did not start (the message holds its output)."""


class Mitmdump:
    """One mitmdump process, its output kept in files of its work directory."""

    def __init__(self, workdir: Path, args: list[str], env: dict[str, str]) -> None:
        self._stdout = workdir / "mitmdump.stdout"
        self._stderr = workdir / "mitmdump.stderr"
        with self._stdout.open("wb") as out, self._stderr.open("wb") as err:
            self._process = subprocess.Popen(
                args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=workdir
            )

    def output(self) -> str:
        """Everything mitmdump printed so far, stdout then stderr."""
        return self._stdout.read_text(errors="replace") + self._stderr.read_text(errors="replace")

    def wait_port(self, timeout_s: float) -> int:
        """The port, once mitmdump listens there with the bundle running."""
        deadline = time.monotonic() + timeout_s
        while True:
            output = self._stdout.read_text(errors="replace")
            found = _LISTENING.search(output)
            if self._process.poll() is not None:
                raise ReplayProxyError(f"mitmdump exited with {self._process.returncode}:\n{self.output()}")
            if found and _READY in output:
                return int(found.group(1))
            if time.monotonic() > deadline:
                raise ReplayProxyError(f"mitmdump was not ready within {timeout_s:g} s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> int | None:
        """SIGTERM (the recorder flushes), then a kill after a grace period; the exit code."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(STOP_TIMEOUT_S)
        return self._process.returncode


@dataclass(frozen=True)
class ReplayProxy:
    """A running proxy replaying `cassette`: its `url`, the `env` for clients, its CA
    (`ca_cert`, and `ca_bundle`: certifi's roots plus the CA), `db` (the calls it recorded)."""

    url: str
    env: dict[str, str]
    ca_cert: Path
    ca_bundle: Path
    db: Path
    cassette: Path
    process: Mitmdump

    def output(self) -> str:
        return self.process.output()

    def stop(self) -> int | None:
        return self.process.stop()


def mitmdump() -> str:
    """The `mitmdump` installed beside this Python, else the first on PATH."""
    found = shutil.which("mitmdump", path=str(Path(sys.executable).parent)) or shutil.which("mitmdump")
    if found is None:
        raise ReplayProxyError("no mitmdump beside this Python or on PATH: install Interlock in this environment")
    return found


def child_env() -> dict[str, str]:
    """mitmdump's environment: this one without proxy or CA settings, output unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k not in _CLEARED_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def config_file(workdir: Path, config: Config) -> Path:
    """The configuration to start with: a file as given, or a mapping (None: the defaults,
    no policies) written to one as JSON, which is YAML."""
    if config is None or isinstance(config, Mapping):
        path = workdir / "interlock.yaml"
        path.write_text(json.dumps(dict(config or {})), encoding="utf-8")
        return path
    return Path(config)


def start(
    cassette: Path,
    *,
    workdir: Path,
    confdir: Path,
    fast: bool = False,
    missing: Missing = "error",
    config: Config = None,
    timeout_s: float = START_TIMEOUT_S,
) -> ReplayProxy:
    """Start a proxy replaying `cassette` and wait until it listens."""
    if missing not in ("error", "record"):
        raise ValueError(f"missing={missing!r}: 'error' or 'record'")
    if missing == "error" and not cassette.is_file():
        raise FileNotFoundError(f"no cassette at {cassette}")
    if not BUNDLE.is_file():
        raise ReplayProxyError(f"no Interlock bundle at {BUNDLE}")
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "calls.db"
    settings = {
        "confdir": confdir,
        "connection_strategy": "lazy",  # no upstream connection before a request needs one
        "interlock_config": config_file(workdir, config),
        "interlock_db": db,
        "interlock_replay": cassette,
        "interlock_replay_fast": "true" if fast else "false",
        "interlock_replay_missing": missing,
    }
    args = [mitmdump(), "--listen-host", "127.0.0.1", "--listen-port", "0", "-s", str(BUNDLE)]
    for name, value in settings.items():
        args += ["--set", f"{name}={value}"]
    process = Mitmdump(workdir, args, child_env())
    try:
        port = process.wait_port(timeout_s)
    except BaseException:
        process.stop()
        raise
    from interlock.trust import environment, write_bundle

    url = f"http://127.0.0.1:{port}"
    ca_cert, ca_bundle = write_bundle(confdir)  # mitmdump made the CA before it listened
    return ReplayProxy(url, environment(ca_cert, ca_bundle, url), ca_cert, ca_bundle, db, cassette, process)


class StartReplay(Protocol):
    """The `interlock_replay` fixture's type, for annotating a test's parameter."""

    def __call__(
        self, cassette: str | Path, fast: bool = False, missing: Missing = "error", config: Config = None
    ) -> ReplayProxy: ...


@pytest.fixture(scope="session")
def interlock_replay_confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mitmproxy confdir (and CA) the session's replaying proxies share."""
    return tmp_path_factory.mktemp("interlock-ca")


@pytest.fixture
def interlock_replay(
    request: pytest.FixtureRequest, tmp_path: Path, interlock_replay_confdir: Path
) -> Iterator[StartReplay]:
    """`interlock_replay(cassette, fast=False, missing="error", config=None)` starts a
    proxy replaying `cassette` (relative to the test file's directory) and returns it
    running; every proxy it started is stopped when the test ends."""
    started: list[ReplayProxy] = []
    here = Path(request.path).parent

    def replay(
        cassette: str | Path, fast: bool = False, missing: Missing = "error", config: Config = None
    ) -> ReplayProxy:
        path = here / cassette  # an absolute path stays as it is
        proxy = start(
            path,
            workdir=tmp_path / f"interlock-replay{len(started)}",
            confdir=interlock_replay_confdir,
            fast=fast,
            missing=missing,
            config=here / config if isinstance(config, str | Path) else config,
        )
        started.append(proxy)
        return proxy

    yield replay
    for proxy in started:
        proxy.stop()
