"""How recorder columns look in Datasette's tables, views and query results.

`render(...)` returns markup for the columns it knows (ids become links to the call and
session pages, verdicts and decisions become badges, JSON is pretty-printed, durations,
costs and times are made readable, long text is cut) and None for everything else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from datasette.app import Datasette
from markupsafe import Markup, escape

from datasette_plugins.ui import fmt, paths

TEXT_PREVIEW = 300
JSON_PREVIEW = 1500
BADGE_COLUMNS = frozenset({"verdict", "decision", "action"})
TIME_COLUMNS = frozenset({"started_at", "ended_at", "created_at", "first_at", "last_at"})
TEXT_COLUMNS = frozenset(
    {"prompt_text", "user_text", "response_text", "explanation", "raw_answer", "reason", "reasons", "error"}
)
JSON_COLUMNS = frozenset({"headers_json", "body_json", "details_json", "arguments_json", "prompt_json"})


def badge(value: str) -> Markup:
    return Markup('<span class="il-badge il-{0}">{1}</span>').format(
        "".join(ch for ch in value.lower() if ch.isalnum()), value
    )


def _link(href: str, text: str, title: str | None = None) -> Markup:
    if title:
        return Markup('<a href="{0}" title="{1}">{2}</a>').format(href, title, text)
    return Markup('<a href="{0}">{1}</a>').format(href, text)


def _pretty(value: str, limit: int, more_href: str | None) -> Markup | None:
    if not value[:1] in ("{", "["):
        return None
    try:
        text = json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except ValueError:
        return None
    if len(text) <= limit:
        return Markup('<pre class="il-json">{0}</pre>').format(text)
    more = _link(more_href, "whole JSON") if more_href else ""
    return Markup('<pre class="il-json">{0}\n… {1:,} more characters</pre>{2}').format(
        text[:limit], len(text) - limit, more
    )


def _text(value: str) -> Markup:
    if len(value) <= TEXT_PREVIEW:
        return Markup('<span class="il-text">{0}</span>').format(value)
    return Markup('<span class="il-text" title="{0:,} characters">{1}…</span>').format(len(value), value[:TEXT_PREVIEW])


def _plain(value: Any) -> Any:
    """A foreign-key cell Datasette expanded to {"value", "label"} -> its value."""
    return value.get("value") if isinstance(value, dict) else value


_FORMATTERS: dict[str, Callable[[Any], str]] = {
    "cost_usd": fmt.usd,
    "probability": lambda v: f"{v:.2f}" if isinstance(v, float) else "",
}


def render(datasette: Datasette, database: str, column: str, value: Any, row: Any) -> Markup | None:
    """Markup for `column`'s `value` (`row` is the sqlite3.Row it is in, or None)."""
    value = _plain(value)
    if value is None:
        if column == "cost_usd":
            return Markup('<span class="il-muted" title="price unknown (model not in the cost map)">unknown</span>')
        return None
    if column == "call_id" and isinstance(value, str):
        return _link(paths.call_url(datasette, database, value), value, "original against final")
    if column == "session_id" and isinstance(value, str):
        shown = value if len(value) <= 24 else value[:23] + "…"
        return _link(paths.session_url(datasette, database, value), shown, value)
    if column in BADGE_COLUMNS and isinstance(value, str):
        return badge(value)
    if column in _FORMATTERS:
        return Markup(escape(_FORMATTERS[column](value)))
    if column.endswith("_ms") and isinstance(value, (int, float)):
        return Markup('<span title="{0} ms">{1}</span>').format(value, fmt.ms(value))
    if column.endswith("_tokens") and isinstance(value, int):
        return Markup(escape(fmt.count(value)))
    if column in TIME_COLUMNS and isinstance(value, str):
        return Markup('<span title="{0}">{1}</span>').format(value, fmt.when(value))
    if column == "raw" and isinstance(value, bytes) and row is not None and {"stage", "call_id"} <= set(row.keys()):
        # `stages` is a view: Datasette's own blob link needs a rowid it does not have.
        href = paths.raw_url(datasette, database, str(_plain(row["call_id"])), str(row["stage"]), "raw")
        return _link(href, f"{len(value):,} bytes", "the exact bytes")
    if column in JSON_COLUMNS and isinstance(value, str):
        more = None
        present = set(row.keys()) if row is not None else set()  # `in` on a sqlite3.Row looks at values
        if column == "body_json" and {"stage", "call_id"} <= present:
            call_id, stage = _plain(row["call_id"]), row["stage"]
            more = paths.raw_url(datasette, database, str(call_id), str(stage), "json")
        return _pretty(value, JSON_PREVIEW, more)
    if column in TEXT_COLUMNS and isinstance(value, str):
        return _text(value)
    return None
