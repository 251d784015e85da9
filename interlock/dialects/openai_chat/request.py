"""Reading and editing OpenAI Chat Completions requests: what policies change, what a
judge and the session grouping read."""

from __future__ import annotations

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

NAME = "openai-chat"
MESSAGES_PATH = "$.messages"  # the conversation, as an SQLite JSON path


def map_request_text(request: dict[str, Any], edit: TextEdit) -> dict[str, Any]:
    """A copy of the request with `edit` applied to every message text (system,
    developer, user, assistant and tool messages; string or text-part contents)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return request
    return {**request, "messages": [edit_message_content(m, edit, _edit_part) for m in messages]}


def _edit_part(part: Any, edit: TextEdit) -> Any:
    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return {**part, "text": edit(part["text"])}
    return part


def add_system_text(request: dict[str, Any], text: str, position: SystemPosition) -> dict[str, Any]:
    """Prepend or append `text` to the first system/developer message (or add one)."""
    messages = list(request.get("messages") or [])
    for i, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            content = message.get("content")
            if isinstance(content, str):
                joined = f"{text}\n\n{content}" if position == "prepend" else f"{content}\n\n{text}"
                messages[i] = {**message, "content": joined}
            else:
                part = {"type": "text", "text": text}
                parts = list(content or [])
                messages[i] = {**message, "content": [part, *parts] if position == "prepend" else [*parts, part]}
            return {**request, "messages": messages}
    return {**request, "messages": [{"role": "system", "content": text}, *messages]}


def blocked_request(notice: str) -> dict[str, Any]:
    return {"error": {"message": notice, "type": "interlock_policy_error", "code": "policy_blocked"}}


def tool_definition(request: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    tools = (request or {}).get("tools")
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name") == name:
            return {"description": function.get("description"), "input_schema": function.get("parameters")}
    return None


def recent_tool_calls(request: dict[str, Any] | None, count: int) -> list[PastCall]:
    if count <= 0:
        return []
    calls: list[tuple[str, str, Any]] = []  # (id, name, arguments)
    results: dict[str, str] = {}
    for message in request_messages(request):
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    calls.append((str(call.get("id")), str(function.get("name")), function.get("arguments")))
        elif message.get("role") == "tool":
            results[str(message.get("tool_call_id"))] = content_text(message.get("content"))
    return [
        PastCall(name, tool_arguments(arguments), results.get(call_id)) for call_id, name, arguments in calls[-count:]
    ]


def session_key(request: dict[str, Any]) -> str | None:
    system = [m.get("content") for m in request_messages(request) if m.get("role") in ("system", "developer")]
    return conversation_fingerprint(NAME, system, first_user_content(request))


SETTINGS = {
    "max_tokens": ("max_completion_tokens", "max_tokens"),
    "temperature": ("temperature",),
    "top_p": ("top_p",),
    "stop_sequences": ("stop",),
    "seed": ("seed",),
    "frequency_penalty": ("frequency_penalty",),
    "presence_penalty": ("presence_penalty",),
    "choice_count": ("n",),
}


def request_settings(request: dict[str, Any]) -> RequestSettings:
    return settings_from(request, SETTINGS)


def tool_definitions(request: dict[str, Any]) -> list[ToolDefinition]:
    tools = request.get("tools")
    found = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            found.append(ToolDefinition(function["name"], function.get("description"), function.get("parameters")))
    return found
