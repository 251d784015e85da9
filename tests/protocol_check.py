"""Protocol checkers: every invariant a stream or body must keep for clients to accept it.

Written independently of the codecs (they are what is being checked), from the
documented wire formats and the invariants in DESIGN.md ("Protocol invariants the
codecs own"). Each function returns human-readable violations; an empty list means the
stream or body is valid. Tests run them on everything a policy may rewrite.

Beyond the documented structure they catch what real clients trip on: an Anthropic
event without its `event:` line or with one that differs from its data's `type` (the
SDKs dispatch on the line); an OpenAI delta that repeats `role`, or a tool call's `id`,
`type` or `function.name`, after the first delta (the openai SDK concatenates strings,
so a repeated role becomes "assistantassistant"); and, given the request, a stream
without the usage chunk that `stream_options.include_usage` asked for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from interlock.sse import SSEEvent

DONE = "[DONE]"
# Stop reasons a policy must never rewrite; they may legitimately end a turn whatever
# its content (a tool call cut off by max_tokens, for instance).
_ANTHROPIC_UNTOUCHABLE_STOPS = frozenset({"max_tokens", "refusal", "pause_turn", "model_context_window_exceeded"})
_ANTHROPIC_DELTAS_FOR_BLOCK = {
    "text": {"text_delta", "citations_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "redacted_thinking": set(),
    "tool_use": {"input_json_delta"},
    "server_tool_use": {"input_json_delta"},
}


def _payloads(
    events: list[SSEEvent], violations: list[str], sentinels: frozenset[str]
) -> list[tuple[int, SSEEvent, Any]]:
    """(position, event, JSON payload) of each event with data; bad events are violations."""
    found: list[tuple[int, SSEEvent, Any]] = []
    for position, event in enumerate(events):
        if not event.complete:
            violations.append(f"event {position}: not ended by a blank line (truncated stream)")
        if event.data is None:
            continue
        if event.data in sentinels:
            found.append((position, event, event.data))
            continue
        payload = event.json()
        if payload is None and event.data != "null":
            violations.append(f"event {position}: data is not JSON: {event.data[:60]!r}")
            continue
        found.append((position, event, payload))
    return found


def _tool_arguments_violation(where: str, arguments: str) -> str | None:
    if arguments == "":
        return None
    try:
        json.loads(arguments)
    except ValueError:
        return f"{where}: arguments are not valid JSON: {arguments[:60]!r}"
    return None


# --- Anthropic Messages ----------------------------------------------------------------


def _anthropic_content_violations(blocks: list[dict[str, Any]], stop_reason: Any) -> list[str]:
    """Rules on the complete content, shared by streams and non-streaming bodies."""
    violations: list[str] = []
    seen_tool_use = False
    for index, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text" and not block.get("text"):
            violations.append(f"content block {index}: empty text block")
        if seen_tool_use and kind != "tool_use":
            violations.append(f"content block {index}: a {kind} block follows a tool_use block")
        if kind == "tool_use":
            seen_tool_use = True
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                violations.append(f"content block {index}: tool_use without id or name")
    if stop_reason is None:
        violations.append("no stop_reason")
    elif stop_reason == "tool_use" and not seen_tool_use:
        violations.append("stop_reason is tool_use but no tool_use block remains (should be end_turn)")
    elif seen_tool_use and stop_reason not in (
        "tool_use",
        *_ANTHROPIC_UNTOUCHABLE_STOPS,
    ):
        violations.append(f"tool_use blocks present but stop_reason is {stop_reason!r}")
    return violations


def _usage_violations(usage: Any, keys: tuple[str, ...], where: str) -> list[str]:
    if not isinstance(usage, dict):
        return [f"{where}: no usage object"]
    return [
        f"{where}: usage.{key} is not an integer"
        for key in keys
        if not isinstance(usage.get(key), int) or isinstance(usage.get(key), bool)
    ]


@dataclass
class _AnthropicBlock:
    index: int
    body: dict[str, Any]
    json_parts: list[str] = field(default_factory=list)
    stopped: bool = False

    def complete(self) -> dict[str, Any]:
        if self.body.get("type") in ("tool_use", "server_tool_use") and self.json_parts:
            return {**self.body, "input": "".join(self.json_parts)}
        return self.body


class _AnthropicStreamCheck:
    """One pass over an Anthropic stream, collecting violations."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.blocks: list[_AnthropicBlock] = []
        self.open: _AnthropicBlock | None = None
        self.kinds: list[str] = []
        self.stop_reason: Any = None

    def run(self, events: list[SSEEvent]) -> list[str]:
        for position, event, payload in _payloads(events, self.violations, frozenset()):
            kind = payload.get("type") if isinstance(payload, dict) else None
            if not isinstance(kind, str):
                self.violations.append(f"event {position}: no type")
                continue
            if event.event is None:
                self.violations.append(f"event {position}: no `event:` line for data type {kind!r}")
            elif event.event != kind:
                self.violations.append(f"event {position}: `event: {event.event}` but data type {kind!r}")
            self.event(position, kind, payload)
        self.finish()
        return self.violations

    def event(self, position: int, kind: str, payload: dict[str, Any]) -> None:
        where = f"event {position} ({kind})"
        if self.kinds and self.kinds[-1] == "message_stop":
            self.violations.append(f"{where}: after message_stop")
        if not self.kinds and kind != "message_start":
            self.violations.append(f"{where}: the stream must start with message_start")
        self.kinds.append(kind)
        if kind == "message_start":
            self.message_start(where, payload)
        elif kind == "error":
            self.violations.append(f"{where}: error event {payload.get('error')}")
        elif kind.startswith("content_block_"):
            if "message_delta" in self.kinds[:-1]:
                self.violations.append(f"{where}: content block event after message_delta")
            self.block_event(where, kind, payload)
        elif kind == "message_delta":
            self.message_delta(where, payload)

    def message_start(self, where: str, payload: dict[str, Any]) -> None:
        if self.kinds.count("message_start") > 1:
            self.violations.append(f"{where}: a second message_start")
        message = payload.get("message")
        if not isinstance(message, dict):
            self.violations.append(f"{where}: no message")
            return
        if message.get("content") != []:
            self.violations.append(f"{where}: message content must start empty")
        self.violations += _usage_violations(message.get("usage"), ("input_tokens", "output_tokens"), where)

    def message_delta(self, where: str, payload: dict[str, Any]) -> None:
        if self.kinds.count("message_delta") > 1:
            self.violations.append(f"{where}: a second message_delta")
        if self.open is not None:
            self.violations.append(f"{where}: block {self.open.index} still open")
        delta = payload.get("delta")
        self.stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        self.violations += _usage_violations(payload.get("usage"), ("output_tokens",), where)

    def block_event(self, where: str, kind: str, payload: dict[str, Any]) -> None:
        index = payload.get("index")
        if not isinstance(index, int):
            self.violations.append(f"{where}: no index")
            return
        if kind == "content_block_start":
            self.block_start(where, index, payload.get("content_block"))
            return
        if self.open is None or self.open.index != index:
            self.violations.append(f"{where}: block {index} is not the open block")
            return
        if kind == "content_block_delta":
            self.block_delta(where, self.open, payload.get("delta"))
        elif kind == "content_block_stop":
            self.open.stopped = True
            self.open = None

    def block_start(self, where: str, index: int, block: Any) -> None:
        if self.open is not None:
            self.violations.append(f"{where}: block {index} starts while block {self.open.index} is open")
        if index != len(self.blocks):
            self.violations.append(
                f"{where}: block index {index}, expected {len(self.blocks)} (indices increase from 0 without gaps)"
            )
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            self.violations.append(f"{where}: no content_block type")
            block = {"type": None}
        self.open = _AnthropicBlock(index=index, body=dict(block))
        self.blocks.append(self.open)

    def block_delta(self, where: str, block: _AnthropicBlock, delta: Any) -> None:
        kind = delta.get("type") if isinstance(delta, dict) else None
        allowed = _ANTHROPIC_DELTAS_FOR_BLOCK.get(str(block.body.get("type")))
        if allowed is not None and kind not in allowed:
            self.violations.append(f"{where}: {kind} in a {block.body.get('type')} block")
            return
        if kind == "text_delta":
            block.body["text"] = str(block.body.get("text") or "") + str(delta.get("text") or "")
        elif kind == "input_json_delta":
            block.json_parts.append(str(delta.get("partial_json") or ""))

    def finish(self) -> None:
        if not self.kinds:
            self.violations.append("the stream holds no events")
            return
        if self.kinds[-1] != "message_stop":
            self.violations.append("the stream must end with message_stop")
        if "message_delta" not in self.kinds:
            self.violations.append("no message_delta")
        for block in self.blocks:
            if not block.stopped:
                self.violations.append(f"block {block.index} never stopped")
            raw_input = block.complete().get("input")
            if isinstance(raw_input, str):
                violation = _tool_arguments_violation(f"block {block.index}", raw_input)
                if violation:
                    self.violations.append(violation)
        blocks = [block.complete() for block in self.blocks]
        if "message_delta" in self.kinds:
            self.violations += _anthropic_content_violations(blocks, self.stop_reason)


