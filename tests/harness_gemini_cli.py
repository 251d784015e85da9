"""Gemini CLI, the real agent, as a test client: installed from npm, run non-interactively.

`install_gemini_cli()` installs the pinned `@google/gemini-cli` into the project-local
`.cache/npm/gemini-cli-<version>/` (`harness_npm`) unless that version is already
there, and returns its bundled entry point (`bundle/gemini.js`, run with node; the
package needs no install script).

`GeminiCli.run()` runs `gemini -p PROMPT --output-format stream-json --skip-trust` in a
working directory, with a throwaway HOME whose `~/.gemini/settings.json` turns off usage
statistics (its telemetry posts to play.googleapis.com), telemetry and the update check;
the key in GEMINI_API_KEY (sent as `x-goog-api-key` to generativelanguage.googleapis.com);
HTTPS_PROXY and the mitmproxy CA in NODE_EXTRA_CA_CERTS; and GEMINI_CLI_NO_RELAUNCH,
which keeps it from starting itself a second time in a child node with a larger heap
(that would double its start-up, about 4 s here). Nothing else is inherited but PATH.
`--yolo` (auto-approve every tool) is how a non-interactive run gets its shell tool,
`run_shell_command`, offered to the model at all.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from harness_npm import INSTALL_ROOT, AgentRun, NpmTool, install, run_agent

GEMINI_CLI_VERSION = "0.61.0"
PACKAGE = "@google/gemini-cli"
RUN_TIMEOUT_S = 120.0  # only against hangs: a run takes 5-10 s on this machine
YOLO = "--yolo"
SETTINGS = {
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
}
QUIET_ENV = {"GEMINI_CLI_NO_RELAUNCH": "true", "NO_COLOR": "1"}


def _entry(directory: Path) -> Path:
    return directory / "node_modules" / "@google" / "gemini-cli" / "bundle" / "gemini.js"


GEMINI_CLI = NpmTool(PACKAGE, GEMINI_CLI_VERSION, "gemini-cli", _entry, quiet_env=QUIET_ENV, runner=("node",))


def install_gemini_cli(root: Path = INSTALL_ROOT) -> Path:
    """Gemini CLI's `gemini.js` of the pinned version, installed into `root` if need be."""
    return install(GEMINI_CLI, root)


class GeminiRun(AgentRun):
    """One finished `gemini -p` run and its stream-json events (`init`, `message`,
    `tool_use`, `tool_result`, `error`, `result`)."""

    @property
    def session_id(self) -> str:
        [init] = self.of_type("init")
        return str(init["session_id"])

    def text(self) -> str:
        """What the model said to the user, the assistant messages' deltas joined."""
        return "".join(e["content"] for e in self.of_type("message") if e.get("role") == "assistant")


class GeminiCli:
    """Runs Gemini CLI for one test: one HOME, one proxy, one key."""

    def __init__(self, entry: Path, home: Path, proxy_url: str, ca_cert: Path, api_key: str) -> None:
        self.entry = entry
        self.home = home
        self.proxy_url = proxy_url
        self.ca_cert = ca_cert
        self.api_key = api_key
        self.runs: list[GeminiRun] = []
        (home / ".gemini").mkdir(parents=True, exist_ok=True)
        (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS, indent=2) + "\n")
        (home / "tmp").mkdir(exist_ok=True)

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SHELL": shutil.which("bash") or "/bin/bash",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "HOME": str(self.home),
            "TMPDIR": str(self.home / "tmp"),
            "GEMINI_API_KEY": self.api_key,
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "NODE_EXTRA_CA_CERTS": str(self.ca_cert),
            **QUIET_ENV,
        }

    def run(self, prompt: str, *options: str, cwd: Path, timeout_s: float = RUN_TIMEOUT_S) -> GeminiRun:
        """`gemini -p PROMPT --output-format stream-json --skip-trust OPTIONS...` in `cwd`."""
        args = [
            shutil.which("node") or "node",
            str(self.entry),
            "-p",
            prompt,
            "--output-format",
            "stream-json",
            "--skip-trust",
            *options,
        ]
        returncode, stdout, stderr, seconds = run_agent(args, cwd=cwd, env=self.env(), timeout_s=timeout_s)
        run = GeminiRun(args, returncode, stdout, stderr, seconds)
        self.runs.append(run)
        return run
