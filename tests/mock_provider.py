"""Loopback mock of api.openai.com and api.anthropic.com for end-to-end tests.

An aiohttp server on 127.0.0.1 (ephemeral port) in a background thread with its own
event loop. It serves the exact wire bytes built by `wire_scenarios`: POST
`/v1/chat/completions` (OpenAI Chat Completions) and POST `/v1/messages` (Anthropic
Messages, any query string). Every other path gets a JSON 404; model routes answer 401
without `Authorization` or `x-api-key`.

The scenario comes from the `x-mock-scenario` header, else a `[[mock:NAME]]` marker in
the last user message, else "text". Besides the named `SCENARIOS` there are failure
scenarios (see `FAILURES`). Streams (`"stream": true`) are chunked `text/event-stream`
with one write per event and an optional delay before each event after the first
(`x-mock-delay-ms` header, or the scenario's own pace).

Every exchange is recorded: the request as received and the exact body bytes sent back
(for streams, the concatenated events). Each response carries `x-mock-request-id`, the
exchange's index, so a test can find the exchange behind a response it got.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from loopback_server import LoopbackServer
from wire_scenarios import (
    SCENARIOS,
    Scenario,
    anthropic_json,
    anthropic_sse,
    openai_chat_json,
    openai_chat_sse,
)

logger = logging.getLogger(__name__)

Dialect = Literal["openai", "anthropic"]

# Failure scenarios on top of `wire_scenarios.SCENARIOS`; each is built on "text".
FAILURES = (
    "error_429",  # provider-format JSON error, `retry-after: 0`, `x-should-retry: false`
    "error_500_html",  # a 500 with an HTML page
    "malformed_sse",  # one event with broken JSON in the middle (non-stream: broken JSON body)
    "truncated",  # the stream stops mid-event and the connection closes (non-stream: half a body)
    "anthropic_stream_error",  # an `error` event mid-stream (Anthropic format; OpenAI: `data: {"error":...}`)
    "slow",  # "text" with 50 ms between events
)
SLOW_DELAY_MS = 50
_MARKER = re.compile(r"\[\[mock:([\w-]+)\]\]")
_SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
}
_JSON_TYPE = "application/json"


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
        exchange = self._record(request, await request.read())
        dialect: Dialect | None = None
        if request.method == "POST" and request.path == "/v1/chat/completions":
            dialect = "openai"
        elif request.method == "POST" and request.path == "/v1/messages":
            dialect = "anthropic"
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
        name = exchange.headers.get("x-mock-scenario") or _marker(payload) or "text"
        exchange.scenario = name
        if name not in SCENARIOS and name not in FAILURES:
            message = f"unknown mock scenario {name!r}"
            return await self._bad_request(request, exchange, dialect, message)
        return await self._answer(request, exchange, dialect, name, payload)

    async def _answer(
        self,
        request: web.Request,
        exchange: Exchange,
        dialect: Dialect,
        name: str,
        payload: dict[str, Any],
    ) -> web.StreamResponse:
        model = str(payload.get("model", ""))
        if name == "error_429":
            headers = {"retry-after": "0", "x-should-retry": "false"}
            body = _error_body(dialect, "rate_limit_error", "mock rate limit")
            return await self._send_json(request, exchange, 429, body, headers)
        if name == "error_500_html":
            page = b"<html><head><title>500 Internal Server Error</title></head>\n<body><h1>Internal Server Error</h1></body></html>\n"
            return await self._send(
                request,
                exchange,
                500,
                page,
                {"content-type": "text/html; charset=utf-8"},
            )
        scenario = SCENARIOS.get(name, SCENARIOS["text"])
        delay_ms = int(exchange.headers.get("x-mock-delay-ms", SLOW_DELAY_MS if name == "slow" else self.delay_ms))
        if payload.get("stream") is True:
            events = _stream_events(dialect, scenario, model, payload)
            return await self._stream(request, exchange, name, dialect, events, delay_ms)
        body = _json_body(dialect, scenario, model)
        if name == "anthropic_stream_error":
            message = "anthropic_stream_error needs stream: true"
            return await self._bad_request(request, exchange, dialect, message)
        await asyncio.sleep(delay_ms / 1000)
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if name == "malformed_sse":
            return await self._send(
                request,
                exchange,
                200,
                raw[: len(raw) // 2],
                {"content-type": _JSON_TYPE},
            )
        if name == "truncated":
            return await self._send(
                request,
                exchange,
                200,
                raw,
                {"content-type": _JSON_TYPE},
                cut=len(raw) // 2,
            )
        return await self._send(request, exchange, 200, raw, {"content-type": _JSON_TYPE})

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
        name: str,
        dialect: Dialect,
        events: list[bytes],
        delay_ms: int,
    ) -> web.StreamResponse:
        events = _spoil(name, dialect, events)
        cut_at = len(events) // 2 if name == "truncated" else None
        response = self._response(exchange, 200, _SSE_HEADERS)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for position, event in enumerate(events):
            if position and delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            if position == cut_at:
                event = event[: len(event) // 2]
            exchange.response_body += event
            try:
                await response.write(event)
            except ConnectionError as error:
                exchange.error = f"client went away: {error}"
                return response
            if position == cut_at:
                return _close(request, exchange, response, "truncated on purpose")
        try:
            await response.write_eof()
        except ConnectionError as error:
            exchange.error = f"client went away: {error}"
            return response
        exchange.complete = True
        return response

    def _response(self, exchange: Exchange, status: int, headers: dict[str, str]) -> web.StreamResponse:
        all_headers = {**headers, "x-mock-request-id": str(exchange.index)}
        exchange.status = status
        exchange.response_headers = dict(all_headers)
        return web.StreamResponse(status=status, headers=all_headers)


def _close(request: web.Request, exchange: Exchange, response: web.StreamResponse, reason: str) -> web.StreamResponse:
    """Close the connection without ending the body."""
    exchange.error = reason
    if request.transport is not None:
        request.transport.close()
    return response


def _marker(payload: dict[str, Any]) -> str | None:
    """The `[[mock:NAME]]` marker in the text of the last user message, if any."""
    messages = payload.get("messages")
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
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _stream_events(dialect: Dialect, scenario: Scenario, model: str, payload: dict[str, Any]) -> list[bytes]:
    if dialect == "anthropic":
        return anthropic_sse(scenario, model)
    options = payload.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return openai_chat_sse(scenario, model, include_usage)


def _json_body(dialect: Dialect, scenario: Scenario, model: str) -> dict[str, Any]:
    if dialect == "anthropic":
        return anthropic_json(scenario, model)
    return openai_chat_json(scenario, model)


def _spoil(name: str, dialect: Dialect, events: list[bytes]) -> list[bytes]:
    """The events of a failure scenario: `truncated` is cut while sending."""
    middle = len(events) // 2
    if name == "malformed_sse":
        if dialect == "anthropic":
            broken = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_del\n\n'
        else:
            broken = b'data: {"id":"chatcmpl-broken","choices":[{"index":0,"delta":{"content":"x"\n\n'
        return [*events[:middle], broken, *events[middle:]]
    if name == "anthropic_stream_error":
        error = _error_body(dialect, "overloaded_error", "Overloaded")
        data = json.dumps(error, separators=(",", ":"))
        event = f"event: error\ndata: {data}\n\n" if dialect == "anthropic" else f"data: {data}\n\n"
        return [*events[:middle], event.encode()]
    return events


def _error_body(dialect: Dialect, kind: str, message: str) -> dict[str, Any]:
    """An error in the provider's own JSON shape."""
    if dialect == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}
