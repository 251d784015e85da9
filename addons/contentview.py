"""Shows an LLM call in mitmweb, the console and `mitmdump --flow-detail 3` as a
conversation: one content view per dialect, picked automatically for that dialect's calls.

The request reads as its parameters, the system prompt and each message with its role
and blocks (text, thinking, tool calls with their arguments, tool results, images); the
response as its model, stop reason and usage, then the assistant's message. A streamed
response is shown reassembled. The views read bodies only, never headers, and only
through the dialect's readers (`request_view`, `response_view`, `reassembler`): what a
dialect does not understand it shows as an `other` block, and a body it cannot read at
all (not JSON, a stream cut before its message began) is shown as it came, after a line
saying why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from mitmproxy import contentviews, http
from mitmproxy.contentviews import Contentview, Metadata, SyntaxHighlight

from addons.call_state import CALL_ID_METADATA, DIALECT_METADATA
from addons.config_watch import ConfigWatch
from addons.matcher import parse_json_body, request_host
from interlock.dialects import DIALECTS
from interlock.dialects.base import Dialect
from interlock.neutral import Block, Message, RequestView, ResponseView
from interlock.sse import parse_all

logger = logging.getLogger(__name__)

# Above every built-in view (JSON 1, GraphQL 2), so a call's own view wins in "auto".
PRIORITY = 3.0
SSE_CONTENT_TYPE = "text/event-stream"
INDENT = "    "
STREAM_NOT_STORED = (
    "No body stored: mitmproxy keeps a streamed response's body only with `--set store_streamed_bodies=true`."
)

DialectOf = Callable[[http.HTTPFlow], str | None]


class ConversationView(Contentview):
    """One dialect's calls as a conversation."""

    def __init__(self, dialect: Dialect, dialect_of: DialectOf) -> None:
        self.dialect = dialect
        self.dialect_of = dialect_of  # the dialect a flow's call speaks, None for other flows

    @property
    def name(self) -> str:
        return f"Interlock {self.dialect.name}"

    @property
    def syntax_highlight(self) -> SyntaxHighlight:
        return "none"

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        flow = metadata.flow
        if not isinstance(flow, http.HTTPFlow) or not isinstance(metadata.http_message, http.Message):
            return 0
        return PRIORITY if self.dialect_of(flow) == self.dialect.name else 0

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        message = metadata.http_message
        call_id = metadata.flow.metadata.get(CALL_ID_METADATA) if metadata.flow is not None else None
        try:
            if isinstance(message, http.Response):
                status = message.status_code
                return render_response(self.dialect, data, metadata.content_type, status, call_id)
            return render_request(self.dialect, data, call_id)
        except Exception as error:  # a reader's bug must not hide the body from the person reading it
            logger.debug("%s could not render a body", self.name, exc_info=True)
            return _as_it_came(f"{self.dialect.name}: could not show this body ({type(error).__name__}: {error})", data)


class ConversationViews:
    """Registers one `ConversationView` per dialect of the registry.

    A flow's dialect is the one the matcher noted in its metadata when the call began
    (it survives `map_remote`, `-w` and `-r`), else the provider registry's match of the
    request as it stands (flows saved before that note existed).
    """

    def __init__(self, config: ConfigWatch) -> None:
        self.config = config
        self.views = [ConversationView(dialect, self.dialect_of) for dialect in DIALECTS.values()]
        self._loaded = False

    def load(self, loader: Any) -> None:
        for view in self.views:
            contentviews.add(view)  # replaces, by name, the views of an earlier load
        self._loaded = True

    def done(self) -> None:
        # mitmproxy 12 has no way to unregister a view (`contentviews.remove` is a no-op
        # kept for the old API): an unloaded addon's views stay listed but are never
        # chosen automatically.
        self._loaded = False

    def dialect_of(self, flow: http.HTTPFlow) -> str | None:
        if not self._loaded:
            return None
        noted = flow.metadata.get(DIALECT_METADATA)
        if isinstance(noted, str):
            return noted
        loaded = self.config.current
        if loaded is None:
            return None
        request = flow.request
        match = loaded.registry.match(request.method, request_host(request), request.path)
        return match.dialect if match is not None else None


# -- requests --------------------------------------------------------------------------


def render_request(dialect: Dialect, data: bytes, call_id: str | None = None) -> str:
    heading = _heading(dialect, "request", call_id)
    body, problem = _json_object(data)
    if body is None:
        return _as_it_came(f"{heading}: {problem}", data)
    view = dialect.request_view(body)
    if view is None:
        return _as_it_came(f"{heading}: not a request this dialect understands", data)
    return "\n".join(_request_lines(heading, view))


def _request_lines(heading: str, view: RequestView) -> list[str]:
    count = len(view.messages)
    lines = [f"{heading}: {count} message{'' if count == 1 else 's'}"]
    lines += _params(view.params, first=("model",))
    if view.system:
        lines += ["", *_section("system", view.system)]
    for number, message in enumerate(view.messages, 1):
        lines += ["", *_message(message, number)]
    return lines


# -- responses -------------------------------------------------------------------------


