"""The Gemini API side of the agent mock (`agent_mock`), for driving Gemini CLI.

The routes, errors and wire shapes are the mock provider's (`mock_gemini`,
`wire_scenarios`: `alt=sse` frames, JSON-array streams, whole bodies, Code Assist's
wrapper); this module adds what an agent loop needs. The key is `x-goog-api-key` or
`?key=`; a wrong one gets the API's 400.

A conversation's *turn* is the number of user contents that are prompts (not only
`functionResponse` parts) minus one; its *step* is the number of model contents since
the last prompt, as in `agent_mock`. A request asking for structured output
(`generationConfig.responseJsonSchema` / `responseSchema`: Gemini CLI's model-routing
call) gets a JSON answer built from the schema instead of the script.

Requests are checked as the API checks them: contents non-empty, roles `user` /
`model`, parts non-empty, each step of function calls answered by as many
`functionResponse` parts in the next user content, and (Gemini 3) the first function
call of every step of the current turn sent back with its thought signature, unchanged.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import mock_gemini
from wire_scenarios import Scenario, ScenarioToolCall, gemini_ids

if TYPE_CHECKING:
    from agent_mock import Reply

BAD_KEY = "API key not valid. Please pass a valid API key."


def api_key(headers: dict[str, str], query: str) -> str | None:
    """The key the request carries: `x-goog-api-key`, else `?key=`."""
    if "x-goog-api-key" in headers:
        return headers["x-goog-api-key"]
    keys = parse_qs(query).get("key")
    return keys[0] if keys else None


# --- reading a conversation --------------------------------------------------------------


def _parts(content: Any) -> list[dict[str, Any]]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _is_prompt(content: dict[str, Any]) -> bool:
    return content.get("role", "user") == "user" and any("functionResponse" not in p for p in _parts(content))


def conversation_position(contents: list[dict[str, Any]]) -> tuple[int, int]:
    """(turn, step): prompts so far minus one, model contents since the last prompt."""
    prompts = [i for i, c in enumerate(contents) if _is_prompt(c)]
    if not prompts:
        return 0, 0
    step = sum(1 for c in contents[prompts[-1] :] if c.get("role") == "model")
    return len(prompts) - 1, step


def user_texts(contents: list[dict[str, Any]]) -> list[str]:
    """The text of every user part, where a script's marker may be."""
    return [str(p["text"]) for c in contents if c.get("role", "user") == "user" for p in _parts(c) if "text" in p]


def tool_result_texts(content: dict[str, Any]) -> list[str]:
    """What the function responses of this content say (Gemini CLI's `{"output": ...}`)."""
    found = []
    for part in _parts(content):
        response = part.get("functionResponse", {}).get("response")
        if isinstance(response, dict):
            found += [v if isinstance(v, str) else json.dumps(v) for v in response.values()]
    return found


def request_violations(model: str, request: dict[str, Any], issued: set[str]) -> list[str]:
    """What the real API would reject this GenerateContentRequest for; `issued` are the
    thought signatures the mock has sent."""
    contents = request.get("contents")
    if not isinstance(contents, list) or not contents:
        return ["* GenerateContentRequest.contents: contents is not specified"]
    found: list[str] = []
    for i, content in enumerate(contents):
        role = content.get("role", "user") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            found.append(f"contents[{i}].role: Please use a valid role: user, model (got {role!r}).")
        parts = _parts(content)
        if not parts:
            found.append(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        calls = [p for p in parts if "functionCall" in p]
        following = contents[i + 1] if i + 1 < len(contents) else None
        if role != "model" or not calls or following is None:
            continue
        answers = [p for p in _parts(following) if "functionResponse" in p]
        if following.get("role", "user") != "user" or len(answers) != len(calls):
            found.append(
                "Please ensure that the number of function response parts is equal to the number of function call "
                f"parts of the function call turn (contents[{i}]: {len(calls)} calls, {len(answers)} responses)."
            )
    refusal = mock_gemini.missing_signature(model, request)
    if refusal is not None:
        found.append(refusal)
    for i, content in enumerate(contents):
        for j, part in enumerate(_parts(content)):
            if "thoughtSignature" in part and part["thoughtSignature"] not in issued:
                found.append(f"contents[{i}].parts[{j}]: Thought signature is not valid.")
    return found


# --- the answers ---------------------------------------------------------------------------


def structured(request: dict[str, Any]) -> dict[str, Any] | None:
    """The schema a request asks its answer to follow, if it asks for structured output."""
    config = request.get("generationConfig")
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


def _pieces(text: str) -> list[str]:
    """Text as the API streams it: a few words per chunk."""
    words = text.split(" ")
    return [" ".join(words[i : i + 4]) + (" " if i + 4 < len(words) else "") for i in range(0, len(words), 4)]


def scenario(reply: Reply, model: str, prompt_tokens: int) -> Scenario:
    """The reply as a turn the mock provider's Gemini writers serialise: the thought
    summary, the text in pieces, each call whole."""
    calls = [
        ScenarioToolCall(f"{number}", tool.name, [json.dumps(tool.input, separators=(",", ":"))])
        for number, tool in enumerate(reply.tools)
    ]
    text = _pieces(reply.text) if reply.text else []
    return Scenario(
        model=model,
        thinking=_pieces(reply.thinking) if reply.thinking else [],
        text=text,
        tool_calls=calls,
        input_tokens=prompt_tokens,
        output_tokens=max(1, len(reply.text + json.dumps([t.input for t in reply.tools])) // 4),
    )


def signature_of(turn: Scenario) -> str:
    """The thought signature the turn's first call (or closing part) carries."""
    return gemini_ids(turn)[1]
