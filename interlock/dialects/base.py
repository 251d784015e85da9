"""The dialect contract: everything one wire format knows, behind one object.

A dialect package (`interlock/dialects/<name>/`) subclasses `Dialect` and is listed in
the registry (`interlock.dialects`). Nothing outside the dialect packages branches on a
dialect: the addon looks the object up once per call and asks it. A dialect knows its
provider's JSON and SSE shapes and nothing about mitmproxy or SQLite; it turns policy
decisions back into valid native events through its stream and body rewriters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from interlock.dialects.common import TextEdit, string_field
from interlock.neutral import (
    Message,
    PastCall,
    Reassembly,
    RequestSettings,
    RequestView,
    ResponseView,
    ToolCall,
    ToolDefinition,
    Usage,
)
from interlock.sse import SSEEvent, parse_all

if TYPE_CHECKING:
    from interlock.engine.stream import StreamRewriter
    from interlock.policy.base import PolicyContext
    from interlock.policy.chain import PolicyChain

SystemPosition = Literal["prepend", "append"]


@dataclass(frozen=True, slots=True)
class DefaultProvider:
    """A provider this dialect is spoken on out of the box: hosts (globs allowed), the
    request paths (without query string) of its LLM routes, and its name in
    OpenTelemetry's GenAI conventions (`gen_ai.provider.name`; None: `name` itself)."""

    name: str
    hosts: tuple[str, ...]
    paths: tuple[str, ...]
    otel_name: str | None = None


class Reassembler(ABC):
    """Rebuilds a stream, fed event by event as it passes, into the body the
    non-streaming endpoint would have returned."""

    @abstractmethod
    def feed(self, event: SSEEvent) -> bool:
        """Take one upstream event; True for the first event that carries generated
        content (text, thinking or a tool call), which marks the time to first token;
        False for every other event."""

    @abstractmethod
    def result(self) -> Reassembly:
        """The message so far, with notes on what was malformed or missing."""


class WebSocketFrames(ABC):
    """A dialect's conversation over a WebSocket: JSON text frames; the client asks for
    each response in one frame (the turn's request body), the server answers each event
    as one frame holding the JSON its SSE stream carries in that event's `data:`."""

    @abstractmethod
    def starts_turn(self, frame: dict[str, Any]) -> bool:
        """A client frame asking for a response: its JSON is the turn's request body."""

    @abstractmethod
    def ends_turn(self, event: dict[str, Any]) -> bool:
        """A server frame that is the turn's last (its terminal or error event)."""

    @abstractmethod
    def blocked_frame(self, status: int, notice: str) -> dict[str, Any]:
        """The server frame answering a turn whose request a policy blocked (`status`:
        the dialect's `blocked_status`)."""

    @abstractmethod
    def error_frame(self, status: int, error: dict[str, Any]) -> dict[str, Any]:
        """The server frame carrying a dialect error body (e.g. `Dialect.no_match_error`)
        answered with `status`; the turn's last frame."""


