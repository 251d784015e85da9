"""Runs the real mitmdump, with the Interlock addon, in front of the loopback mock provider.

`make_ca()` creates a mitmproxy CA in a confdir and a bundle (certifi's roots plus that
CA) for clients. `ProxyLauncher` starts `mitmdump` subprocesses that map
the provider hosts (`MAPPED_HOSTS`) to the mock with `map_remote` and
`connection_strategy=lazy` (so no real host is ever dialled), each with its own
database, and stops them at teardown (SIGTERM, then SIGKILL) so the recorder flushes.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import yaml
from mitmproxy import certs

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
MITMDUMP = Path(sys.executable).with_name("mitmdump")
ENTRY_SCRIPT = REPO / "addons" / "bundle.py"
DEFAULT_CONFIG = REPO / "mitm_config.yaml"
MAPPED_HOSTS = (
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "aiplatform.googleapis.com",
    "us-central1-aiplatform.googleapis.com",
    "cloudcode-pa.googleapis.com",
)
START_TIMEOUT_S = 150.0  # a hang guard: start-up takes 1.5 s alone, 7 s with a judge; a judge proxy took 50-75 s on a loaded 2-core machine
STOP_TIMEOUT_S = 10.0
_READY = "Interlock ready:"
_LISTENING = re.compile(rb"proxy(?: to \S+)? listening at 127\.0\.0\.1:(\d+)")  # regular or reverse mode
# Inherited settings that would send the proxy's own traffic elsewhere or change its trust store.
_CLEARED_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class MitmCA:
    """The mitmproxy CA of a confdir and a client bundle that trusts it."""

    confdir: Path
    cert: Path  # mitmproxy-ca-cert.pem
    bundle: Path  # certifi's roots + the mitmproxy CA

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.bundle))


def make_ca(confdir: Path) -> MitmCA:
    """Create (or reuse) the CA that mitmdump started with `confdir` will sign with."""
    certs.CertStore.from_store(confdir, "mitmproxy", 2048)
    cert = confdir / "mitmproxy-ca-cert.pem"
    bundle = confdir / "ca-bundle.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n" + cert.read_bytes())
    return MitmCA(confdir=confdir, cert=cert, bundle=bundle)


def map_remote_args(upstream: str) -> list[str]:
    """`--map-remote` arguments sending the provider hosts to `upstream` (http://127.0.0.1:PORT)."""
    args: list[str] = []
    for host in MAPPED_HOSTS:
        args += ["--map-remote", f"|^https://{re.escape(host)}(:443)?|{upstream}"]
    return args


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for mitmdump: no inherited proxy or CA settings, unbuffered output."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and key not in _CLEARED_ENV
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ProxyProcess:
    """One running mitmdump."""

    def __init__(self, workdir: Path, args: list[str], env: dict[str, str], db_path: Path | None) -> None:
        self.workdir = workdir
        self.args = args
        self.db_path = db_path
        self.port = 0
        self._stdout = workdir / "mitmdump.stdout"
        self._stderr = workdir / "mitmdump.stderr"
        with self._stdout.open("wb") as out, self._stderr.open("wb") as err:
            self._process = subprocess.Popen(
                args,
                stdout=out,
                stderr=err,
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def output(self) -> str:
        """Everything mitmdump printed so far, stdout then stderr."""
        return self._stdout.read_text(errors="replace") + self._stderr.read_text(errors="replace")

    def addon_errors(self, since: int = 0) -> list[str]:
        """mitmproxy's "Addon error" lines (an addon hook raised) after output offset `since`."""
        return [line for line in self.output()[since:].splitlines() if "Addon error" in line]

    def wait_for_output(self, text: str, timeout_s: float = 10.0) -> str:
        """Wait until mitmdump has printed `text`; returns its output then."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in (output := self.output()):
                return output
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in mitmdump's output:\n{self.output()}")

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until mitmdump says where it listens and accepts a connection there and,
        running Interlock, until Interlock says it is ready: mitmdump prints where it
        listens before it checks the add-ons' start-up, which may still refuse."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"mitmdump exited with {self._process.returncode}:\n{self.output()}")
            found = _LISTENING.search(self._stdout.read_bytes())
            ready = self.db_path is None or _READY in self.output()
            if found and ready and _accepts(int(found.group(1))):
                self.port = int(found.group(1))
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mitmdump was not ready within {timeout_s:.0f} s:\n{self.output()}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a grace period; returns the exit code."""
        if self.running:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("mitmdump %s ignored SIGTERM; killing it", self.pid)
                self._process.kill()
                self._process.wait(STOP_TIMEOUT_S)
        return self._process.returncode


class ProxyLauncher:
    """Starts mitmdump processes in front of one upstream and stops them all at `stop_all()`.

    `command` runs mitmdump (default: the environment's `mitmdump`); a benchmark puts a
    tool before it (`valgrind ... mitmdump`)."""

    def __init__(self, root: Path, ca: MitmCA, upstream: str, command: Sequence[str] = (str(MITMDUMP),)) -> None:
        self.root = root
        self.ca = ca
        self.upstream = upstream
        self.command = list(command)
        self._started: list[ProxyProcess] = []

    def __call__(
        self,
        *,
        script: Path | None = ENTRY_SCRIPT,
        config: Path | Mapping[str, Any] | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        https_proxy: str | None = None,
        db: Path | None = None,
    ) -> ProxyProcess:
        """Start mitmdump and wait until it listens.

        `script=None` runs bare mitmdump (no Interlock options). `config` is a YAML
        file or a mapping written to one (default: the repo's `mitm_config.yaml`).
        `https_proxy` sets HTTPS_PROXY in mitmdump's own environment. `db` is the
        database to record to (default: `calls.db` in the proxy's work directory).
        """
        workdir = self.root / f"mitmdump{len(self._started)}"
        workdir.mkdir(parents=True)
        args = [
            *self.command,
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            "0",
            "--set",
            f"confdir={self.ca.confdir}",
            "--set",
            "connection_strategy=lazy",
            *map_remote_args(self.upstream),
        ]
        db_path = None
        if script is not None:
            db_path = db or workdir / "calls.db"
            args += ["-s", str(script), "--set", f"interlock_db={db_path}"]
            config_path = _config_file(workdir, config)
            if config_path is not None:
                args += ["--set", f"interlock_config={config_path}"]
        args += list(extra_args)
        extra_env = dict(env or {})
        if https_proxy is not None:
            extra_env.update(HTTPS_PROXY=https_proxy, https_proxy=https_proxy)
        proxy = ProxyProcess(workdir, args, child_env(extra_env), db_path)
        self._started.append(proxy)
        proxy.wait_ready()
        return proxy

    def stop_all(self) -> None:
        for proxy in self._started:
            proxy.stop()


def _config_file(workdir: Path, config: Path | Mapping[str, Any] | None) -> Path | None:
    if config is None:
        return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None
    if isinstance(config, Path):
        return config
    path = workdir / "mitm_config.yaml"
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    return path


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
