"""A scripted model API for driving a real coding agent (Claude Code, Codex, Gemini CLI) end to end.

`AgentMock` serves api.anthropic.com, api.openai.com's Responses API and the Gemini API
(generativelanguage.googleapis.com, `agent_mock_gemini`) on 127.0.0.1 (reached through
mitmdump's `map_remote`). What the "model" answers depends on the
conversation it is sent, the way an agent loop needs it:

* a conversation is tied to a `Script` by a `[[agent:KEY]]` marker in one of its user
  messages (the test puts it in the prompt);
* the conversation's *turn* is the number of user prompts in it (user messages that
  are not only tool results); its *step* is the number of assistant messages after the
  last prompt. `script.turns[turn][step]` is the reply: text and/or tool calls.
  A reply's text may quote the tool results it follows: `{results}` is replaced by their
  text, so what the agent really ran shows up in its final answer.

Every `/v1/messages` request is checked the way the real API checks it: tool_use /
tool_result pairing and order, no text after a tool_use in an assistant turn, no empty
text blocks, thinking blocks sent back unchanged (signature included) and first in the
turn whose tool calls are being answered; the mock is stricter than the API in two ways
Claude Code never needs: user/assistant strictly alternate, and no assistant prefill.
A request that breaks a rule gets the real API's 400 `invalid_request_error` envelope
and is kept in `violations`, so a test sees exactly what was wrong. Requests without the
marker (side calls: titles, quota probes) get a short text answer. `count_tokens` and
`/v1/models` answer like the API; every other path (Claude Code's `/api/...`
endpoints) gets the API's JSON 404. Model routes need the configured key in
`x-api-key` (else 401).

The Responses API (`POST /v1/responses`, streamed or not, and the WebSocket on `GET
/v1/responses`: one `response.create` text frame per turn, one text frame per event,
pre-warm turns with `generate: false`) plays the same scripts: `agent_responses` says
where a conversation of input items stands; the events are `wire_scenarios`' Responses
events. Like the real API it keeps what it generated: a turn chained on an unknown
`previous_response_id` is refused, and so is one that does not answer every call of
that response (`400 No tool output found for function call call_...`; over the
WebSocket a wrapped `error` frame). A Responses exchange over the WebSocket has method
`WS` and its answer in `frames`.

Streams are the documented Anthropic SSE: `message_start` with full usage, `ping`,
`content_block_start` / `_delta` / `_stop` per block (tool input as `input_json_delta`
pieces), `message_delta` with cumulative usage, `message_stop`, each with its `event:`
line, one chunk per event. The Gemini routes' checks and streams are described in
`agent_mock_gemini`; they share the scripts, the marker and (turn, step) with the above.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

import agent_mock_gemini as gemini
import agent_responses as responses
import mock_gemini
from aiohttp import web
from loopback_server import LoopbackServer
from mock_provider import _error_body, _is_upgrade, _prewarm, _ws_error, call_items, unanswered_call
from wire_scenarios import (
    ResponsesScenario,
    gemini_json,
    gemini_json_array,
    gemini_sse,
    google_pretty_bytes,
    openai_responses_json,
    openai_responses_sse,
)

from interlock.sse import parse_event_block

MARKER = re.compile(r"\[\[agent:([\w-]+)\]\]")
SIDE_TEXT = "Mock side answer."
MODELS = ("claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5")
_SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
_JSON = "application/json"
_GOOGLE_JSON = {"content-type": mock_gemini.JSON_TYPE}


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One assistant message in the API's order: optional thinking, optional text, then
    tool calls."""

    text: str = ""
    tools: tuple[ToolUse, ...] = ()
    thinking: str = ""


def bash(command: str, description: str = "Run a shell command") -> ToolUse:
    return ToolUse("Bash", {"command": command, "description": description})


def shell(command: str, description: str = "Run a shell command") -> ToolUse:
    """Gemini CLI's shell tool."""
    return ToolUse("run_shell_command", {"command": command, "description": description})


def exec_command(command: str) -> ToolUse:
    """Codex's shell tool (a Responses function call)."""
    return ToolUse("exec_command", {"cmd": command})


@dataclass(frozen=True)
class Script:
    """`turns[turn][step]`: see the module docstring."""

    turns: tuple[tuple[Reply, ...], ...]
    gzip: bool = False  # stream gzip-encoded whatever the request accepts, as some servers do


