"""OpenAI Chat Completions bodies as neutral blocks, for the UI and mitmweb.

A part this module does not understand becomes an `other` block carrying its JSON, so
nothing is hidden.
"""

from __future__ import annotations

from typing import Any

from interlock.dialects.view_parts import arguments_text, image_text, other
from interlock.neutral import Block, Message, RequestView, ResponseView


def _openai_parts(content: Any) -> list[Block]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Block("text", content)]
    if not isinstance(content, list):
        return [other(content)]
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append(Block("text", part["text"]))
        elif kind == "refusal":
            blocks.append(Block("text", str(part.get("refusal", "")), label="refusal"))
        elif kind == "image_url":
            blocks.append(Block("image", image_text(part.get("image_url"))))
        else:
            blocks.append(other(part))
    return blocks


def _openai_tool_calls(tool_calls: Any) -> list[Block]:
    if not isinstance(tool_calls, list):
        return [] if tool_calls is None else [other(tool_calls, "tool_calls")]
    blocks = []
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            blocks.append(other(call, "tool_call"))
            continue
        blocks.append(
            Block(
                "tool_call",
                arguments_text(function.get("arguments", "")),
                tool_id=call.get("id"),
                tool_name=str(function.get("name", "")),
            )
        )
    return blocks


def message_view(message: Any) -> Message:
    if not isinstance(message, dict):
        return Message("?", (other(message),))
    role = str(message.get("role", "?"))
    if role == "tool":
        text = "\n".join(block.text for block in _openai_parts(message.get("content")))
        return Message(role, (Block("tool_result", text, tool_id=message.get("tool_call_id")),))
    blocks: list[Block] = []
    for key in ("reasoning_content", "reasoning"):
        if isinstance(message.get(key), str) and message[key]:
            blocks.append(Block("thinking", message[key]))
    blocks += _openai_parts(message.get("content"))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        blocks.append(Block("text", message["refusal"], label="refusal"))
    blocks += _openai_tool_calls(message.get("tool_calls"))
    if message.get("function_call") is not None:
        blocks.append(other(message["function_call"], "function_call"))
    return Message(role, tuple(blocks))


def request_view(body: dict[str, Any]) -> RequestView | None:
    """The request as blocks, or None when it has no messages list."""
    if not isinstance(body.get("messages", []), list):
        return None
    messages = body.get("messages")
    parsed = [message_view(m) for m in messages] if isinstance(messages, list) else []
    params = {k: v for k, v in body.items() if k != "messages"}
    return RequestView((), tuple(parsed), params)


def response_view(body: dict[str, Any]) -> ResponseView | None:
    """The response as blocks, or None when it is not a response body."""
    if "choices" not in body:
        return None
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = message_view(choice.get("message", {"role": "assistant"}))
    params = {k: v for k, v in body.items() if k not in ("choices", "usage", "model")}
    if isinstance(choices, list) and len(choices) > 1:
        params["other_choices"] = choices[1:]
    return ResponseView(message, choice.get("finish_reason"), body.get("model"), body.get("usage"), params)


def messages_view(messages: list[Any]) -> list[Message]:
    return [message_view(m) for m in messages]
