"""A loopback judge model for the tool_call_judge tests, plus a stand-in proxy.

`JudgeMock` is an aiohttp server on 127.0.0.1 (ephemeral port, background thread) that
speaks OpenAI Chat Completions (POST /v1/chat/completions, reached by litellm as
`openai/<anything>` with `api_base=mock.url`) and Anthropic Messages (POST
/v1/messages, for `anthropic/<anything>` with `api_base=mock.root`). Each request is
answered with a `Reply`: the next one queued with `script()`, else the first `when()`
rule whose needle occurs in the request's messages, else `default`. A reply is a
verdict, or exact content (garbage, fences, prose), or an HTTP error status (with a
`retry-after`, 0 unless told, and a message echoing the key it got, as some providers do), each after
an optional delay. Every request is recorded with its arrival time.

`closed_port()` is a loopback port nobody listens on (a judge that is down).
`ConnectionRecorder` accepts and records every connection made to it, answering 502:
pointed to by HTTP(S)_PROXY, it shows whether anything tried to use the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web
from loopback_server import LoopbackServer


@dataclass(frozen=True)
class Reply:
    """What the judge answers to one request."""

    probability: float = 0.05
    explanation: str = "Routine and harmless."
    content: str | None = None  # exact answer text instead of the JSON verdict
    status: int = 200
    delay_s: float = 0.0
    retry_after: str = "0"  # sent with an error status

    def text(self) -> str:
        if self.content is not None:
            return self.content
        return json.dumps({"probability": self.probability, "explanation": self.explanation})


def allow(explanation: str = "Routine and harmless.", delay_s: float = 0.0) -> Reply:
    return Reply(0.05, explanation, delay_s=delay_s)


def block(explanation: str = "Destructive command.", probability: float = 0.97, delay_s: float = 0.0) -> Reply:
    return Reply(probability, explanation, delay_s=delay_s)


RATE_LIMITED = Reply(status=429)
GARBAGE = Reply(content="I am not sure what you mean. Could you clarify?")


@dataclass
class JudgeRequest:
    """One request the judge received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() on arrival
    peer: Any = None  # the client's (host, port): one connection or several
    reply: Reply | None = None

    @property
    def prompt_text(self) -> str:
        """All message text of the request (system included), for assertions."""
        return json.dumps(self.body.get("messages"), ensure_ascii=False) + json.dumps(self.body.get("system"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.body.get("messages", [])
        return messages


@dataclass
class _Script:
    default: Reply = field(default_factory=allow)
    rules: list[tuple[str, Reply]] = field(default_factory=list)
    queue: deque[Reply] = field(default_factory=deque)


def judge_policy(judge: JudgeMock, key_env: str, **options: Any) -> dict[str, Any]:
    """A `tool_call_judge` entry asking `judge`, its key in `key_env`, that blocks when
    the judge fails and does not retry (unless `options` say otherwise)."""
    return {
        "policy": "tool_call_judge",
        "model": "openai/judge-mock",
        "api_base": judge.url,
        "api_key_env": key_env,
        "on_error": "block",
        "retries": 0,
        **options,
    }


class JudgeMock(LoopbackServer):
    thread_name = "judge-mock"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._script = _Script()
        self._requests: list[JudgeRequest] = []

    # --- lifecycle --------------------------------------------------------------

    @property
    def url(self) -> str:
        """The OpenAI-style base URL (with /v1)."""
        return f"{self.root}/v1"

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        return app

    # --- scripting ----------------------------------------------------------------

    def reset(self, default: Reply | None = None) -> None:
        """Forget rules, queued replies and recorded requests."""
        with self._lock:
            self._script = _Script(default=default or allow())
            self._requests.clear()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order (before any rule)."""
        with self._lock:
            self._script.queue.extend(replies)

    def when(self, needle: str, reply: Reply) -> None:
        """Answer with `reply` whenever the request's messages contain `needle`."""
        with self._lock:
            self._script.rules.append((needle, reply))

    @property
    def requests(self) -> list[JudgeRequest]:
        with self._lock:
            return list(self._requests)

    def _choose(self, request: JudgeRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            script = self._script
            if script.queue:
                reply = script.queue.popleft()
            else:
                text = request.prompt_text
                reply = next((r for needle, r in script.rules if needle in text), script.default)
            request.reply = reply
            return reply

    # --- answering ----------------------------------------------------------------

    async def _receive(self, request: web.Request) -> tuple[JudgeRequest, Reply]:
        body = await request.json()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        received = JudgeRequest(
            request.path, {k.lower(): v for k, v in request.headers.items()}, body, time.monotonic(), peer
        )
        reply = self._choose(received)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        return received, reply

    async def _openai(self, request: web.Request) -> web.Response:
        received, reply = await self._receive(request)
        if reply.status != 200:
            error = {"error": {"message": _error_message(received), "type": "mock_error", "code": reply.status}}
            return web.json_response(error, status=reply.status, headers={"retry-after": reply.retry_after})
        return web.json_response(
            {
                "id": f"chatcmpl-judge-{len(self.requests)}",
                "object": "chat.completion",
                "created": 1_767_225_600,
                "model": received.body.get("model", "judge-mock"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text()},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 321, "completion_tokens": 23, "total_tokens": 344},
            }
        )

    async def _anthropic(self, request: web.Request) -> web.Response:
        received, reply = await self._receive(request)
        if reply.status != 200:
            error = {"type": "error", "error": {"type": "mock_error", "message": _error_message(received)}}
            return web.json_response(error, status=reply.status, headers={"retry-after": reply.retry_after})
        return web.json_response(
            {
                "id": f"msg_judge_{len(self.requests)}",
                "type": "message",
                "role": "assistant",
                "model": received.body.get("model", "judge-mock"),
                "content": [{"type": "text", "text": reply.text()}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 321, "output_tokens": 23},
            }
        )


def _error_message(request: JudgeRequest) -> str:
    """Echoes the credential it got, as some providers do in their 401 answers."""
    key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
    return f"mock judge error; key used: {key}"


def closed_port() -> int:
    """A loopback port with no listener (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class ConnectionRecorder:
    """A loopback listener that records the first bytes of every connection and answers 502."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._seen: list[bytes] = []
        self._stopped = threading.Event()
        self._server.settimeout(0.1)
        self._thread = threading.Thread(target=self._accept, name="connection-recorder", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def seen(self) -> list[bytes]:
        with self._lock:
            return list(self._seen)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    head = connection.recv(4096)
                except OSError:
                    head = b""
                with self._lock:  # recorded before answering: the client may look right after
                    self._seen.append(head)
                with contextlib.suppress(OSError):
                    connection.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._server.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
