"""The `interlock_replay` pytest plugin (`interlock.pytest_plugin`), used as a user uses it.

`tests/replay_project/` is a user's project: its code (`app.py` with the openai SDK,
`app.mjs` in Node), a `conftest.py` with nothing in it, and tests answered from
`cassettes/app.jsonl` (recorded by `tests/record_replay_project.py`). Its pytest run is a
subprocess in its own directory with no proxy settings and no mock provider: the
answers can only come from the cassette. The fixture is also used here directly (this
suite loads the plugin like any other installation).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from harness import child_env
from harness_db import CallsDB
from record_replay_project import CASSETTE, PROJECT, record

from interlock.cassette import read
from interlock.pytest_plugin import ReplayProxyError, StartReplay, start

RUN_TIMEOUT_S = 300


def run_project(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=project,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def test_the_project_passes_replaying_its_committed_cassette() -> None:
    done = run_project(PROJECT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_a_freshly_recorded_cassette_holds_the_same_requests_and_replays(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    fresh = project / "cassettes" / "app.jsonl"
    fresh.unlink()
    record(fresh)
    assert [entry.request.body for entry in read(fresh)] == [entry.request.body for entry in read(CASSETTE)]
    done = run_project(project)  # the cassette resolves against the copied test file's directory
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_replaying_proxy_gives_its_url_environment_ca_and_database(interlock_replay: StartReplay) -> None:
    proxy = interlock_replay(CASSETTE)  # an absolute path, as it is
    assert proxy.url.startswith("http://127.0.0.1:")
    assert proxy.env["HTTPS_PROXY"] == proxy.env["https_proxy"] == proxy.url
    assert proxy.env["SSL_CERT_FILE"] == proxy.env["REQUESTS_CA_BUNDLE"] == str(proxy.ca_bundle)
    assert proxy.env["NODE_EXTRA_CA_CERTS"] == proxy.env["CODEX_CA_CERTIFICATE"] == str(proxy.ca_cert)
    assert proxy.ca_bundle.read_text().endswith(proxy.ca_cert.read_text())
    entry = read(CASSETTE)[0]
    assert isinstance(entry.request.body, dict)
    tls = ssl.create_default_context(cafile=proxy.ca_bundle)
    with httpx2.Client(proxy=proxy.url, verify=tls, trust_env=False, timeout=30) as client:
        answer = client.post(entry.request.url, json=entry.request.body, headers={"authorization": "Bearer sk-x"})
    assert answer.status_code == 200
    assert answer.content == b"".join(chunk.data for chunk in entry.response.chunks or [])
    call_id = answer.headers["x-interlock-call-id"]
    assert CallsDB(proxy.db).wait_call(call_id)["model"] == entry.request.body["model"]


def test_a_request_the_cassette_lacks_gets_the_no_match_error_not_a_live_call(interlock_replay: StartReplay) -> None:
    proxy = interlock_replay(CASSETTE, fast=True)
    entry = read(CASSETTE)[0]
    assert isinstance(entry.request.body, dict)
    changed = {**entry.request.body, "messages": [{"role": "user", "content": "Something never recorded."}]}
    tls = ssl.create_default_context(cafile=proxy.ca_bundle)
    with httpx2.Client(proxy=proxy.url, verify=tls, trust_env=False, timeout=30) as client:
        answer = client.post(entry.request.url, json=changed, headers={"authorization": "Bearer sk-x"})
    assert answer.status_code == 404
    message = answer.json()["error"]["message"]
    assert f"no recorded call in {CASSETTE.name}" in message
    assert entry.call_id in message and "messages[0].content" in message


def test_the_proxy_stops_and_frees_its_port(tmp_path: Path) -> None:
    proxy = start(CASSETTE, workdir=tmp_path / "w", confdir=tmp_path / "conf", fast=True)
    port = int(proxy.url.rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert proxy.stop() is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_proxy_that_cannot_start_raises_with_its_output(interlock_replay: StartReplay) -> None:
    with pytest.raises(ReplayProxyError, match="no-such-policy") as raised:
        interlock_replay(CASSETTE, config={"policies": [{"policy": "no-such-policy"}]})
    assert "mitmdump exited with" in str(raised.value)


def test_a_bad_cassette_line_fails_the_start_naming_file_and_line(
    interlock_replay: StartReplay, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(CASSETTE.read_text(encoding="utf-8").splitlines()[0] + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ReplayProxyError, match=f"{bad}:2: not a cassette entry"):
        interlock_replay(bad)


def test_bad_arguments_are_refused_before_starting(interlock_replay: StartReplay, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"no cassette at {tmp_path / 'nothing.jsonl'}"):
        interlock_replay(tmp_path / "nothing.jsonl")
    with pytest.raises(ValueError, match="missing='sometimes'"):
        interlock_replay(CASSETTE, missing="sometimes")  # type: ignore[arg-type]


def test_the_entry_point_registers_the_plugin() -> None:
    [plugin] = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "interlock"]
    assert plugin.value == "interlock.pytest_plugin"


def test_loading_the_plugin_imports_nothing_beyond_pytest() -> None:
    probe = (
        "import sys, json, pytest; before = set(sys.modules); import interlock.pytest_plugin; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60, env=dict(os.environ)
    )
    assert json.loads(done.stdout) == ["interlock", "interlock.pytest_plugin"]
