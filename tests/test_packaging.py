"""The wheel: an install without the checkout starts with the default configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from addons.config_watch import DEFAULT_CONFIG, default_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    assert uv is not None, "uv builds the wheel (README's Quick start installs it)"
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([uv, "build", "--wheel", "-q", "-o", str(out), str(REPO)], check=True, timeout=300)
    (wheel,) = out.glob("*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_the_checkout_uses_its_own_config() -> None:
    assert Path(DEFAULT_CONFIG) == REPO / "mitm_config.yaml"


def test_the_wheel_carries_the_default_config(unpacked_wheel: Path) -> None:
    packaged = unpacked_wheel / "addons" / "mitm_config.yaml"
    assert packaged.read_bytes() == (REPO / "mitm_config.yaml").read_bytes()
    assert not (unpacked_wheel / "mitm_config.yaml").exists()
    assert default_config(unpacked_wheel / "addons") == str(packaged)


def test_an_installed_bundle_loads_the_packaged_config(unpacked_wheel: Path, tmp_path: Path) -> None:
    """The wheel's own modules (first on the path), run from elsewhere, find and load it."""
    script = (
        "from addons.config_watch import DEFAULT_CONFIG\n"
        "from addons.live_config import load\n"
        "load(DEFAULT_CONFIG)\n"
        "print(DEFAULT_CONFIG)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(unpacked_wheel)}
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(unpacked_wheel / "addons" / "mitm_config.yaml")
