"""Exact provider wire formats built from one neutral scenario description.

A `Scenario` says what an assistant turn contains (thinking, text, tool calls, stop
reason, token counts). The functions here turn it into the bytes and JSON the real
APIs send: OpenAI Chat Completions (SSE chunks and the non-streaming body) and
Anthropic Messages (SSE events and the non-streaming body). The mock provider serves
them, and the codec tests check that a stream reassembles into its non-streaming twin.

The shapes are the ones the APIs send today, quirks included:
- OpenAI: every chunk has `id`, `object`, `created`, `model`, `service_tier`,
  `system_fingerprint` and a per-chunk `obfuscation` string; with
  `stream_options.include_usage` every chunk also has `usage: null` and a `choices: []`
  usage chunk comes last. A turn with text opens with
  `{"role":"assistant","content":"","refusal":null}`; a tool-only turn opens with the
  role and the first tool call in one delta (`content: null`). Each tool call's first
  delta has its index, id, type and name; later ones only index and arguments. The last
  chunk has `delta: {}` and the finish reason. `interleave_tool_calls` sends parallel
  calls' deltas round-robin by index, as several OpenAI-compatible hosts do.
- Anthropic: every event has its `event:` line; `message_start` usage has the cache
  fields, `cache_creation` per TTL, `service_tier` and `inference_geo`;
  `message_delta` usage is cumulative (input and cache counts too); a `ping` (spaced
  JSON, as the API writes it) follows the first `content_block_start`, and with
  `ping_between_blocks` one sits between blocks as well.

Named scenarios (`SCENARIOS`): text, tool (text then one call), tools2 (text then two
calls, pings between blocks), tools3 (three calls, tool-only), long_args (one call in
25 pieces), interleaved (tool-only; call 0's `{"command":"rm -rf /"}` is completed only
after call 1 started), thinking, cache, unicode.

Everything is deterministic: ids, timestamps and obfuscation strings derive from the
scenario, so a stream and the non-streaming body of the same scenario and model describe
the same message. JSON is compact and keeps non-ASCII characters as UTF-8, as both
providers do.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Stop reasons in each dialect's vocabulary; a scenario may use either.
_ANTHROPIC_TO_OPENAI_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
_OPENAI_TO_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}
# A fixed `created` (2026-01-01T00:00:00Z) keeps outputs reproducible.
_CREATED = 1_767_225_600


@dataclass
class ScenarioToolCall:
    """One tool call. `id` is a dialect-neutral stem: the wire id is `call_<id>` for
    OpenAI and `toolu_<id>` for Anthropic (see `openai_tool_id` / `anthropic_tool_id`).
    The concatenated `argument_pieces` are the JSON arguments string."""

    id: str
    name: str
    argument_pieces: list[str]

    @property
    def arguments(self) -> str:
        return "".join(self.argument_pieces)


@dataclass
class Scenario:
    """One assistant turn, independent of the dialect that will carry it."""

    model: str = "gpt-4o-mini"  # the mock echoes the request's model when serving
    thinking: list[str] = field(default_factory=list)  # Anthropic thinking deltas
    redacted_thinking: bool = False  # an Anthropic redacted_thinking block
    text: list[str] = field(default_factory=list)  # text deltas, before any tool call
    tool_calls: list[ScenarioToolCall] = field(default_factory=list)
    stop_reason: str | None = None  # None: derived from whether there are tool calls
    input_tokens: int = 12  # excluding cache reads and writes (Anthropic's meaning)
    output_tokens: int = 34
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0  # Anthropic only: OpenAI reports no cache writes
    interleave_tool_calls: bool = False  # OpenAI: parallel calls' deltas round-robin
    ping_between_blocks: bool = False  # Anthropic: a ping between content blocks too


def openai_tool_id(call: ScenarioToolCall) -> str:
    return f"call_{call.id}"


def anthropic_tool_id(call: ScenarioToolCall) -> str:
    return f"toolu_{call.id}"


def _digest(s: Scenario) -> str:
    return hashlib.sha256(json.dumps(asdict(s), sort_keys=True).encode()).hexdigest()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def openai_finish_reason(s: Scenario) -> str:
    if s.stop_reason is None:
        return "tool_calls" if s.tool_calls else "stop"
    return _ANTHROPIC_TO_OPENAI_STOP.get(s.stop_reason, s.stop_reason)


def anthropic_stop_reason(s: Scenario) -> str:
    if s.stop_reason is None:
        return "tool_use" if s.tool_calls else "end_turn"
    return _OPENAI_TO_ANTHROPIC_STOP.get(s.stop_reason, s.stop_reason)


# --- OpenAI Chat Completions -------------------------------------------------------


def _openai_ids(s: Scenario) -> tuple[str, str]:
    digest = _digest(s)
    return f"chatcmpl-{digest[:29]}", f"fp_{digest[29:39]}"


def _openai_usage(s: Scenario) -> dict[str, Any]:
    prompt = s.input_tokens + s.cache_read_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": s.output_tokens,
        "total_tokens": prompt + s.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": s.cache_read_tokens,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _openai_content(s: Scenario) -> str | None:
    """`content` of the complete message: null when the turn is only tool calls."""
    text = "".join(s.text)
    return text if text or not s.tool_calls else None


def _obfuscation(seed: str, position: int) -> str:
    """The random-looking padding OpenAI puts in each chunk (2 to 15 characters)."""
    raw = hashlib.sha256(f"{seed}:{position}".encode()).digest()
    text = base64.b64encode(raw).decode().translate(str.maketrans("", "", "+/="))
    return text[: 2 + raw[0] % 14]


def _openai_call_deltas(index: int, call: ScenarioToolCall) -> list[dict[str, Any]]:
    """The deltas of one tool call: index, id, type and name first, then arguments only."""
    opening = {
        "index": index,
        "id": openai_tool_id(call),
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }
    pieces = [{"index": index, "function": {"arguments": piece}} for piece in call.argument_pieces]
    return [{"tool_calls": [part]} for part in (opening, *pieces)]


def _round_robin(groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for row in itertools.zip_longest(*groups) for item in row if item is not None]


def openai_chat_sse(s: Scenario, model: str, include_usage: bool) -> list[bytes]:
    """The chunks of a streamed Chat Completion, one `data:` event each, then `[DONE]`."""
    chunk_id, fingerprint = _openai_ids(s)
    seed = _digest(s)
    events: list[bytes] = []

    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": fingerprint,
            "choices": choices,
        }
        if include_usage:
            body["usage"] = usage
        body["obfuscation"] = _obfuscation(seed, len(events))
        events.append(f"data: {_dumps(body)}\n\n".encode())

    def delta(d: dict[str, Any], finish_reason: str | None = None) -> None:
        chunk([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish_reason}])

    per_call = [_openai_call_deltas(index, call) for index, call in enumerate(s.tool_calls)]
    calls = _round_robin(per_call) if s.interleave_tool_calls else list(itertools.chain(*per_call))
    if s.text or not calls:
        delta({"role": "assistant", "content": "", "refusal": None})
    else:  # a tool-only turn: the role comes with the first tool call
        delta({"role": "assistant", "content": None, **calls.pop(0), "refusal": None})
    for piece in s.text:
        delta({"content": piece})
    for call_delta in calls:
        delta(call_delta)
    delta({}, openai_finish_reason(s))
    if include_usage:
        chunk([], _openai_usage(s))
    events.append(b"data: [DONE]\n\n")
    return events


def openai_chat_json(s: Scenario, model: str) -> dict[str, Any]:
    """The non-streaming Chat Completion of the same turn."""
    chunk_id, fingerprint = _openai_ids(s)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": _openai_content(s),
        "refusal": None,
    }
    if s.tool_calls:
        message["tool_calls"] = [
            {
                "id": openai_tool_id(call),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in s.tool_calls
        ]
    return {
        "id": chunk_id,
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": openai_finish_reason(s),
            }
        ],
        "usage": _openai_usage(s),
    }


# --- Anthropic Messages ------------------------------------------------------------


def _anthropic_ids(s: Scenario) -> tuple[str, str, str]:
    """Message id, thinking signature, redacted_thinking data."""
    digest = _digest(s)
    return f"msg_{digest[:24]}", f"Eq{digest[24:56]}==", f"EmR{digest[32:64]}="


def _anthropic_usage(s: Scenario, output_tokens: int) -> dict[str, Any]:
    """Usage as `message_start` and the non-streaming body carry it."""
    return {
        "input_tokens": s.input_tokens,
        "cache_creation_input_tokens": s.cache_write_tokens,
        "cache_read_input_tokens": s.cache_read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": s.cache_write_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


def _anthropic_delta_usage(s: Scenario) -> dict[str, Any]:
    """The cumulative usage of `message_delta`: the final counts, cache fields included."""
    return {
        "input_tokens": s.input_tokens,
        "cache_creation_input_tokens": s.cache_write_tokens,
        "cache_read_input_tokens": s.cache_read_tokens,
        "output_tokens": s.output_tokens,
    }


def _tool_input(call: ScenarioToolCall) -> Any:
    return json.loads(call.arguments) if call.arguments else {}


def _anthropic_blocks(
    s: Scenario,
) -> list[tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]]:
    """Each content block as (its content_block_start form, its deltas, its complete form)."""
    _, signature, redacted = _anthropic_ids(s)
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]] = []
    if s.thinking:
        blocks.append(
            (
                {"type": "thinking", "thinking": "", "signature": ""},
                [{"type": "thinking_delta", "thinking": piece} for piece in s.thinking]
                + [{"type": "signature_delta", "signature": signature}],
                {
                    "type": "thinking",
                    "thinking": "".join(s.thinking),
                    "signature": signature,
                },
            )
        )
    if s.redacted_thinking:
        block = {"type": "redacted_thinking", "data": redacted}
        blocks.append((block, [], block))
    if s.text:
        blocks.append(
            (
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": piece} for piece in s.text],
                {"type": "text", "text": "".join(s.text)},
            )
        )
    for call in s.tool_calls:
        head = {"type": "tool_use", "id": anthropic_tool_id(call), "name": call.name}
        blocks.append(
            (
                {**head, "input": {}},
                [{"type": "input_json_delta", "partial_json": piece} for piece in ["", *call.argument_pieces]],
                {**head, "input": _tool_input(call)},
            )
        )
    return blocks


# The API writes its pings with a space, unlike its other events.
_PING = b'event: ping\ndata: {"type": "ping"}\n\n'


def anthropic_sse(s: Scenario, model: str) -> list[bytes]:
    """The events of a streamed Message, in the order the API sends them."""
    message_id, _, _ = _anthropic_ids(s)

    def event(name: str, body: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {_dumps({'type': name, **body})}\n\n".encode()

    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _anthropic_usage(s, 1),
    }
    events = [event("message_start", {"message": message})]
    for index, (start, deltas, _) in enumerate(_anthropic_blocks(s)):
        if index and s.ping_between_blocks:
            events.append(_PING)
        events.append(event("content_block_start", {"index": index, "content_block": start}))
        if index == 0:
            events.append(_PING)  # the first ping follows the first block's start
        events += [event("content_block_delta", {"index": index, "delta": d}) for d in deltas]
        events.append(event("content_block_stop", {"index": index}))
    if len(events) == 1:
        events.append(_PING)
    events.append(
        event(
            "message_delta",
            {
                "delta": {
                    "stop_reason": anthropic_stop_reason(s),
                    "stop_sequence": None,
                },
                "usage": _anthropic_delta_usage(s),
            },
        )
    )
    events.append(event("message_stop", {}))
    return events


def anthropic_json(s: Scenario, model: str) -> dict[str, Any]:
    """The non-streaming Message of the same turn."""
    message_id, _, _ = _anthropic_ids(s)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [complete for _, _, complete in _anthropic_blocks(s)],
        "stop_reason": anthropic_stop_reason(s),
        "stop_sequence": None,
        "usage": _anthropic_usage(s, s.output_tokens),
    }


# --- Named scenarios ---------------------------------------------------------------

_WEATHER_PARIS = ScenarioToolCall(
    id="01A09q90qw90lq917835lq9",
    name="get_weather",
    argument_pieces=['{"location": "Par', 'is, France"', ', "unit": "c', 'elsius"}'],
)
_WEATHER_TOKYO = ScenarioToolCall(
    id="01B7mZ3kPq2Wd8sXy4tN6vR",
    name="get_weather",
    argument_pieces=['{"locat', 'ion": "Tok', 'yo, Japan", "unit"', ': "celsius"}'],
)
_READ_FILE = ScenarioToolCall(
    id="01C5hJ8uLx1Qe3bVz7pK2mW",
    name="read_file",
    argument_pieces=['{"pa', 'th": "/etc/ho', 'stname"}'],
)


def _long_args_pieces() -> list[str]:
    arguments = json.dumps(
        {
            "command": "find . -name '*.py' | xargs grep -n 'TODO' | sort | head -n 50",
            "timeout": 120,
            "description": "List the first fifty TODO comments in Python files",
        }
    )
    return _split(arguments, 25)


def _split(text: str, count: int) -> list[str]:
    """`text` cut into `count` pieces of nearly equal length."""
    size, extra = divmod(len(text), count)
    bounds = [i * size + min(i, extra) for i in range(count + 1)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


STAMP = "<<interlock-stamp>>"  # the mock's `stamp` option writes the send time here (19 digits)

SCENARIOS: dict[str, Scenario] = {
    "text": Scenario(text=["Hello", " from the", " mock provider."]),
    "stamped": Scenario(text=[f" {STAMP}"] * 8),  # with `stamp`: each delta says when it was sent
    "tool": Scenario(text=["Let me check", " the weather."], tool_calls=[_WEATHER_PARIS]),
    "tools2": Scenario(
        text=["Checking both cities."],
        tool_calls=[_WEATHER_PARIS, _WEATHER_TOKYO],
        ping_between_blocks=True,
    ),
    "tools3": Scenario(tool_calls=[_WEATHER_PARIS, _WEATHER_TOKYO, _READ_FILE]),
    "long_args": Scenario(
        tool_calls=[
            ScenarioToolCall(
                id="01D4gT6yHn9Rc2aUx5oJ1lV",
                name="Bash",
                argument_pieces=_long_args_pieces(),
            )
        ]
    ),
    # Call 0 turns into `rm -rf /` only after call 1 has started (OpenAI: deltas
    # round-robin by index); a proxy that decides call 0 when call 1 starts sees "".
    "interleaved": Scenario(
        tool_calls=[
            ScenarioToolCall(
                id="01F8kW2rTz5Nc7dYq3mB6xA",
                name="Bash",
                argument_pieces=['{"comm', 'and":', '"rm -rf /"}'],
            ),
            _READ_FILE,
        ],
        interleave_tool_calls=True,
    ),
    "thinking": Scenario(
        model="claude-sonnet-4-5",
        thinking=["The user wants", " a greeting.", " Keep it short."],
        redacted_thinking=True,
        text=["Hi", " there!"],
    ),
    "cache": Scenario(
        text=["Cached", " answer."],
        input_tokens=5,
        output_tokens=7,
        cache_read_tokens=2048,
        cache_write_tokens=512,
    ),
    "unicode": Scenario(
        text=["Café", " é", " 日本", "語 ", "🎉👍🏽", " done"],
        tool_calls=[
            ScenarioToolCall(
                id="01E2fS7xGm8Pb1zTw4nI0kU",
                name="translate",
                argument_pieces=[
                    '{"text": "日',
                    '本語", "emoji": "🎉',
                    '", "accent": "é"}',
                ],
            )
        ],
    ),
}


# --- OpenAI Responses --------------------------------------------------------------


@dataclass
class ResponsesScenario(Scenario):
    """A turn only the Responses API carries: custom tool calls (free-form `input`, as
    Codex's `apply_patch`) after the function calls."""

    custom_calls: list[ScenarioToolCall] = field(default_factory=list)


def _responses_ids(s: Scenario) -> tuple[str, str]:
    """Response id and the stem of its item ids."""
    digest = _digest(s)
    return f"resp_{digest[:48]}", digest[8:40]


def _responses_usage(s: Scenario) -> dict[str, Any]:
    """Usage as the Responses API reports it: `input_tokens` includes cache reads and
    writes, `output_tokens` the reasoning tokens."""
    prompt = s.input_tokens + s.cache_read_tokens + s.cache_write_tokens
    reasoning = 8 if s.thinking else 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": s.cache_read_tokens, "cache_write_tokens": s.cache_write_tokens},
        "output_tokens": s.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + s.output_tokens,
    }


