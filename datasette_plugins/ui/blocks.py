"""Provider bodies as neutral blocks, for display and diffing.

Reads the native JSON the recorder stores (OpenAI Chat Completions and Anthropic
Messages requests and responses) into a system prompt, messages made of blocks (text,
image, tool call, tool result, thinking), parameters, and for a response its stop reason
and usage. A block this module does not understand becomes an `other` block carrying its
JSON, so nothing is hidden. Other dialects return None: the caller shows plain JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

BlockKind = Literal["text", "image", "tool_call", "tool_result", "thinking", "redacted_thinking", "other"]

OPENAI_CHAT = "openai-chat"
ANTHROPIC_MESSAGES = "anthropic-messages"
DIALECTS = (OPENAI_CHAT, ANTHROPIC_MESSAGES)
_DATA_URL_PREVIEW = 80


@dataclass(frozen=True)
class Block:
    """One piece of a message. `text` is what a person reads: the text, the thinking, the
    tool result, a tool call's pretty-printed arguments, or an `other` block's JSON."""

    kind: BlockKind
    text: str = ""
    tool_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False
    label: str | None = None  # the native type, when it says more than `kind`

    def key(self) -> str:
        """Identity for aligning two versions of a message: equal keys, equal blocks."""
        return json.dumps([self.kind, self.tool_id, self.tool_name, self.is_error, self.label, self.text])


@dataclass(frozen=True)
class Message:
    role: str
    blocks: tuple[Block, ...]

    def key(self) -> str:
        return json.dumps([self.role, [block.key() for block in self.blocks]])


@dataclass(frozen=True)
class RequestView:
    """A request: `system` is Anthropic's system prompt (OpenAI keeps system and developer
    prompts as messages); `params` is every other top-level field (model, tools, ...)."""

    system: tuple[Block, ...]
    messages: tuple[Message, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResponseView:
    """A response (or a reassembled stream): the assistant message and how it ended."""

    message: Message
    stop_reason: str | None
    model: str | None
    usage: dict[str, Any] | None
    params: dict[str, Any] = field(default_factory=dict)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _arguments_text(arguments: Any) -> str:
    """Tool arguments pretty-printed; OpenAI sends them as a JSON string."""
    if isinstance(arguments, str):
        try:
            return pretty_json(json.loads(arguments))
        except ValueError:
            return arguments
    return pretty_json(arguments)


def _image_text(source: Any) -> str:
    if not isinstance(source, dict):
        return pretty_json(source)
    url = source.get("url")
    if isinstance(url, str):
        return url if len(url) <= _DATA_URL_PREVIEW else f"{url[:_DATA_URL_PREVIEW]}… ({len(url):,} characters)"
    data = source.get("data")
    size = f", {len(data):,} base64 characters" if isinstance(data, str) else ""
    return f"{source.get('type', 'image')} {source.get('media_type', '')}{size}".strip()


def _other(value: Any, label: str | None = None) -> Block:
    kind = value.get("type") if isinstance(value, dict) else None
    return Block("other", pretty_json(value), label=label or (str(kind) if kind else None))


# OpenAI Chat Completions


def _openai_parts(content: Any) -> list[Block]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Block("text", content)]
    if not isinstance(content, list):
        return [_other(content)]
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append(Block("text", part["text"]))
        elif kind == "refusal":
            blocks.append(Block("text", str(part.get("refusal", "")), label="refusal"))
        elif kind == "image_url":
            blocks.append(Block("image", _image_text(part.get("image_url"))))
        else:
            blocks.append(_other(part))
    return blocks


def _openai_tool_calls(tool_calls: Any) -> list[Block]:
    if not isinstance(tool_calls, list):
        return [] if tool_calls is None else [_other(tool_calls, "tool_calls")]
    blocks = []
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            blocks.append(_other(call, "tool_call"))
            continue
        blocks.append(
            Block(
                "tool_call",
                _arguments_text(function.get("arguments", "")),
                tool_id=call.get("id"),
                tool_name=str(function.get("name", "")),
            )
        )
    return blocks


def _openai_message(message: Any) -> Message:
    if not isinstance(message, dict):
        return Message("?", (_other(message),))
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
        blocks.append(_other(message["function_call"], "function_call"))
    return Message(role, tuple(blocks))


def _openai_request(body: dict[str, Any]) -> RequestView:
    messages = body.get("messages")
    parsed = [_openai_message(m) for m in messages] if isinstance(messages, list) else []
    params = {k: v for k, v in body.items() if k != "messages"}
    return RequestView((), tuple(parsed), params)


def _openai_response(body: dict[str, Any]) -> ResponseView:
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = _openai_message(choice.get("message", {"role": "assistant"}))
    params = {k: v for k, v in body.items() if k not in ("choices", "usage", "model")}
    if isinstance(choices, list) and len(choices) > 1:
        params["other_choices"] = choices[1:]
    return ResponseView(message, choice.get("finish_reason"), body.get("model"), body.get("usage"), params)


# Anthropic Messages


def _anthropic_block(block: Any) -> Block:
    if isinstance(block, str):
        return Block("text", block)
    if not isinstance(block, dict):
        return _other(block)
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return Block("text", block["text"])
    if kind == "thinking":
        return Block("thinking", str(block.get("thinking", "")))
    if kind == "redacted_thinking":
        data = block.get("data")
        size = f"{len(data):,} characters of encrypted thinking" if isinstance(data, str) else ""
        return Block("redacted_thinking", size)
    if kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        return Block(
            "tool_call",
            _arguments_text(block.get("input", {})),
            tool_id=block.get("id"),
            tool_name=str(block.get("name", "")),
            label=None if kind == "tool_use" else kind,
        )
    if kind == "tool_result":
        content = block.get("content")
        parts = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        text = "\n".join(_anthropic_block(part).text for part in parts)
        return Block("tool_result", text, tool_id=block.get("tool_use_id"), is_error=bool(block.get("is_error")))
    if kind == "image":
        return Block("image", _image_text(block.get("source")))
    return _other(block)


def _anthropic_blocks(content: Any) -> tuple[Block, ...]:
    if content is None:
        return ()
    if isinstance(content, list):
        return tuple(_anthropic_block(block) for block in content)
    return (_anthropic_block(content),)


def _anthropic_message(message: Any) -> Message:
    if not isinstance(message, dict):
        return Message("?", (_other(message),))
    return Message(str(message.get("role", "?")), _anthropic_blocks(message.get("content")))


def _anthropic_request(body: dict[str, Any]) -> RequestView:
    messages = body.get("messages")
    parsed = [_anthropic_message(m) for m in messages] if isinstance(messages, list) else []
    params = {k: v for k, v in body.items() if k not in ("messages", "system")}
    return RequestView(_anthropic_blocks(body.get("system")), tuple(parsed), params)


def _anthropic_response(body: dict[str, Any]) -> ResponseView:
    message = Message(str(body.get("role", "assistant")), _anthropic_blocks(body.get("content")))
    skip = ("content", "usage", "model", "stop_reason", "role")
    params = {k: v for k, v in body.items() if k not in skip}
    return ResponseView(message, body.get("stop_reason"), body.get("model"), body.get("usage"), params)


# Entry points


def parse_request(dialect: str, body: Any) -> RequestView | None:
    """The request as blocks, or None when the dialect or the body is not understood."""
    if not isinstance(body, dict) or not isinstance(body.get("messages", []), list):
        return None
    if dialect == OPENAI_CHAT:
        return _openai_request(body)
    if dialect == ANTHROPIC_MESSAGES:
        return _anthropic_request(body)
    return None


def parse_response(dialect: str, body: Any) -> ResponseView | None:
    """The response as blocks, or None when the dialect or the body is not understood."""
    if not isinstance(body, dict):
        return None
    if dialect == OPENAI_CHAT and "choices" in body:
        return _openai_response(body)
    if dialect == ANTHROPIC_MESSAGES and "content" in body:
        return _anthropic_response(body)
    return None


def parse_messages(dialect: str, messages: list[Any]) -> list[Message]:
    """Request messages (e.g. the tail of a conversation) as blocks."""
    if dialect == OPENAI_CHAT:
        return [_openai_message(m) for m in messages]
    if dialect == ANTHROPIC_MESSAGES:
        return [_anthropic_message(m) for m in messages]
    return []