def check_anthropic_stream(events: list[SSEEvent]) -> list[str]:
    """Violations of the Anthropic Messages streaming protocol."""
    return _AnthropicStreamCheck().run(events)


def check_anthropic_message(body: Any) -> list[str]:
    """Violations in a non-streaming Anthropic Messages body."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    violations = [
        f"{key} must be {value!r}, got {body.get(key)!r}"
        for key, value in (("type", "message"), ("role", "assistant"))
        if body.get(key) != value
    ]
    content = body.get("content")
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        return [*violations, "content is not a list of blocks"]
    for index, block in enumerate(content):
        if block.get("type") == "tool_use" and not isinstance(block.get("input"), dict):
            violations.append(f"content block {index}: tool_use input is not an object")
    violations += _anthropic_content_violations(content, body.get("stop_reason"))
    violations += _usage_violations(body.get("usage"), ("input_tokens", "output_tokens"), "message")
    return violations


# --- OpenAI Chat Completions -----------------------------------------------------------


def _openai_finish_violations(where: str, finish_reason: Any, has_tool_calls: bool) -> list[str]:
    if has_tool_calls and finish_reason == "stop":
        return [f"{where}: tool calls present but finish_reason is 'stop'"]
    if not has_tool_calls and finish_reason == "tool_calls":
        return [f"{where}: finish_reason is 'tool_calls' but no tool call remains (should be 'stop')"]
    return []


@dataclass
class _OpenAIChoice:
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> id, name, arguments
    finish_reason: Any = None
    finishes: int = 0
    has_role: bool = False


class _OpenAIStreamCheck:
    """One pass over a Chat Completions stream, collecting violations."""

    def __init__(self, wants_usage: bool) -> None:
        self.wants_usage = wants_usage
        self.violations: list[str] = []
        self.choices: dict[int, _OpenAIChoice] = {}
        self.chunk_id: Any = None
        self.chunks = 0
        self.usage_chunks = 0
        self.done = 0

    def run(self, events: list[SSEEvent]) -> list[str]:
        for position, _, payload in _payloads(events, self.violations, frozenset({DONE})):
            where = f"chunk {position}"
            if self.done:
                self.violations.append(f"{where}: data after [DONE]")
            if payload == DONE:
                self.done += 1
            elif not isinstance(payload, dict):
                self.violations.append(f"{where}: not a JSON object")
            else:
                self.chunk(where, payload)
        self.finish()
        return self.violations

    def chunk(self, where: str, payload: dict[str, Any]) -> None:
        if payload.get("object") != "chat.completion.chunk":
            self.violations.append(f"{where}: object is {payload.get('object')!r}")
        if self.chunks and payload.get("id") != self.chunk_id:
            self.violations.append(f"{where}: id {payload.get('id')!r} differs from {self.chunk_id!r}")
        self.chunk_id = self.chunk_id if self.chunks else payload.get("id")
        choices = payload.get("choices")
        if not isinstance(choices, list):
            self.violations.append(f"{where}: no choices list")
            return
        if self.usage_chunks:
            self.violations.append(f"{where}: chunk after the usage chunk")
        if not choices and payload.get("usage") is not None:
            self.usage_chunks += 1
            if self.usage_chunks > 1:
                self.violations.append(f"{where}: a second usage chunk")
            if any(c.finishes == 0 for c in self.choices.values()) or not self.choices:
                self.violations.append(f"{where}: usage chunk before the finish_reason chunk")
            self.violations += _usage_violations(
                payload["usage"],
                ("prompt_tokens", "completion_tokens", "total_tokens"),
                where,
            )
        if self.chunks == 0:
            delta = choices[0].get("delta") if choices and isinstance(choices[0], dict) else None
            if not isinstance(delta, dict) or delta.get("role") != "assistant":
                self.violations.append(f"{where}: the first chunk's delta must carry role 'assistant'")
        self.chunks += 1
        for choice in choices:
            self.choice(where, choice)

    def choice(self, where: str, choice: Any) -> None:
        index = choice.get("index") if isinstance(choice, dict) else None
        if not isinstance(index, int):
            self.violations.append(f"{where}: choice without index")
            return
        state = self.choices.setdefault(index, _OpenAIChoice())
        delta = choice.get("delta")
        role = delta.get("role") if isinstance(delta, dict) else None
        if role is not None and state.has_role:
            self.violations.append(f"{where}: choice {index} repeats role {role!r} in a later delta")
        state.has_role = state.has_role or role is not None
        if state.finishes and isinstance(delta, dict) and any(delta.get(k) for k in ("content", "tool_calls")):
            self.violations.append(f"{where}: content after finish_reason")
        for call in (delta.get("tool_calls") if isinstance(delta, dict) else None) or ():
            self.tool_call_delta(where, state, call)
        if choice.get("finish_reason") is not None:
            state.finishes += 1
            state.finish_reason = choice["finish_reason"]
            if state.finishes > 1:
                self.violations.append(f"{where}: a second chunk with finish_reason for choice {index}")

    def tool_call_delta(self, where: str, state: _OpenAIChoice, call: Any) -> None:
        index = call.get("index") if isinstance(call, dict) else None
        if not isinstance(index, int):
            self.violations.append(f"{where}: tool call delta without index")
            return
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        if index not in state.calls:
            if index != len(state.calls):
                self.violations.append(f"{where}: tool call index {index}, expected {len(state.calls)}")
            if not isinstance(call.get("id"), str) or not function.get("name") or call.get("type") != "function":
                self.violations.append(f"{where}: first delta of tool call {index} lacks id, type or name")
            state.calls[index] = {"id": call.get("id"), "arguments": ""}
        else:
            if call.get("id") is not None and call.get("id") != state.calls[index]["id"]:
                self.violations.append(
                    f"{where}: tool call index {index} reused for another id {call.get('id')!r} (index not kept)"
                )
            repeated = [
                key
                for key, value in (("id", call.get("id")), ("type", call.get("type")), ("name", function.get("name")))
                if value is not None
            ]
            if repeated:
                self.violations.append(
                    f"{where}: a later delta of tool call {index} repeats {', '.join(repeated)}"
                    " (only its first delta may carry them)"
                )
        state.calls[index]["arguments"] += str(function.get("arguments") or "")

    def finish(self) -> None:
        if self.chunks == 0:
            self.violations.append("the stream holds no chunks")
        if self.done != 1:
            self.violations.append(f"[DONE] must end the stream exactly once, found {self.done}")
        if self.wants_usage and not self.usage_chunks:
            self.violations.append("the request asked for stream_options.include_usage but no usage chunk came")
        for index, state in self.choices.items():
            where = f"choice {index}"
            if state.finishes == 0:
                self.violations.append(f"{where}: no chunk carries finish_reason")
            self.violations += _openai_finish_violations(where, state.finish_reason, bool(state.calls))
            for call_index, call in state.calls.items():
                violation = _tool_arguments_violation(f"{where} tool call {call_index}", call["arguments"])
                if violation:
                    self.violations.append(violation)


def check_openai_chat_stream(events: list[SSEEvent], request: Mapping[str, Any] | None = None) -> list[str]:
    """Violations of the Chat Completions streaming protocol; with the `request` body, also
    a missing usage chunk that its `stream_options.include_usage` asked for."""
    options = (request or {}).get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    return _OpenAIStreamCheck(wants_usage).run(events)


def check_openai_chat_completion(body: Any) -> list[str]:
    """Violations in a non-streaming Chat Completions body."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    violations: list[str] = []
    if body.get("object") != "chat.completion":
        violations.append(f"object must be 'chat.completion', got {body.get('object')!r}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return [*violations, "no choices"]
    for position, choice in enumerate(choices):
        where = f"choice {position}"
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict) or message.get("role") != "assistant":
            violations.append(f"{where}: no assistant message")
            continue
        calls = message.get("tool_calls") or []
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            violations.append(f"{where}: content is neither a string nor null")
        if content is None and not calls and message.get("refusal") is None:
            violations.append(f"{where}: content is null without tool calls")
        for call_index, call in enumerate(calls):
            function = call.get("function") if isinstance(call, dict) else None
            if (
                not isinstance(function, dict)
                or not isinstance(call.get("id"), str)
                or call.get("type") != "function"
                or not isinstance(function.get("name"), str)
                or not isinstance(function.get("arguments"), str)
            ):
                violations.append(f"{where}: tool call {call_index} lacks id, type, name or arguments")
                continue
            violation = _tool_arguments_violation(f"{where} tool call {call_index}", function["arguments"])
            if violation:
                violations.append(violation)
        if choice.get("finish_reason") is None:
            violations.append(f"{where}: no finish_reason")
        violations += _openai_finish_violations(where, choice.get("finish_reason"), bool(calls))
    if "usage" in body:
        usage = body["usage"]
        violations += _usage_violations(usage, ("prompt_tokens", "completion_tokens", "total_tokens"), "usage")
        if not violations and usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]:
            violations.append("usage: total_tokens is not prompt_tokens + completion_tokens")
    return violations