def _responses_object(s: Scenario, model: str, status: str, output: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The `response` object: in `response.created` (in progress, no output yet), in
    `response.completed`, and as the non-streamed body."""
    response_id, _ = _responses_ids(s)
    done = status == "completed"
    return {
        "id": response_id,
        "object": "response",
        "created_at": _CREATED,
        "status": status,
        "background": False,
        "completed_at": _CREATED + 2 if done else None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": model,
        "output": output or [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "reasoning": {"effort": "medium" if s.thinking else None, "summary": "auto" if s.thinking else None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _responses_usage(s) if done else None,
        "user": None,
        "metadata": {},
    }


@dataclass
class _Item:
    """One output item: its `output_item.added` form, the events between added and
    done (type and fields, without item_id/output_index/sequence_number), its done form."""

    added: dict[str, Any]
    events: list[dict[str, Any]]
    done: dict[str, Any]


def _responses_items(s: Scenario) -> list[_Item]:
    _, stem = _responses_ids(s)
    items: list[_Item] = []
    if s.thinking:
        summary = "".join(s.thinking)
        part: dict[str, Any] = {"type": "summary_text", "text": ""}
        items.append(
            _Item(
                {"id": f"rs_{stem}", "type": "reasoning", "summary": []},
                [
                    {"type": "response.reasoning_summary_part.added", "summary_index": 0, "part": part},
                    *(
                        {"type": "response.reasoning_summary_text.delta", "summary_index": 0, "delta": piece}
                        for piece in s.thinking
                    ),
                    {"type": "response.reasoning_summary_text.done", "summary_index": 0, "text": summary},
                    {
                        "type": "response.reasoning_summary_part.done",
                        "summary_index": 0,
                        "part": {**part, "text": summary},
                    },
                ],
                {"id": f"rs_{stem}", "type": "reasoning", "summary": [{"type": "summary_text", "text": summary}]},
            )
        )
    if s.text:
        text = "".join(s.text)
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        head = {"id": f"msg_{stem}", "type": "message", "role": "assistant"}
        items.append(
            _Item(
                {**head, "status": "in_progress", "content": []},
                [
                    {"type": "response.content_part.added", "content_index": 0, "part": part},
                    *(
                        {"type": "response.output_text.delta", "content_index": 0, "delta": piece, "logprobs": []}
                        for piece in s.text
                    ),
                    {"type": "response.output_text.done", "content_index": 0, "text": text, "logprobs": []},
                    {"type": "response.content_part.done", "content_index": 0, "part": {**part, "text": text}},
                ],
                {**head, "status": "completed", "content": [{**part, "text": text}]},
            )
        )
    for position, call in enumerate(s.tool_calls):
        head = {"id": f"fc_{stem}{position:02d}", "type": "function_call"}
        tail = {"call_id": openai_tool_id(call), "name": call.name}
        items.append(
            _Item(
                {**head, "status": "in_progress", "arguments": "", **tail},
                [
                    *({"type": "response.function_call_arguments.delta", "delta": p} for p in call.argument_pieces),
                    {"type": "response.function_call_arguments.done", "arguments": call.arguments},
                ],
                {**head, "status": "completed", "arguments": call.arguments, **tail},
            )
        )
    for position, call in enumerate(getattr(s, "custom_calls", [])):
        head = {"id": f"ctc_{stem}{position:02d}", "type": "custom_tool_call"}
        tail = {"call_id": openai_tool_id(call), "name": call.name}
        items.append(
            _Item(
                {**head, "status": "in_progress", "input": "", **tail},
                [
                    *({"type": "response.custom_tool_call_input.delta", "delta": p} for p in call.argument_pieces),
                    {"type": "response.custom_tool_call_input.done", "input": call.arguments},
                ],
                {**head, "status": "completed", "input": call.arguments, **tail},
            )
        )
    return items


def openai_responses_sse(s: Scenario, model: str) -> list[bytes]:
    """The typed events of a streamed Response: `event:` and `data:` lines, every payload
    with its `type` and an increasing `sequence_number`, deltas with an `obfuscation`
    string, `response.completed` (with the whole response) last, no `[DONE]`."""
    seed = _digest(s)
    events: list[bytes] = []

    def event(body: dict[str, Any]) -> None:
        payload = {"type": body["type"], "sequence_number": len(events)}
        payload.update((k, v) for k, v in body.items() if k != "type")
        if payload["type"].endswith(".delta"):
            payload["obfuscation"] = _obfuscation(seed, len(events))
        events.append(f"event: {payload['type']}\ndata: {_dumps(payload)}\n\n".encode())

    items = _responses_items(s)
    event({"type": "response.created", "response": _responses_object(s, model, "in_progress", None)})
    event({"type": "response.in_progress", "response": _responses_object(s, model, "in_progress", None)})
    for index, item in enumerate(items):
        event({"type": "response.output_item.added", "output_index": index, "item": item.added})
        for inner in item.events:
            event({"type": inner["type"], "item_id": item.added["id"], "output_index": index, **inner})
        event({"type": "response.output_item.done", "output_index": index, "item": item.done})
    completed = _responses_object(s, model, "completed", [item.done for item in items])
    event({"type": "response.completed", "response": completed})
    return events


def openai_responses_json(s: Scenario, model: str) -> dict[str, Any]:
    """The non-streamed Response of the same turn."""
    return _responses_object(s, model, "completed", [item.done for item in _responses_items(s)])


_APPLY_PATCH = ScenarioToolCall(
    id="01G3nV5pRw8Kd2hXs6tM9bQ",
    name="apply_patch",
    argument_pieces=["*** Begin Patch\n*** Update File: notes.txt\n", "@@\n-old line\n+new line\n", "*** End Patch"],
)
_SHELL_RM = ScenarioToolCall(
    id="01H6qY1sUa4Lf9jZv2wN5cE",
    name="exec_command",
    argument_pieces=['{"cmd": "rm -rf ', '/tmp/precious"}'],
)

# Scenarios only the Responses route serves (custom tool calls have no twin elsewhere).
RESPONSES_SCENARIOS: dict[str, ResponsesScenario] = {
    "custom_tool": ResponsesScenario(
        model="gpt-5-codex", text=["Patching", " the notes."], custom_calls=[_APPLY_PATCH]
    ),
    "shell": ResponsesScenario(model="gpt-5-codex", thinking=["Cleaning", " up."], tool_calls=[_SHELL_RM]),
}


def sse_for(dialect: str, s: Scenario, model: str) -> list[bytes]:
    """The streamed events of `s` in a dialect (by its registry name); OpenAI chat with
    the usage chunk; Gemini's function calls with ids."""
    if dialect == "gemini":
        return gemini_sse(s, model, call_ids=True)
    if dialect == "anthropic-messages":
        return anthropic_sse(s, model)
    if dialect == "openai-responses":
        return openai_responses_sse(s, model)
    return openai_chat_sse(s, model, include_usage=True)


def json_for(dialect: str, s: Scenario, model: str) -> dict[str, Any]:
    """The non-streamed body of `s` in a dialect (by its registry name); Gemini's
    function calls with ids."""
    if dialect == "gemini":
        return gemini_json(s, model, call_ids=True)
    if dialect == "anthropic-messages":
        return anthropic_json(s, model)
    if dialect == "openai-responses":
        return openai_responses_json(s, model)
    return openai_chat_json(s, model)


# --- Google Gemini -----------------------------------------------------------------
#
# generateContent / streamGenerateContent as generativelanguage.googleapis.com (and
# Vertex AI) send them: every chunk a whole GenerateContentResponse in Google's JSON
# style (`": "` after a key, no space after a comma); `alt=sse` frames are `data:` lines
# ended by CRLF CRLF, no event names, no [DONE]; without `alt=sse` the chunks are one
# JSON array, each chunk pretty-printed; the non-streamed body is pretty-printed too.
# Thought summaries are `{"text", "thought": true}` parts; a function call arrives whole
# in one part, the first call carrying the step's `thoughtSignature`; a turn with
# thoughts and no call ends with an empty text part holding the signature (as Gemini 3
# sends it). `finishReason` (STOP for tool calls too) and the complete `usageMetadata`
# come on the last chunk, earlier chunks carry the prompt counts only.


def _google_dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ": "))


