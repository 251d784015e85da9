"""Start-up contracts of the real mitmdump with the bundle: refusals name the key,
litellm stays out of a judge-less start-up, options reach the addon."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import ENTRY_SCRIPT, MITMDUMP, ProxyLauncher, ProxyProcess, child_env, map_remote_args

REPO = Path(__file__).resolve().parent.parent


def run_mitmdump(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MITMDUMP), "--listen-host", "127.0.0.1", "--listen-port", "0", "-s", str(ENTRY_SCRIPT), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=child_env(),
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("recorder:\n  queue_size: -1\n", "recorder.queue_size"),
        ("policies:\n  - policy: deny_tools\n    rules: [{pattern: '('}]\n", "policies.0 (deny_tools).rules.0"),
        ("policies:\n  - policy: nope\n", "policies.0 (nope).policy"),
    ],
)
def test_bad_config_refuses_start_naming_the_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    result = run_mitmdump(tmp_path, "--set", f"interlock_config={config}")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "interlock_config" in output
    assert key in output


def test_an_option_given_twice_refuses_start_naming_it(tmp_path: Path) -> None:
    """mitmproxy on its own would start without the bundle and say nothing."""
    result = run_mitmdump(tmp_path, "--set", "interlock_db=a.db", "--set", "interlock_db=b.db")
    assert result.returncode != 0
    assert "interlock_db: set more than once" in result.stdout + result.stderr
    assert not (tmp_path / "a.db").exists() and not (tmp_path / "b.db").exists()


def test_importing_the_bundle_does_not_import_litellm() -> None:
    code = "import addons.bundle, sys; print('litellm' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "False"


def test_call_id_is_the_flow_comment_in_saved_flows(start_proxy: ProxyLauncher, tmp_path: Path) -> None:
    """mitmweb shows the flow comment; `-w` saves the same flow objects."""
    from mitmproxy import io

    flows_file = tmp_path / "flows.mitm"
    proxy = start_proxy(extra_args=["-w", str(flows_file)])
    import httpx2

    ssl_context = start_proxy.ca.ssl_context()
    with httpx2.Client(proxy=proxy.url, verify=ssl_context, trust_env=False) as client:
        response = client.post(
            "https://api.openai.com/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": "Bearer sk-test-startup"},
        )
    call_id = response.headers["x-interlock-call-id"]
    proxy.stop()
    with flows_file.open("rb") as handle:
        flows = list(io.FlowReader(handle).stream())
    assert [f.comment for f in flows] == [f"interlock {call_id}"]


def test_an_unusable_database_never_blocks_calls(start_proxy: ProxyLauncher, tmp_path: Path) -> None:
    """The recorder cannot open its database: calls still flow, the drops are reported."""
    import httpx2

    config = tmp_path / "config.yaml"
    config.write_text(f"recorder:\n  database: {tmp_path / 'no-such-dir' / 'calls.db'}\n")
    args = [str(MITMDUMP), "--listen-host", "127.0.0.1", "--listen-port", "0", "-s", str(ENTRY_SCRIPT),
            "--set", f"confdir={start_proxy.ca.confdir}", "--set", "connection_strategy=lazy",
            "--set", f"interlock_config={config}", *map_remote_args(start_proxy.upstream)]  # fmt: skip
    proxy = ProxyProcess(tmp_path, args, child_env(), None)
    try:
        proxy.wait_ready()
        deadline = time.monotonic() + 20
        while "recorder stopped recording to" not in proxy.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx2.Client(proxy=proxy.url, verify=start_proxy.ca.ssl_context(), trust_env=False) as client:
            for _ in range(3):
                response = client.post(
                    "https://api.openai.com/v1/chat/completions",
                    json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                    headers={"authorization": "Bearer sk-test-unusable-db"},
                )
                assert response.status_code == 200
                assert response.json()["choices"][0]["message"]["content"] == "Hello from the mock provider."
    finally:
        assert proxy.stop() == 0
    output = proxy.output()
    assert "recorder stopped recording to" in output
    assert "0 calls written, 3 dropped" in output
    assert "sk-test-unusable-db" not in output


def test_just_proxy_passes_its_arguments_to_mitmdump(tmp_path: Path) -> None:
    """`just proxy` listens on loopback by default; everything after it reaches mitmdump."""
    just = shutil.which("just")
    assert just is not None, "rust-just is installed by the Quick start"
    db = tmp_path / "other.db"
    out = tmp_path / "out.log"
    with out.open("wb") as handle:
        process = subprocess.Popen(
            [just, "proxy", "--listen-port", "0", "--set", f"interlock_db={db}", "--set", f"confdir={tmp_path}"],
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "Interlock ready" not in out.read_text(errors="replace"):
            time.sleep(0.1)
        output = out.read_text(errors="replace")
        assert "HTTP(S) proxy listening at 127.0.0.1:" in output
        assert f"recording to {db}" in output
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
