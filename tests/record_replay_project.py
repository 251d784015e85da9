"""Records the cassette of the test project in `tests/replay_project/` (a user's project
using the `interlock_replay` fixture): `uv run python tests/record_replay_project.py`.

It runs the project's own clients (`app.py`, `app.mjs`) as programs through a recording
Interlock proxy in front of the loopback mock provider, then writes the calls the proxy
recorded to `cassettes/app.jsonl` with `just cassette` (`recorder.cassette_cli`), as a user
would record against the real provider. Run it again when the mock's answers or the
cassette format change.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import ProxyLauncher, make_ca
from mock_provider import MockProvider

from interlock.trust import environment
from recorder.cassette_cli import main as export

PROJECT = Path(__file__).resolve().parent / "replay_project"
CASSETTE = PROJECT / "cassettes" / "app.jsonl"
CLIENTS = ([sys.executable, "app.py"], ["node", "app.mjs"])
KEY = "sk-recording-key"  # redacted before it reaches the database, hence the cassette
TIMEOUT_S = 60


def record(cassette: Path = CASSETTE) -> None:
    with tempfile.TemporaryDirectory() as tmp, MockProvider() as mock:
        root = Path(tmp)
        ca = make_ca(root / "confdir")
        launcher = ProxyLauncher(root, ca, mock.url)
        try:
            proxy = launcher()
            env = {**os.environ, **environment(ca.cert, ca.bundle, proxy.url), "OPENAI_API_KEY": KEY}
            for client in CLIENTS:
                done = subprocess.run(
                    client, cwd=PROJECT, env=env, timeout=TIMEOUT_S, capture_output=True, text=True, check=False
                )
                if done.returncode != 0:
                    raise SystemExit(f"{' '.join(client)} failed ({done.returncode}):\n{done.stderr}")
        finally:
            launcher.stop_all()  # the recorder flushes on SIGTERM
        assert proxy.db_path is not None
        if export([str(proxy.db_path), "-o", str(cassette)]) != 0:
            raise SystemExit(f"nothing recorded; the proxy said:\n{proxy.output()}")


if __name__ == "__main__":
    record(Path(sys.argv[1]) if len(sys.argv) > 1 else CASSETTE)
