"""Builds Gemini stream frames and bodies: the chunks the rewriters add, errors.

Frames are written as Google writes them (`data: ` + compact JSON with `": "` after
keys, CRLF CRLF). A Code Assist chunk is wrapped as `{response, traceId}` like the ones
around it (`Wrapping`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ": "))


@dataclass(frozen=True, slots=True)
class Wrapping:
    """How a chunk is framed: bare, or inside Code Assist's `{response, ...}` with the
    other fields of the chunk it was taken from."""

    outer: dict[str, Any] | None = None

    @staticmethod
    def of(payload: dict[str, Any]) -> tuple[dict[str, Any], Wrapping]:
        """A chunk's GenerateContentResponse and its wrapping."""
        inner = payload.get("response")
        if isinstance(inner, dict) and "candidates" not in payload:
            return inner, Wrapping({k: v for k, v in payload.items() if k != "response"})
        return payload, Wrapping()

    def wrap(self, inner: dict[str, Any]) -> dict[str, Any]:
        return inner if self.outer is None else {"response": inner, **self.outer}


def sse(chunk: dict[str, Any]) -> bytes:
    return f"data: {dumps(chunk)}\r\n\r\n".encode()


def with_parts(chunk: dict[str, Any], parts: list[dict[str, Any]], finish: bool = True) -> dict[str, Any]:
    """`chunk` (a GenerateContentResponse) with its first candidate's parts replaced; a
    candidate left without parts keeps its content's other fields. `finish=False`
    drops the finish reason (a chunk built from a finished one, sent before it)."""
    candidates = chunk.get("candidates")
    candidate = dict(candidates[0]) if isinstance(candidates, list) and candidates else {}
    content = {k: v for k, v in (candidate.get("content") or {}).items() if k != "parts"}
    candidate["content"] = {"parts": parts, **content} if parts else content or {"role": "model"}
    if not finish:
        candidate = {k: v for k, v in candidate.items() if k not in ("finishReason", "finishMessage", "index")}
    rest = candidates[1:] if isinstance(candidates, list) else []
    return {**chunk, "candidates": [candidate, *rest]}


def text_chunk(template: dict[str, Any], text: str) -> dict[str, Any]:
    """A chunk with only `text`, the template's other fields, and no finish reason."""
    chunk = {k: v for k, v in template.items() if k not in ("candidates", "usageMetadata")}
    usage = template.get("usageMetadata")
    if isinstance(usage, dict) and "promptTokenCount" in usage:
        chunk["usageMetadata"] = {"promptTokenCount": usage["promptTokenCount"]}
    return with_parts({"candidates": [{"content": {"role": "model"}}], **chunk}, [{"text": text}], finish=False)


def blocked_response(body: dict[str, Any], notice: str) -> dict[str, Any]:
    """A whole response whose first candidate says only `notice`."""
    inner, wrapping = Wrapping.of(body)
    return wrapping.wrap(with_parts(inner, [{"text": notice}]))


def timeout_error(message: str) -> dict[str, Any]:
    """Google's error shape; google-genai raises `ServerError` for it (with 504)."""
    return {"error": {"code": 504, "message": message, "status": "DEADLINE_EXCEEDED"}}


def limit_error(message: str, retry: bool) -> dict[str, Any]:
    """Google's 429 body (`RESOURCE_EXHAUSTED`, for rate limits and spent quotas alike);
    google-genai raises `ClientError` with `code` 429 and `status` RESOURCE_EXHAUSTED."""
    return {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}}


def no_match_error(message: str) -> dict[str, Any]:
    """Google's 404 shape: google-genai raises `ClientError` with the message, no retry."""
    return {"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}


def stream_error(message: str) -> bytes:
    """An error frame: google-genai raises `APIError` when a chunk holds `error`."""
    return sse(timeout_error(message))


def keepalive() -> None:
    """None: Gemini's clients skip no keepalive. The `google-genai` SDK reads a line that
    is not `data: ...` as a JSON chunk (a comment makes it fail), and the older JS SDKs
    match `^data: ` at the start of their buffer (anything before a frame stalls them)."""


def json_array_as_sse(chunks: list[Any]) -> bytes | None:
    """A JSON-array stream's chunks as `alt=sse` frames; None if one is not a chunk."""
    if not all(isinstance(chunk, dict) for chunk in chunks):
        return None
    return b"".join(sse(chunk) for chunk in chunks)
