"""Reading OpenAI Responses bodies (the `response` object, `object: "response"`).

Generated content is the `output` list: `message` items (`output_text` and `refusal`
parts), `reasoning` items (summaries), `function_call` items (`arguments`, a JSON
string) and `custom_tool_call` items (`input`, free text), each call with the `call_id`
its output must answer. Usage counts `input_tokens` with cache reads and writes
included (so they are subtracted here) and `output_tokens` with reasoning tokens included.
"""

from __future__ import annotations

from typing import Any

from interlock.dialects.common import int_field, parse_arguments, string_field
from interlock.dialects.openai_responses.request import CALL_ITEMS
from interlock.neutral import ToolCall, Usage


def output_items(response: dict[str, Any]) -> list[dict[str, Any]]:
    found = response.get("output")
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def item_text(item: dict[str, Any]) -> str:
    """The `output_text` of a message item."""
    content = item.get("content")
    if item.get("type") != "message" or not isinstance(content, list):
        return ""
    return "".join(
        part["text"]
        for part in content
        if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str)
    )


def response_text(response: dict[str, Any]) -> str:
    return "".join(item_text(item) for item in output_items(response))


def response_id(response: dict[str, Any]) -> str | None:
    """`resp_...`: what a request chained on this response names as its `previous_response_id`."""
    return string_field(response, "id")


def usage(response: dict[str, Any]) -> Usage:
    reported = response.get("usage")
    if not isinstance(reported, dict):
        return Usage()
    prompt = int_field(reported, "input_tokens")
    details = reported.get("input_tokens_details")
    cached, written = int_field(details, "cached_tokens"), int_field(details, "cache_write_tokens")
    return Usage(
        input_tokens=None if prompt is None else prompt - (cached or 0) - (written or 0),
        output_tokens=int_field(reported, "output_tokens"),
        cache_read_tokens=cached,
        cache_write_tokens=written,
    )


def reasoning_tokens(response: dict[str, Any]) -> int | None:
    reported = response.get("usage")
    return int_field(reported.get("output_tokens_details"), "reasoning_tokens") if isinstance(reported, dict) else None


def stop_reason(response: dict[str, Any]) -> str | None:
    """`completed`, `failed`, or why the response is incomplete (`max_output_tokens`...)."""
    status = string_field(response, "status")
    details = response.get("incomplete_details")
    if status == "incomplete" and isinstance(details, dict):
        return string_field(details, "reason") or status
    return status


def call_of(item: dict[str, Any], index: int) -> ToolCall | None:
    """The neutral tool call of a `function_call` / `custom_tool_call` item; a custom
    call's arguments are its raw `input` string."""
    field = CALL_ITEMS.get(str(item.get("type")))
    if field is None:
        return None
    raw = item.get(field)
    arguments: Any = raw if field == "input" or not isinstance(raw, str) else (parse_arguments(raw) if raw else {})
    return ToolCall(
        id=string_field(item, "call_id"), name=string_field(item, "name") or "", arguments=arguments, index=index
    )


def tool_calls(response: dict[str, Any]) -> list[ToolCall]:
    found: list[ToolCall] = []
    for item in output_items(response):
        call = call_of(item, len(found))
        if call is not None:
            found.append(call)
    return found
