"""Records the committed cassettes in `tests/cassettes/`: `uv run python tests/record_cassettes.py [DIR]`.

Interlock's own suite replays them (`tests/test_e2e_cassettes.py`): one JSON-lines file
per dialect and transport (`CASSETTES`), each holding, as the loopback mock provider
sends them (`mock_provider`, `wire_scenarios`, chosen with `[[mock:...]]` markers), plain
text, parallel tool calls (OpenAI chat's deltas interleaved by index), thinking where the
dialect carries it, and errors: a 429, a 400 with the provider's own refusal of the
request, and an error in the middle of a stream; streamed and not. Each call is one
function here (`Call`), driven with the real SDK of its dialect (a raw client for Code
Assist, which no SDK speaks; aiohttp for the Responses WebSocket) and returning what the
client got (`Outcome`), so the replay tests drive the very same requests.

It records through the real proxy: one mitmdump with `interlock_cassette`, the provider
hosts mapped to a mock on loopback, then splits the cassette it wrote by dialect,
transport and host. Run it again when the mock's answers or the cassette format change;
`test_the_committed_cassettes_are_current` fails until then. The key it sends (`KEY`) is
redacted before anything is written.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from harness import ProxyLauncher, ProxyProcess, make_ca
from harness_clients import ClientFactory
from mock_provider import MockProvider
from test_e2e_responses_ws import connect, create, turn

from interlock import cassette
from interlock.sse import parse_all

DIRECTORY = Path(__file__).resolve().parent / "cassettes"
KEY = "sk-cassette-recording-key-0123456789"  # redacted before it reaches a cassette
DELAY_MS = 5  # between two writes of a stream, so chunks arrive apart (and replay paced)
CHAT_MODEL = "gpt-4o-mini"
RESPONSES_MODEL = "gpt-5-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-6"
GEMINI_MODEL = "gemini-2.5-flash"
GEMINI_3_MODEL = "gemini-3-pro-preview"
CODE_ASSIST = "https://cloudcode-pa.googleapis.com/v1internal"

LOCATION: Any = {"type": "object", "properties": {"location": {"type": "string"}}}
PATH: Any = {"type": "object", "properties": {"path": {"type": "string"}}}
COMMAND: Any = {"type": "object", "properties": {"command": {"type": "string"}}}
# The tools the scenarios call, as each dialect declares them.
TOOLS = {"get_weather": LOCATION, "read_file": PATH, "Bash": COMMAND}
CHAT_TOOLS: Any = [
    {"type": "function", "function": {"name": name, "parameters": schema}} for name, schema in TOOLS.items()
]
RESPONSES_TOOLS: Any = [{"type": "function", "name": name, "parameters": schema} for name, schema in TOOLS.items()]
ANTHROPIC_TOOLS: Any = [{"name": name, "input_schema": schema} for name, schema in TOOLS.items()]
GEMINI_TOOLS: Any = [{"functionDeclarations": [{"name": name, "parameters": schema} for name, schema in TOOLS.items()]}]


@dataclass
class Outcome:
    """What a client got from one call: the answer's text and thinking, each tool call's
    name and arguments in order, (input, output) tokens; or the error it raised (its
    class, HTTP status, message)."""

    text: str = ""
    thinking: str = ""
    tools: list[tuple[str, Any]] = field(default_factory=list)
    usage: tuple[int, int] | None = None
    error: tuple[str, int | None, str] | None = None


def failed(error: Exception, status: int | None, message: str) -> Outcome:
    return Outcome(error=(type(error).__name__, status, message))


def arguments(text: str | None) -> Any:
    return json.loads(text or "{}")


# --- OpenAI Chat Completions ----------------------------------------------------------


def _chat(clients: ClientFactory) -> Any:
    return clients.openai()  # untyped: the calls pass plain dicts where it wants TypedDicts


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _chat_stream(clients: ClientFactory, text: str) -> Outcome:
    with _chat(clients).chat.completions.stream(
        model=CHAT_MODEL, messages=_user(text), tools=CHAT_TOOLS, stream_options={"include_usage": True}
    ) as stream:
        completion = stream.get_final_completion()
    message = completion.choices[0].message
    calls = [(c.function.name, arguments(c.function.arguments)) for c in message.tool_calls or []]
    usage = (completion.usage.prompt_tokens, completion.usage.completion_tokens) if completion.usage else None
    return Outcome(text=message.content or "", tools=calls, usage=usage)


def _chat_whole(clients: ClientFactory, messages: list[dict[str, Any]]) -> Outcome:
    try:
        completion = _chat(clients).chat.completions.create(model=CHAT_MODEL, messages=messages, tools=CHAT_TOOLS)
    except openai.APIStatusError as error:
        return failed(error, error.status_code, error.message)
    message = completion.choices[0].message
    calls = [(c.function.name, arguments(c.function.arguments)) for c in message.tool_calls or []]
    usage = (completion.usage.prompt_tokens, completion.usage.completion_tokens) if completion.usage else None
    return Outcome(text=message.content or "", tools=calls, usage=usage)


def chat_text_stream(clients: ClientFactory) -> Outcome:
    return _chat_stream(clients, "Say hello. [[mock:text]]")


def chat_parallel_tools_stream(clients: ClientFactory) -> Outcome:
    return _chat_stream(clients, "Clean up, then read the hostname. [[mock:interleaved]]")


def chat_parallel_tools(clients: ClientFactory) -> Outcome:
    return _chat_whole(clients, _user("Weather in Paris and Tokyo, and the hostname. [[mock:tools3]]"))


def chat_rate_limited(clients: ClientFactory) -> Outcome:
    return _chat_whole(clients, _user("Say hello. [[mock:error_429]]"))


def chat_invalid_request(clients: ClientFactory) -> Outcome:
    """A history whose assistant tool call has no tool message answering it."""
    call = {"id": "call_unanswered", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    history = [
        *_user("Weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        *_user("And Tokyo? [[mock:text]]"),
    ]
    return _chat_whole(clients, history)


def chat_error_mid_stream(clients: ClientFactory) -> Outcome:
    """A `data: {"error": ...}` chunk after the content, before the finish_reason chunk."""
    try:
        _chat_stream(clients, "Weather in Paris? [[mock:error_after_blocks]]")
    except openai.APIError as error:
        return failed(error, None, error.message)
    raise AssertionError("the stream's error event was not raised")


# --- OpenAI Responses over HTTP --------------------------------------------------------


def _responses_outcome(response: Any) -> Outcome:
    thinking = "".join(s.text for item in response.output if item.type == "reasoning" for s in item.summary)
    calls = [(item.name, arguments(item.arguments)) for item in response.output if item.type == "function_call"]
    usage = (response.usage.input_tokens, response.usage.output_tokens) if response.usage else None
    return Outcome(text=response.output_text, thinking=thinking, tools=calls, usage=usage)


def _responses_stream(clients: ClientFactory, text: str) -> Outcome:
    with _chat(clients).responses.stream(model=RESPONSES_MODEL, input=text, tools=RESPONSES_TOOLS) as stream:
        for event in stream:
            if event.type == "error":  # the Responses API's mid-stream error event
                return Outcome(error=(type(event).__name__, None, f"{event.code}: {event.message}"))
        return _responses_outcome(stream.get_final_response())


def _responses_whole(clients: ClientFactory, text: str, **extra: Any) -> Outcome:
    try:
        response = _chat(clients).responses.create(model=RESPONSES_MODEL, input=text, tools=RESPONSES_TOOLS, **extra)
    except openai.APIStatusError as error:
        return failed(error, error.status_code, error.message)
    return _responses_outcome(response)


def responses_text_stream(clients: ClientFactory) -> Outcome:
    return _responses_stream(clients, "Say hello. [[mock:text]]")


def responses_thinking_stream(clients: ClientFactory) -> Outcome:
    return _responses_stream(clients, "Greet me, briefly. [[mock:thinking]]")


def responses_parallel_tools_stream(clients: ClientFactory) -> Outcome:
    return _responses_stream(clients, "Weather in Paris and Tokyo? [[mock:tools2]]")


def responses_parallel_tools(clients: ClientFactory) -> Outcome:
    return _responses_whole(clients, "Weather in Paris and Tokyo, and the hostname. [[mock:tools3]]")


def responses_rate_limited(clients: ClientFactory) -> Outcome:
    return _responses_whole(clients, "Say hello. [[mock:error_429]]")


def responses_invalid_request(clients: ClientFactory) -> Outcome:
    """Chained on a response the API does not have."""
    return _responses_whole(clients, "Go on. [[mock:text]]", previous_response_id="resp_unknown")


def responses_error_mid_stream(clients: ClientFactory) -> Outcome:
    return _responses_stream(clients, "Say hello. [[mock:anthropic_stream_error]]")


# --- OpenAI Responses over a WebSocket (Codex's transport) -------------------------------


def _frames_outcome(frames: list[bytes]) -> Outcome:
    last = json.loads(frames[-1])
    if last["type"] == "error":
        return Outcome(error=("error frame", last["status"], last["error"]["message"]))
    response, text, thinking, calls = last["response"], "", "", []
    for item in response["output"]:
        if item["type"] == "message":
            text += "".join(part["text"] for part in item["content"] if part["type"] == "output_text")
        elif item["type"] == "reasoning":
            thinking += "".join(part["text"] for part in item["summary"])
        elif item["type"] == "function_call":
            calls.append((item["name"], arguments(item["arguments"])))
    usage = (response["usage"]["input_tokens"], response["usage"]["output_tokens"])
    return Outcome(text=text, thinking=thinking, tools=calls, usage=usage)


# The turns of one WebSocket, in order: (name, the `response.create` frame's text and fields).
WS_TURNS: list[tuple[str, str, dict[str, Any]]] = [
    ("ws_text", "Say hello. [[mock:text]]", {}),
    ("ws_parallel_tools", "Weather in Paris and Tokyo? [[mock:tools2]]", {}),
    ("ws_thinking", "Greet me, briefly. [[mock:thinking]]", {}),
    ("ws_invalid_request", "Go on. [[mock:text]]", {"previous_response_id": "resp_unknown"}),
]


async def websocket_session(proxy: ProxyProcess, clients: ClientFactory) -> dict[str, Outcome]:
    """The turns of `WS_TURNS` over one socket, as tests/test_e2e_responses_ws.py drives one."""
    outcomes = {}
    async with connect(proxy, clients.ca.ssl_context()) as ws:
        for name, text, fields in WS_TURNS:
            outcomes[name] = _frames_outcome(await turn(ws, create(text, tools=RESPONSES_TOOLS, **fields)))
    return outcomes


# --- Anthropic Messages -------------------------------------------------------------------


def _message_outcome(message: Any) -> Outcome:
    return Outcome(
        text="".join(block.text for block in message.content if block.type == "text"),
        thinking="".join(block.thinking for block in message.content if block.type == "thinking"),
        tools=[(block.name, block.input) for block in message.content if block.type == "tool_use"],
        usage=(message.usage.input_tokens, message.usage.output_tokens),
    )


def _anthropic_stream(clients: ClientFactory, text: str, **extra: Any) -> Outcome:
    try:
        with clients.anthropic().messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=2048, messages=_user(text), tools=ANTHROPIC_TOOLS, **extra
        ) as stream:
            return _message_outcome(stream.get_final_message())
    except anthropic.APIStatusError as error:
        return failed(error, None, error.message)  # mid-stream: the status is the stream's 200


def _anthropic_whole(clients: ClientFactory, messages: Any) -> Outcome:
    try:
        message = clients.anthropic().messages.create(
            model=ANTHROPIC_MODEL, max_tokens=1024, messages=messages, tools=ANTHROPIC_TOOLS
        )
    except anthropic.APIStatusError as error:
        return failed(error, error.status_code, error.message)
    return _message_outcome(message)


def anthropic_text_stream(clients: ClientFactory) -> Outcome:
    return _anthropic_stream(clients, "Say hello. [[mock:text]]")


def anthropic_thinking_stream(clients: ClientFactory) -> Outcome:
    return _anthropic_stream(
        clients, "Greet me, briefly. [[mock:thinking]]", thinking={"type": "enabled", "budget_tokens": 1024}
    )


def anthropic_parallel_tools_stream(clients: ClientFactory) -> Outcome:
    return _anthropic_stream(clients, "Weather in Paris and Tokyo? [[mock:tools2]]")


def anthropic_parallel_tools(clients: ClientFactory) -> Outcome:
    return _anthropic_whole(clients, _user("Weather in Paris and Tokyo, and the hostname. [[mock:tools3]]"))


def anthropic_rate_limited(clients: ClientFactory) -> Outcome:
    return _anthropic_whole(clients, _user("Say hello. [[mock:error_429]]"))


def anthropic_invalid_request(clients: ClientFactory) -> Outcome:
    """A `tool_use` block the next message answers with no `tool_result`."""
    history = [
        *_user("Weather in Paris?"),
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_unanswered", "name": "get_weather", "input": {}}],
        },
        *_user("And Tokyo? [[mock:text]]"),
    ]
    return _anthropic_whole(clients, history)


def anthropic_overloaded_mid_stream(clients: ClientFactory) -> Outcome:
    """`event: error` (overloaded_error) in the middle of the stream."""
    return _anthropic_stream(clients, "Say hello. [[mock:anthropic_stream_error]]")


# --- Gemini (AI Studio, google-genai) --------------------------------------------------------


def _gemini_outcome(chunks: list[Any]) -> Outcome:
    outcome = Outcome()
    for chunk in chunks:
        content = chunk.candidates[0].content if chunk.candidates else None
        for part in (content.parts if content is not None else None) or []:
            if part.function_call is not None:
                outcome.tools.append((part.function_call.name, part.function_call.args))
            elif part.thought:
                outcome.thinking += part.text or ""
            else:
                outcome.text += part.text or ""
        if chunk.usage_metadata is not None and chunk.usage_metadata.candidates_token_count is not None:
            outcome.usage = (chunk.usage_metadata.prompt_token_count or 0, chunk.usage_metadata.candidates_token_count)
    return outcome


def _gemini(clients: ClientFactory, contents: Any, stream: bool, model: str = GEMINI_MODEL) -> Outcome:
    models = clients.gemini().models
    config = genai_types.GenerateContentConfig(tools=GEMINI_TOOLS)
    try:
        if stream:
            return _gemini_outcome(list(models.generate_content_stream(model=model, contents=contents, config=config)))
        return _gemini_outcome([models.generate_content(model=model, contents=contents, config=config)])
    except genai_errors.APIError as error:
        return failed(error, error.code, error.message or "")


def gemini_text_stream(clients: ClientFactory) -> Outcome:
    return _gemini(clients, "Say hello. [[mock:text]]", stream=True)


def gemini_thinking_stream(clients: ClientFactory) -> Outcome:
    return _gemini(clients, "Greet me, briefly. [[mock:thinking]]", stream=True)


def gemini_parallel_tools_stream(clients: ClientFactory) -> Outcome:
    return _gemini(clients, "Weather in Paris and Tokyo? [[mock:tools2]]", stream=True)


def gemini_parallel_tools(clients: ClientFactory) -> Outcome:
    return _gemini(clients, "Weather in Paris and Tokyo, and the hostname. [[mock:tools3]]", stream=False)


def gemini_rate_limited(clients: ClientFactory) -> Outcome:
    return _gemini(clients, "Say hello. [[mock:error_429]]", stream=False)


def gemini_invalid_request(clients: ClientFactory) -> Outcome:
    """Gemini 3 refuses a current turn whose function call step lost its thought signature."""
    contents = [
        {"role": "user", "parts": [{"text": "Weather in Paris? [[mock:text]]"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"sky": "clear"}}}]},
    ]
    return _gemini(clients, contents, stream=False, model=GEMINI_3_MODEL)


def gemini_error_mid_stream(clients: ClientFactory) -> Outcome:
    """A `data:` frame holding Google's error object (503 UNAVAILABLE) mid-stream."""
    return _gemini(clients, "Say hello. [[mock:anthropic_stream_error]]", stream=True)


