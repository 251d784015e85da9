"""The Responses API side of `agent_mock`: where a conversation of input items stands,
and the scripted reply as a `wire_scenarios` turn (so its events are the ones the mock
provider sends too).

A conversation is the items of the response it chains on (`previous_response_id`) plus
its own `input`. Its *prompts* are the user messages carrying the script's marker (an
agent such as Codex adds user messages of its own: environment context, instructions),
so each prompt of a multi-turn test carries the marker. The *turn* is the number of
prompts minus one; the *step* is the number of model answers since the last prompt (runs
of output items: assistant messages, reasoning, function and custom tool calls).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import TYPE_CHECKING, Any

from wire_scenarios import ResponsesScenario, ScenarioToolCall

if TYPE_CHECKING:
    from agent_mock import Reply

_MODEL_ITEMS = frozenset({"function_call", "custom_tool_call", "reasoning"})
_OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output"})


def _text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def _is_model_item(item: dict[str, Any]) -> bool:
    kind = item.get("type", "message")
    return kind in _MODEL_ITEMS or (kind == "message" and item.get("role") == "assistant")


def _prompts(items: list[dict[str, Any]], marker: re.Pattern[str]) -> list[int]:
    return [
        i
        for i, item in enumerate(items)
        if item.get("type", "message") == "message" and item.get("role") == "user" and marker.search(_text(item))
    ]


def marker_key(items: list[dict[str, Any]], marker: re.Pattern[str]) -> str | None:
    for index in _prompts(items, marker):
        found = marker.search(_text(items[index]))
        if found:
            return found.group(1)
    return None


def position(items: list[dict[str, Any]], marker: re.Pattern[str]) -> tuple[int, int]:
    """(turn, step): see the module docstring."""
    prompts = _prompts(items, marker)
    if not prompts:
        return 0, 0
    answers, in_answer = 0, False
    for item in items[prompts[-1] + 1 :]:
        model = _is_model_item(item)
        answers += model and not in_answer
        in_answer = model
    return len(prompts) - 1, answers


def tool_outputs(items: list[dict[str, Any]]) -> str:
    """The text of the tool outputs after the last model answer, one per line."""
    texts: list[str] = []
    for item in reversed(items):
        if _is_model_item(item):
            break
        if item.get("type") in _OUTPUT_ITEMS:
            output = item.get("output")
            texts.insert(0, output if isinstance(output, str) else _text({"content": output}))
    return "\n".join(texts)


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)]


def scenario(reply: Reply, model: str, input_tokens: int) -> ResponsesScenario:
    """The reply as one Responses turn: reasoning summary, text, then function calls;
    fresh call ids, so every response (and its id) is new."""
    calls = [
        ScenarioToolCall(secrets.token_hex(12), tool.name, _pieces(json.dumps(tool.input), 4)) for tool in reply.tools
    ]
    return ResponsesScenario(
        model=model,
        thinking=_pieces(reply.thinking, 2) if reply.thinking else [],
        text=_pieces(reply.text, 3) if reply.text else [],
        tool_calls=calls,
        input_tokens=input_tokens,
        output_tokens=max(1, len(reply.text + json.dumps([t.input for t in reply.tools])) // 4),
    )
