"""Reading and editing Anthropic Messages requests: what policies change, what a judge
and the session grouping read."""

from __future__ import annotations

import json
import re
from typing import Any

from interlock.dialects.base import SystemPosition, TextEdit
from interlock.dialects.common import (
    content_text,
    conversation_fingerprint,
    edit_message_content,
    first_user_content,
    request_messages,
    settings_from,
    tool_arguments,
)
from interlock.neutral import PastCall, RequestSettings, ToolDefinition

NAME = "anthropic-messages"
MESSAGES_PATH = "$.messages"  # the conversation, as an SQLite JSON path
_CLAUDE_CODE_SESSION = re.compile(r"session_([0-9a-fA-F-]{8,})")


def map_request_text(request: dict[str, Any], edit: TextEdit) -> dict[str, Any]:
    """A copy of the request with `edit` applied to every text: the system prompt, text
    blocks and string contents of messages, and text inside tool results."""
    result = dict(request)
    system = request.get("system")
    if isinstance(system, str):
        result["system"] = edit(system)
    elif isinstance(system, list):
        result["system"] = [_edit_block(b, edit) for b in system]
    messages = request.get("messages")
    if isinstance(messages, list):
        result["messages"] = [edit_message_content(m, edit, _edit_block) for m in messages]
    return result


def _edit_block(block: Any, edit: TextEdit) -> Any:
    if not isinstance(block, dict):
        return block
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return {**block, "text": edit(block["text"])}
    if block.get("type") == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return {**block, "content": edit(content)}
        if isinstance(content, list):
            return {**block, "content": [_edit_block(b, edit) for b in content]}
    return block


def add_system_text(request: dict[str, Any], text: str, position: SystemPosition) -> dict[str, Any]:
    """Prepend or append `text` to the system prompt (string or blocks)."""
    system = request.get("system")
    if system is None or system == "" or system == []:
        return {**request, "system": text}
    if isinstance(system, str):
        joined = f"{text}\n\n{system}" if position == "prepend" else f"{system}\n\n{text}"
        return {**request, "system": joined}
    block = {"type": "text", "text": text}
    blocks = list(system)
    return {**request, "system": [block, *blocks] if position == "prepend" else [*blocks, block]}


def blocked_request(notice: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "permission_error", "message": notice}}


def _parts(content: Any) -> list[dict[str, Any]]:
    return [part for part in content if isinstance(part, dict)] if isinstance(content, list) else []


def tool_definition(request: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    tools = (request or {}).get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and tool.get("name") == name:
            return {"description": tool.get("description"), "input_schema": tool.get("input_schema")}
    return None


def recent_tool_calls(request: dict[str, Any] | None, count: int) -> list[PastCall]:
    if count <= 0:
        return []
    calls: list[tuple[str, str, Any]] = []  # (id, name, input)
    results: dict[str, tuple[str, bool]] = {}
    for message in request_messages(request):
        role = message.get("role")
        for part in _parts(message.get("content")):
            if role == "assistant" and part.get("type") == "tool_use":
                calls.append((str(part.get("id")), str(part.get("name")), part.get("input")))
            elif role == "user" and part.get("type") == "tool_result":
                results[str(part.get("tool_use_id"))] = (
                    content_text(part.get("content")),
                    part.get("is_error") is True,
                )
    past = []
    for call_id, name, arguments in calls[-count:]:
        result, is_error = results.get(call_id, (None, False))
        past.append(PastCall(name, tool_arguments(arguments), result, is_error))
    return past


def session_key(request: dict[str, Any]) -> str | None:
    """The session id Claude Code puts into `metadata.user_id`, else a fingerprint of
    the conversation's start."""
    metadata = request.get("metadata")
    if isinstance(metadata, dict):
        session = _claude_code_session(metadata.get("user_id"))
        if session:
            return "cc-" + session
    return conversation_fingerprint(NAME, request.get("system"), first_user_content(request))


def _claude_code_session(user_id: Any) -> str | None:
    """Claude Code sends a JSON string with `session_id`; older releases a
    `user_..._session_<uuid>` string."""
    if not isinstance(user_id, str):
        return None
    try:
        parsed = json.loads(user_id)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("session_id"), str):
        return str(parsed["session_id"])
    found = _CLAUDE_CODE_SESSION.search(user_id)
    return found.group(1) if found else None


SETTINGS = {
    "max_tokens": ("max_tokens",),
    "temperature": ("temperature",),
    "top_p": ("top_p",),
    "top_k": ("top_k",),
    "stop_sequences": ("stop_sequences",),
}


def request_settings(request: dict[str, Any]) -> RequestSettings:
    return settings_from(request, SETTINGS)


def tool_definitions(request: dict[str, Any]) -> list[ToolDefinition]:
    """Client tools (with an `input_schema`) as functions; server tools (`web_search_...`)
    by their native type."""
    tools = request.get("tools")
    found = []
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            kind = "function" if "input_schema" in tool else str(tool.get("type") or "function")
            found.append(ToolDefinition(tool["name"], tool.get("description"), tool.get("input_schema"), kind))
    return found
