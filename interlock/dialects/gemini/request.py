"""Reading and editing Gemini requests (`GenerateContentRequest`): where the model is,
what policies change, what a judge and the session grouping read.

generativelanguage.googleapis.com and Vertex AI name the model in the URL path
(`.../models/{model}:streamGenerateContent`); Code Assist (Gemini CLI with a Google
login) posts to `/v1internal:...` and wraps the request as `{model, project,
user_prompt_id, request: {...}}`. `read_request` gives policies and readers one shape
for both: the body, with the path's model as a top-level `model` (a field the API
itself accepts); `write_request` puts a changed model back into the path.
"""

from __future__ import annotations

import json
import re
from typing import Any

from interlock.dialects.base import SystemPosition, TextEdit
from interlock.dialects.common import conversation_fingerprint, settings_from, tool_arguments, without_agent_wrappers
from interlock.neutral import PastCall, RequestSettings, ToolDefinition

NAME = "gemini"
MESSAGES_PATH = "$.contents"  # the conversation, as an SQLite JSON path (Code Assist: `$.request.contents`)
_MODEL_IN_PATH = re.compile(r"^(?P<head>[^?]*/models/)(?P<model>[^/:?]+)(?P<tail>:[^?]*(?:\?.*)?)$")
_STREAM_METHOD = ":streamGenerateContent"


# -- where things are -------------------------------------------------------------


def generate_request(request: dict[str, Any] | None) -> dict[str, Any]:
    """The GenerateContentRequest itself: Code Assist's `request`, else the body."""
    request = request or {}
    inner = request.get("request")
    return inner if isinstance(inner, dict) and "contents" not in request else request


def _with_generate(request: dict[str, Any], inner: dict[str, Any]) -> dict[str, Any]:
    if generate_request(request) is request:
        return inner
    return {**request, "request": inner}


def contents(request: dict[str, Any] | None) -> list[dict[str, Any]]:
    found = generate_request(request).get("contents")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def parts(content: Any) -> list[dict[str, Any]]:
    found = content.get("parts") if isinstance(content, dict) else None
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def is_user(content: dict[str, Any]) -> bool:
    """A content without a role is the user's (the API's default)."""
    return content.get("role", "user") == "user"


# -- the model and the stream flag live in the path ----------------------------------


def read_request(path: str, body: dict[str, Any]) -> dict[str, Any]:
    found = _MODEL_IN_PATH.match(path)
    if found is None or "model" in body:
        return body
    return {"model": found["model"], **body}