# --- OpenAI Responses ------------------------------------------------------------------

_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_RESPONSES_CALL_FIELDS = {"function_call": "arguments", "custom_tool_call": "input"}
_RESPONSES_INPUT_DELTAS = {
    "response.function_call_arguments.delta": "response.function_call_arguments.done",
    "response.custom_tool_call_input.delta": "response.custom_tool_call_input.done",
}


@dataclass
class _ResponsesItem:
    id: Any
    type: Any
    done: bool = False
    input: list[str] = field(default_factory=list)  # argument or input deltas
    texts: dict[int, list[str]] = field(default_factory=dict)  # content index -> text deltas


class _ResponsesStreamCheck:
    def __init__(self) -> None:
        self.violations: list[str] = []
        self.items: list[_ResponsesItem] = []
        self.done_items: list[Any] = []
        self.last_sequence: int | None = None
        self.ended: str | None = None

    def run(self, events: list[SSEEvent]) -> list[str]:
        found = _payloads(events, self.violations, frozenset())
        if not found:
            return [*self.violations, "the stream holds no event"]
        for number, (position, event, payload) in enumerate(found):
            where = f"event {position}"
            if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
                self.violations.append(f"{where}: payload without a type")
                continue
            kind = payload["type"]
            if event.event != kind:
                self.violations.append(f"{where}: `event: {event.event}` line differs from its type {kind!r}")
            if number == 0 and kind != "response.created":
                self.violations.append(f"{where}: the first event is {kind!r}, not response.created")
            if self.ended is not None:
                self.violations.append(f"{where}: {kind} after the stream's end ({self.ended})")
            self.sequence(where, payload)
            self.event(where, kind, payload)
        if self.ended is None:
            self.violations.append("the stream does not end with response.completed, .incomplete, .failed or error")
        return self.violations

    def sequence(self, where: str, payload: dict[str, Any]) -> None:
        number = payload.get("sequence_number")
        if not isinstance(number, int):
            self.violations.append(f"{where}: no sequence_number")
            return
        if self.last_sequence is not None and number <= self.last_sequence:
            self.violations.append(f"{where}: sequence_number {number} does not increase (after {self.last_sequence})")
        self.last_sequence = number

    def event(self, where: str, kind: str, payload: dict[str, Any]) -> None:
        if kind in _RESPONSES_TERMINAL or kind == "error":
            self.ended = kind
            if kind in _RESPONSES_TERMINAL:
                self.terminal(where, kind, payload.get("response"))
            return
        if kind == "response.output_item.added":
            self.added(where, payload)
            return
        index = payload.get("output_index")
        if index is None:
            return  # response.created, in_progress, unknown events without an item
        item = self.items[index] if isinstance(index, int) and 0 <= index < len(self.items) else None
        if item is None or item.done:
            self.violations.append(f"{where}: {kind} for output_index {index}, which is not open")
            return
        if kind != "response.output_item.done" and payload.get("item_id") != item.id:
            self.violations.append(f"{where}: item_id {payload.get('item_id')!r} is not item {index}'s {item.id!r}")
        if kind in _RESPONSES_INPUT_DELTAS:
            item.input.append(str(payload.get("delta", "")))
        elif kind in _RESPONSES_INPUT_DELTAS.values():
            value = payload.get("arguments" if item.type == "function_call" else "input")
            if value != "".join(item.input):
                self.violations.append(f"{where}: {kind} carries {value!r}, not the concatenated deltas")
        elif kind == "response.output_text.delta":
            item.texts.setdefault(int(payload.get("content_index") or 0), []).append(str(payload.get("delta", "")))
        elif kind == "response.output_text.done":
            sent = "".join(item.texts.get(int(payload.get("content_index") or 0), []))
            if payload.get("text") != sent:
                self.violations.append(f"{where}: output_text.done text differs from the concatenated deltas")
        elif kind == "response.output_item.done":
            self.item_done(where, index, item, payload.get("item"))

    def added(self, where: str, payload: dict[str, Any]) -> None:
        item = payload.get("item")
        index = payload.get("output_index")
        if index != len(self.items):
            self.violations.append(f"{where}: output_item.added at output_index {index}, expected {len(self.items)}")
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            self.violations.append(f"{where}: output_item.added without an item type")
            item = {}
        if any(known.id == item.get("id") for known in self.items):
            self.violations.append(f"{where}: item id {item.get('id')!r} added twice")
        self.items.append(_ResponsesItem(item.get("id"), item.get("type")))

    def item_done(self, where: str, index: int, item: _ResponsesItem, done: Any) -> None:
        item.done = True
        if not isinstance(done, dict) or done.get("id") != item.id or done.get("type") != item.type:
            self.violations.append(f"{where}: output_item.done for item {index} has another id or type")
            return
        self.done_items.append(done)
        field_name = _RESPONSES_CALL_FIELDS.get(str(done.get("type")))
        if field_name is not None:
            if not isinstance(done.get("call_id"), str) or not done.get("name"):
                self.violations.append(f"{where}: tool call item {index} lacks call_id or name")
            if item.input and done.get(field_name) != "".join(item.input):
                self.violations.append(f"{where}: item {index}'s {field_name} differs from its deltas")
            if field_name == "arguments":
                violation = _tool_arguments_violation(f"{where} item {index}", str(done.get("arguments")))
                if violation:
                    self.violations.append(violation)
        for content_index, deltas in item.texts.items():
            content = done.get("content")
            part = content[content_index] if isinstance(content, list) and content_index < len(content) else None
            if not isinstance(part, dict) or part.get("text") != "".join(deltas):
                self.violations.append(f"{where}: item {index}'s text {content_index} differs from its deltas")

    def terminal(self, where: str, kind: str, response: Any) -> None:
        if not isinstance(response, dict):
            self.violations.append(f"{where}: {kind} without its response")
            return
        if kind == "response.completed":
            for index, item in enumerate(self.items):
                if not item.done:
                    self.violations.append(f"{where}: item {index} was added but never done")
        if response.get("output") != self.done_items:
            self.violations.append(f"{where}: {kind}.response.output is not the items the stream sent")


