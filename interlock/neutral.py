"""Neutral types every dialect maps its wire format to, and every other layer reads.

Policies see tool calls and usage in these shapes, the recorder turns them into rows,
the UI and mitmweb's content view show conversations as `RequestView`/`ResponseView`.
Nothing here knows a wire format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel


class Usage(BaseModel):
    """Token counts as the provider reported them.

    `input_tokens` excludes cache reads and writes (Anthropic's meaning); dialects whose
    wire format includes them (OpenAI's prompt_tokens) subtract them.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None

    @property
    def reported(self) -> bool:
        """The answer said how many tokens it took (input or output)."""
        return self.input_tokens is not None or self.output_tokens is not None

    @property
    def total(self) -> int:
        """Every token counted: input, cache reads and writes, output (0 for those not reported)."""
        counts = (self.input_tokens, self.cache_read_tokens, self.cache_write_tokens, self.output_tokens)
        return sum(count or 0 for count in counts)


@dataclass(frozen=True, slots=True)
class RequestSettings:
    """The generation settings a request asks for, where it names them (None: not set):
    what OpenTelemetry's `gen_ai.request.*` attributes carry."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    stop_sequences: tuple[str, ...] = ()
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    choice_count: int | None = None  # candidates asked for (OpenAI's `n`)


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool the client offers the model: `kind` is `function` for a JSON-schema tool,
    else the native tool type (a custom or built-in tool)."""

    name: str
    description: str | None = None
    parameters: Any = None  # the input schema, when it has one
    kind: str = "function"


@dataclass(slots=True)
class ToolCall:
    """A complete tool call."""

    id: str | None
    name: str
    arguments: Any  # parsed JSON when the arguments parse, else the raw string
    index: int = 0  # position among the response's tool calls


@dataclass(slots=True)
class Reassembly:
    """A stream rebuilt into the message the non-streaming endpoint would have returned."""

    message: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)  # what was malformed or missing


@dataclass(frozen=True, slots=True)
class PastCall:
    """An earlier tool call of a conversation and what it returned (for a judge)."""

    name: str
    arguments: Any
    result: str | None  # None when no result was sent back (yet)
    is_error: bool = False


BlockKind = Literal["text", "image", "tool_call", "tool_result", "thinking", "redacted_thinking", "other"]


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
    """A request: `system` is a system prompt kept apart from the messages (Anthropic);
    `params` is every other top-level field (model, tools, ...)."""

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
