"""The Codex CLI, the real one, as a test client: installed from npm, run with `codex exec`.

`install_codex()` installs the pinned `@openai/codex` into the project-local
`.cache/npm/codex-<version>/` (gitignored) with `harness_npm`. The npm package is a
node wrapper; the native binary ships in its platform optional dependency
(`@openai/codex-linux-x64` ...) under `vendor/<target triple>/bin/codex`, which is run
directly (no postinstall is needed).

`Codex.exec()` runs `codex exec PROMPT` non-interactively (the final message on stdout,
progress on stderr) with a throwaway HOME / CODEX_HOME, `CODEX_API_KEY`, HTTPS_PROXY,
the mitmproxy CA in `CODEX_CA_CERTIFICATE`, and the switches that turn off its
analytics, metrics, plugin sync and model discovery, so it talks to api.openai.com
only. Nothing else is inherited but PATH. `http=True` selects a custom Responses
provider with `supports_websockets=false` (HTTP + SSE); otherwise Codex uses its
default transport, a WebSocket. Shell commands run without approval prompts or the
sandbox: the tests judge what Interlock lets through, not Codex's sandbox.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness_npm import INSTALL_ROOT, NpmTool, install, run_agent

CODEX_VERSION = "0.171.0"
PACKAGE = "@openai/codex"
MODEL = "gpt-5.4"  # a model whose shell tool is the classic `exec_command` function
RUN_TIMEOUT_S = 120.0  # only against hangs: a run takes about 1-3 s (without CA trust Codex never exits)
_TRIPLES = {"x86_64": ("x64", "x86_64-unknown-linux-musl"), "aarch64": ("arm64", "aarch64-unknown-linux-musl")}
HTTP_PROVIDER = (
    '{name="openai-http", base_url="https://api.openai.com/v1", env_key="OPENAI_API_KEY", '
    'wire_api="responses", supports_websockets=false}'
)
QUIET = (
    "--skip-git-repo-check",
    "--dangerously-bypass-approvals-and-sandbox",
    "-c",
    "analytics.enabled=false",
    "-c",
    'otel.metrics_exporter="none"',
    "--disable",
    "plugins",
    "--disable",
    "api_key_model_discovery",
)


def _binary(directory: Path) -> Path:
    machine = platform.machine()
    if machine not in _TRIPLES:
        raise RuntimeError(f"the Codex tests know no @openai/codex binary for {platform.system()} {machine}")
    arch, triple = _TRIPLES[machine]
    vendor = directory / "node_modules" / "@openai" / f"codex-linux-{arch}" / "vendor"
    return vendor / triple / "bin" / "codex"


CODEX = NpmTool(PACKAGE, CODEX_VERSION, "codex", _binary, home_vars=("CODEX_HOME",))


def install_codex(root: Path = INSTALL_ROOT) -> Path:
    """The native `codex` binary of the pinned version, installed into `root` if need be."""
    return install(CODEX, root)


@dataclass
class CodexRun:
    """One finished `codex exec` run."""

    args: list[str]
    returncode: int
    stdout: str  # the final message
    stderr: str  # the progress log
    seconds: float

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.args)}\nexit {self.returncode} after {self.seconds:.1f} s\n"
            f"stdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-5000:]}"
        )


class Codex:
    """Runs the binary for one test: one HOME (so `exec resume` finds its sessions), one proxy."""

    def __init__(self, binary: Path, home: Path, proxy_url: str, ca_cert: Path, api_key: str, *, http: bool) -> None:
        self.binary = binary
        self.home = home
        self.proxy_url = proxy_url
        self.ca_cert = ca_cert
        self.api_key = api_key
        self.http = http
        (home / ".codex").mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SHELL": shutil.which("bash") or "/bin/bash",
            "LANG": "C.UTF-8",
            "HOME": str(self.home),
            "CODEX_HOME": str(self.home / ".codex"),
            "CODEX_API_KEY": self.api_key,
            "OPENAI_API_KEY": self.api_key,  # the custom HTTP provider's env_key
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "CODEX_CA_CERTIFICATE": str(self.ca_cert),
        }

    def options(self) -> list[str]:
        transport = ["-c", 'model_provider="openai_http"', "-c", f"model_providers.openai_http={HTTP_PROVIDER}"]
        return [*QUIET, "-m", MODEL, *(transport if self.http else [])]

    def exec(self, prompt: str, *, cwd: Path, resume: str | None = None, timeout_s: float = RUN_TIMEOUT_S) -> CodexRun:
        """`codex exec PROMPT`, or `codex exec resume SESSION PROMPT`, in `cwd`."""
        command = ["exec", *(["resume", resume] if resume else []), *self.options(), prompt]
        args = [str(self.binary), *command]
        returncode, stdout, stderr, seconds = run_agent(args, cwd=cwd, env=self.env(), timeout_s=timeout_s)
        return CodexRun(args, returncode, stdout, stderr, seconds)