def render_response(
    dialect: Dialect, data: bytes, content_type: str | None, status: int | None = None, call_id: str | None = None
) -> str:
    heading = _heading(dialect, "response", call_id)
    if status is not None:
        heading += f", HTTP {status}"
    notes: list[str] = []
    if content_type == SSE_CONTENT_TYPE:
        if not data:
            return f"{heading}\n{STREAM_NOT_STORED}"
        events = parse_all(data)
        reassembly = dialect.reassemble(events)
        notes = reassembly.errors
        if reassembly.message is None:
            reasons = "; ".join(notes) or "no message in it"
            return _as_it_came(f"{heading}: the stream could not be reassembled ({reasons})", data)
        body = reassembly.message
        heading += f", reassembled from {len(events)} stream events"
    else:
        parsed, problem = _json_object(data)
        if parsed is None:
            return _as_it_came(f"{heading}: {problem}", data)
        body = parsed
    view = dialect.response_view(body)
    if view is None:
        return _as_it_came(f"{heading}: not a response this dialect understands", data)
    return "\n".join(_response_lines(heading, view, notes))


def _response_lines(heading: str, view: ResponseView, notes: list[str]) -> list[str]:
    lines = [heading]
    if view.model is not None:
        lines.append(f"model: {view.model}")
    lines.append(f"stop reason: {view.stop_reason if view.stop_reason is not None else '(none)'}")
    if view.usage is not None:
        lines.append(f"usage: {_usage(view.usage)}")
    lines += _params(view.params)
    lines += [f"stream note: {note}" for note in notes]
    lines += ["", *_section(view.message.role, view.message.blocks)]
    return lines


def _usage(usage: Any) -> str:
    """Token counts as reported, one level of nesting flattened; nested zeros left out."""
    if not isinstance(usage, dict):
        return _value(usage)
    parts = []
    for key, value in usage.items():
        if isinstance(value, dict):
            parts += [f"{key}.{k} {_value(v)}" for k, v in value.items() if v not in (0, None)]
        else:
            parts.append(f"{key} {_value(value)}")
    return ", ".join(parts)


# -- messages and blocks ---------------------------------------------------------------


def _message(message: Message, number: int) -> list[str]:
    return _section(f"{number} {message.role}", message.blocks)


def _section(title: str, blocks: tuple[Block, ...]) -> list[str]:
    lines = [f"── {title} ──"]
    shown = [_block(block) for block in blocks if block.kind != "text" or block.text or block.label]
    if not shown:
        return [*lines, "(no content)"]
    for number, block_lines in enumerate(shown):
        if number:
            lines.append("")
        lines += block_lines
    return lines


def _block(block: Block) -> list[str]:
    """A block as lines: text as it is, everything else under a bracketed tag."""
    kind = block.kind
    if kind == "text" and not block.label:
        return block.text.split("\n")
    if kind == "text":
        return [f"[{block.label}]", *_indented(block.text)]
    if kind == "tool_call":
        tag = "tool call" if not block.label else f"tool call, {block.label}"
        return [f"[{tag}] {block.tool_name or '?'}{_tool_id(block)}", *_indented(block.text)]
    if kind == "tool_result":
        tag = "tool result, error" if block.is_error else "tool result"
        target = f" for {block.tool_id}" if block.tool_id else ""
        return [f"[{tag}]{target}", *_indented(block.text)]
    if kind == "thinking":
        return ["[thinking]", *_indented(block.text)]
    if kind == "redacted_thinking":
        return [f"[redacted thinking] {block.text}".rstrip()]
    if kind == "image":
        return [f"[image] {block.text}".rstrip()]
    tag = f"other, {block.label}" if block.label else "other"
    return [f"[{tag}]", *_indented(block.text)]


def _tool_id(block: Block) -> str:
    return f"  (id {block.tool_id})" if block.tool_id else ""


def _indented(text: str) -> list[str]:
    return [f"{INDENT}{line}" if line else "" for line in text.split("\n")]


# -- parameters ------------------------------------------------------------------------


def _params(params: dict[str, Any], first: tuple[str, ...] = ()) -> list[str]:
    """One line per top-level field, `first` ones first; tools by count and name."""
    keys = [key for key in first if key in params] + [key for key in params if key not in first]
    lines = []
    for key in keys:
        value = params[key]
        if key == "tools" and isinstance(value, list):
            lines.append(f"tools ({len(value)}): {', '.join(_tool_name(tool) for tool in value)}")
        else:
            lines.append(f"{key}: {_value(value)}")
    return lines


def _tool_name(tool: Any) -> str:
    """A tool definition's name: its own `name`, else that of the object it wraps (a
    function), else its `type` (a built-in tool)."""
    if not isinstance(tool, dict):
        return "?"
    if isinstance(tool.get("name"), str):
        return str(tool["name"])
    for value in tool.values():
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            return str(value["name"])
    return str(tool["type"]) if isinstance(tool.get("type"), str) else "?"


def _value(value: Any) -> str:
    """Strings as they are, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


# -- bodies ----------------------------------------------------------------------------


def _heading(dialect: Dialect, what: str, call_id: str | None) -> str:
    return f"{dialect.name} {what}" + (f" (call {call_id})" if call_id else "")


def _json_object(data: bytes) -> tuple[dict[str, Any] | None, str]:
    """(the body as a JSON object, "") or (None, why not)."""
    body, problem = parse_json_body(data)
    if problem is not None:
        return None, problem
    if not isinstance(body, dict):
        return None, "not a JSON object"
    return body, ""


def _as_it_came(reason: str, data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return f"{reason}\nThe body as it came:\n\n{text}" if text else f"{reason}\n(empty body)"