@dataclass
class Exchange:
    """One request the mock got and what it answered."""

    index: int
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int = 0
    script: str | None = None  # the marker's key, for scripted conversations
    turn: int | None = None
    step: int | None = None
    violations: list[str] = field(default_factory=list)
    gzip: bool = False
    response_body: bytearray = field(default_factory=bytearray)  # as sent, before any content-encoding
    frames: list[bytes] = field(default_factory=list)  # a WebSocket turn's answer, frame by frame
    # Responses: the whole conversation the request continues (the chained response's included)
    conversation: list[dict[str, Any]] = field(default_factory=list)
    wire_body: bytearray = field(default_factory=bytearray)  # the bytes on the wire

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def route(self) -> str:
        return self.path.split("?", 1)[0]


class AgentMock(LoopbackServer):
    thread_name = "agent-mock"

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._scripts: dict[str, Script] = {}
        self._thought: set[str] = set()  # ids of the tool_use blocks issued after a thinking block
        # Responses API: each response's (type, call_id) calls, and its whole conversation.
        self._responses_calls: dict[str, list[tuple[str, str]]] = {}
        self._conversations: dict[str, list[dict[str, Any]]] = {}
        self._signatures: set[str] = set()  # the Gemini thought signatures sent

    @property
    def url(self) -> str:
        return self.root

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def script(self, *turns: tuple[Reply, ...] | list[Reply], gzip: bool = False) -> str:
        """Register a script; returns the marker to put into the prompt."""
        key = secrets.token_hex(6)
        with self._lock:
            self._scripts[key] = Script(tuple(tuple(turn) for turn in turns), gzip)
        return f"[[agent:{key}]]"

    def exchanges(self, marker: str | None = None) -> list[Exchange]:
        """Every exchange, or only those of the conversation with this marker."""
        with self._lock:
            found = list(self._exchanges)
        if marker is None:
            return found
        key = MARKER.fullmatch(marker)
        return [e for e in found if key is not None and e.script == key.group(1)]

    @property
    def violations(self) -> list[tuple[int, str]]:
        return [(e.index, v) for e in self.exchanges() for v in e.violations]

    # --- handling ---------------------------------------------------------------

    def _new_exchange(self, request: web.Request, body: bytes) -> Exchange:
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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        route = request.path.rstrip("/")
        if request.method == "GET" and route == "/v1/responses" and _is_upgrade(request):
            return await self._websocket(request)
        exchange = self._new_exchange(request, await request.read())
        gemini_call = mock_gemini.route(route, request.query_string) if request.method == "POST" else None
        if gemini_call is not None:
            return await self._gemini(request, exchange, gemini_call)
        model_route = route in ("/v1/messages", "/v1/responses") or route.startswith(("/v1/messages/", "/v1/models"))
        if not model_route:
            return await self._json(request, exchange, 404, _error("not_found_error", "Not Found"))
        key = exchange.headers.get("x-api-key")
        if key is None and exchange.headers.get("authorization", "").startswith("Bearer "):
            key = exchange.headers["authorization"].removeprefix("Bearer ")
        if key != self.api_key:
            return await self._json(request, exchange, 401, _error("authentication_error", "invalid x-api-key"))
        if request.method == "GET" and route == "/v1/models":
            return await self._json(request, exchange, 200, _models_page())
        if request.method == "GET" and route.startswith("/v1/models/"):
            return await self._json(request, exchange, 200, _model_info(route.rsplit("/", 1)[1]))
        if request.method == "POST" and route == "/v1/responses":
            return await self._responses(request, exchange)
        if request.method != "POST" or route not in ("/v1/messages", "/v1/messages/count_tokens"):
            return await self._json(request, exchange, 404, _error("not_found_error", "Not Found"))
        try:
            payload = json.loads(exchange.body)
        except ValueError as error:
            return await self._invalid(request, exchange, [f"There was an error parsing the body: {error}"])
        if not isinstance(payload, dict):
            return await self._invalid(request, exchange, ["body must be a JSON object"])
        exchange.violations = request_violations(payload) + self._thinking_violations(payload["messages"])
        if exchange.violations:
            return await self._invalid(request, exchange, exchange.violations)
        if route == "/v1/messages/count_tokens":
            return await self._json(request, exchange, 200, {"input_tokens": _estimate_tokens(exchange.body)})
        reply = self._reply(exchange, payload)
        message = _message(reply, str(payload.get("model", "")), _estimate_tokens(exchange.body))
        if reply.thinking:
            with self._lock:
                self._thought.update(b["id"] for b in message["content"] if b["type"] == "tool_use")
        if payload.get("stream") is True:
            events = sse_events(message, reply, context_management="context_management" in payload)
            return await self._stream(request, exchange, events)
        return await self._json(request, exchange, 200, message)

    async def _gemini(
        self, request: web.Request, exchange: Exchange, call: mock_gemini.GeminiCall
    ) -> web.StreamResponse:
        """The Gemini API's model routes (`agent_mock_gemini`)."""
        if gemini.api_key(exchange.headers, request.query_string) != self.api_key:
            return await self._json(request, exchange, 400, mock_gemini.error(400, gemini.BAD_KEY), google=True)
        try:
            payload = json.loads(exchange.body)
        except ValueError as error:
            payload, exchange.violations = {}, [f"Invalid JSON payload received. {error}"]
        inner = call.inner(payload) if isinstance(payload, dict) else {}
        model = call.model_of(payload) if isinstance(payload, dict) else ""
        with self._lock:
            issued = set(self._signatures)
        exchange.violations = exchange.violations or gemini.request_violations(model, inner, issued)
        if exchange.violations:
            invalid = mock_gemini.error(400, "; ".join(exchange.violations))
            return await self._json(request, exchange, 400, invalid, google=True)
        contents = inner["contents"]
        key = next((found.group(1) for text in gemini.user_texts(contents) if (found := MARKER.search(text))), None)
        schema = gemini.structured(inner)
        if schema is None:
            results = "\n".join(gemini.tool_result_texts(contents[-1]))
            reply = self._scripted(exchange, key, *gemini.conversation_position(contents), results)
        else:
            exchange.script = key
            reply = Reply(text=json.dumps(gemini.schema_answer(schema)))
        turn = gemini.scenario(reply, model, _estimate_tokens(exchange.body))
        with self._lock:
            self._signatures.add(gemini.signature_of(turn))
        if not call.stream:
            return await self._json(request, exchange, 200, gemini_json(turn, model, call.wrapped), google=True)
        if call.sse:
            frames = gemini_sse(turn, model, call.wrapped)
            return await self._stream(request, exchange, frames, {"content-type": mock_gemini.SSE_TYPE})
        return await self._stream(request, exchange, gemini_json_array(turn, model, call.wrapped), _GOOGLE_JSON)

    async def _responses(self, request: web.Request, exchange: Exchange) -> web.StreamResponse:
        """A Responses API request over HTTP: streamed or not."""
        try:
            payload = json.loads(exchange.body)
        except ValueError as error:
            payload = f"We could not parse the JSON body: {error}"
        turn = self._responses_turn(exchange, payload)
        if isinstance(turn, str):
            body = _error_body("responses", "invalid_request_error", turn)
            return await self._json(request, exchange, 400, body)
        scenario, model = turn
        if payload.get("stream") is True:
            return await self._stream(request, exchange, openai_responses_sse(scenario, model))
        return await self._json(request, exchange, 200, openai_responses_json(scenario, model))

    def _responses_turn(self, exchange: Exchange, payload: Any) -> tuple[ResponsesScenario, str] | str:
        """One turn (the conversation is the stored one it chains on plus its input), stored
        for the turns that chain on it; or why the API refuses it (kept in `violations`)."""
        if not isinstance(payload, dict):
            exchange.violations.append(payload if isinstance(payload, str) else "body must be a JSON object")
            return exchange.violations[-1]
        with self._lock:
            refusal = unanswered_call(payload, self._responses_calls.get)
            history = self._conversations.get(str(payload.get("previous_response_id")), [])
        if refusal is not None:
            exchange.violations.append(refusal)
            return refusal
        found = payload.get("input")
        own = [{"type": "message", "role": "user", "content": found}] if isinstance(found, str) else found or []
        items = [*history, *(item for item in own if isinstance(item, dict))]
        exchange.conversation = items
        model = str(payload.get("model", ""))
        response_id = None
        if payload.get("generate") is False:  # a WebSocket pre-warm: no output, an id of its own
            reply, response_id = Reply(), prewarm_id(exchange)
        else:
            key = responses.marker_key(items, MARKER)
            turn, step = responses.position(items, MARKER)
            reply = self._scripted(exchange, key, turn, step, responses.tool_outputs(items))
        scenario = responses.scenario(reply, model, _estimate_tokens(exchange.body))
        body = openai_responses_json(scenario, model)
        response_id = response_id or body["id"]
        with self._lock:
            self._responses_calls[response_id] = call_items(body["output"])
            self._conversations[response_id] = [*items, *body["output"]]
        return scenario, model

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        """The Responses WebSocket: each `response.create` text frame is a turn (an
        exchange, method `WS`), answered with one text frame per event; a refusal is one
        wrapped `error` frame. Other frames (`response.processed`) get no answer."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        if headers.get("authorization") != f"Bearer {self.api_key}":
            exchange = self._new_exchange(request, b"")
            return await self._json(request, exchange, 401, _error_body("responses", "invalid_api_key", "bad key"))
        ws = web.WebSocketResponse(compress=True, max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        async for message in ws:
            if message.type != web.WSMsgType.TEXT:
                continue
            try:
                payload = json.loads(message.data)
            except ValueError:
                payload = None
            if not isinstance(payload, dict) or payload.get("type") != "response.create":
                continue
            exchange = self._new_exchange(request, message.data.encode())
            exchange.method = "WS"
            turn = self._responses_turn(exchange, payload)
            if isinstance(turn, str):
                exchange.status = 400
                frames = [_ws_error(400, "invalid_request_error", turn)]
            else:
                exchange.status = 200
                events = openai_responses_sse(*turn)
                if payload.get("generate") is False:
                    events = _prewarm(events, prewarm_id(exchange))
                frames = [parse_event_block(event).data or "" for event in events]
            for frame in frames:
                exchange.frames.append(frame.encode())
                await ws.send_str(frame)
        return ws

    def _thinking_violations(self, messages: list[Any]) -> list[str]:
        """With thinking on, the assistant turn whose tool calls the last message answers
        must be sent back starting with its thinking block (the API's rule for tool use)."""
        turns = [(i, m) for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") != "system"]
        if len(turns) < 2 or turns[-2][1].get("role") != "assistant":
            return []
        if not any(b.get("type") == "tool_result" for b in _blocks(turns[-1][1])):
            return []
        i, previous = turns[-2]
        blocks = _blocks(previous)
        with self._lock:
            thought = any(b.get("type") == "tool_use" and b.get("id") in self._thought for b in blocks)
        first = blocks[0].get("type") if blocks else None
        if not thought or first in ("thinking", "redacted_thinking"):
            return []
        return [
            (
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{first}`. "
                "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
                "(preceding the lastmost set of `tool_use` and `tool_result` blocks)."
            )
        ]

    def _reply(self, exchange: Exchange, payload: dict[str, Any]) -> Reply:
        messages = payload["messages"]
        turn, step = conversation_position(messages)
        results = "\n".join(_tool_result_texts(messages[-1]))
        return self._scripted(exchange, _marker_key(messages), turn, step, results)

    def _scripted(self, exchange: Exchange, key: str | None, turn: int, step: int, results: str) -> Reply:
        """The script's reply at (turn, step), its text quoting the tool `results`."""
        with self._lock:
            script = self._scripts.get(key) if key else None
        if script is None:
            return Reply(text=SIDE_TEXT)
        exchange.script = key
        exchange.gzip = script.gzip
        exchange.turn, exchange.step = turn, step
        if turn >= len(script.turns) or step >= len(script.turns[turn]):
            # Off the script: end the turn rather than loop, and say so in the record.
            exchange.violations.append(f"off script: turn {turn}, step {step}")
            return Reply(text=f"(the mock has no reply for turn {turn}, step {step})")
        reply = script.turns[turn][step]
        return Reply(text=reply.text.replace("{results}", results), tools=reply.tools, thinking=reply.thinking)

    async def _invalid(self, request: web.Request, exchange: Exchange, violations: list[str]) -> web.StreamResponse:
        return await self._json(request, exchange, 400, _error("invalid_request_error", "; ".join(violations)))

    async def _json(
        self, request: web.Request, exchange: Exchange, status: int, body: Any, google: bool = False
    ) -> web.StreamResponse:
        """A JSON body: compact (Anthropic, OpenAI), or pretty-printed as Google's servers write it."""
        if google:
            return await self._body(request, exchange, status, google_pretty_bytes(body), _GOOGLE_JSON)
        raw = json.dumps(body, separators=(",", ":")).encode()
        return await self._body(request, exchange, status, raw, {"content-type": _JSON})

    async def _body(
        self, request: web.Request, exchange: Exchange, status: int, raw: bytes, headers: dict[str, str]
    ) -> web.StreamResponse:
        response = self._response(exchange, status, headers)
        response.content_length = len(raw)
        await response.prepare(request)
        exchange.response_body += raw
        exchange.wire_body += raw
        await response.write(raw)
        await response.write_eof()
        return response

    async def _stream(
        self,
        request: web.Request,
        exchange: Exchange,
        events: list[bytes],
        content_headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        """`events` one write each (SSE unless `content_headers` say otherwise), gzip-encoded
        (flushed after each) when the script says so."""
        content_headers = content_headers or _SSE_HEADERS
        headers = {**content_headers, "content-encoding": "gzip"} if exchange.gzip else content_headers
        response = self._response(exchange, 200, headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        encoder = zlib.compressobj(wbits=31) if exchange.gzip else None
        for event in events:
            exchange.response_body += event
            # A gzip stream flushed after each event, so each one can be decoded as it arrives.
            wire = event if encoder is None else encoder.compress(event) + encoder.flush(zlib.Z_SYNC_FLUSH)
            exchange.wire_body += wire
            await response.write(wire)
        if encoder is not None:
            tail = encoder.flush()
            exchange.wire_body += tail
            await response.write(tail)
        await response.write_eof()
        return response

    def _response(self, exchange: Exchange, status: int, headers: dict[str, str]) -> web.StreamResponse:
        exchange.status = status
        all_headers = {
            **headers,
            "request-id": f"req_mock{exchange.index:06d}",
            "x-mock-request-id": str(exchange.index),
        }
        return web.StreamResponse(status=status, headers=all_headers)


# --- the conversation -------------------------------------------------------------------


def prewarm_id(exchange: Exchange) -> str:
    return f"resp_prewarm{exchange.index:040d}"


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _is_prompt(message: dict[str, Any]) -> bool:
    """A user message that is not only tool results: the person's next turn."""
    if message.get("role") != "user":
        return False
    return any(block.get("type") != "tool_result" for block in _blocks(message))


def conversation_position(messages: list[dict[str, Any]]) -> tuple[int, int]:
    """(turn, step): prompts so far minus one, assistant messages since the last prompt."""
    prompts = [i for i, m in enumerate(messages) if _is_prompt(m)]
    if not prompts:
        return 0, 0
    step = sum(1 for m in messages[prompts[-1] :] if m.get("role") == "assistant")
    return len(prompts) - 1, step


def _marker_key(messages: list[dict[str, Any]]) -> str | None:
    for message in messages:
        if message.get("role") != "user":
            continue
        for block in _blocks(message):
            found = MARKER.search(block.get("text", "")) if block.get("type") == "text" else None
            if found:
                return found.group(1)
    return None


def _tool_result_texts(message: dict[str, Any]) -> list[str]:
    texts = []
    for block in _blocks(message):
        if block.get("type") != "tool_result":
            continue
        content = block.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
    return texts


def request_violations(payload: dict[str, Any]) -> list[str]:
    """What the real Messages API would reject this request for (the rules agents trip on)."""
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["messages: at least one message is required"]
    found: list[str] = []
    # Claude Code also sends role "system" messages mid-conversation (a beta); they take
    # no part in the user/assistant alternation or the tool pairing.
    turns = [(i, m) for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") != "system"]
    if turns and turns[0][1].get("role") != "user":
        found.append(f"messages.{turns[0][0]}: the first message must use the `user` role")
    if turns and turns[-1][1].get("role") != "user":
        found.append(f"messages.{turns[-1][0]}: the final message must use the `user` role (the mock takes no prefill)")
    seen_ids: set[str] = set()
    for position, (i, message) in enumerate(turns):
        role = message.get("role")
        if role not in ("user", "assistant"):
            found.append(f"messages.{i}.role: unexpected role {role!r}")
            continue
        if position and turns[position - 1][1].get("role") == role:
            found.append(f"messages.{i}: roles must alternate between `user` and `assistant`, two `{role}` in a row")
        blocks = _blocks(message)
        if not blocks:
            found.append(f"messages.{i}: content must not be empty")
        for j, block in enumerate(blocks):
            if block.get("type") == "text" and not block.get("text"):
                found.append(f"messages.{i}.content.{j}: text content blocks must be non-empty")
        if role == "assistant":
            found += _assistant_violations(i, blocks, seen_ids)
            following = turns[position + 1][1] if position + 1 < len(turns) else None
            found += _pairing_violations(i, blocks, following)
        elif role == "user":
            previous = turns[position - 1][1] if position else None
            found += _result_violations(i, blocks, previous)
    return found


def _assistant_violations(i: int, blocks: list[dict[str, Any]], seen_ids: set[str]) -> list[str]:
    found = []
    after_tool = False
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "tool_use":
            after_tool = True
            if block.get("id") in seen_ids:
                found.append(f"messages.{i}.content.{j}: `tool_use` ids must be unique: {block.get('id')}")
            seen_ids.add(str(block.get("id")))
            if not isinstance(block.get("input"), dict):
                found.append(f"messages.{i}.content.{j}.input: Input should be a valid dictionary")
        elif after_tool and kind == "text":
            found.append(f"messages.{i}.content.{j}: a `text` block follows a `tool_use` block in an assistant turn")
        elif kind == "thinking" and block.get("signature") != signature(str(block.get("thinking"))):
            found.append(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
    return found


def _pairing_violations(i: int, blocks: list[dict[str, Any]], following: dict[str, Any] | None) -> list[str]:
    ids = [str(b.get("id")) for b in blocks if b.get("type") == "tool_use"]
    if not ids:
        return []
    answered = set()
    if following is not None and following.get("role") == "user":
        answered = {str(b.get("tool_use_id")) for b in _blocks(following) if b.get("type") == "tool_result"}
    missing = [tool_id for tool_id in ids if tool_id not in answered]
    if not missing:
        return []
    return [
        (
            f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
            f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in the next "
            "message."
        )
    ]


def _result_violations(i: int, blocks: list[dict[str, Any]], previous: dict[str, Any] | None) -> list[str]:
    results = [(j, b) for j, b in enumerate(blocks) if b.get("type") == "tool_result"]
    if not results:
        return []
    found = []
    offered = set()
    if previous is not None and previous.get("role") == "assistant":
        offered = {str(b.get("id")) for b in _blocks(previous) if b.get("type") == "tool_use"}
    for j, block in results:
        if str(block.get("tool_use_id")) not in offered:
            found.append(
                f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` block "
                "in the previous message."
            )
    first_other = next((j for j, b in enumerate(blocks) if b.get("type") != "tool_result"), len(blocks))
    if any(j > first_other for j, _ in results):
        found.append(f"messages.{i}: `tool_result` blocks must come first in the content, before any other block")
    return found


# --- the answers -------------------------------------------------------------------------


def signature(thinking: str) -> str:
    """The mock's signature of a thinking block: the API rejects a thinking block sent
    back with its text or signature changed."""
    return "mocksig" + hashlib.sha256(thinking.encode()).hexdigest()[:40]


def _estimate_tokens(body: bytes) -> int:
    return max(1, len(body) // 4)


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _message(reply: Reply, model: str, input_tokens: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.thinking:
        content.append({"type": "thinking", "thinking": reply.thinking, "signature": signature(reply.thinking)})
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for tool in reply.tools:
        content.append(
            {"type": "tool_use", "id": "toolu_01" + secrets.token_hex(11), "name": tool.name, "input": tool.input}
        )
    output_tokens = max(1, len(json.dumps(content)) // 4)
    return {
        "id": "msg_01" + secrets.token_hex(11),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if reply.tools else "end_turn",
        "stop_sequence": None,
        "usage": _usage(input_tokens, output_tokens),
    }


def _event(name: str, body: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **body}, separators=(',', ':'))}\n\n".encode()


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)]


def sse_events(message: dict[str, Any], reply: Reply, *, context_management: bool = False) -> list[bytes]:
    """The streamed form of `message`, event by event."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [_event("message_start", {"message": start})]
    for index, block in enumerate(message["content"]):
        deltas: list[dict[str, Any]]
        if block["type"] == "thinking":
            opened: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            events.append(_event("content_block_start", {"index": index, "content_block": opened}))
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _pieces(block["thinking"], 3)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] == "text":
            events.append(
                _event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            )
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"], 3)]
        else:
            opened = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            events.append(_event("content_block_start", {"index": index, "content_block": opened}))
            arguments = json.dumps(block["input"], separators=(",", ":"))
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in ["", *_pieces(arguments, 4)]]
        if index == 0:
            events.append(_event("ping", {}))
        events += [_event("content_block_delta", {"index": index, "delta": delta}) for delta in deltas]
        events.append(_event("content_block_stop", {"index": index}))
    final: dict[str, Any] = {
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}
        | {"output_tokens": usage["output_tokens"]},
    }
    if context_management:
        final["context_management"] = {"applied_edits": []}
    events.append(_event("message_delta", final))
    events.append(_event("message_stop", {}))
    return events


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock"}


def _model_info(model_id: str) -> dict[str, Any]:
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": "2025-09-29T00:00:00Z"}


def _models_page() -> dict[str, Any]:
    data = [_model_info(m) for m in MODELS]
    return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