# --- Gemini Code Assist (Gemini CLI's wrapper; no SDK speaks it) ------------------------------


def _code_assist(clients: ClientFactory, method: str, text: str) -> Outcome:
    body = {
        "model": GEMINI_MODEL,
        "project": "interlock-test-project",
        "user_prompt_id": "prompt-1",
        "request": {"contents": [{"role": "user", "parts": [{"text": text}]}], "tools": GEMINI_TOOLS},
    }
    query = "?alt=sse" if method == "streamGenerateContent" else ""
    response = clients.raw().post(
        f"{CODE_ASSIST}:{method}{query}", json=body, headers={"authorization": f"Bearer {clients.api_key}"}
    )
    if response.status_code != 200:
        error = response.json()["error"]
        return Outcome(error=(error["status"], response.status_code, error["message"]))
    if not query:
        return _code_assist_outcome([response.json()])
    return _code_assist_outcome([json.loads(event.data) for event in parse_all(response.content) if event.data])


def _code_assist_outcome(chunks: list[Any]) -> Outcome:
    outcome = Outcome()
    for chunk in chunks:
        inner = chunk["response"]
        for part in inner["candidates"][0]["content"]["parts"]:
            if "functionCall" in part:
                outcome.tools.append((part["functionCall"]["name"], part["functionCall"]["args"]))
            elif part.get("thought"):
                outcome.thinking += part["text"]
            else:
                outcome.text += part.get("text", "")
        usage = inner.get("usageMetadata", {})
        if "candidatesTokenCount" in usage:
            outcome.usage = (usage["promptTokenCount"], usage["candidatesTokenCount"])
    return outcome