def check_openai_responses_stream(events: list[SSEEvent]) -> list[str]:
    """Violations in a Responses event stream."""
    return _ResponsesStreamCheck().run(events)


def check_openai_response(body: Any) -> list[str]:
    """Violations in a non-streamed Responses body."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    violations: list[str] = []
    if body.get("object") != "response":
        violations.append(f"object must be 'response', got {body.get('object')!r}")
    output = body.get("output")
    if not isinstance(output, list):
        return [*violations, "no output list"]
    ids = [item.get("id") for item in output if isinstance(item, dict)]
    if len(ids) != len(set(ids)) or len(ids) != len(output):
        violations.append("output items are not objects with distinct ids")
    for index, item in enumerate(output):
        field_name = _RESPONSES_CALL_FIELDS.get(str(item.get("type"))) if isinstance(item, dict) else None
        if field_name is None:
            continue
        if (
            not isinstance(item.get("call_id"), str)
            or not item.get("name")
            or not isinstance(item.get(field_name), str)
        ):
            violations.append(f"output {index}: tool call item lacks call_id, name or {field_name}")
        elif field_name == "arguments":
            violation = _tool_arguments_violation(f"output {index}", item["arguments"])
            if violation:
                violations.append(violation)
    if "usage" in body and body["usage"] is not None:
        violations += _usage_violations(body["usage"], ("input_tokens", "output_tokens", "total_tokens"), "usage")
    return violations


# --- Google Gemini ---------------------------------------------------------------------


def _gemini_response(payload: Any) -> Any:
    """A chunk's GenerateContentResponse (Code Assist wraps it in `response`)."""
    if isinstance(payload, dict) and isinstance(payload.get("response"), dict) and "candidates" not in payload:
        return payload["response"]
    return payload