def write_request(path: str, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = _MODEL_IN_PATH.match(path)
    model = request.get("model")
    if found is None or not isinstance(model, str):
        return path, request
    body = {k: v for k, v in request.items() if k != "model"}
    return f"{found['head']}{model.removeprefix('models/')}{found['tail']}", body


def request_streams(request: dict[str, Any], path: str = "") -> bool:
    return path.split("?", 1)[0].endswith(_STREAM_METHOD)


# -- text -------------------------------------------------------------------------------


def _text_of(content: dict[str, Any]) -> str:
    return "\n".join(p["text"] for p in parts(content) if isinstance(p.get("text"), str) and not p.get("thought"))


def last_user_text(request: dict[str, Any]) -> str:
    users = [c for c in contents(request) if is_user(c)]
    return _text_of(users[-1]) if users else ""


def typed_text(request: dict[str, Any]) -> str:
    """The latest user content with words of its own (function responses skipped)."""
    for content in reversed(contents(request)):
        if is_user(content):
            text = without_agent_wrappers(_text_of(content))
            if text:
                return text
    return ""


def _edit_value(value: Any, edit: TextEdit) -> Any:
    """Every string inside a function response (its output, its error)."""
    if isinstance(value, str):
        return edit(value)
    if isinstance(value, list):
        return [_edit_value(v, edit) for v in value]
    if isinstance(value, dict):
        return {k: _edit_value(v, edit) for k, v in value.items()}
    return value


def _edit_part(part: Any, edit: TextEdit) -> Any:
    if not isinstance(part, dict):
        return part
    if isinstance(part.get("text"), str):
        return {**part, "text": edit(part["text"])}
    response = part.get("functionResponse")
    if isinstance(response, dict) and "response" in response:
        return {**part, "functionResponse": {**response, "response": _edit_value(response["response"], edit)}}
    return part


def _edit_content(content: Any, edit: TextEdit) -> Any:
    if isinstance(content, str):
        return edit(content)
    if isinstance(content, dict) and isinstance(content.get("parts"), list):
        return {**content, "parts": [_edit_part(p, edit) for p in content["parts"]]}
    return content


def map_request_text(request: dict[str, Any], edit: TextEdit) -> dict[str, Any]:
    """The request with `edit` applied to the system instruction, every text part of
    the contents and every string of a function response."""
    inner = dict(generate_request(request))
    for key in ("systemInstruction", "system_instruction"):
        if key in inner:
            inner[key] = _edit_content(inner[key], edit)
    if isinstance(inner.get("contents"), list):
        inner["contents"] = [_edit_content(c, edit) for c in inner["contents"]]
    return _with_generate(request, inner)


def add_system_text(request: dict[str, Any], text: str, position: SystemPosition) -> dict[str, Any]:
    """`text` as a part before or after the system instruction's parts."""
    inner = dict(generate_request(request))
    key = "system_instruction" if "system_instruction" in inner else "systemInstruction"
    system = inner.get(key)
    part = {"text": text}
    if isinstance(system, str) and system:
        inner[key] = f"{text}\n\n{system}" if position == "prepend" else f"{system}\n\n{text}"
    elif isinstance(system, dict) and isinstance(system.get("parts"), list) and system["parts"]:
        old = system["parts"]
        inner[key] = {**system, "parts": [part, *old] if position == "prepend" else [*old, part]}
    else:
        inner[key] = {"parts": [part]}
    return _with_generate(request, inner)


def blocked_request(notice: str) -> dict[str, Any]:
    """Google's error shape; the google-genai SDK raises `ClientError` with the message."""
    return {"error": {"code": 403, "message": notice, "status": "PERMISSION_DENIED"}}


# -- what a judge sees ------------------------------------------------------------------


def tool_definition(request: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    tools = generate_request(request).get("tools")
    for tool in tools if isinstance(tools, list) else []:
        declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
        for declaration in declarations if isinstance(declarations, list) else []:
            if isinstance(declaration, dict) and declaration.get("name") == name:
                schema = declaration.get("parameters", declaration.get("parametersJsonSchema"))
                return {"description": declaration.get("description"), "parameters": schema}
    return None


def _result_text(response: Any) -> tuple[str, bool]:
    """A function response as text, and whether it reports an error."""
    if isinstance(response, dict):
        is_error = "error" in response
        only = response.get("error" if is_error else "output")
        if isinstance(only, str) and len(response) == 1:
            return only, is_error
        return json.dumps(response, ensure_ascii=False), is_error
    return json.dumps(response, ensure_ascii=False), False


def recent_tool_calls(request: dict[str, Any] | None, count: int) -> list[PastCall]:
    """Calls matched to their responses by id when both carry one, else in order by name."""
    if count <= 0:
        return []
    calls: list[dict[str, Any]] = []
    responses: list[dict[str, Any]] = []
    for content in contents(request):
        for part in parts(content):
            if isinstance(part.get("functionCall"), dict):
                calls.append(part["functionCall"])
            elif isinstance(part.get("functionResponse"), dict):
                responses.append(part["functionResponse"])
    past = []
    for call in calls:
        match = next(
            (
                r
                for r in responses
                if (r.get("id") == call.get("id") if call.get("id") else r.get("name") == call.get("name"))
            ),
            None,
        )
        if match is not None:
            responses.remove(match)
        result, is_error = _result_text(match.get("response")) if match is not None else (None, False)
        past.append(PastCall(str(call.get("name", "")), tool_arguments(call.get("args", {})), result, is_error))
    return past[-count:]


# -- sessions ---------------------------------------------------------------------------


def session_key(request: dict[str, Any]) -> str | None:
    """Gemini CLI's `session_id` (Code Assist requests carry it), else a fingerprint of
    the system instruction and the first user content."""
    inner = generate_request(request)
    session = inner.get("session_id")
    if isinstance(session, str) and session:
        return "gc-" + session
    users = [c for c in contents(request) if is_user(c)]
    system = inner.get("systemInstruction", inner.get("system_instruction"))
    return conversation_fingerprint(NAME, system, parts(users[0]) if users else None)


SETTINGS = {
    "max_tokens": ("maxOutputTokens",),
    "temperature": ("temperature",),
    "top_p": ("topP",),
    "top_k": ("topK",),
    "stop_sequences": ("stopSequences",),
    "seed": ("seed",),
    "frequency_penalty": ("frequencyPenalty",),
    "presence_penalty": ("presencePenalty",),
    "choice_count": ("candidateCount",),
}


def request_settings(request: dict[str, Any]) -> RequestSettings:
    return settings_from(generate_request(request).get("generationConfig"), SETTINGS)


def tool_definitions(request: dict[str, Any]) -> list[ToolDefinition]:
    """Function declarations; built-in tools (`googleSearch`, `codeExecution`) by their key."""
    tools = generate_request(request).get("tools")
    found = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        for key in tool:
            if key != "functionDeclarations":
                found.append(ToolDefinition(key, kind=key))
        declarations = tool.get("functionDeclarations")
        for declaration in declarations if isinstance(declarations, list) else []:
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                schema = declaration.get("parameters", declaration.get("parametersJsonSchema"))
                found.append(ToolDefinition(declaration["name"], declaration.get("description"), schema))
    return found
