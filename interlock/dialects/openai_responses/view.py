"""OpenAI Responses bodies as neutral blocks, for the UI and mitmweb.

A request's `instructions` are its system prompt and its `input` items its messages: a
message item is a message of its role, a function or custom tool call an assistant
message with a `tool_call` block, a call's output a `tool` message with a `tool_result`
block, a reasoning item an assistant message with its summaries as `thinking`. A
response's `output` items become one assistant message. An item this module does not
understand becomes an `other` block carrying its JSON, so nothing is hidden.
"""

from __future__ import annotations

from typing import Any

from interlock.dialects.openai_responses.request import CALL_ITEMS, OUTPUT_ITEMS, TEXT_PARTS, input_items, part_text
from interlock.dialects.view_parts import arguments_text, image_text, other
from interlock.neutral import Block, Message, RequestView, ResponseView


def _parts(content: Any) -> list[Block]:
    if isinstance(content, str):
        return [Block("text", content)]
    if not isinstance(content, list):
        return [] if content is None else [other(content)]
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_PARTS and isinstance(part.get("text"), str):
            blocks.append(Block("text", part["text"]))
        elif kind == "refusal":
            blocks.append(Block("text", str(part.get("refusal", "")), label="refusal"))
        elif kind == "input_image":
            blocks.append(Block("image", image_text({"url": part.get("image_url") or part.get("file_id")})))
        else:
            blocks.append(other(part))
    return blocks


def item_blocks(item: Any) -> tuple[str, list[Block]]:
    """(role, blocks) of one input or output item (a string `input` is one user message)."""
    if isinstance(item, str):
        return "user", [Block("text", item)]
    if not isinstance(item, dict):
        return "?", [other(item)]
    kind = item.get("type")
    if kind in CALL_ITEMS:
        label = None if kind == "function_call" else str(kind)
        text = arguments_text(item.get("arguments", "")) if kind == "function_call" else str(item.get("input", ""))
        return "assistant", [
            Block("tool_call", text, tool_id=item.get("call_id"), tool_name=str(item.get("name", "")), label=label)
        ]
    if kind in OUTPUT_ITEMS.values():
        output = item.get("output")
        text = output if isinstance(output, str) else part_text(output)
        return "tool", [
            Block(
                "tool_result",
                text,
                tool_id=item.get("call_id"),
                label=None if kind == "function_call_output" else str(kind),
            )
        ]
    if kind == "reasoning":
        summaries = [s.get("text", "") for s in item.get("summary") or [] if isinstance(s, dict)]
        blocks = [Block("thinking", str(text), label="reasoning summary") for text in summaries]
        blocks += [Block("thinking", str(p.get("text", ""))) for p in item.get("content") or [] if isinstance(p, dict)]
        if not blocks and item.get("encrypted_content"):
            blocks.append(
                Block("redacted_thinking", f"{len(str(item['encrypted_content'])):,} characters of encrypted reasoning")
            )
        return "assistant", blocks
    if "role" in item and kind in (None, "message"):
        return str(item.get("role")), _parts(item.get("content"))
    return "assistant", [other(item)]


def messages_view(messages: list[Any]) -> list[Message]:
    return [Message(role, tuple(blocks)) for role, blocks in map(item_blocks, messages)]


def request_view(body: dict[str, Any]) -> RequestView | None:
    """The request as blocks, or None when its `input` is neither a string nor a list."""
    if not isinstance(body.get("input", []), (str, list)):
        return None
    instructions = body.get("instructions")
    system = (Block("text", instructions),) if isinstance(instructions, str) and instructions else ()
    params = {k: v for k, v in body.items() if k not in ("input", "instructions")}
    return RequestView(system, tuple(messages_view(list(input_items(body)))), params)


def response_view(body: dict[str, Any]) -> ResponseView | None:
    """The response's output items as one assistant message, or None for another body."""
    if body.get("object") != "response" and not isinstance(body.get("output"), list):
        return None
    output = body.get("output")
    blocks = (
        [block for item in output if isinstance(output, list) for block in item_blocks(item)[1]]
        if isinstance(output, list)
        else []
    )
    params = {k: v for k, v in body.items() if k not in ("output", "usage", "model", "status")}
    status = body.get("status")
    details = body.get("incomplete_details")
    stop = details.get("reason") if status == "incomplete" and isinstance(details, dict) else status
    return ResponseView(Message("assistant", tuple(blocks)), stop, body.get("model"), body.get("usage"), params)