def _gemini_part_violations(where: str, part: Any) -> list[str]:
    if not isinstance(part, dict):
        return [f"{where}: part is not an object"]
    violations: list[str] = []
    data_keys = {"text", "functionCall", "functionResponse", "inlineData", "fileData", "executableCode",
                 "codeExecutionResult"} & set(part)  # fmt: skip
    if len(data_keys) != 1:
        violations.append(f"{where}: a part must hold exactly one kind of data, has {sorted(data_keys)}")
    if "text" in part:
        if not isinstance(part["text"], str):
            violations.append(f"{where}: text is not a string")
        elif not part["text"] and "thoughtSignature" not in part:
            violations.append(f"{where}: empty text part")
    if "functionCall" in part:
        call = part["functionCall"]
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            violations.append(f"{where}: functionCall without a name")
        elif "args" in call and not isinstance(call["args"], dict):
            violations.append(f"{where}: functionCall args are not an object")
    if "thoughtSignature" in part and not (isinstance(part["thoughtSignature"], str) and part["thoughtSignature"]):
        violations.append(f"{where}: thoughtSignature is not a non-empty string")
    return violations


def _gemini_candidate_violations(where: str, candidate: Any) -> list[str]:
    if not isinstance(candidate, dict):
        return [f"{where}: candidate is not an object"]
    violations: list[str] = []
    content = candidate.get("content")
    if content is not None:
        if not isinstance(content, dict):
            return [f"{where}: content is not an object"]
        parts = content.get("parts", [])
        if not isinstance(parts, list):
            violations.append(f"{where}: parts is not a list")
        else:
            for index, part in enumerate(parts):
                violations += _gemini_part_violations(f"{where} part {index}", part)
    return violations


