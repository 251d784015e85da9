"""The contract every dialect codec fulfils: pure functions over one wire format.

A codec knows one provider's JSON and SSE shapes and nothing about mitmproxy, policies
or SQLite. Streams are handed over as `interlock.sse.SSEEvent`s.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from interlock.codecs.common import last_user_text, string_field
from interlock.sse import SSEEvent
from recorder.models import Usage


@dataclass(slots=True)
class ToolCall:
    """A complete tool call in the neutral view."""

    id: str | None
    name: str
    arguments: Any  # parsed JSON when the arguments parse, else the raw string
    index: int = 0  # position among the response's tool calls


@dataclass(slots=True)
class Reassembly:
    """A stream rebuilt into the message the non-streaming endpoint would have returned."""

    message: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)  # what was malformed or missing


class Codec(ABC):
    """One dialect's wire format."""

    dialect: ClassVar[str]

    # Both dialects put the model and the stream flag at the top level and keep the
    # conversation in `messages`.
    def request_model(self, request: dict[str, Any]) -> str | None:
        return string_field(request, "model")

    def request_streams(self, request: dict[str, Any]) -> bool:
        return request.get("stream") is True

    def prompt_text(self, request: dict[str, Any]) -> str:
        """Text of the last user message (for search and the terminal)."""
        return last_user_text(request)

    @abstractmethod
    def response_text(self, response: dict[str, Any]) -> str:
        """All assistant text of a (reassembled) response."""

    @abstractmethod
    def response_model(self, response: dict[str, Any]) -> str | None: ...

    @abstractmethod
    def usage(self, response: dict[str, Any]) -> Usage:
        """Usage with `input_tokens` excluding cache reads and writes."""

    @abstractmethod
    def stop_reason(self, response: dict[str, Any]) -> str | None: ...

    @abstractmethod
    def tool_calls(self, response: dict[str, Any]) -> list[ToolCall]: ...

    @abstractmethod
    def reassemble(self, events: Iterable[SSEEvent]) -> Reassembly: ...

    @abstractmethod
    def is_content_event(self, event: SSEEvent) -> bool:
        """True for an event carrying generated content (text, thinking or tool call
        delta): the first one marks the time to first token."""