def code_assist_text_stream(clients: ClientFactory) -> Outcome:
    return _code_assist(clients, "streamGenerateContent", "Say hello. [[mock:text]]")


def code_assist_parallel_tools_stream(clients: ClientFactory) -> Outcome:
    return _code_assist(clients, "streamGenerateContent", "Weather in Paris and Tokyo? [[mock:tools2]]")


def code_assist_thinking(clients: ClientFactory) -> Outcome:
    return _code_assist(clients, "generateContent", "Greet me, briefly. [[mock:thinking]]")


def code_assist_rate_limited(clients: ClientFactory) -> Outcome:
    return _code_assist(clients, "generateContent", "Say hello. [[mock:error_429]]")


# --- the cassettes ------------------------------------------------------------------------------

Call = Callable[[ClientFactory], Outcome]


@dataclass(frozen=True)
class Cassette:
    """One committed cassette: the calls it holds (by dialect, transport and host)."""

    name: str
    dialect: str
    host: str
    calls: tuple[Call, ...] = ()
    transport: str = "http"

    @property
    def file(self) -> str:
        return f"{self.name}.jsonl"

    def holds(self, entry: cassette.CassetteEntry) -> bool:
        return (entry.dialect, entry.transport, entry.request.url.split("/")[2]) == (
            self.dialect,
            self.transport,
            self.host,
        )

    @property
    def size(self) -> int:
        return len(WS_TURNS) if self.transport == "websocket" else len(self.calls)


