"""Edits a running mitmdump's config file and waits until the proxy has acted on it.

The config watcher checks the file's mtime once a second; `edit_config` writes the new
text with an mtime it has not seen, then waits (bounded) until the proxy's output shows
one more `expect` line than before: `RELOADED` for a change taken, `IGNORED` for one
refused.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml
from harness import ProxyProcess

RELOADED = "Interlock: reloaded"
IGNORED = "Interlock: config change ignored"
RELOAD_TIMEOUT_S = 15.0  # a hang guard: the watcher looks once a second


def config_path(proxy: ProxyProcess) -> Path:
    """The config file `ProxyLauncher` wrote for a proxy started with a mapping."""
    return proxy.workdir / "mitm_config.yaml"


def read_config(proxy: ProxyProcess) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(config_path(proxy).read_text())
    return config


def edit_config(proxy: ProxyProcess, config: dict[str, Any] | str, expect: str = RELOADED) -> float:
    """Replace the proxy's config (a mapping, or raw text) and wait for `expect`;
    returns when it was seen (time.monotonic())."""
    path = config_path(proxy)
    seen = proxy.output().count(expect)
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    stamp = max(time.time(), path.stat().st_mtime) + 1
    os.utime(path, (stamp, stamp))  # a new mtime, whatever the file system's granularity
    deadline = time.monotonic() + RELOAD_TIMEOUT_S
    while proxy.output().count(expect) == seen:
        assert time.monotonic() < deadline, f"no {expect!r} within {RELOAD_TIMEOUT_S} s:\n{proxy.output()[-2000:]}"
        time.sleep(0.05)
    return time.monotonic()
