"""Start-up contracts of the real mitmdump with the bundle: refusals name the key,
litellm stays out of a judge-less start-up, options reach the addon."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from harness import ENTRY_SCRIPT, MITMDUMP, ProxyLauncher, child_env

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


def test_importing_the_bundle_does_not_import_litellm() -> None:
    code = "import addons.interceptor, addons.bundle, sys; print('litellm' in sys.modules)"
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