CASSETTES = (
    Cassette(
        "openai_chat",
        "openai-chat",
        "api.openai.com",
        (
            chat_text_stream,
            chat_parallel_tools_stream,
            chat_parallel_tools,
            chat_rate_limited,
            chat_invalid_request,
            chat_error_mid_stream,
        ),
    ),
    Cassette(
        "openai_responses",
        "openai-responses",
        "api.openai.com",
        (
            responses_text_stream,
            responses_thinking_stream,
            responses_parallel_tools_stream,
            responses_parallel_tools,
            responses_rate_limited,
            responses_invalid_request,
            responses_error_mid_stream,
        ),
    ),
    Cassette("openai_responses_websocket", "openai-responses", "api.openai.com", transport="websocket"),
    Cassette(
        "anthropic_messages",
        "anthropic-messages",
        "api.anthropic.com",
        (
            anthropic_text_stream,
            anthropic_thinking_stream,
            anthropic_parallel_tools_stream,
            anthropic_parallel_tools,
            anthropic_rate_limited,
            anthropic_invalid_request,
            anthropic_overloaded_mid_stream,
        ),
    ),
    Cassette(
        "gemini",
        "gemini",
        "generativelanguage.googleapis.com",
        (
            gemini_text_stream,
            gemini_thinking_stream,
            gemini_parallel_tools_stream,
            gemini_parallel_tools,
            gemini_rate_limited,
            gemini_invalid_request,
            gemini_error_mid_stream,
        ),
    ),
    Cassette(
        "gemini_code_assist",
        "gemini",
        "cloudcode-pa.googleapis.com",
        (code_assist_text_stream, code_assist_parallel_tools_stream, code_assist_thinking, code_assist_rate_limited),
    ),
)


