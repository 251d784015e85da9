"""The Responses API over a WebSocket (`GET /v1/responses` upgraded), as Codex uses it
by default: the client sends `{"type":"response.create", ...the request body...}` per
turn (`"generate": false` asks for a pre-warm with no output) and
`{"type":"response.processed", ...}` after one; the server sends each event of the turn
as one text frame, the JSON of the SSE payload, and wraps errors as
`{"type":"error","status":...,"error":{...}}`."""

from __future__ import annotations

from typing import Any

from interlock.dialects.base import WebSocketFrames
from interlock.dialects.openai_responses import request
from interlock.dialects.openai_responses.reassemble import TERMINAL


class ResponsesWebSocket(WebSocketFrames):
    def starts_turn(self, frame: dict[str, Any]) -> bool:
        return frame.get("type") == "response.create"

    def ends_turn(self, event: dict[str, Any]) -> bool:
        return event.get("type") in TERMINAL or event.get("type") == "error"

    def blocked_frame(self, status: int, notice: str) -> dict[str, Any]:
        return self.error_frame(status, request.blocked_request(notice))

    def error_frame(self, status: int, error: dict[str, Any]) -> dict[str, Any]:
        return {"type": "error", "status": status, **error}
