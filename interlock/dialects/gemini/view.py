"""Gemini bodies as neutral blocks, for the UI and mitmweb: contents and parts, thought
summaries, function calls and responses, inline data. A part this module does not
understand becomes an `other` block carrying its JSON."""

from __future__ import annotations

from typing import Any

from interlock.dialects.gemini.request import generate_request, parts
from interlock.dialects.gemini.response import candidate_parts, first_candidate, generate_response
from interlock.dialects.view_parts import arguments_text, other, pretty_json
from interlock.neutral import Block, Message, RequestView, ResponseView

SIGNATURE_KEY = "thoughtSignature"


def _part(part: dict[str, Any]) -> Block:
    if isinstance(part.get("text"), str):
        return Block("thinking" if part.get("thought") else "text", part["text"])
    call = part.get("functionCall")
    if isinstance(call, dict):
        return Block(
            "tool_call",
            arguments_text(call.get("args", {})),
            tool_id=call.get("id"),
            tool_name=str(call.get("name", "")),
        )
    result = part.get("functionResponse")
    if isinstance(result, dict):
        payload = result.get("response")
        is_error = isinstance(payload, dict) and "error" in payload
        return Block(
            "tool_result",
            pretty_json(payload),
            tool_id=result.get("id"),
            tool_name=result.get("name"),
            is_error=is_error,
        )
    data = part.get("inlineData") or part.get("inline_data")
    if isinstance(data, dict):
        size = data.get("data")
        chars = f", {len(size):,} base64 characters" if isinstance(size, str) else ""
        return Block("image", f"{data.get('mimeType', data.get('mime_type', 'data'))}{chars}", label="inlineData")
    found = part.get("fileData") or part.get("file_data")
    if isinstance(found, dict):
        return Block("image", str(found.get("fileUri", found.get("file_uri", ""))), label="fileData")
    kind = next((key for key in part if key != SIGNATURE_KEY), None)
    return other(part, label=kind)


def _blocks(content: Any) -> tuple[Block, ...]:
    if isinstance(content, str):
        return (Block("text", content),)
    return tuple(_part(p) for p in parts(content))


def message_view(content: Any) -> Message:
    if not isinstance(content, dict):
        return Message("?", (other(content),))
    return Message(str(content.get("role", "user")), _blocks(content))


def request_view(body: dict[str, Any]) -> RequestView | None:
    """The request as blocks, or None when it has no contents list."""
    inner = generate_request(body)
    found = inner.get("contents")
    if not isinstance(found, list):
        return None
    system = inner.get("systemInstruction", inner.get("system_instruction"))
    skip = ("contents", "systemInstruction", "system_instruction")
    params = {k: v for k, v in inner.items() if k not in skip}
    if inner is not body:
        params.update((k, v) for k, v in body.items() if k != "request")
    return RequestView(_blocks(system) if system is not None else (), tuple(message_view(c) for c in found), params)


def response_view(body: dict[str, Any]) -> ResponseView | None:
    """The response as blocks (its first candidate), or None when it is not a response."""
    inner = generate_response(body)
    if "candidates" not in inner:
        return None
    candidate = first_candidate(inner)
    content = candidate.get("content")
    role = content.get("role", "model") if isinstance(content, dict) else "model"
    message = Message(str(role), tuple(_part(p) for p in candidate_parts(candidate)))
    params = {k: v for k, v in inner.items() if k not in ("candidates", "usageMetadata", "modelVersion")}
    params.update((k, v) for k, v in candidate.items() if k not in ("content", "finishReason"))
    return ResponseView(
        message, candidate.get("finishReason"), inner.get("modelVersion"), inner.get("usageMetadata"), params
    )


def messages_view(messages: list[Any]) -> list[Message]:
    return [message_view(m) for m in messages]