def check_gemini_stream(events: list[SSEEvent]) -> list[str]:
    """Violations in a Gemini `alt=sse` stream: every frame is a `data:` line with a
    GenerateContentResponse (or an error object), no event names, no [DONE]; exactly
    one terminal finishReason per candidate, nothing for that candidate after it;
    function calls well formed; no empty text parts (one carrying a thought signature
    is allowed: Gemini sends those)."""
    violations: list[str] = []
    finished: dict[int, int] = {}
    for position, event, payload in _payloads(events, violations, frozenset()):
        where = f"frame {position}"
        if event.event is not None:
            violations.append(f"{where}: Gemini frames have no event name, got {event.event!r}")
        if payload == DONE:
            violations.append(f"{where}: Gemini streams have no [DONE]")
            continue
        chunk = _gemini_response(payload)
        if not isinstance(chunk, dict):
            violations.append(f"{where}: not a JSON object")
            continue
        if "error" in chunk:
            continue
        candidates = chunk.get("candidates", [])
        if not isinstance(candidates, list):
            violations.append(f"{where}: candidates is not a list")
            continue
        for candidate in candidates:
            index = candidate.get("index", 0) if isinstance(candidate, dict) else 0
            if index in finished:
                violations.append(
                    f"{where}: candidate {index} continues after its finishReason (frame {finished[index]})"
                )
            violations += _gemini_candidate_violations(f"{where} candidate {index}", candidate)
            if isinstance(candidate, dict) and candidate.get("finishReason") is not None:
                finished[index] = position
    if not finished:
        violations.append("no frame carries a finishReason")
    return violations


def check_gemini_response(body: Any) -> list[str]:
    """Violations in a non-streamed GenerateContentResponse."""
    chunk = _gemini_response(body)
    if not isinstance(chunk, dict):
        return ["the body is not a JSON object"]
    candidates = chunk.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        return ["no candidates list"]
    violations: list[str] = []
    for position, candidate in enumerate(candidates):
        violations += _gemini_candidate_violations(f"candidate {position}", candidate)
        if isinstance(candidate, dict) and candidate.get("finishReason") is None:
            violations.append(f"candidate {position}: no finishReason")
    return violations
