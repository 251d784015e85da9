"""What the loopback mock knows about Google's Gemini routes (see `mock_provider`).

Routes: `/v1beta/models/{model}:generateContent|streamGenerateContent` (also `/v1`,
`/v1alpha`: generativelanguage.googleapis.com), Vertex AI's
`/v1[beta1]/projects/{p}/locations/{l}/publishers/google/models/{model}:...` and its
express-mode `/v1/publishers/google/models/{model}:...`, and Code Assist's
`/v1internal:generateContent|streamGenerateContent` (request `{model, project, request}`,
chunks `{response, traceId}`). A stream is `alt=sse` frames, or one JSON array written
chunk by chunk without it. Errors come in Google's shape (`{"error": {code, message,
status}}`); a call without `x-goog-api-key`, `?key=` or `Authorization` gets 403.

Like Gemini 3, a `gemini-3*` model refuses (400) a history whose current turn has a
model step with function calls whose first call lost its `thoughtSignature`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from wire_scenarios import google_error

_PATH = re.compile(
    r"^/(?:v1|v1beta|v1alpha|v1beta1)/(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/google/)?"
    r"models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)
_CODE_ASSIST = re.compile(r"^/v1internal:(?P<method>generateContent|streamGenerateContent)$")
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}
SSE_TYPE = "text/event-stream"
JSON_TYPE = "application/json; charset=UTF-8"


@dataclass(frozen=True)
class GeminiCall:
    """One Gemini request: its model (from the path, or Code Assist's body), whether it
    streams, as SSE or as a JSON array, and whether it is wrapped (Code Assist)."""

    model: str | None
    stream: bool
    sse: bool
    wrapped: bool

    def inner(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The GenerateContentRequest (Code Assist wraps it in `request`)."""
        found = payload.get("request") if self.wrapped else payload
        return found if isinstance(found, dict) else {}

    def model_of(self, payload: dict[str, Any]) -> str:
        return self.model or str(payload.get("model", ""))


def route(path: str, query: str) -> GeminiCall | None:
    """The Gemini call a request path names, or None."""
    sse = parse_qs(query).get("alt") == ["sse"]
    found = _PATH.match(path)
    if found is not None:
        return GeminiCall(found["model"], found["method"] == "streamGenerateContent", sse, wrapped=False)
    found = _CODE_ASSIST.match(path)
    if found is not None:
        return GeminiCall(None, found["method"] == "streamGenerateContent", sse, wrapped=True)
    return None


def authenticated(headers: dict[str, str], query: str) -> bool:
    return "x-goog-api-key" in headers or "authorization" in headers or "key" in parse_qs(query)


def error(code: int, message: str) -> dict[str, Any]:
    return google_error(code, _STATUS.get(code, "INTERNAL"), message)


def user_text(request: dict[str, Any]) -> str:
    """Text of the last user content (a content without a role is the user's)."""
    contents = request.get("contents")
    for content in reversed(contents if isinstance(contents, list) else []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            parts = content.get("parts")
            return (
                " ".join(str(part.get("text", "")) for part in parts if isinstance(part, dict) and "text" in part)
                if isinstance(parts, list)
                else ""
            )
    return ""


def missing_signature(model: str, request: dict[str, Any]) -> str | None:
    """Gemini 3's refusal of a current turn whose function call lost its signature."""
    if not model.startswith("gemini-3"):
        return None
    contents = [c for c in request.get("contents") or [] if isinstance(c, dict)]
    start = 0
    for position, content in enumerate(contents):  # the current turn starts at the last user text
        parts = content.get("parts") or []
        if content.get("role", "user") == "user" and any(isinstance(p, dict) and "text" in p for p in parts):
            start = position
    for position, content in enumerate(contents[start:], start):
        calls = [p for p in content.get("parts") or [] if isinstance(p, dict) and "functionCall" in p]
        if content.get("role") == "model" and calls and "thoughtSignature" not in calls[0]:
            return (
                f"Function call is missing a thought_signature in functionCall parts. This is required for tools "
                f"to work correctly, and missing thought_signature may lead to degraded model performance. "
                f"Additional data, function call `default_api:{calls[0]['functionCall'].get('name')}` , "
                f"position {position + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures "
                f"for more details."
            )
    return None
