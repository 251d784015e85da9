"""Reading and editing OpenAI Responses requests (`POST /v1/responses`).

The conversation is `input`: a string (one user message) or a list of items: messages
(`role` and a string or a list of `input_text` / `output_text` parts), `function_call`
and `custom_tool_call` items the model made earlier, and their `function_call_output` /
`custom_tool_call_output` answers, matched by `call_id`. The system prompt is the
top-level `instructions` string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.dialects.base import SystemPosition, TextEdit
from interlock.dialects.common import (
    content_text,
    conversation_fingerprint,
    edit_message_content,
    settings_from,
    string_field,
    tool_arguments,
    without_agent_wrappers,
)
from interlock.neutral import PastCall, RequestSettings, ToolDefinition

NAME = "openai-responses"
MESSAGES_PATH = "$.input"  # the conversation, as an SQLite JSON path
CHAIN_PATH = "$.previous_response_id"  # the stored response a request continues
TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
CALL_ITEMS = {"function_call": "arguments", "custom_tool_call": "input"}  # item type -> its arguments field
OUTPUT_ITEMS = {"function_call": "function_call_output", "custom_tool_call": "custom_tool_call_output"}


def input_items(request: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The `input` as a list of items (a string input is one user message)."""
    found = (request or {}).get("input")
    if isinstance(found, str):
        return [{"role": "user", "content": found}]
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def part_text(content: Any) -> str:
    """Text of a message item's `content`: a string, or its text parts joined."""
    return content_text(content, TEXT_PARTS)


def _user_items(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in input_items(request) if item.get("role") == "user"]


def last_user_text(request: dict[str, Any]) -> str:
    users = _user_items(request)
    return part_text(users[-1].get("content")) if users else ""


def typed_text(request: dict[str, Any]) -> str:
    for item in reversed(_user_items(request)):
        text = without_agent_wrappers(part_text(item.get("content")))
        if text:
            return text
    return ""


def _edit_part(part: Any, edit: TextEdit) -> Any:
    if isinstance(part, dict) and part.get("type") in TEXT_PARTS and isinstance(part.get("text"), str):
        return {**part, "text": edit(part["text"])}
    return part


def _edit_item(item: Any, edit: TextEdit) -> Any:
    if isinstance(item, dict) and item.get("type") in OUTPUT_ITEMS.values() and isinstance(item.get("output"), str):
        return {**item, "output": edit(item["output"])}
    if isinstance(item, dict) and "role" in item:
        return edit_message_content(item, edit, _edit_part)
    return item


def map_request_text(request: dict[str, Any], edit: TextEdit) -> dict[str, Any]:
    """A copy with `edit` applied to the instructions, every message text and every
    tool output string."""
    result = dict(request)
    if isinstance(request.get("instructions"), str):
        result["instructions"] = edit(request["instructions"])
    found = request.get("input")
    if isinstance(found, str):
        result["input"] = edit(found)
    elif isinstance(found, list):
        result["input"] = [_edit_item(item, edit) for item in found]
    return result


def add_system_text(request: dict[str, Any], text: str, position: SystemPosition) -> dict[str, Any]:
    """Prepend or append `text` to `instructions` (or set them)."""
    current = string_field(request, "instructions")
    if not current:
        return {**request, "instructions": text}
    joined = f"{text}\n\n{current}" if position == "prepend" else f"{current}\n\n{text}"
    return {**request, "instructions": joined}


def blocked_request(notice: str) -> dict[str, Any]:
    return {"error": {"message": notice, "type": "interlock_policy_error", "param": None, "code": "policy_blocked"}}


def tool_definition(request: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    """A `function` tool's description and parameters, or a `custom` tool's description
    and input format (Responses tools are flat: no nested `function` object)."""
    tools = (request or {}).get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and tool.get("name") == name:
            schema = tool.get("parameters") if tool.get("type") == "function" else tool.get("format")
            return {"description": tool.get("description"), "input_schema": schema}
    return None


def recent_tool_calls(request: dict[str, Any] | None, count: int) -> list[PastCall]:
    if count <= 0:
        return []
    calls: list[tuple[str, str, Any]] = []  # (call_id, name, arguments)
    results: dict[str, str] = {}
    for item in input_items(request):
        kind = item.get("type")
        if kind in CALL_ITEMS:
            calls.append((str(item.get("call_id")), str(item.get("name")), item.get(CALL_ITEMS[kind])))
        elif kind in OUTPUT_ITEMS.values():
            output = item.get("output")
            results[str(item.get("call_id"))] = output if isinstance(output, str) else part_text(output)
    return [
        PastCall(name, tool_arguments(arguments), results.get(call_id)) for call_id, name, arguments in calls[-count:]
    ]


# The headers Codex names its conversation with (`thread-id` and `session-id` today,
# `conversation_id` and `session_id` in older releases), the thread first.
CONVERSATION_HEADERS = ("thread-id", "conversation_id", "conversation-id", "session-id", "session_id")


def session_header_key(headers: Mapping[str, str]) -> str | None:
    for name in CONVERSATION_HEADERS:
        value = headers.get(name)
        if value:
            return f"codex-{value}"
    return None


def chained_on(request: dict[str, Any]) -> str | None:
    return string_field(request, "previous_response_id")


def session_key(request: dict[str, Any]) -> str | None:
    """Codex's `prompt_cache_key` (one per conversation), else the conversation's
    instructions and first user message; none for a request chained on an earlier
    response (its input is only the new items: its session is that response's)."""
    key = string_field(request, "prompt_cache_key")
    if key:
        return f"pck-{key}"
    if chained_on(request):
        return None
    users = _user_items(request)
    first = users[0].get("content") if users else None
    return conversation_fingerprint(NAME, request.get("instructions"), first)


SETTINGS = {"max_tokens": ("max_output_tokens",), "temperature": ("temperature",), "top_p": ("top_p",)}


def request_settings(request: dict[str, Any]) -> RequestSettings:
    return settings_from(request, SETTINGS)


def tool_definitions(request: dict[str, Any]) -> list[ToolDefinition]:
    """Named tools (`function`, `custom`); built-in tools without a name (`web_search`)
    by their type."""
    tools = request.get("tools")
    found = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        kind = str(tool.get("type") or "function")
        name = tool.get("name")
        schema = tool.get("parameters") if kind == "function" else tool.get("format")
        found.append(ToolDefinition(name if isinstance(name, str) else kind, tool.get("description"), schema, kind))
    return found