def _google_pretty(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2)


def gemini_ids(s: Scenario) -> tuple[str, str]:
    """The response id and the thought signature of a scenario's turn."""
    digest = _digest(s)
    signature = base64.b64encode(bytes.fromhex(digest[:48])).decode()
    return base64.urlsafe_b64encode(bytes.fromhex(digest[48:64])).decode().rstrip("="), signature


def _gemini_usage(s: Scenario, final: bool) -> dict[str, Any]:
    prompt = s.input_tokens + s.cache_read_tokens
    thoughts = 8 if s.thinking else 0
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if final:
        usage["candidatesTokenCount"] = s.output_tokens
    usage["totalTokenCount"] = prompt + (s.output_tokens + thoughts if final else 0)
    if s.cache_read_tokens:
        usage["cachedContentTokenCount"] = s.cache_read_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if s.cache_read_tokens:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": s.cache_read_tokens}]
    if thoughts and final:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def gemini_finish_reason(s: Scenario) -> str:
    return {"max_tokens": "MAX_TOKENS", "length": "MAX_TOKENS", "refusal": "SAFETY"}.get(s.stop_reason or "", "STOP")


def gemini_parts(s: Scenario, call_ids: bool = False) -> list[list[dict[str, Any]]]:
    """The parts of each streamed chunk, in order (the non-streamed body joins them).
    `call_ids`: function calls carry an `id` (`call_<id>`), as the API may send them."""
    _, signature = gemini_ids(s)
    chunks: list[list[dict[str, Any]]] = [[{"text": piece, "thought": True}] for piece in s.thinking]
    chunks += [[{"text": piece}] for piece in s.text]
    for position, call in enumerate(s.tool_calls):
        function: dict[str, Any] = {"name": call.name, "args": _tool_input(call)}
        if call_ids:
            function = {"id": openai_tool_id(call), **function}
        part: dict[str, Any] = {"functionCall": function}
        if position == 0:
            part["thoughtSignature"] = signature
        chunks.append([part])
    if s.thinking and not s.tool_calls:
        chunks.append([{"text": "", "thoughtSignature": signature}])
    return chunks or [[]]  # an empty turn: one chunk with the finish, its content without parts


