"""Pieces the dialects' conversation views share: pretty JSON, tool arguments, images."""

from __future__ import annotations

import json
from typing import Any

from interlock.neutral import Block

_DATA_URL_PREVIEW = 80


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def arguments_text(arguments: Any) -> str:
    """Tool arguments pretty-printed; OpenAI sends them as a JSON string."""
    if isinstance(arguments, str):
        try:
            return pretty_json(json.loads(arguments))
        except ValueError:
            return arguments
    return pretty_json(arguments)


def image_text(source: Any) -> str:
    if not isinstance(source, dict):
        return pretty_json(source)
    url = source.get("url")
    if isinstance(url, str):
        return url if len(url) <= _DATA_URL_PREVIEW else f"{url[:_DATA_URL_PREVIEW]}… ({len(url):,} characters)"
    data = source.get("data")
    size = f", {len(data):,} base64 characters" if isinstance(data, str) else ""
    return f"{source.get('type', 'image')} {source.get('media_type', '')}{size}".strip()


def other(value: Any, label: str | None = None) -> Block:
    kind = value.get("type") if isinstance(value, dict) else None
    return Block("other", pretty_json(value), label=label or (str(kind) if kind else None))
