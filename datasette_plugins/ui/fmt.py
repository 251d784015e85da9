"""Human formatting of recorded values: durations, costs, token counts, times, sizes.

Plain functions, used as Jinja filters by the pages and by `render_cell` in tables.
"""

from __future__ import annotations

import json
from typing import Any


def ms(value: Any) -> str:
    """1234.5 -> "1.23 s", 87.2 -> "87 ms"; "" for NULL."""
    if not isinstance(value, (int, float)):
        return ""
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms"


def usd(value: Any) -> str:
    """A cost in dollars with enough digits for fractions of a cent; "" for NULL."""
    if not isinstance(value, (int, float)):
        return ""
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.2f}"
    if abs(value) >= 0.01:
        return f"${value:.4f}".rstrip("0").rstrip(".")
    return f"${value:.6f}".rstrip("0")


def count(value: Any) -> str:
    """12345 -> "12,345"; "" for NULL."""
    return f"{value:,}" if isinstance(value, int) else ""


def when(value: Any) -> str:
    """ISO-8601 "2026-11-23T11:32:02.123Z" -> "2026-11-23 11:32:02"."""
    if not isinstance(value, str) or len(value) < 19:
        return value if isinstance(value, str) else ""
    return value[:10] + " " + value[11:19]


def size(value: Any) -> str:
    """A byte count: "812 B", "14.2 kB", "3.1 MB"."""
    if not isinstance(value, int):
        return ""
    if value < 1000:
        return f"{value} B"
    if value < 1_000_000:
        return f"{value / 1000:.1f} kB"
    return f"{value / 1_000_000:.1f} MB"


def clip(text: Any, limit: int = 5000) -> str:
    """`text` cut to `limit` characters, saying how many were left out."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit:,} more characters)"


def pretty(value: Any, limit: int = 20_000) -> str:
    """A JSON value indented, cut to `limit` characters."""
    return clip(json.dumps(value, indent=2, ensure_ascii=False), limit)


FILTERS = {
    "interlock_json": pretty,
    "interlock_ms": ms,
    "interlock_usd": usd,
    "interlock_count": count,
    "interlock_when": when,
    "interlock_size": size,
    "interlock_clip": clip,
}
