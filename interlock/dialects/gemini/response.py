"""Reading Gemini response bodies (`GenerateContentResponse`; Code Assist wraps it as
`{response, traceId}`). Only the first candidate is read, as the SDKs' `.text` does."""

from __future__ import annotations

from typing import Any

from interlock.dialects.common import int_field, string_field
from interlock.neutral import ToolCall, Usage


def generate_response(body: dict[str, Any]) -> dict[str, Any]:
    """The GenerateContentResponse: Code Assist's `response`, else the body."""
    inner = body.get("response")
    return inner if isinstance(inner, dict) and "candidates" not in body else body


def first_candidate(body: dict[str, Any]) -> dict[str, Any]:
    candidates = generate_response(body).get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return {}


def candidate_parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    found = content.get("parts") if isinstance(content, dict) else None
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def is_text(part: dict[str, Any]) -> bool:
    """An answer's text part (not a thought summary)."""
    return isinstance(part.get("text"), str) and not part.get("thought")


def response_text(response: dict[str, Any]) -> str:
    return "".join(p["text"] for p in candidate_parts(first_candidate(response)) if is_text(p))


def response_model(response: dict[str, Any]) -> str | None:
    return string_field(generate_response(response), "modelVersion")


def usage(response: dict[str, Any]) -> Usage:
    """`promptTokenCount` includes the cached tokens; tool-use prompt tokens (code
    execution, grounding) are input too; thoughts are billed as output."""
    reported = generate_response(response).get("usageMetadata")
    prompt = int_field(reported, "promptTokenCount")
    cached = int_field(reported, "cachedContentTokenCount")
    tool_prompt = int_field(reported, "toolUsePromptTokenCount")
    candidates = int_field(reported, "candidatesTokenCount")
    thoughts = int_field(reported, "thoughtsTokenCount")
    input_tokens = None if prompt is None else prompt - (cached or 0) + (tool_prompt or 0)
    output = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    return Usage(input_tokens=input_tokens, output_tokens=output, cache_read_tokens=cached)


def reasoning_tokens(response: dict[str, Any]) -> int | None:
    return int_field(generate_response(response).get("usageMetadata"), "thoughtsTokenCount")


def generation_id(response: dict[str, Any]) -> str | None:
    return string_field(generate_response(response), "responseId")


def stop_reason(response: dict[str, Any]) -> str | None:
    return string_field(first_candidate(response), "finishReason")


def function_call(part: dict[str, Any]) -> dict[str, Any] | None:
    call = part.get("functionCall")
    return call if isinstance(call, dict) else None


def to_tool_call(call: dict[str, Any], index: int) -> ToolCall:
    args = call.get("args")
    return ToolCall(
        id=string_field(call, "id"),
        name=string_field(call, "name") or "",
        arguments={} if args is None else args,
        index=index,
    )


def tool_calls(response: dict[str, Any]) -> list[ToolCall]:
    found = [call for p in candidate_parts(first_candidate(response)) if (call := function_call(p)) is not None]
    return [to_tool_call(call, index) for index, call in enumerate(found)]
