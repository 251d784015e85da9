"""`just policies` (`python -m policies`): every built-in with its options and defaults,
without importing litellm; and `describe_policies()` behind it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from policies.registry import BUILTIN, describe_policies

REPO = Path(__file__).resolve().parent.parent


def test_every_builtin_is_described_with_its_options_and_defaults() -> None:
    described = {p.name: p for p in describe_policies()}
    assert set(described) == set(BUILTIN)
    assert all(p.description and not p.description.startswith("unavailable") for p in described.values())
    replace = {o.name: (o.type, o.default) for o in described["replace"].options}
    assert replace["rules"] == ("list[Rule]", "(required)")
    assert replace["rules[].find"] == ("str", "(required)")
    assert replace["rules[].regex"] == ("bool", "False")
    assert replace["apply_to"] == ("Literal['request', 'response', 'both']", "'response'")
    redact = {o.name: o.default for o in described["redact"].options}
    assert redact["replacement"] == "'[REDACTED:{name}]'"
    assert "'aws_access_key_id'" in redact["detectors"]
    assert {o.name for o in described["deny_tools"].options} >= {"deny", "allow_only", "rules[].pattern"}


def test_the_command_prints_them_and_does_not_import_litellm() -> None:
    code = (
        "import runpy, sys; runpy.run_module('policies', run_name='__main__'); "
        "print('litellm imported' if 'litellm' in sys.modules else 'litellm not imported')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.rstrip().endswith("litellm not imported")
    for name in BUILTIN:
        assert name in result.stdout
    assert "max_match_length" in result.stdout
    assert "on_error (default 'allow'), timeout_s (default 5.0)" in result.stdout
