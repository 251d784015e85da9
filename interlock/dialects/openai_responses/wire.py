"""Builds OpenAI Responses SSE events and bodies for what the rewriters add."""

from __future__ import annotations

import json
from typing import Any

from interlock.dialects.openai_responses.request import CALL_ITEMS
from interlock.sse import comment


def sse(payload: dict[str, Any]) -> bytes:
    """One typed event: its `event:` line names the payload's `type`."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event: {payload['type']}\ndata: {data}\n\n".encode()


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(item_id: str, text: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": "completed", "content": [text_part(text)], "role": "assistant"}


def message_events(item_id: str, text: str) -> list[dict[str, Any]]:
    """The events of a whole assistant message saying `text` (output_index and
    sequence_number are set when they are sent)."""
    where = {"item_id": item_id, "output_index": 0}
    part = {**where, "content_index": 0}
    return [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message_item(item_id, ""), "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **part, "part": text_part("")},
        {"type": "response.output_text.delta", **part, "delta": text, "logprobs": []},
        {"type": "response.output_text.done", **part, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **part, "part": text_part(text)},
        {"type": "response.output_item.done", "output_index": 0, "item": message_item(item_id, text)},
    ]


def call_item(item: dict[str, Any], name: str, arguments: Any) -> dict[str, Any]:
    """A function or custom tool call item with a new name and arguments."""
    field = CALL_ITEMS[str(item.get("type"))]
    value = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return {**item, "name": name, field: value}


def call_events(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a whole tool call item: added, its input in one delta, done."""
    field = CALL_ITEMS[str(item.get("type"))]
    kind = "function_call_arguments" if field == "arguments" else "custom_tool_call_input"
    where = {"item_id": item.get("id"), "output_index": 0}
    return [
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "status": "in_progress", field: ""}},
        {"type": f"response.{kind}.delta", **where, "delta": item[field]},
        {"type": f"response.{kind}.done", **where, field: item[field]},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
    ]


def blocked_response(response: dict[str, Any], notice: str) -> dict[str, Any]:
    """A non-streamed response whose only output is a message saying `notice`."""
    return {**response, "output": [message_item(f"msg_interlock_{response.get('id', '')}", notice)]}


def timeout_error(message: str) -> dict[str, Any]:
    """OpenAI's error body, as the `openai` SDK reads it (`error.message`)."""
    return {"error": {"message": message, "type": "server_error", "param": None, "code": "upstream_timeout"}}


def no_match_error(message: str) -> dict[str, Any]:
    """A 404 `invalid_request_error`: the openai SDK raises `NotFoundError`, no retry."""
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "replay_no_match"}}


def stream_error(message: str) -> bytes:
    """The API's top-level `error` event. It carries no `sequence_number`: it is sent
    after the rewriter has ended, which knows the numbers; clients read it by `type`."""
    return sse({"type": "error", "code": "upstream_timeout", "message": message, "param": None})


def keepalive() -> bytes:
    """An SSE comment (`: keepalive`): it has no `sequence_number`, and the openai SDK
    and Codex skip comment lines."""
    return comment("keepalive")