def _gemini_chunk(
    s: Scenario, model: str, parts: list[dict[str, Any]], final: bool, wrapped: bool = False
) -> dict[str, Any]:
    response_id, _ = gemini_ids(s)
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"} if parts else {"role": "model"}}
    if final:
        candidate["finishReason"] = gemini_finish_reason(s)
        candidate["index"] = 0
    body = {
        "candidates": [candidate],
        "usageMetadata": _gemini_usage(s, final),
        "modelVersion": model,
        "responseId": response_id,
    }
    return {"response": body, "traceId": response_id[:16]} if wrapped else body


def gemini_chunks(s: Scenario, model: str, wrapped: bool = False, call_ids: bool = False) -> list[dict[str, Any]]:
    """The GenerateContentResponse chunks of a streamed turn (`wrapped`: Code Assist's
    `{response, traceId}` form)."""
    chunks = gemini_parts(s, call_ids)
    return [
        _gemini_chunk(s, model, parts, position == len(chunks) - 1, wrapped) for position, parts in enumerate(chunks)
    ]


def gemini_sse(s: Scenario, model: str, wrapped: bool = False, call_ids: bool = False) -> list[bytes]:
    """The `alt=sse` frames of a streamed turn."""
    chunks = gemini_chunks(s, model, wrapped, call_ids)
    return [f"data: {_google_dumps(chunk)}\r\n\r\n".encode() for chunk in chunks]


