"""Reading OpenAI Chat Completions response bodies (`chat.completion`)."""

from __future__ import annotations

from typing import Any

from interlock.dialects.common import content_text, int_field, parse_arguments, string_field
from interlock.neutral import ToolCall, Usage


def messages(response: dict[str, Any]) -> list[dict[str, Any]]:
    choices = response.get("choices")
    if not isinstance(choices, list):
        return []
    return [
        choice["message"] for choice in choices if isinstance(choice, dict) and isinstance(choice.get("message"), dict)
    ]


def response_text(response: dict[str, Any]) -> str:
    return "".join(content_text(message.get("content")) for message in messages(response))


def usage(response: dict[str, Any]) -> Usage:
    reported = response.get("usage")
    if not isinstance(reported, dict):
        return Usage()
    prompt = int_field(reported, "prompt_tokens")
    cached = int_field(reported.get("prompt_tokens_details"), "cached_tokens")
    return Usage(
        input_tokens=None if prompt is None else prompt - (cached or 0),
        output_tokens=int_field(reported, "completion_tokens"),
        cache_read_tokens=cached,
        cache_write_tokens=None,
    )


def reasoning_tokens(response: dict[str, Any]) -> int | None:
    reported = response.get("usage")
    return (
        int_field(reported.get("completion_tokens_details"), "reasoning_tokens") if isinstance(reported, dict) else None
    )


def stop_reason(response: dict[str, Any]) -> str | None:
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return string_field(choices[0], "finish_reason")
    return None


def tool_calls(response: dict[str, Any]) -> list[ToolCall]:
    found: list[ToolCall] = []
    for message in messages(response):
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                found.append(_tool_call(string_field(call, "id"), function, len(found)))
        if isinstance(message.get("function_call"), dict):
            found.append(_tool_call(None, message["function_call"], len(found)))
    return found


def _tool_call(call_id: str | None, function: dict[str, Any], index: int) -> ToolCall:
    arguments = function.get("arguments")
    return ToolCall(
        id=call_id,
        name=string_field(function, "name") or "",
        arguments=parse_arguments(arguments) if isinstance(arguments, str) else arguments,
        index=index,
    )