def drive(proxy: ProxyProcess, clients: ClientFactory, unit: Cassette) -> dict[str, Outcome]:
    """Every call of a cassette through `proxy`, in order: what each client got, by name."""
    if unit.transport == "websocket":
        return asyncio.run(websocket_session(proxy, clients))
    return {call.__name__: call(clients) for call in unit.calls}


def record(directory: Path = DIRECTORY) -> dict[str, Outcome]:
    """Record every cassette into `directory` (overwritten); what the clients got."""
    with tempfile.TemporaryDirectory() as tmp, MockProvider(delay_ms=DELAY_MS) as mock:
        root = Path(tmp)
        ca = make_ca(root / "confdir")
        launcher = ProxyLauncher(root, ca, mock.url)
        everything = root / "all.jsonl"
        try:
            proxy = launcher(config={"policies": []}, extra_args=["--set", f"interlock_cassette={everything}"])
            clients = ClientFactory(proxy.url, ca, KEY)
            outcomes = {name: got for unit in CASSETTES for name, got in drive(proxy, clients, unit).items()}
            clients.close()
        finally:
            launcher.stop_all()  # the cassette's writer drains on SIGTERM
        entries = cassette.read(everything) if everything.exists() else []
        directory.mkdir(parents=True, exist_ok=True)
        for unit in CASSETTES:
            held = [entry for entry in entries if unit.holds(entry)]
            if len(held) != unit.size:
                raise SystemExit(f"{unit.file}: {len(held)} calls recorded, {unit.size} made:\n{proxy.output()}")
            path = directory / unit.file
            path.unlink(missing_ok=True)
            cassette.append(path, held)
    return outcomes


if __name__ == "__main__":
    record(Path(sys.argv[1]) if len(sys.argv) > 1 else DIRECTORY)
