"""The app's tests, answered from a cassette: no provider, no key, no network."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from app import haiku

from interlock.pytest_plugin import StartReplay

ANSWER = "Hello from the mock provider."  # what the recorded provider said (cassettes/app.jsonl)


def test_the_python_client_gets_the_recorded_answer(
    interlock_replay: StartReplay, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = interlock_replay("cassettes/app.jsonl")
    for name, value in proxy.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key")
    assert haiku() == ANSWER


def test_the_node_client_gets_the_recorded_answer(interlock_replay: StartReplay) -> None:
    proxy = interlock_replay("cassettes/app.jsonl", fast=True)
    done = subprocess.run(
        ["node", "app.mjs"],
        cwd=Path(__file__).parent,
        env={**os.environ, **proxy.env, "OPENAI_API_KEY": "sk-not-a-real-key"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ANSWER + "\n"
