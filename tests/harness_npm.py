"""Agent CLIs from npm as test clients: a pinned version installed once, run with a hang guard.

`install(tool)` installs `tool.package@tool.version` into the gitignored
`.cache/npm/<slug>-<version>/` unless that version is already there and answers
`--version`, and returns its native binary. npm runs with `--ignore-scripts`; a package
whose postinstall is needed names it (`postinstall`, run with node), so npm's script
policy does not matter. Installs go to a staging directory renamed into place, under a
file lock, so an interrupted or concurrent install never leaves a half-installed copy.
Node and npm missing is an error, not a skip.

`run_agent()` runs one agent command in its own process group and kills the group if it
outlives its timeout, so a hung agent fails its test instead of the suite. `AgentRun` is
a finished run and the JSON lines (the agents' stream-json) it printed.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import REPO

logger = logging.getLogger(__name__)

INSTALL_ROOT = REPO / ".cache" / "npm"
INSTALL_TIMEOUT_S = 600.0
_VERSION = re.compile(r"\b\d+\.\d+\.\d+\S*")


@dataclass(frozen=True)
class NpmTool:
    """One CLI: its npm package, pinned version and where its binary lands."""

    package: str
    version: str
    slug: str  # the install directory's prefix
    binary: Callable[[Path], Path]  # the binary (or script) inside an install directory
    home_vars: tuple[str, ...] = ()  # variables pointing at a throwaway home for `--version`
    quiet_env: Mapping[str, str] = field(default_factory=dict)
    postinstall: str | None = None  # a script of the package to run with node after npm
    runner: tuple[str, ...] = ()  # what runs `binary` (("node",) for a JS entry point)

    def directory(self, root: Path) -> Path:
        return root / f"{self.slug}-{self.version}"

    def package_dir(self, directory: Path) -> Path:
        return directory / "node_modules" / self.package


def installed_version(tool: NpmTool, binary: Path) -> str | None:
    """The version `binary --version` prints, or None when it is not a working binary."""
    if not binary.exists():
        return None
    with tempfile.TemporaryDirectory(prefix=f"{tool.slug}-version-") as home:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": home,
            **dict.fromkeys(tool.home_vars, home),
            **tool.quiet_env,
        }
        try:
            done = subprocess.run(
                [*tool.runner, str(binary), "--version"],
                check=False,
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except OSError:
            return None
    found = _VERSION.search(done.stdout) if done.returncode == 0 else None
    return found.group(0) if found else None


def install(tool: NpmTool, root: Path = INSTALL_ROOT) -> Path:
    """The native binary of `tool`, installed into `root` if need be."""
    target = tool.directory(root)
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed_version(tool, tool.binary(target)) == tool.version:
            return tool.binary(target)
        npm, node = shutil.which("npm"), shutil.which("node")
        if npm is None or node is None:
            raise RuntimeError(
                f"the tests install {tool.package}@{tool.version} with npm: "
                f"node ({node or 'not found'}) and npm ({npm or 'not found'}) must be on PATH"
            )
        started = time.monotonic()
        staging = root / f".staging-{tool.slug}-{tool.version}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        (staging / "package.json").write_text('{"private": true}\n')
        spec = f"{tool.package}@{tool.version}"
        steps = [[npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error", spec]]
        if tool.postinstall is not None:
            steps.append([node, str(tool.package_dir(staging) / tool.postinstall)])
        for command in steps:
            done = subprocess.run(
                command,
                check=False,
                cwd=staging,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        got = installed_version(tool, tool.binary(staging))
        if got != tool.version:
            raise RuntimeError(f"{spec} installed into {staging}, but its binary's --version says {got!r}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        logger.warning("installed %s in %.1f s into %s", spec, time.monotonic() - started, target)
        return tool.binary(target)


def run_agent(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout_s: float
) -> tuple[int, str, str, float]:
    """Run `args` to the end: (exit code, stdout, stderr, seconds). Outliving `timeout_s`
    kills its whole process group (the tools it started too) and fails the test."""
    started = time.monotonic()
    process = subprocess.Popen(
        list(args),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(
            f"{Path(args[0]).name} did not finish within {timeout_s:.0f} s: $ {' '.join(args)}\n"
            f"{stdout[-5000:]}\n{stderr[-3000:]}"
        ) from None
    return process.returncode, stdout, stderr, time.monotonic() - started


@dataclass
class AgentRun:
    """One finished agent run and the JSON lines it printed (its stream-json events)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for line in self.stdout.splitlines():
            if not line.strip():
                continue
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"type": "unparsed", "line": line})

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("type") == kind]

    @property
    def result(self) -> dict[str, Any]:
        results = self.of_type("result")
        assert results, f"no result event\n{self.describe()}"
        return results[-1]

    def shown(self, event: dict[str, Any]) -> bool:
        """Whether `describe()` shows this event."""
        return True

    def describe(self) -> str:
        """For assertion messages: the command, exit code, stderr and the events."""
        events = [json.dumps(e)[:1500] for e in self.events if self.shown(e)]
        return (
            f"$ {' '.join(self.args)}\nexit {self.returncode} after {self.seconds:.1f} s\n"
            f"stderr: {self.stderr[-3000:]}\nevents:\n" + "\n".join(events)
        )
