"""Datasette metadata for recorder databases, from `datasette_plugins/metadata.yaml`.

The file's `databases.interlock` entry describes a recorder database; it is applied to
each served database the recorder wrote, whatever its file name.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

METADATA_FILE = Path(__file__).resolve().parent.parent / "metadata.yaml"
TEMPLATE_DATABASE = "interlock"


@cache
def _load() -> dict[str, Any]:
    loaded = yaml.safe_load(METADATA_FILE.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise TypeError(f"{METADATA_FILE} must hold a mapping")
    return loaded


def metadata_for(databases: Iterable[str]) -> dict[str, Any]:
    """The metadata with the recorder database entry under each of `databases`; a fresh
    copy, as Datasette merges other metadata into what it is given."""
    loaded = _load()
    template = loaded.get("databases", {}).get(TEMPLATE_DATABASE, {})
    merged = {**loaded, "databases": {name: template for name in databases}}
    return copy.deepcopy(merged)
