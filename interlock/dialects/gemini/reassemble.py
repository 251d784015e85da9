"""Reassembly of Gemini streams, fed chunk by chunk.

Every chunk is a whole GenerateContentResponse holding the parts generated since the
last one. The reassembler rebuilds the body `generateContent` returns: per candidate
(by `index`, 0 when absent), the parts in order, a text part continuing the previous
one when both are plain text (or both thoughts) and the new one carries nothing else
(a part with a `thoughtSignature` stays a part of its own, as the API returns it), empty
plain text parts dropped; the last finish reason and metadata; the last `usageMetadata`
(complete on the final chunk); the response fields (`modelVersion`, `responseId`, ...)
of the first chunk that has them. Code Assist chunks (`{response, traceId}`) rebuild
into the same wrapping. An `{"error": ...}` chunk is noted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from interlock.dialects.base import Reassembler
from interlock.dialects.common import UNDECODABLE, error_message, event_payload, int_field
from interlock.dialects.gemini.response import candidate_parts
from interlock.dialects.gemini.wire import Wrapping
from interlock.neutral import Reassembly
from interlock.sse import SSEEvent

_PLAIN = frozenset({"text", "thought"})


def is_plain_text(part: dict[str, Any]) -> bool:
    return isinstance(part.get("text"), str) and set(part) <= _PLAIN


def has_content(part: dict[str, Any]) -> bool:
    """Generated content: text, a thought or a function call (not an empty text part)."""
    return bool(part.get("text")) or "functionCall" in part


@dataclass(slots=True)
class _Candidate:
    fields: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)
    parts: list[dict[str, Any]] = field(default_factory=list)

    def add(self, candidate: dict[str, Any]) -> bool:
        """Merge one chunk's candidate; True if it carried generated content."""
        for key, value in candidate.items():
            if key != "content":
                self.fields[key] = value
        content = candidate.get("content")
        if isinstance(content, dict):
            self.content.update((k, v) for k, v in content.items() if k != "parts")
        generated = False
        for part in candidate_parts(candidate):
            generated = generated or has_content(part)
            previous = self.parts[-1] if self.parts else None
            if is_plain_text(part) and not part["text"]:
                continue
            if (
                previous is not None
                and is_plain_text(part)
                and is_plain_text(previous)
                and bool(part.get("thought")) == bool(previous.get("thought"))
            ):
                self.parts[-1] = {**previous, "text": previous["text"] + part["text"]}
            else:
                self.parts.append(dict(part))
        return generated

    def body(self) -> dict[str, Any]:
        content = {"parts": self.parts, **self.content} if self.parts else dict(self.content)
        return {"content": content, **self.fields}


class GeminiReassembler(Reassembler):
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.top: dict[str, Any] = {}
        self.candidates: dict[int, _Candidate] = {}
        self.wrapping: Wrapping | None = None
        self.chunks = self.position = 0
        self.content_seen = False

    def feed(self, event: SSEEvent) -> bool:
        position, self.position = self.position, self.position + 1
        payload = event_payload(event, position, self.errors)
        if payload is None or payload is UNDECODABLE:
            return False
        if not isinstance(payload, dict):
            self.errors.append(f"chunk {position} is not a JSON object, skipped")
            return False
        if payload.get("error") is not None:
            self.errors.append(f"error in stream: {_google_error(payload['error'])}")
            return False
        inner, wrapping = Wrapping.of(payload)
        self.wrapping = self.wrapping or wrapping
        self.chunks += 1
        for key, value in inner.items():
            if key == "candidates":
                continue
            if key == "usageMetadata" or key not in self.top:
                self.top[key] = value
        generated = False
        candidates = inner.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else []:
            if not isinstance(candidate, dict):
                continue
            index = int_field(candidate, "index") or 0
            generated = self.candidates.setdefault(index, _Candidate()).add(candidate) or generated
        first, self.content_seen = not self.content_seen and generated, self.content_seen or generated
        return first

    def result(self) -> Reassembly:
        errors = list(self.errors)
        if not self.chunks:
            errors.append("the stream holds no GenerateContentResponse")
            return Reassembly(message=None, errors=errors)
        for index, candidate in self.candidates.items():
            if "finishReason" not in candidate.fields:
                errors.append(f"candidate {index} never got a finishReason (truncated stream?)")
        body: dict[str, Any] = {}
        if self.candidates:
            body["candidates"] = [self.candidates[i].body() for i in sorted(self.candidates)]
        body.update(self.top)
        return Reassembly(message=(self.wrapping or Wrapping()).wrap(body), errors=errors)


def _google_error(error: Any) -> str:
    if isinstance(error, dict) and "status" in error:
        return f"{error.get('status')}: {error.get('message')}"
    return error_message(error)
