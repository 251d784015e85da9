"""Claude Code, the real CLI, as a test client: installed from npm, run non-interactively.

`install_claude_code()` installs the pinned `@anthropic-ai/claude-code` into the
project-local `.cache/npm/claude-code-<version>/` (gitignored) with `harness_npm`, and
returns its native binary. The npm package is a thin wrapper whose native binary comes
from a platform optional dependency on the npm registry; its own postinstall
(`install.cjs`, which links the binary over the `bin/claude.exe` placeholder) is run
explicitly.

`ClaudeCode.run()` runs `claude -p PROMPT --output-format stream-json --verbose` with a
throwaway HOME / CLAUDE_CONFIG_DIR / TMPDIR, the API key, HTTPS_PROXY, the mitmproxy CA
in NODE_EXTRA_CA_CERTS and the switches that turn off its telemetry, error reporting,
auto-updater and other non-essential traffic. Nothing else is inherited but PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness_npm import INSTALL_ROOT, AgentRun, NpmTool, install, run_agent

CLAUDE_CODE_VERSION = "2.1.332"
PACKAGE = "@anthropic-ai/claude-code"
RUN_TIMEOUT_S = 120.0  # only against hangs: a run takes 1-3 s
# Claude Code's own switches for quiet, offline-friendly runs.
QUIET_ENV = {
    "DISABLE_TELEMETRY": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
}


def _binary(directory: Path) -> Path:
    return directory / "node_modules" / "@anthropic-ai" / "claude-code" / "bin" / "claude.exe"


CLAUDE_CODE = NpmTool(
    PACKAGE,
    CLAUDE_CODE_VERSION,
    "claude-code",
    _binary,
    home_vars=("CLAUDE_CONFIG_DIR",),
    quiet_env=QUIET_ENV,
    postinstall="install.cjs",
)


def install_claude_code(root: Path = INSTALL_ROOT) -> Path:
    """The native `claude` binary of the pinned version, installed into `root` if need be."""
    return install(CLAUDE_CODE, root)


class ClaudeRun(AgentRun):
    """One finished `claude -p` run and its stream-json events."""

    @property
    def session_id(self) -> str:
        return str(self.result["session_id"])

    def blocks(self, role: str) -> Iterator[dict[str, Any]]:
        """The content blocks of the assistant or user messages the run printed."""
        for event in self.of_type(role):
            content = event.get("message", {}).get("content")
            if isinstance(content, list):
                yield from (block for block in content if isinstance(block, dict))

    def shown(self, event: dict[str, Any]) -> bool:
        return event.get("subtype") != "init"  # its tool list is long and the same every run


class ClaudeCode:
    """Runs the binary for one test: one HOME (so `--resume` finds its sessions), one proxy."""

    def __init__(self, binary: Path, home: Path, proxy_url: str, ca_cert: Path, api_key: str) -> None:
        self.binary = binary
        self.home = home
        self.proxy_url = proxy_url
        self.ca_cert = ca_cert
        self.api_key = api_key
        self.runs: list[ClaudeRun] = []
        (home / "tmp").mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        tmp = str(self.home / "tmp")
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SHELL": shutil.which("bash") or "/bin/bash",
            "LANG": "C.UTF-8",
            "HOME": str(self.home),
            "CLAUDE_CONFIG_DIR": str(self.home / ".claude"),
            "TMPDIR": tmp,
            "CLAUDE_CODE_TMPDIR": tmp,
            "ANTHROPIC_API_KEY": self.api_key,
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "NODE_EXTRA_CA_CERTS": str(self.ca_cert),
            **QUIET_ENV,
        }

    def run(self, prompt: str, *options: str, cwd: Path, timeout_s: float = RUN_TIMEOUT_S) -> ClaudeRun:
        """`claude -p PROMPT --output-format stream-json --verbose OPTIONS...` in `cwd`."""
        args = [str(self.binary), "-p", prompt, "--output-format", "stream-json", "--verbose", *options]
        returncode, stdout, stderr, seconds = run_agent(args, cwd=cwd, env=self.env(), timeout_s=timeout_s)
        run = ClaudeRun(args, returncode, stdout, stderr, seconds)
        self.runs.append(run)
        return run
