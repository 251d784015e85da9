"""Database bytes per call for Claude Code traffic: the real CLI, a session of tool calls.

`uv run python -m benchmarks.bench_storage [--steps 8]`: Claude Code (installed from npm
into `.cache/npm`, as the tests do) runs one prompt against the scripted loopback model
(`tests/agent_mock.py`) through Interlock with the default policies: the model asks for
`--steps` Bash commands (each printing a few KB, as reading files does), then answers.
Reported: the calls recorded, the database file's bytes per call after `vacuum`, and
the stage bytes stored against what storing every stage in full would take.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from agent_mock import AgentMock, Reply, bash
from harness import ProxyLauncher, make_ca
from harness_claude import ClaudeCode, install_claude_code

API_KEY = "sk-ant-api03-bench-storage-" + "0" * 16
STEPS = 8


def measure(steps: int) -> dict[str, float]:
    binary = install_claude_code()
    with tempfile.TemporaryDirectory() as tmp, AgentMock(API_KEY) as mock:
        root = Path(tmp)
        ca = make_ca(root / "confdir")
        launcher = ProxyLauncher(root, ca, mock.url)
        try:
            proxy = launcher()
            work = root / "work"
            work.mkdir()
            for n in range(steps):
                (work / f"file{n}.txt").write_text(f"line {n} of a source file, as an agent reads it\n" * 60)
            replies = [Reply(f"Reading file {n}.", (bash(f"cat file{n}.txt"),)) for n in range(steps)]
            marker = mock.script([*replies, Reply("Done: {results}")])
            claude = ClaudeCode(binary, root / "home", proxy.url, ca.cert, API_KEY)
            run = claude.run(f"{marker} read the files", "--allowedTools", "Bash", cwd=work)
            assert run.returncode == 0, run.stderr
            proxy.stop()  # the recorder drains
            assert proxy.db_path is not None
            with sqlite3.connect(proxy.db_path) as db:
                calls = db.execute("select count(*) from calls").fetchone()[0]
                stored = db.execute(
                    "select sum(length(body_json)) + sum(coalesce(length(raw), 0)) from stage_rows"
                ).fetchone()[0]
                whole = db.execute(
                    "select sum(length(body_json)) + sum(coalesce(length(raw), 0)) from stages"
                ).fetchone()[0]
                db.execute("vacuum")
            size = proxy.db_path.stat().st_size
        finally:
            launcher.stop_all()
    return {"calls": calls, "bytes_per_call": size / calls, "stored": stored, "whole": whole}


def report(steps: int = STEPS) -> list[str]:
    figures = measure(steps)
    return [
        "## Storage",
        "",
        (
            f"Claude Code {STEPS_NOTE.format(steps=steps)}: {figures['calls']:.0f} calls recorded, "
            f"**{figures['bytes_per_call'] / 1024:.0f} KB of database per call** (after `vacuum`). Stage bodies and "
            f"bytes stored: {figures['stored'] / 1024:.0f} KB, against {figures['whole'] / 1024:.0f} KB with every "
            "stage in full (a final stage nobody changed is stored once). Each call carries the whole conversation "
            "so far, so bytes per call grow with the session's length."
        ),
    ]


STEPS_NOTE = "(the real CLI, one prompt, {steps} Bash steps against the loopback model, default policies)"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    print("\n".join(report(parser.parse_args().steps)))


if __name__ == "__main__":
    main()
