"""Loopback mock of api.openai.com, api.anthropic.com and Google's Gemini hosts for end-to-end tests.

An aiohttp server on 127.0.0.1 (ephemeral port) in a background thread with its own
event loop. It serves the exact wire bytes built by `wire_scenarios`: POST
`/v1/chat/completions` (OpenAI Chat Completions), POST `/v1/responses` (OpenAI
Responses), POST `/v1/messages` (Anthropic Messages, any query string) and Gemini's
generateContent / streamGenerateContent routes (AI Studio, Vertex AI, Code Assist: see
`mock_gemini`). Every other path gets a JSON 404; model routes answer 401 without
`Authorization` or `x-api-key` (Gemini's: 403 without a key or a token).

Like the real Responses API, the mock stores the responses it generated: a request with
`previous_response_id` naming an unknown response is refused, and one that does not
answer every function or custom tool call of that response with its output item gets
`400 No tool output found for function call call_...`. Like the real Chat Completions
and Messages APIs, it refuses a history whose assistant tool calls are not each answered
by a tool message (OpenAI) or a `tool_result` block in the next message (Anthropic).

What to send comes from the `x-mock-scenario` header, else a `[[mock:SPEC]]` marker in
the last user message, else "text". A spec is one or more `+`-joined names, in any
order: at most one content scenario (`wire_scenarios.SCENARIOS`), at most one failure
(`FAILURES`; a failure alone is built on its own base scenario), and transport options:

- chunking (`CHUNKINGS`, or the `x-mock-chunking` header; the spec wins):
  `per-event` (the default: one write per event), `coalesce` (three events per write),
  `split` (every event over several writes, cut inside its first multi-byte UTF-8
  character when it has one), `mixed` (the whole stream re-cut at irregular sizes, so
  writes end mid-event and hold the end of one event and the start of the next);
- keep-alive comments (`KEEPALIVES`) before every third event: `keepalive`
  (`: keep-alive`) or `openrouter` (`: OPENROUTER PROCESSING`);
- `slow`: 50 ms between writes; `drip`: one second between writes (a slow provider);
- `stamp`: each write's `STAMP` placeholders (19 characters, in a scenario's text, as in
  `stamped`) become
  the time it is written (`time.monotonic_ns()`, 19 digits), so a client can measure each
  event's latency (the benchmarks);
- `pause`: a `PAUSE_S` pause before the message's end (Anthropic's `message_delta`,
  OpenAI's `finish_reason` chunk), so a test can act while a proxy holds complete tool
  calls;
- a content encoding (`ENCODINGS`: `gzip`, `deflate`, `br`, `zstd`), as a server that
  ignores `accept-encoding: identity` sends it: the header set, each write compressed
  and flushed on its own (streams), or the whole body compressed (JSON). `Exchange.sent`
  and `Exchange.writes` hold the bytes on the wire, compressed.

For example `[[mock:tools2+split+keepalive]]`, `[[mock:interleaved+coalesce]]` or
`[[mock:tools3+cut_before_finish]]`. Streams (`"stream": true`) are chunked
`text/event-stream`, with an optional delay before each write after the first
(`x-mock-delay-ms` header, else `slow`); `split` and `mixed` pause 1 ms between writes
otherwise, so the pieces reach the reader apart. Transport options apply to streams only.

The Responses WebSocket (Codex's default transport): `GET /v1/responses` upgraded to a
WebSocket (permessage-deflate when the client offers it). Each `response.create` text
frame is a turn: its exchange (method `WS`, the frame as its body) is chosen and
refused as a POST would be (spec from `x-mock-scenario` on the upgrade, else the
marker), and answered with one text frame per event, the same JSON as the SSE `data:`
payloads (`Exchange.writes` holds each frame); a refusal is one wrapped `error` frame
(`{"type":"error","status":400,"error":{...}}`). A `generate: false` turn (a pre-warm)
gets `response.created` and `response.completed` with no output, under a response id
of its own, stored so that a turn can chain on it. `response.processed` frames get no
answer; every client frame is kept in `MockProvider.ws_frames`.

Every exchange is recorded: the request as received, the spec it asked for, and the
exact body bytes sent back, whole (`Exchange.sent`) and write by write
(`Exchange.writes`). Each response carries `x-mock-request-id`, the exchange's index,
so a test can find the exchange behind a response it got.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import brotli
import mock_gemini
from aiohttp import web
from loopback_server import LoopbackServer
from wire_scenarios import (
    RESPONSES_SCENARIOS,
    SCENARIOS,
    STAMP,
    Scenario,
    anthropic_json,
    anthropic_sse,
    gemini_json,
    gemini_json_array,
    gemini_sse,
    google_pretty_bytes,
    openai_chat_json,
    openai_chat_sse,
    openai_responses_json,
    openai_responses_sse,
)

from interlock.sse import parse_event_block

try:
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Python < 3.14
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

logger = logging.getLogger(__name__)

Dialect = Literal["openai", "anthropic", "responses", "gemini"]
_ROUTES: dict[str, Dialect] = {
    "/v1/chat/completions": "openai",
    "/v1/messages": "anthropic",
    "/v1/responses": "responses",
}
_CALL_OUTPUTS = {"function_call": "function_call_output", "custom_tool_call": "custom_tool_call_output"}

# Failures, each with the scenario it is built on when the spec names no other.
FAILURES = {
    "error_429": "text",  # provider-format JSON error, `retry-after: 0`, `x-should-retry: false`
    "error_500_html": "text",  # a 500 with an HTML page
    "malformed_sse": "text",  # one event with broken JSON in the middle (non-stream: broken JSON body)
    "truncated": "text",  # the stream stops mid-event and the connection closes (non-stream: half a body)
    # An `error` event in the middle of the stream (OpenAI: a `data: {"error":...}` chunk).
    "anthropic_stream_error": "text",
    # Anthropic: `event: error` (overloaded_error) after the last content_block_stop, before
    # message_delta, then the body ends. OpenAI: a `data: {"error":...}` chunk after the last
    # content delta, before the finish_reason chunk, then the body ends without [DONE].
    "error_after_blocks": "tool",
    # The connection closes after the complete content, before the message's end: Anthropic
    # after the last content_block_stop (no message_delta), OpenAI after the last tool-call
    # or text delta (no finish_reason chunk, no [DONE]).
    "cut_before_finish": "tool",
    # Accepts the request and never answers, until the connection closes (at most NEVER_S).
    "never": "text",
    # Sends the first half of the stream, then nothing, until the connection closes (at most NEVER_S).
    "stall": "text",
    # Sends the first half of the stream, then resets the TCP connection (RST).
    "reset": "text",
    # A 200 `text/event-stream` whose body is not SSE at all (binary junk, then HTML).
    "garbage": "text",
    # Responses only: the stream ends with `response.failed` (the response so far, status
    # `failed`, an `error` object) where `response.completed` would be.
    "response_failed": "tool",
}
STREAM_ONLY_FAILURES = frozenset(
    {
        "anthropic_stream_error",
        "error_after_blocks",
        "cut_before_finish",
        "stall",
        "reset",
        "garbage",
        "response_failed",
    }
)
RESPONSES_FAILURES = frozenset({"response_failed"})
FAILED_MESSAGE = (
    "An error occurred while processing your request. You can retry your request, or contact us through our"
    " help center at help.openai.com if the error persists."
)
NEVER_S = 30.0  # the longest `never` and `stall` keep a connection open
GARBAGE = (b"\x1f\x8b\x08\x00\xde\xad\xbe\xef\x00\xff", b"<html><body>Bad gateway</body></html>\n", b"\x00\x01\x02")
ENCODINGS = ("gzip", "deflate", "br", "zstd")
Chunking = Literal["per-event", "coalesce", "split", "mixed"]
CHUNKINGS: tuple[Chunking, ...] = ("per-event", "coalesce", "split", "mixed")
KEEPALIVES = {
    "keepalive": b": keep-alive\n\n",
    "openrouter": b": OPENROUTER PROCESSING\n\n",
}
SLOW_DELAY_MS = 50
DRIP_DELAY_MS = 1000
PAUSE_S = 3.0
_PIECE_PAUSE_S = 0.001
_COALESCE = 3  # events per write
_KEEPALIVE_EVERY = 3  # events
_MIXED_SIZES = (1, 17, 96, 5, 300, 41, 2, 160)  # write sizes `mixed` cycles through
_STAMP_BYTES = STAMP.encode()
_MARKER = re.compile(r"\[\[mock:([\w+-]+)\]\]")
_SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
}
_JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Plan:
    """What one request asked for: content, failure and transport."""

    scenario: str
    failure: str | None = None
    chunking: Chunking = "per-event"
    keepalive: bytes | None = None
    slow: bool = False
    encoding: str | None = None
    drip: bool = False
    pause: bool = False
    stamp: bool = False


def plan_of(spec: str, chunking_header: str | None = None) -> Plan:
    """The plan a `+`-joined spec names; ValueError for an unknown or clashing part."""
    scenario = failure = keepalive = encoding = None
    chunking = chunking_header or "per-event"
    slow = drip = pause = stamp = False
    for part in spec.split("+"):
        if (part in SCENARIOS or part in RESPONSES_SCENARIOS) and scenario is None:
            scenario = part
        elif part in FAILURES and failure is None:
            failure = part
        elif part in CHUNKINGS:
            chunking = part
        elif part in KEEPALIVES:
            keepalive = KEEPALIVES[part]
        elif part == "slow":
            slow = True
        elif part == "drip":
            drip = True
        elif part == "pause":
            pause = True
        elif part == "stamp":
            stamp = True
        elif part in ENCODINGS and encoding is None:
            encoding = part
        else:
            raise ValueError(f"unknown or repeated mock scenario part {part!r} in {spec!r}")
    if chunking not in CHUNKINGS:
        raise ValueError(f"unknown x-mock-chunking {chunking!r}, expected one of {', '.join(CHUNKINGS)}")
    base = FAILURES[failure] if failure else "text"
    return Plan(scenario or base, failure, cast(Chunking, chunking), keepalive, slow, encoding, drip, pause, stamp)


@dataclass
class Exchange:
    """One request the mock received and what it sent back."""

    index: int
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes
    scenario: str | None = None
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytearray = field(default_factory=bytearray)
    writes: list[bytes] = field(default_factory=list)  # the body as written, write by write
    complete: bool = False  # the whole response was sent
    error: str | None = None  # why it was not (e.g. the client went away)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def sent(self) -> bytes:
        return bytes(self.response_body)


class MockProvider(LoopbackServer):
    """The server plus its thread-safe record of exchanges."""

    thread_name = "mock-provider"

    def __init__(self, delay_ms: int = 0) -> None:
        super().__init__()
        self.delay_ms = delay_ms
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._stored: dict[str, list[tuple[str, str]]] = {}  # response id -> (item type, call_id)
        self.ws_frames: list[bytes] = []  # every text frame the WebSocket clients sent, in order

    # --- lifecycle --------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.root

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    # --- records ----------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    @property
    def requests(self) -> list[Exchange]:
        """Every request received, in order (an alias kept for readability)."""
        return self.exchanges

    def exchange(self, request_id: str | int) -> Exchange:
        """The exchange behind a response's `x-mock-request-id`."""
        with self._lock:
            return self._exchanges[int(request_id)]

    @property
    def last_response_body(self) -> bytes:
        with self._lock:
            return bytes(self._exchanges[-1].response_body)

    def clear(self) -> None:
        with self._lock:
            self._exchanges.clear()

    def _record(self, request: web.Request, body: bytes) -> Exchange:
        with self._lock:
            exchange = Exchange(
                index=len(self._exchanges),
                method=request.method,
                path=request.path_qs,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
            self._exchanges.append(exchange)
            return exchange

    # --- handling ---------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and _ROUTES.get(request.path) == "responses" and _is_upgrade(request):
            return await self._websocket(request)
        exchange = self._record(request, await request.read())
        gemini = mock_gemini.route(request.path, request.query_string) if request.method == "POST" else None
        if gemini is not None:
            return await self._handle_gemini(request, exchange, gemini)
        dialect = _ROUTES.get(request.path) if request.method == "POST" else None
        if dialect is None:
            body = _error_body("openai", "not_found_error", "no such route")
            return await self._send_json(request, exchange, 404, body)
        if "authorization" not in exchange.headers and "x-api-key" not in exchange.headers:
            body = _error_body(dialect, "authentication_error", "missing API key")
            return await self._send_json(request, exchange, 401, body)
        try:
            payload = json.loads(exchange.body)
        except ValueError as error:
            return await self._bad_request(request, exchange, dialect, str(error))
        if not isinstance(payload, dict):
            return await self._bad_request(request, exchange, dialect, "not a JSON object")
        spec = exchange.headers.get("x-mock-scenario") or _marker(payload) or "text"
        exchange.scenario = spec
        try:
            plan = plan_of(spec, exchange.headers.get("x-mock-chunking"))
        except ValueError as error:
            return await self._bad_request(request, exchange, dialect, str(error))
        only = _responses_only(plan)
        if only is not None and dialect != "responses":
            return await self._bad_request(request, exchange, dialect, f"{only} is served on /v1/responses only")
        refusal = self._unanswered_call(payload) if dialect == "responses" else _unanswered_history(dialect, payload)
        if refusal is not None:
            return await self._bad_request(request, exchange, dialect, refusal)
        return await self._answer(request, exchange, dialect, plan, payload)

    async def _handle_gemini(
        self, request: web.Request, exchange: Exchange, call: mock_gemini.GeminiCall
    ) -> web.StreamResponse:
        if not mock_gemini.authenticated(exchange.headers, request.query_string):
            message = "Method doesn't allow unregistered callers (callers without established identity)."
            return await self._send_google(request, exchange, 403, mock_gemini.error(403, message))
        try:
            payload = json.loads(exchange.body)
        except ValueError as error:
            return await self._send_google(
                request, exchange, 400, mock_gemini.error(400, f"Invalid JSON payload: {error}")
            )
        if not isinstance(payload, dict):
            return await self._send_google(request, exchange, 400, mock_gemini.error(400, "Invalid JSON payload"))
        inner = call.inner(payload)
        model = call.model_of(payload)
        marker = _MARKER.search(mock_gemini.user_text(inner))
        spec = exchange.headers.get("x-mock-scenario") or (marker.group(1) if marker else None) or "text"
        exchange.scenario = spec
        try:
            plan = plan_of(spec, exchange.headers.get("x-mock-chunking"))
        except ValueError as error:
            return await self._send_google(request, exchange, 400, mock_gemini.error(400, str(error)))
        refusal = mock_gemini.missing_signature(model, inner)
        only = _responses_only(plan)
        if only is not None or refusal is not None:
            message = refusal or f"{only} is served on /v1/responses only"
            return await self._send_google(request, exchange, 400, mock_gemini.error(400, message))
        if plan.failure == "error_429":
            body = mock_gemini.error(429, "Resource has been exhausted (e.g. check quota).")
            return await self._send_google(request, exchange, 429, body)
        if plan.failure in ("error_500_html", "never"):
            return await self._answer(request, exchange, "gemini", plan, {"model": model})
        scenario = SCENARIOS[plan.scenario]
        default_ms = DRIP_DELAY_MS if plan.drip else SLOW_DELAY_MS if plan.slow else self.delay_ms
        delay_ms = int(exchange.headers.get("x-mock-delay-ms", default_ms))
        if call.stream:
            if call.sse:
                events = gemini_sse(scenario, model, call.wrapped)
                return await self._stream(request, exchange, plan, "gemini", events, delay_ms)
            if plan.failure not in (None, "truncated", "stall", "reset"):
                message = f"{plan.failure} needs alt=sse"
                return await self._send_google(request, exchange, 400, mock_gemini.error(400, message))
            pieces = gemini_json_array(scenario, model, call.wrapped)
            return await self._stream(request, exchange, plan, "gemini", pieces, delay_ms, mock_gemini.JSON_TYPE)
        if plan.failure in STREAM_ONLY_FAILURES:
            message = f"{plan.failure} needs streamGenerateContent"
            return await self._send_google(request, exchange, 400, mock_gemini.error(400, message))
        await asyncio.sleep(delay_ms / 1000)
        raw = google_pretty_bytes(gemini_json(scenario, model, call.wrapped))
        if plan.failure in ("malformed_sse", "truncated"):
            cut = len(raw) // 2
            if plan.failure == "malformed_sse":
                return await self._send(request, exchange, 200, raw[:cut], {"content-type": mock_gemini.JSON_TYPE})
            return await self._send(request, exchange, 200, raw, {"content-type": mock_gemini.JSON_TYPE}, cut=cut)
        headers = {"content-type": mock_gemini.JSON_TYPE}
        if plan.encoding is not None:
            compressor = Compressor(plan.encoding)
            raw = compressor.piece(raw) + compressor.end()
            headers["content-encoding"] = plan.encoding
        return await self._send(request, exchange, 200, raw, headers)

    async def _send_google(
        self, request: web.Request, exchange: Exchange, status: int, body: dict[str, Any]
    ) -> web.StreamResponse:
        """An error as Google's servers send it: pretty JSON."""
        return await self._send(
            request, exchange, status, google_pretty_bytes(body), {"content-type": mock_gemini.JSON_TYPE}
        )

    def _unanswered_call(self, payload: dict[str, Any]) -> str | None:
        """Why the Responses API would refuse a request chained on a stored response."""
        with self._lock:
            return unanswered_call(payload, self._stored.get)

    def _store(self, body: dict[str, Any]) -> None:
        calls = call_items(body.get("output"))
        with self._lock:
            self._stored[str(body.get("id"))] = calls

    async def _answer(
        self,
        request: web.Request,
        exchange: Exchange,
        dialect: Dialect,
        plan: Plan,
        payload: dict[str, Any],
    ) -> web.StreamResponse:
        model = str(payload.get("model", ""))
        failure = plan.failure
        if failure == "error_429":
            headers = {"retry-after": "0", "x-should-retry": "false"}
            return await self._send_json(request, exchange, 429, _rate_limit_body(dialect, model), headers)
        if failure == "error_500_html":
            page = b"<html><head><title>500 Internal Server Error</title></head>\n<body><h1>Internal Server Error</h1></body></html>\n"
            return await self._send(
                request,
                exchange,
                500,
                page,
                {"content-type": "text/html; charset=utf-8"},
            )
        if failure == "never":
            await _wait_closed(request, exchange)
            return web.Response(status=504)  # never sent: the connection is gone
        scenario = SCENARIOS.get(plan.scenario) or RESPONSES_SCENARIOS[plan.scenario]
        if dialect == "responses" and payload.get("store") is not False:
            self._store(openai_responses_json(scenario, model))
        default_ms = DRIP_DELAY_MS if plan.drip else SLOW_DELAY_MS if plan.slow else self.delay_ms
        delay_ms = int(exchange.headers.get("x-mock-delay-ms", default_ms))
        if payload.get("stream") is True:
            events = _stream_events(dialect, scenario, model, payload)
            return await self._stream(request, exchange, plan, dialect, events, delay_ms)
        if failure in STREAM_ONLY_FAILURES:
            return await self._bad_request(request, exchange, dialect, f"{failure} needs stream: true")
        body = _json_body(dialect, scenario, model)
        await asyncio.sleep(delay_ms / 1000)
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if failure == "malformed_sse":
            return await self._send(
                request,
                exchange,
                200,
                raw[: len(raw) // 2],
                {"content-type": _JSON_TYPE},
            )
        if failure == "truncated":
            return await self._send(
                request,
                exchange,
                200,
                raw,
                {"content-type": _JSON_TYPE},
                cut=len(raw) // 2,
            )
        headers = {"content-type": _JSON_TYPE}
        if plan.encoding is not None:
            compressor = Compressor(plan.encoding)
            raw = compressor.piece(raw) + compressor.end()
            headers["content-encoding"] = plan.encoding
        return await self._send(request, exchange, 200, raw, headers)

    async def _bad_request(
        self, request: web.Request, exchange: Exchange, dialect: Dialect, message: str
    ) -> web.StreamResponse:
        body = _error_body(dialect, "invalid_request_error", message)
        return await self._send_json(request, exchange, 400, body)

    async def _send_json(
        self,
        request: web.Request,
        exchange: Exchange,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        raw = json.dumps(body, separators=(",", ":")).encode()
        return await self._send(
            request,
            exchange,
            status,
            raw,
            {"content-type": _JSON_TYPE, **(headers or {})},
        )

    async def _send(
        self,
        request: web.Request,
        exchange: Exchange,
        status: int,
        body: bytes,
        headers: dict[str, str],
        cut: int | None = None,
    ) -> web.StreamResponse:
        """A body with a Content-Length; `cut` sends only that many bytes, then closes."""
        response = self._response(exchange, status, headers)
        response.content_length = len(body)
        await response.prepare(request)
        sent = body if cut is None else body[:cut]
        exchange.response_body += sent
        exchange.writes.append(sent)
        await response.write(sent)
        if cut is not None:
            return _close(request, exchange, response, "truncated on purpose")
        await response.write_eof()
        exchange.complete = True
        return response

    async def _stream(
        self,
        request: web.Request,
        exchange: Exchange,
        plan: Plan,
        dialect: Dialect,
        events: list[bytes],
        delay_ms: int,
        content_type: str | None = None,
    ) -> web.StreamResponse:
        """Stream `events` (SSE, or the pieces of another streamed body of `content_type`)."""
        events, ending = _spoil(plan.failure, dialect, events)
        if plan.keepalive is not None:
            events = _with_keepalives(events, plan.keepalive)
        gap = delay_ms / 1000 or (_PIECE_PAUSE_S if plan.chunking in ("split", "mixed") else 0)
        headers = dict(_SSE_HEADERS) if content_type is None else {"content-type": content_type}
        compressor = None
        if plan.encoding is not None:
            compressor = Compressor(plan.encoding)
            headers["content-encoding"] = plan.encoding
        response = self._response(exchange, 200, headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        pause_at = _content_end(dialect, events) if plan.pause else len(events)
        head = _writes(events[:pause_at], plan.chunking)
        for position, data in enumerate(head + _writes(events[pause_at:], plan.chunking)):
            if position and gap:
                await asyncio.sleep(gap)
            if position == len(head) and plan.pause:
                await asyncio.sleep(PAUSE_S)
            if plan.stamp:
                data = data.replace(_STAMP_BYTES, b"%019d" % time.monotonic_ns())
            if not await _write(response, exchange, compressor.piece(data) if compressor else data):
                return response
        if ending == "close":
            return _close(request, exchange, response, "truncated on purpose")
        if ending == "reset":
            return _reset(request, exchange, response)
        if ending == "stall":
            await _wait_closed(request, exchange)
            return response
        if compressor is not None and not await _write(response, exchange, compressor.end()):
            return response
        try:
            await response.write_eof()
        except ConnectionError as error:
            exchange.error = f"client went away: {error}"
            return response
        exchange.complete = True
        return response

    # --- the Responses WebSocket ------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if "authorization" not in request.headers:
            return await self._send_json(
                request,
                self._record(request, b""),
                401,
                _error_body("responses", "authentication_error", "missing API key"),
            )
        ws = web.WebSocketResponse(compress=True, max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        async for message in ws:
            if message.type != web.WSMsgType.TEXT:
                continue
            frame = message.data.encode()
            with self._lock:
                self.ws_frames.append(frame)
            try:
                payload = json.loads(frame)
            except ValueError:
                payload = None
            if isinstance(payload, dict) and payload.get("type") == "response.create":
                exchange = self._record(request, frame)
                exchange.method = "WS"
                exchange.response_headers = dict(ws.headers)
                await self._ws_turn(ws, exchange, payload)
        return ws

    async def _ws_turn(self, ws: web.WebSocketResponse, exchange: Exchange, payload: dict[str, Any]) -> None:
        spec = exchange.headers.get("x-mock-scenario") or _marker(payload) or "text"
        exchange.scenario = spec
        try:
            plan = plan_of(spec, exchange.headers.get("x-mock-chunking"))
        except ValueError as error:
            await self._ws_send(ws, exchange, [_ws_error(400, "invalid_request_error", str(error))])
            return
        refusal = self._unanswered_call(payload)
        if refusal is not None:
            await self._ws_send(ws, exchange, [_ws_error(400, "invalid_request_error", refusal)])
            return
        model = str(payload.get("model", ""))
        scenario = SCENARIOS.get(plan.scenario) or RESPONSES_SCENARIOS[plan.scenario]
        events = openai_responses_sse(scenario, model)
        if payload.get("generate") is False:
            events = _prewarm(events, f"resp_prewarm{exchange.index:040d}")
            self._store({"id": f"resp_prewarm{exchange.index:040d}", "output": []})
        elif payload.get("store") is not False:
            self._store(openai_responses_json(scenario, model))
        events, ending = _spoil(plan.failure, "responses", events)
        frames = [parse_event_block(event).data or "" for event in events]
        default_ms = DRIP_DELAY_MS if plan.drip else SLOW_DELAY_MS if plan.slow else self.delay_ms
        delay_ms = int(exchange.headers.get("x-mock-delay-ms", default_ms))
        pause_at = _content_end("responses", events) if plan.pause and ending == "end" else len(frames)
        if not await self._ws_send(ws, exchange, frames[:pause_at], delay_ms / 1000):
            return
        if pause_at < len(frames):
            await asyncio.sleep(PAUSE_S)
            if not await self._ws_send(ws, exchange, frames[pause_at:], delay_ms / 1000):
                return
        if ending == "end":
            exchange.complete = True
        else:  # the failures that cut a stream cut the connection
            exchange.error = f"{ending} on purpose"
            await ws.close(code=1011)

    async def _ws_send(self, ws: web.WebSocketResponse, exchange: Exchange, frames: list[str], gap: float = 0) -> bool:
        """One text frame each, recorded; False if the client went away."""
        for position, frame in enumerate(frames):
            if position and gap:
                await asyncio.sleep(gap)
            data = frame.encode()
            exchange.response_body += data
            exchange.writes.append(data)
            try:
                await ws.send_str(frame)
            except ConnectionError as error:
                exchange.error = f"client went away: {error}"
                return False
        return True

    def _response(self, exchange: Exchange, status: int, headers: dict[str, str]) -> web.StreamResponse:
        all_headers = {**headers, "x-mock-request-id": str(exchange.index)}
        exchange.status = status
        exchange.response_headers = dict(all_headers)
        return web.StreamResponse(status=status, headers=all_headers)


async def _write(response: web.StreamResponse, exchange: Exchange, data: bytes) -> bool:
    """One write, recorded; False if the client went away."""
    exchange.response_body += data
    exchange.writes.append(data)
    try:
        await response.write(data)
    except ConnectionError as error:
        exchange.error = f"client went away: {error}"
        return False
    return True


async def _wait_closed(request: web.Request, exchange: Exchange) -> None:
    """Send nothing until the peer closes the connection, at most NEVER_S."""
    deadline = asyncio.get_running_loop().time() + NEVER_S
    while asyncio.get_running_loop().time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            exchange.error = "client went away while the mock was silent"
            return
        await asyncio.sleep(0.02)
    exchange.error = f"silent for {NEVER_S:g} s"
    if request.transport is not None:
        request.transport.close()


def _reset(request: web.Request, exchange: Exchange, response: web.StreamResponse) -> web.StreamResponse:
    """Abort the connection with a TCP RST (SO_LINGER 0), mid-body."""
    exchange.error = "reset on purpose"
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return response


class Compressor:
    """A server's streaming compressor: each piece compressed and flushed on its own."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding in ("gzip", "deflate"):
            self._zlib = zlib.compressobj(wbits=31 if encoding == "gzip" else 15)
        elif encoding == "br":
            self._br = brotli.Compressor()
        else:
            self._zstd = zstd.ZstdCompressor()

    def piece(self, data: bytes) -> bytes:
        if self.encoding in ("gzip", "deflate"):
            return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        if self.encoding == "br":
            return bytes(self._br.process(data)) + bytes(self._br.flush())
        return bytes(self._zstd.compress(data, zstd.ZstdCompressor.FLUSH_BLOCK))

    def end(self) -> bytes:
        if self.encoding in ("gzip", "deflate"):
            return self._zlib.flush()
        if self.encoding == "br":
            return bytes(self._br.finish())
        return bytes(self._zstd.flush(zstd.ZstdCompressor.FLUSH_FRAME))


def _close(request: web.Request, exchange: Exchange, response: web.StreamResponse, reason: str) -> web.StreamResponse:
    """Close the connection without ending the body."""
    exchange.error = reason
    if request.transport is not None:
        request.transport.close()
    return response


def call_items(output: Any) -> list[tuple[str, str]]:
    """(type, call_id) of the function and custom tool calls among a response's output items."""
    items = output if isinstance(output, list) else []
    return [
        (str(item["type"]), str(item.get("call_id")))
        for item in items
        if isinstance(item, dict) and item.get("type") in _CALL_OUTPUTS
    ]


def unanswered_call(payload: dict[str, Any], stored: Callable[[str], list[tuple[str, str]] | None]) -> str | None:
    """Why the Responses API would refuse a request chained with `previous_response_id`:
    an unknown response, or a call of it (`stored(id)`: see `call_items`) the request's
    input does not answer with its output item."""
    previous = payload.get("previous_response_id")
    if previous is None:
        return None
    calls = stored(str(previous))
    if calls is None:
        return f"Previous response with id '{previous}' not found."
    found = payload.get("input")
    items: list[Any] = found if isinstance(found, list) else []
    answered = {(item.get("type"), item.get("call_id")) for item in items if isinstance(item, dict)}
    for kind, call_id in calls:
        if (_CALL_OUTPUTS[kind], call_id) not in answered:
            what = "function call" if kind == "function_call" else "custom tool call"
            return f"No tool output found for {what} {call_id}."
    return None


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get("upgrade", "").lower() == "websocket"


def _ws_error(status: int, kind: str, message: str) -> str:
    """An error as the Responses WebSocket sends it: the HTTP error body, wrapped."""
    return json.dumps(
        {"type": "error", "status": status, **_error_body("responses", kind, message)}, separators=(",", ":")
    )


def _prewarm(events: list[bytes], response_id: str) -> list[bytes]:
    """A pre-warm turn's events: the turn's `response.created` and a `response.completed`
    with no output and no tokens, under the pre-warm's own response id."""
    created, completed = (cast(dict[str, Any], parse_event_block(events[i]).json()) for i in (0, -1))
    usage = {**completed["response"]["usage"], "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    bodies = [
        {**created, "response": {**created["response"], "id": response_id}},
        {
            **completed,
            "sequence_number": 1,
            "response": {**completed["response"], "id": response_id, "output": [], "usage": usage},
        },
    ]
    return [f"event: {b['type']}\ndata: {json.dumps(b, separators=(',', ':'))}\n\n".encode() for b in bodies]


def _unanswered_history(dialect: Dialect, payload: dict[str, Any]) -> str | None:
    """The real APIs' refusal of a history with a tool call left unanswered."""
    found = payload.get("messages")
    messages = [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []
    for position, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        later = messages[position + 1 :]
        if dialect == "openai":
            asked = {str(c.get("id")) for c in message.get("tool_calls") or [] if isinstance(c, dict)}
            answers = itertools.takewhile(lambda m: m.get("role") == "tool", later)
            missing = asked - {str(m.get("tool_call_id")) for m in answers}
            if missing:
                return (
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                    f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(missing))}"
                )
            continue
        content = _blocks(message)
        asked = {str(b.get("id")) for b in content if b.get("type") == "tool_use"}
        missing = asked - {str(b.get("tool_use_id")) for b in (_blocks(later[0]) if later else [])}
        if missing:
            return (
                f"messages.{position + 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(sorted(missing))}. Each `tool_use` block must have a corresponding `tool_result` block "
                "in the next message."
            )
    return None


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _marker(payload: dict[str, Any]) -> str | None:
    """The `[[mock:NAME]]` marker in the text of the last user message, if any."""
    messages = payload.get("messages", payload.get("input"))
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            match = _MARKER.search(_text_of(message.get("content")))
            return match.group(1) if match else None
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def _stream_events(dialect: Dialect, scenario: Scenario, model: str, payload: dict[str, Any]) -> list[bytes]:
    if dialect == "anthropic":
        return anthropic_sse(scenario, model)
    if dialect == "responses":
        return openai_responses_sse(scenario, model)
    options = payload.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return openai_chat_sse(scenario, model, include_usage)


def _json_body(dialect: Dialect, scenario: Scenario, model: str) -> dict[str, Any]:
    if dialect == "anthropic":
        return anthropic_json(scenario, model)
    if dialect == "responses":
        return openai_responses_json(scenario, model)
    return openai_chat_json(scenario, model)


Ending = Literal["end", "close", "reset", "stall"]


def _spoil(failure: str | None, dialect: Dialect, events: list[bytes]) -> tuple[list[bytes], Ending]:
    """The events a failure sends, and how the body then ends: normally, the connection
    closed mid-body, reset, or left open and silent."""
    middle = len(events) // 2
    if failure == "malformed_sse":
        if dialect == "anthropic":
            broken = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_del\n\n'
        elif dialect == "responses":
            broken = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequ\n\n'
        elif dialect == "gemini":
            broken = b'data: {"candidates": [{"content": {"parts": [{"te\r\n\r\n'
        else:
            broken = b'data: {"id":"chatcmpl-broken","choices":[{"index":0,"delta":{"content":"x"\n\n'
        return [*events[:middle], broken, *events[middle:]], "end"
    if failure == "truncated":
        return [*events[:middle], events[middle][: len(events[middle]) // 2]], "close"
    if failure == "anthropic_stream_error":
        return [*events[:middle], _error_event(dialect, middle)], "end"
    if failure == "error_after_blocks":
        end = _content_end(dialect, events)
        return [*events[:end], _error_event(dialect, end)], "end"
    if failure == "cut_before_finish":
        return events[: _content_end(dialect, events)], "close"
    if failure == "response_failed":
        end = _content_end(dialect, events)
        return [*events[:end], _failed(events[end]), *events[end + 1 :]], "end"
    if failure == "stall":
        return events[:middle], "stall"
    if failure == "reset":
        return events[:middle], "reset"
    if failure == "garbage":
        return list(GARBAGE), "end"
    return events, "end"


def _responses_only(plan: Plan) -> str | None:
    """The part of the plan only /v1/responses serves, if any."""
    if plan.scenario in RESPONSES_SCENARIOS:
        return plan.scenario
    return plan.failure if plan.failure in RESPONSES_FAILURES else None


def _failed(completed: bytes) -> bytes:
    """The `response.completed` event as the `response.failed` the Responses API ends a
    stream with when the model fails: the same response, status `failed`, an error."""
    payload = parse_event_block(completed).json()
    assert isinstance(payload, dict) and payload.get("type") == "response.completed", payload
    response = {**payload["response"], "status": "failed", "error": {"code": "server_error", "message": FAILED_MESSAGE}}
    body = {**payload, "type": "response.failed", "response": response}
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return f"event: response.failed\ndata: {data}\n\n".encode()


def _error_event(dialect: Dialect, sequence_number: int) -> bytes:
    """A mid-stream error; the Responses API's is a top-level `error` event, Gemini's a
    `data:` frame with Google's error object."""
    if dialect == "gemini":
        error = mock_gemini.error(503, "The model is overloaded. Please try again later.")
        error["error"]["status"] = "UNAVAILABLE"
        return f"data: {json.dumps(error, separators=(',', ': '))}\r\n\r\n".encode()
    if dialect == "responses":
        body = {
            "type": "error",
            "sequence_number": sequence_number,
            "code": "server_error",
            "message": "Overloaded",
            "param": None,
        }
        return f"event: error\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode()
    data = json.dumps(_error_body(dialect, "overloaded_error", "Overloaded"), separators=(",", ":"))
    return (f"event: error\ndata: {data}\n\n" if dialect == "anthropic" else f"data: {data}\n\n").encode()


def _content_end(dialect: Dialect, events: list[bytes]) -> int:
    """Where the content ends: Anthropic's message_delta, OpenAI's finish_reason chunk,
    the Responses API's response.completed, Gemini's chunk with a finishReason."""
    for position, raw in enumerate(events):
        payload = parse_event_block(raw).json()
        if not isinstance(payload, dict):
            continue
        if dialect == "gemini":
            chunk = payload.get("response", payload)
            if any(c.get("finishReason") for c in chunk.get("candidates") or ()):
                return position
            continue
        if dialect == "anthropic" and payload.get("type") == "message_delta":
            return position
        if dialect == "responses" and payload.get("type") == "response.completed":
            return position
        if dialect == "openai" and any(choice.get("finish_reason") for choice in payload.get("choices") or ()):
            return position
    raise ValueError("the stream has no message end")


def _with_keepalives(events: list[bytes], comment: bytes) -> list[bytes]:
    """A keep-alive comment before every third event, starting with the first."""
    items: list[bytes] = []
    for position, event in enumerate(events):
        if position % _KEEPALIVE_EVERY == 0:
            items.append(comment)
        items.append(event)
    return items


def _writes(events: list[bytes], chunking: Chunking) -> list[bytes]:
    """The stream cut into the writes the chunking mode asks for."""
    if chunking == "coalesce":
        return [b"".join(events[i : i + _COALESCE]) for i in range(0, len(events), _COALESCE)]
    if chunking == "split":
        return [piece for event in events for piece in _split_event(event)]
    if chunking == "mixed":
        body = b"".join(events)
        sizes = itertools.cycle(_MIXED_SIZES)
        writes: list[bytes] = []
        start = 0
        while start < len(body):
            end = start + next(sizes)
            writes.append(body[start:end])
            start = end
        return writes
    return events


def _split_event(event: bytes) -> list[bytes]:
    """One event in three or four pieces: cut after the first byte of its first
    multi-byte UTF-8 character (if any), and at a third and two thirds of its length."""
    cuts = {len(event) // 3, 2 * len(event) // 3}
    first_non_ascii = next((i for i, byte in enumerate(event) if byte >= 0x80), None)
    if first_non_ascii is not None:
        cuts.add(first_non_ascii + 1)
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(event)), len(event)]
    return [event[a:b] for a, b in itertools.pairwise(bounds)]


def _rate_limit_body(dialect: Dialect, model: str) -> dict[str, Any]:
    """A 429 as each provider words it (OpenAI's `type` is the limit hit, its `code`
    `rate_limit_exceeded`; Anthropic's body names the request)."""
    if dialect == "anthropic":
        message = (
            "This request would exceed the rate limit for your organization of 50 requests per minute. "
            "For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers "
            "for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later."
        )
        return {**_error_body(dialect, "rate_limit_error", message), "request_id": "req_011CMockRateLimit"}
    message = (
        f"Rate limit reached for {model} in organization org-mock on requests per min (RPM): Limit 3, Used 3, "
        "Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    return {"error": {"message": message, "type": "requests", "param": None, "code": "rate_limit_exceeded"}}


def _error_body(dialect: Dialect, kind: str, message: str) -> dict[str, Any]:
    """An error in the provider's own JSON shape."""
    if dialect == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}
