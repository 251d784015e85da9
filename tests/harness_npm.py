"""The coding agents' CLIs from npm, for the end-to-end tests: installed once, run with a hang guard.

`npm_install()` installs a pinned npm package into its own directory under the
project-local `.cache/npm/` (gitignored) unless a working copy of that version is
already there. npm runs with `--ignore-scripts`; a package that needs its install
script names it and it is run explicitly, so npm's script policy does not matter.
Installs go to a staging directory renamed into place, under a file lock, so an
interrupted or concurrent install never leaves a half-installed copy. Node and npm
missing is an error, not a skip.

`run_agent()` runs one agent command in its own process group and kills the group if it
outlives its timeout, so a hung agent fails its test instead of the suite. `AgentRun` is
a finished run and the JSON lines (the agents' stream-json) it printed.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import REPO

logger = logging.getLogger(__name__)

INSTALL_ROOT = REPO / ".cache" / "npm"
INSTALL_TIMEOUT_S = 600.0


def npm_install(
    package: str,
    version: str,
    *,
    directory: str,
    binary: Callable[[Path], Path],
    version_of: Callable[[Path], str | None],
    root: Path = INSTALL_ROOT,
    scripts: Sequence[str] = (),
) -> Path:
    """The binary of `package@version` installed into `root/directory`, installed if need be.

    `binary(install_dir)` is where the package's binary lies in an install directory;
    `version_of(binary)` says which version a binary is (None when it does not work);
    `scripts` are the package's own install scripts (paths inside the package) to run
    with node after npm.
    """
    target = root / directory
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if version_of(binary(target)) == version:
            return binary(target)
        npm, node = shutil.which("npm"), shutil.which("node")
        if npm is None or node is None:
            raise RuntimeError(
                f"the end-to-end tests install {package}@{version} with npm: "
                f"node ({node or 'not found'}) and npm ({npm or 'not found'}) must be on PATH"
            )
        started = time.monotonic()
        staging = root / f".staging-{directory}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        (staging / "package.json").write_text('{"private": true}\n')
        package_dir = staging / "node_modules" / package
        steps = [
            [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error", f"{package}@{version}"],
            *([node, str(package_dir / script)] for script in scripts),
        ]
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
        got = version_of(binary(staging))
        if got != version:
            raise RuntimeError(f"{package}@{version} installed into {staging}, but its binary says version {got!r}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        logger.warning("installed %s@%s in %.1f s into %s", package, version, time.monotonic() - started, target)
        return binary(target)


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