def gemini_json_array(s: Scenario, model: str, wrapped: bool = False) -> list[bytes]:
    """A streamed turn without `alt=sse`: one JSON array, written chunk by chunk."""
    chunks = [_google_pretty(chunk) for chunk in gemini_chunks(s, model, wrapped)]
    pieces = [("[" if position == 0 else ",\r\n") + chunk for position, chunk in enumerate(chunks)]
    pieces[-1] += "]"
    return [piece.encode() for piece in pieces]


def gemini_json(s: Scenario, model: str, wrapped: bool = False, call_ids: bool = False) -> dict[str, Any]:
    """The non-streamed GenerateContentResponse of the same turn."""
    parts = [part for chunk in gemini_parts(s, call_ids) for part in chunk]
    merged: list[dict[str, Any]] = []
    for part in parts:  # the whole body carries one part per thought and per text run
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and set(part) <= {"text", "thought"}
            and set(previous) <= {"text", "thought"}
            and part.get("thought") == previous.get("thought")
        ):
            merged[-1] = {**previous, "text": previous["text"] + part["text"]}
        else:
            merged.append(dict(part))
    return _gemini_chunk(s, model, merged, True, wrapped)


def google_error(code: int, status: str, message: str) -> dict[str, Any]:
    """An error in Google's shape (`google.rpc.Status` in JSON)."""
    return {"error": {"code": code, "message": message, "status": status}}


def google_pretty_bytes(obj: Any) -> bytes:
    """A JSON body as Google's servers write it: indented by two, ending in a newline."""
    return (_google_pretty(obj) + "\n").encode()
