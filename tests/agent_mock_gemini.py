"""The Gemini API side of the agent mock (`agent_mock`), for driving Gemini CLI.

Routes: `POST /v1beta/models/{model}:generateContent` (one whole
`GenerateContentResponse`) and `:streamGenerateContent` (with `alt=sse`: `data:` frames
only, `\\r\\n\\r\\n` after each, no event names, no `[DONE]`, the stream ends with the
body; without it: one JSON array of the same chunks). The key is `x-goog-api-key` or
`?key=`; a wrong one gets the API's 400 `API_KEY_INVALID`.

A conversation's *turn* is the number of user contents that are prompts (not only
`functionResponse` parts) minus one; its *step* is the number of model contents since
the last prompt, as in `agent_mock`. A request asking for structured output
(`generationConfig.responseJsonSchema` / `responseSchema`: Gemini CLI's model-routing
and next-speaker checks) gets a JSON answer built from the schema instead of the script.

The streamed answer is what the API sends: the thought summary first (`thought: true`,
when the reply thinks), the text in a few chunks, each function call whole in one part of
its own chunk, the first carrying a `thoughtSignature`; `finishReason: STOP` on the last
chunk (function calls too), `usageMetadata` on every chunk and complete on the last,
`modelVersion` and `responseId` on each.

Requests are checked as the API checks them: contents non-empty, roles `user` / `model`,
parts non-empty and no empty text, each turn of function calls answered by as many
`functionResponse` parts in the next user content, and every function call of the
current turn sent back with its thought signature unchanged (Gemini 3 answers 400
otherwise).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from agent_mock import Reply

ROUTE = re.compile(r"/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)")
SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
JSON_HEADERS = {"content-type": "application/json; charset=UTF-8"}
_CHUNK_WORDS = 4


def api_key(headers: dict[str, str], query: str) -> str | None:
    """The key the request carries: `x-goog-api-key`, else `?key=`."""
    if "x-goog-api-key" in headers:
        return headers["x-goog-api-key"]
    keys = parse_qs(query).get("key")
    return keys[0] if keys else None


def error(code: int, status: str, message: str, reason: str | None = None) -> dict[str, Any]:
    """The API's error envelope."""
    body: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason is not None:
        body["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
    return {"error": body}


def bad_key() -> dict[str, Any]:
    return error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")


def thought_signature(call: dict[str, Any]) -> str:
    """The mock's signature for a function call: opaque base64, tied to the call's name
    and arguments, so a call sent back without it or with it changed is caught."""
    digest = hashlib.sha256(json.dumps([call.get("name"), call.get("args")], sort_keys=True).encode()).digest()
    return base64.b64encode(b"mocksig" + digest).decode()


# --- reading a conversation --------------------------------------------------------------


def _parts(content: Any) -> list[dict[str, Any]]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _is_prompt(content: dict[str, Any]) -> bool:
    return content.get("role") == "user" and any("functionResponse" not in p for p in _parts(content))


def conversation_position(contents: list[dict[str, Any]]) -> tuple[int, int]:
    """(turn, step): prompts so far minus one, model contents since the last prompt."""
    prompts = [i for i, c in enumerate(contents) if _is_prompt(c)]
    if not prompts:
        return 0, 0
    step = sum(1 for c in contents[prompts[-1] :] if c.get("role") == "model")
    return len(prompts) - 1, step


def texts(contents: list[dict[str, Any]]) -> list[str]:
    """The text of every user part, where a script's marker may be."""
    return [str(p["text"]) for c in contents if c.get("role") == "user" for p in _parts(c) if "text" in p]


def tool_result_texts(content: dict[str, Any]) -> list[str]:
    """What the function responses of this content say (Gemini CLI's `{"output": ...}`)."""
    found = []
    for part in _parts(content):
        response = part.get("functionResponse", {}).get("response")
        if isinstance(response, dict):
            found += [v if isinstance(v, str) else json.dumps(v) for v in response.values()]
    return found


def request_violations(payload: dict[str, Any]) -> list[str]:
    """What the real API would reject this `generateContent` body for."""
    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        return ["* GenerateContentRequest.contents: contents is not specified"]
    found: list[str] = []
    for i, content in enumerate(contents):
        role = content.get("role") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            found.append(f"contents[{i}].role: Please use a valid role: user, model (got {role!r}).")
        parts = _parts(content)
        if not parts:
            found.append(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        for j, part in enumerate(parts):
            if "text" in part and not part["text"]:
                found.append(
                    f"contents[{i}].parts[{j}]: Unable to submit request because it has an empty text parameter."
                )
        calls = [p["functionCall"] for p in parts if isinstance(p.get("functionCall"), dict)]
        if role != "model" or not calls:
            continue
        following = contents[i + 1] if i + 1 < len(contents) else None
        answers = [p for p in _parts(following) if "functionResponse" in p]
        if following is not None and (following.get("role") != "user" or len(answers) != len(calls)):
            found.append(
                "Please ensure that the number of function response parts is equal to the number of function call "
                f"parts of the function call turn (contents[{i}]: {len(calls)} calls, {len(answers)} responses)."
            )
    found += _signature_violations(contents)
    return found


def _signature_violations(contents: list[dict[str, Any]]) -> list[str]:
    """Every model content since the last prompt: its first function call must carry the
    signature the mock sent with it."""
    prompts = [i for i, c in enumerate(contents) if isinstance(c, dict) and _is_prompt(c)]
    start = prompts[-1] if prompts else 0
    found = []
    for i in range(start, len(contents)):
        if contents[i].get("role") != "model":
            continue
        calls = [(j, p) for j, p in enumerate(_parts(contents[i])) if isinstance(p.get("functionCall"), dict)]
        if not calls:
            continue
        j, first = calls[0]
        if first.get("thoughtSignature") != thought_signature(first["functionCall"]):
            name = first["functionCall"].get("name")
            found.append(
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
                f"work correctly. Additional data, function call `default_api:{name}` , position {j + 1} "
                f"(contents[{i}])."
            )
    return found


# --- the answers ---------------------------------------------------------------------------


def structured(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The schema a request asks its answer to follow, if it asks for structured output."""
    config = payload.get("generationConfig")
    if not isinstance(config, dict):
        return None
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    return schema if isinstance(schema, dict) else None


def schema_answer(schema: dict[str, Any]) -> Any:
    """A small value that follows `schema` (an OpenAPI-style schema, types in either case)."""
    kind = str(schema.get("type", "object")).lower()
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object":
        return {name: schema_answer(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [schema_answer(schema["items"])] if "items" in schema else []
    if kind in ("integer", "number"):
        return schema.get("minimum", 10)
    if kind == "boolean":
        return False
    return "Mock structured answer."


def _words(text: str, size: int) -> list[str]:
    words = re.findall(r"\S+\s*", text) or [text]
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def _usage(prompt: int, candidates: int, thoughts: int) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": candidates}
    usage["totalTokenCount"] = prompt + candidates + thoughts
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def answer_parts(reply: Reply) -> list[dict[str, Any]]:
    """The parts of the model's answer, in the API's order."""
    parts: list[dict[str, Any]] = []
    if reply.thinking:
        parts.append({"text": reply.thinking, "thought": True})
    if reply.text:
        parts.append({"text": reply.text})
    for number, tool in enumerate(reply.tools):
        call = {"name": tool.name, "args": tool.input}
        parts.append(
            {"functionCall": call, "thoughtSignature": thought_signature(call)}
            if number == 0
            else {"functionCall": call}
        )
    return parts


def chunks(parts: list[dict[str, Any]], model: str, prompt_tokens: int) -> list[dict[str, Any]]:
    """The streamed chunks of an answer: text in pieces of a few words, each other part
    in a chunk of its own; the last one with `finishReason` and the complete usage."""
    response_id = secrets.token_urlsafe(16)
    pieces: list[tuple[dict[str, Any], int, int]] = []  # part, candidate tokens, thought tokens
    for part in parts:
        if "text" in part:
            for words in _words(part["text"], _CHUNK_WORDS):
                tokens = max(1, len(words) // 4)
                pieces.append(
                    ({**part, "text": words}, 0, tokens)
                    if part.get("thought")
                    else ({**part, "text": words}, tokens, 0)
                )
        else:
            pieces.append((part, max(1, len(json.dumps(part)) // 4), 0))
    candidates = thoughts = 0
    out = []
    for number, (part, tokens, thought_tokens) in enumerate(pieces):
        candidates += tokens
        thoughts += thought_tokens
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
        if number == len(pieces) - 1:
            candidate["finishReason"] = "STOP"
        out.append(
            {
                "candidates": [candidate],
                "usageMetadata": _usage(prompt_tokens, candidates, thoughts),
                "modelVersion": model,
                "responseId": response_id,
            }
        )
    return out


def whole(parts: list[dict[str, Any]], model: str, prompt_tokens: int) -> dict[str, Any]:
    """The non-streaming answer: every part in one response."""
    streamed = chunks(parts, model, prompt_tokens)
    merged: list[dict[str, Any]] = []
    for chunk in streamed:
        [part] = chunk["candidates"][0]["content"]["parts"]
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and "text" in part
            and "text" in previous
            and previous.get("thought") == part.get("thought")
        ):
            merged[-1] = {**previous, "text": previous["text"] + part["text"]}
        else:
            merged.append(part)
    last = streamed[-1]
    candidate = {"content": {"parts": merged, "role": "model"}, "finishReason": "STOP", "index": 0}
    return {**last, "candidates": [candidate]}


def sse_frames(streamed: list[dict[str, Any]]) -> list[bytes]:
    """`alt=sse`: one `data:` frame per chunk."""
    return [b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\r\n\r\n" for chunk in streamed]


def array_pieces(streamed: list[dict[str, Any]]) -> list[bytes]:
    """Without `alt=sse`: one JSON array, sent a chunk at a time."""
    bodies = [json.dumps(chunk, indent=2).encode() for chunk in streamed]
    return [(b"[" if i == 0 else b",\r\n") + body for i, body in enumerate(bodies)] + [b"]"]