class Dialect(ABC):
    """One wire format."""

    name: ClassVar[str]
    default_providers: ClassVar[tuple[DefaultProvider, ...]]
    # What OpenTelemetry's GenAI conventions call one call of this format
    # (`gen_ai.operation.name`: `chat`, `generate_content`, ...).
    operation_name: ClassVar[str]
    # The (status, JSON body) a blocked request is answered with.
    blocked_status: ClassVar[int] = 403
    # The status a call is answered with when upstream went silent before its first byte.
    timeout_status: ClassVar[int] = 504
    # The status a replayed request no recorded call matches is answered with: one the
    # SDKs raise at once, without retrying (not 5xx or 429).
    no_match_status: ClassVar[int] = 404
    # Where a request body keeps its conversation, oldest message first, as an SQLite JSON
    # path (e.g. "$.messages"): the messages `messages_view` reads. SQL uses it to cut the
    # tail of a long conversation out of a stored body without loading it (the session page).
    messages_path: ClassVar[str]
    # The WebSocket transport its provider also offers, if any.
    websocket: ClassVar[WebSocketFrames | None] = None
    # Where a request names an earlier response it continues (see `chained_on`), as an
    # SQLite JSON path, or None: the session page keeps such a call in that response's thread.
    chain_path: ClassVar[str | None] = None

    # -- requests ----------------------------------------------------------------------

    def read_request(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The request as policies and every reader below see it, from the URL path
        (query string included) and the JSON body: a dialect whose model is named in
        the path adds it here (as `model`). The body itself by default."""
        return body

    def write_request(self, path: str, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The path and JSON body that carry `request` (as policies left it) upstream:
        the inverse of `read_request`. Unchanged by default."""
        return path, request

    def request_model(self, request: dict[str, Any]) -> str | None:
        return string_field(request, "model")

    def with_model(self, request: dict[str, Any], model: str) -> dict[str, Any]:
        """The request asking for another model."""
        return {**request, "model": model}

    def request_streams(self, request: dict[str, Any], path: str = "") -> bool:
        """Whether the client asked for a stream (in the body, or in the URL `path`)."""
        return request.get("stream") is True

    @abstractmethod
    def request_settings(self, request: dict[str, Any]) -> RequestSettings:
        """The generation settings the request names (token limit, temperature, ...)."""

    @abstractmethod
    def tool_definitions(self, request: dict[str, Any]) -> list[ToolDefinition]:
        """Every tool the request offers the model, in its order."""

    @abstractmethod
    def last_user_text(self, request: dict[str, Any]) -> str:
        """All text of the last user message, as sent (for full-text search)."""

    @abstractmethod
    def typed_text(self, request: dict[str, Any]) -> str:
        """The words the person typed last: the latest user message with text of its
        own, without what an agent wraps around it (system reminders, tool results)."""

    @abstractmethod
    def map_request_text(self, request: dict[str, Any], edit: TextEdit) -> dict[str, Any]:
        """The request with `edit` applied to every text it carries."""

    @abstractmethod
    def add_system_text(self, request: dict[str, Any], text: str, position: SystemPosition) -> dict[str, Any]:
        """The request with `text` added at the start or end of its system prompt."""

    @abstractmethod
    def blocked_request(self, notice: str) -> dict[str, Any]:
        """The dialect's error body for a request a policy blocked."""

    def continue_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        """The request as it must go upstream after the policies: a dialect whose provider
        stores conversations adds what earlier policy decisions kept from the client
        (recording it in `ctx`). The same object when nothing is added."""
        return request

    # -- upstream failures -------------------------------------------------------------

    @abstractmethod
    def timeout_error(self, message: str) -> dict[str, Any]:
        """The dialect's error body (sent with `timeout_status`) for a call whose
        upstream sent nothing for too long."""

    @abstractmethod
    def limit_error(self, message: str, retry: bool) -> dict[str, Any]:
        """The dialect's 429 body for a request a policy refused on purpose (a budget
        spent), as the provider words its own rate-limit or quota errors, so the SDKs
        raise their rate-limit error; `retry`: trying again soon may succeed (a limit
        that resets within a minute) rather than a quota spent for longer."""

    @abstractmethod
    def no_match_error(self, message: str) -> dict[str, Any]:
        """The dialect's error body (sent with `no_match_status`) for a replayed request
        that no recorded call matches; `message` says which call came closest and why."""

    @abstractmethod
    def stream_error(self, message: str) -> bytes:
        """The dialect's SSE error event that ends a stream whose upstream fell silent."""

    @abstractmethod
    def keepalive(self) -> bytes | None:
        """The event a held stream sends the client while a policy decides, so the
        connection never goes silent: one every client of the format skips (an SSE
        comment, or a native ping) and the reassembler ignores; None when the format's
        clients skip nothing (then a held stream sends nothing until it is decided)."""

    # -- responses ---------------------------------------------------------------------

    @abstractmethod
    def response_text(self, response: dict[str, Any]) -> str:
        """All assistant text of a (reassembled) response."""

    def response_model(self, response: dict[str, Any]) -> str | None:
        return string_field(response, "model")

    @abstractmethod
    def usage(self, response: dict[str, Any]) -> Usage:
        """Usage with `input_tokens` excluding cache reads and writes."""

    def reasoning_tokens(self, response: dict[str, Any]) -> int | None:
        """The output tokens spent on reasoning, when the provider reports them apart
        (they are counted in `usage().output_tokens` too). None by default."""
        return None

    def generation_id(self, response: dict[str, Any]) -> str | None:
        """The provider's id of this response (`chatcmpl-...`, `msg_...`): its `id` by default."""
        return string_field(response, "id")

    @abstractmethod
    def stop_reason(self, response: dict[str, Any]) -> str | None: ...

    @abstractmethod
    def tool_calls(self, response: dict[str, Any]) -> list[ToolCall]: ...

    # -- streams and policy decisions ----------------------------------------------------

    @abstractmethod
    def reassembler(self) -> Reassembler: ...

    def reassemble(self, events: Iterable[SSEEvent]) -> Reassembly:
        """A whole stream at once."""
        reassembler = self.reassembler()
        for event in events:
            reassembler.feed(event)
        return reassembler.result()

    @abstractmethod
    def stream_rewriter(self, chain: PolicyChain, ctx: PolicyContext) -> StreamRewriter:
        """Applies the chain to a live stream of this dialect, keeping it valid."""

    def json_array_as_sse(self, chunks: list[Any], /) -> bytes | None:
        """A stream sent as one JSON array of chunks (Gemini without `alt=sse`, buffered
        by mitmproxy) as the SSE body its stream rewriter reads; None when the format has
        no such stream, or the array is not one."""
        return None

    def sse_as_json_array(self, body: bytes, /) -> bytes:
        """The policed SSE body back as the JSON array of its events' data."""
        return b"[" + b",".join(event.data.encode() for event in parse_all(body) if event.data) + b"]"

    @abstractmethod
    async def rewrite_body(self, chain: PolicyChain, ctx: PolicyContext, body: dict[str, Any], /) -> dict[str, Any]:
        """Applies the chain to a whole (non-streamed) response body."""

    # -- what a judge sees ---------------------------------------------------------------

    @abstractmethod
    def tool_definition(self, request: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        """The tool's description and input schema as the client declared them."""

    @abstractmethod
    def recent_tool_calls(self, request: dict[str, Any] | None, count: int) -> list[PastCall]:
        """The last `count` tool calls of the conversation, oldest first, with results."""

    # -- sessions and views ----------------------------------------------------------------

    @abstractmethod
    def session_key(self, request: dict[str, Any]) -> str | None:
        """A key shared by the calls of one agent session, read from the request body."""

    def session_header_key(self, headers: Mapping[str, str]) -> str | None:
        """A session key the client sends in its request headers (Codex's conversation
        ids); it wins over the body's."""
        return None

    def chained_on(self, request: dict[str, Any]) -> str | None:
        """The id of an earlier response this request continues on the provider's side
        (Responses' `previous_response_id`): the call joins that response's session."""
        return None

    def response_id(self, response: dict[str, Any]) -> str | None:
        """The id a later request names to continue this response (see `chained_on`)."""
        return None

    @abstractmethod
    def request_view(self, body: dict[str, Any]) -> RequestView | None:
        """The request as blocks for people, or None when the body is not understood."""

    @abstractmethod
    def response_view(self, body: dict[str, Any]) -> ResponseView | None:
        """The response as blocks for people, or None when the body is not understood."""

    @abstractmethod
    def messages_view(self, messages: list[Any]) -> list[Message]:
        """Request messages (e.g. the tail of a conversation) as blocks."""
