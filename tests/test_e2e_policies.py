"""The policies end to end: the real mitmdump with the Interlock addon, the loopback mock
provider through `map_remote`, the official SDK clients.

Each built-in runs once per dialect, streamed and not: the SDK parses what it got, the
stream the client got passes the protocol checker, and the database holds both sides
(original and final) and the policy events. Modified and blocked flows carry a verdict
and a mark in saved flows. A policy that sleeps 1 s mid-stream does not stall another
stream through the same proxy. Editing the config file swaps the chain; an invalid edit
keeps the old one and says why.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anthropic
import openai
import pytest
import yaml
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, timed_chunks
from harness_db import CallsDB, RecordedCall
from mock_provider import MockProvider
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion
from policy_fixtures import FailingPolicy, SleepyPolicy, fixture_path, stream_violations

Dialect = Literal["openai-chat", "anthropic-messages", "openai-responses", "gemini"]
RESPONSES: Dialect = "openai-responses"
GEMINI: Dialect = "gemini"
DIALECTS: tuple[Dialect, ...] = ("openai-chat", "anthropic-messages", RESPONSES)
BUILTIN_DIALECTS: tuple[Dialect, ...] = (*DIALECTS, GEMINI)
CALL_ID = "x-interlock-call-id"
MOCK_ID = "x-mock-request-id"
MODELS = {
    "openai-chat": "gpt-4o-mini",
    "anthropic-messages": "claude-sonnet-4-6",
    RESPONSES: "gpt-5",
    GEMINI: "gemini-2.5-pro",
}
URLS = {
    "openai-chat": "https://api.openai.com/v1/chat/completions",
    "anthropic-messages": "https://api.anthropic.com/v1/messages",
    RESPONSES: "https://api.openai.com/v1/responses",
}
FIXTURES_ENV = {"PYTHONPATH": str(Path(__file__).resolve().parent)}  # policy_fixtures for mitmdump
WEATHER_OPENAI: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
WEATHER_RESPONSES: Any = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
}
WEATHER_ANTHROPIC: Any = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}
SECRET_EMAIL = "jane.doe@example.org"
SECRET_AWS = "AKIAIOSFODNN7EXAMPLE"

BUILTINS: dict[str, list[dict[str, Any]]] = {
    "replace": [
        {
            "policy": "replace",
            "apply_to": "both",
            "rules": [{"find": "mock provider", "replace": "real vendor"}, {"find": "please", "replace": "kindly"}],
        }
    ],
    "redact": [{"policy": "redact"}],
    "deny_tools": [{"policy": "deny_tools", "deny": ["get_weather"]}],
    "model_rewrite": [
        {
            "policy": "model_rewrite",
            "map": {
                "gpt-4o-mini": "gpt-4.1-nano",
                "claude-sonnet-*": "claude-haiku-4-5",
                "gpt-5": "gpt-5-mini",
                "gemini-2.5-pro": "gemini-2.5-flash",
            },
        }
    ],
    "system_prompt": [{"policy": "system_prompt", "text": "Answer in French.", "position": "prepend"}],
}


def failing(hook: str, on_error: str, mode: str) -> list[dict[str, Any]]:
    return [{"policy": fixture_path(FailingPolicy), "hook": hook, "mode": mode, "on_error": on_error, "timeout_s": 0.5}]


# Every chain a test runs, by name; one proxy per chain, started when first used.
CHAINS: dict[str, list[dict[str, Any]]] = {
    **BUILTINS,
    "unchanged": [
        {"policy": "replace", "rules": [{"find": "no such words"}]},
        {"policy": "deny_tools", "deny": ["rm"]},
    ],
    "request_fails_closed": failing("on_request", "block", "raise"),
    "decision_times_out_allow": failing("on_tool_call", "allow", "hang"),
    "decision_times_out_block": failing("on_tool_call", "block", "hang"),
    "sleepy": [{"policy": fixture_path(SleepyPolicy), "seconds": 1.0, "hooks": ["on_tool_call"]}],
}
PROMPTS = {
    "replace": ("please say hello", "text"),
    "redact": (f"mail {SECRET_EMAIL}, key {SECRET_AWS}", "text"),
    "deny_tools": ("weather in Paris?", "tool"),
    "model_rewrite": ("hello", "text"),
    "system_prompt": ("hello", "text"),
}


@dataclass
class Answer:
    """What the SDK made of a response, and where to find the call."""

    call_id: str
    mock_id: str
    text: str
    tools: list[tuple[str, Any]]
    stop: str | None
    model: str | None


def ask(clients: ClientFactory, dialect: Dialect, prompt: str, stream: bool) -> Answer:
    """One SDK call (streamed: accumulated by the SDK's own stream helpers)."""
    messages: Any = [{"role": "user", "content": prompt}]
    if dialect == RESPONSES:
        return ask_responses(clients, messages, stream)
    if dialect == GEMINI:
        return ask_gemini(clients, prompt, stream)
    if dialect == "openai-chat":
        client = clients.openai().chat.completions.with_raw_response
        if stream:
            raw_stream = client.create(
                model=MODELS[dialect],
                messages=messages,
                tools=[WEATHER_OPENAI],
                stream=True,
                stream_options={"include_usage": True},
            )
            state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
            for chunk in raw_stream.parse():
                state.handle_chunk(chunk)
            completion: ChatCompletion = state.get_final_completion()
            headers = raw_stream.headers
        else:
            raw = client.create(model=MODELS[dialect], messages=messages, tools=[WEATHER_OPENAI])
            completion, headers = raw.parse(), raw.headers
        choice = completion.choices[0]
        tools = [
            (c.function.name, json.loads(c.function.arguments))
            for c in choice.message.tool_calls or []
            if c.type == "function"
        ]
        return Answer(
            headers[CALL_ID],
            headers[MOCK_ID],
            choice.message.content or "",
            tools,
            choice.finish_reason,
            completion.model,
        )
    sdk = clients.anthropic()
    arguments: Any = {"model": MODELS[dialect], "max_tokens": 256, "messages": messages, "tools": [WEATHER_ANTHROPIC]}
    if stream:
        with sdk.messages.stream(**arguments) as message_stream:
            message = message_stream.get_final_message()
            headers = message_stream.response.headers
    else:
        raw_message = sdk.messages.with_raw_response.create(**arguments)
        message, headers = raw_message.parse(), raw_message.headers
    text = "".join(b.text for b in message.content if b.type == "text")
    tools = [(b.name, b.input) for b in message.content if b.type == "tool_use"]
    return Answer(headers[CALL_ID], headers[MOCK_ID], text, tools, message.stop_reason, message.model)


def ask_responses(clients: ClientFactory, messages: Any, stream: bool) -> Answer:
    """`client.responses`: streamed through `responses.stream(...).get_final_response()`."""
    arguments: Any = {"model": MODELS[RESPONSES], "input": messages, "tools": [WEATHER_RESPONSES]}
    if stream:
        with clients.openai().responses.stream(**arguments) as response_stream:
            response: Any = response_stream.get_final_response()
            headers = response_stream._response.headers
    else:
        raw = clients.openai().responses.with_raw_response.create(**arguments)
        response, headers = raw.parse(), raw.headers
    tools = [(item.name, json.loads(item.arguments)) for item in response.output if item.type == "function_call"]
    return Answer(headers[CALL_ID], headers[MOCK_ID], response.output_text, tools, response.status, response.model)


def ask_gemini(clients: ClientFactory, prompt: str, stream: bool) -> Answer:
    """`google-genai`'s `generate_content` (streamed: `generate_content_stream`, its chunks
    joined), automatic function calling off."""
    from google.genai import types

    weather = types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER_RESPONSES["parameters"])
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[weather])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    models = clients.gemini().models
    arguments: Any = {"model": MODELS[GEMINI], "contents": prompt, "config": config}
    chunks = list(models.generate_content_stream(**arguments)) if stream else [models.generate_content(**arguments)]
    parts = [
        p for c in chunks if c.candidates for p in (c.candidates[0].content and c.candidates[0].content.parts) or []
    ]
    finish = next(
        (c.candidates[0].finish_reason for c in reversed(chunks) if c.candidates and c.candidates[0].finish_reason),
        None,
    )
    headers = chunks[0].sdk_http_response.headers if chunks[0].sdk_http_response else None
    assert headers is not None
    return Answer(
        headers[CALL_ID],
        headers[MOCK_ID],
        "".join(p.text or "" for p in parts if not p.thought),
        [(str(p.function_call.name), p.function_call.args) for p in parts if p.function_call],
        finish.value if finish is not None else None,
        chunks[-1].model_version,
    )


def conversation(dialect: Dialect, body: dict[str, Any]) -> Any:
    """Where a request body keeps its conversation."""
    return body["contents"] if dialect == GEMINI else body["input"] if dialect == RESPONSES else body["messages"]


# How a turn without surviving tool calls ends.
ENDED = {"openai-chat": "stop", "anthropic-messages": "end_turn", RESPONSES: "completed", GEMINI: "STOP"}


def policy_events(db: CallsDB, call_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = db.rows("select policy, action, details_json from policy_events where call_id = ? order by id", (call_id,))
    return [(row["policy"], row["action"], json.loads(row["details_json"] or "{}")) for row in rows]


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- one proxy per chain, shared by the module -------------------------------------------------


@pytest.fixture(scope="module")
def proxies(start_module_proxy: ProxyLauncher) -> Iterator[Callable[[str], ProxyProcess]]:
    started: dict[str, ProxyProcess] = {}

    def proxy_for(name: str) -> ProxyProcess:
        if name not in started:
            started[name] = start_module_proxy(config={"policies": CHAINS[name]}, env=FIXTURES_ENV)
        return started[name]

    yield proxy_for
    for proxy in started.values():
        assert proxy.addon_errors() == []


def check_recorded_stream(call: RecordedCall, dialect: Dialect, mock: MockProvider, mock_id: str) -> None:
    """A streamed call: the original raw bytes are the mock's; the final raw bytes (what the
    client got) pass the protocol checker."""
    assert call.stages["response_original"]["raw"] == mock.exchange(mock_id).sent
    request = call.stage_body("request_original")  # the usage chunk it asked for must be there
    assert stream_violations(dialect, call.stages["response_final"]["raw"], request) == []


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize("dialect", BUILTIN_DIALECTS)
@pytest.mark.parametrize("builtin", sorted(BUILTINS))
def test_each_builtin_end_to_end(
    proxies: Callable[[str], ProxyProcess],
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    builtin: str,
    dialect: Dialect,
    stream: bool,
) -> None:
    proxy = proxies(builtin)
    prompt, scenario = PROMPTS[builtin]
    answer = ask(make_clients(proxy), dialect, f"{prompt} [[mock:{scenario}]]", stream)
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    call = db.wait_call(answer.call_id)
    exchange = mock_provider.exchange(answer.mock_id)
    upstream = exchange.json()
    if dialect == GEMINI:  # the model it was asked for is the path's
        upstream = {"model": exchange.path.split("/models/")[1].split(":")[0], **upstream}
    events = policy_events(db, answer.call_id)
    assert call["stream"] == int(stream)
    if stream:
        check_recorded_stream(call, dialect, mock_provider, answer.mock_id)
    request_original, request_final = call.stage_body("request_original"), call.stage_body("request_final")
    response_original, response_final = call.stage_body("response_original"), call.stage_body("response_final")
    anthropic_dialect = dialect == "anthropic-messages"

    if builtin == "replace":
        assert answer.text == "Hello from the real vendor."
        assert "kindly say hello" in json.dumps(conversation(dialect, upstream))
        assert "please say hello" in json.dumps(conversation(dialect, request_original))
        assert conversation(dialect, request_final) == conversation(dialect, upstream)
        assert "mock provider" in json.dumps(response_original) and "real vendor" in json.dumps(response_final)
        assert [(p, a, d["side"]) for p, a, d in events] == [
            ("replace", "modified", "request"),
            ("replace", "modified", "response"),
        ]
        assert call["verdict"] == "modified"
        assert call["response_text"] == "Hello from the real vendor."
    elif builtin == "redact":
        assert answer.text == "Hello from the mock provider."
        sent_upstream = json.dumps(upstream)
        assert SECRET_EMAIL not in sent_upstream and SECRET_AWS not in sent_upstream
        assert "[REDACTED:email]" in sent_upstream and "[REDACTED:aws_access_key_id]" in sent_upstream
        # the record keeps where they were, never what they were (issue 9)
        recorded = json.dumps(request_original)
        assert SECRET_EMAIL not in recorded and SECRET_AWS not in recorded
        assert "<redacted:email>" in recorded and "<redacted:aws_access_key_id>" in recorded
        assert request_final == upstream
        assert response_original == response_final
        assert events == [("redact", "redacted", {"counts": {"email": 1, "aws_access_key_id": 1}})]
        assert call["verdict"] == "modified"
    elif builtin == "deny_tools":
        assert answer.text.startswith("Let me check the weather.")
        assert "Interlock blocked the tool call `get_weather`: tool `get_weather` is denied" in answer.text
        assert '"location": "Paris, France"' in answer.text
        assert answer.tools == []
        assert answer.stop == ENDED[dialect]
        assert request_original == request_final
        assert response_original != response_final
        assert [(p, a, d["tool_name"]) for p, a, d in events] == [("deny_tools", "blocked", "get_weather")]
        assert call["verdict"] == "blocked"
    elif builtin == "model_rewrite":
        final_model = {
            "anthropic-messages": "claude-haiku-4-5",
            "openai-chat": "gpt-4.1-nano",
            GEMINI: "gemini-2.5-flash",
        }.get(dialect, "gpt-5-mini")
        assert upstream["model"] == final_model
        assert answer.model == final_model  # the mock answers as the model it was asked for
        assert (call["model"], call["model_final"]) == (MODELS[dialect], final_model)
        assert [(p, a, d["model_to"]) for p, a, d in events] == [("model_rewrite", "modified", final_model)]
        assert call["verdict"] == "modified"
    elif dialect == GEMINI:  # system_prompt: the systemInstruction
        assert upstream["systemInstruction"] == {"parts": [{"text": "Answer in French."}]}
        assert "systemInstruction" not in request_original
        assert request_final == upstream
        assert [(p, a) for p, a, _ in events] == [("system_prompt", "modified")]
        assert call["verdict"] == "modified"
    elif dialect == RESPONSES:  # system_prompt: the instructions
        assert upstream["instructions"] == "Answer in French."
        assert "instructions" not in request_original
        assert request_final == upstream
        assert [(p, a) for p, a, _ in events] == [("system_prompt", "modified")]
        assert call["verdict"] == "modified"
    else:
        system = upstream["system"] if anthropic_dialect else upstream["messages"][0]
        assert system == (
            "Answer in French." if anthropic_dialect else {"role": "system", "content": "Answer in French."}
        )
        if anthropic_dialect:
            assert "system" not in request_original
        else:
            assert request_original["messages"][0]["role"] == "user"
        assert request_final == upstream
        assert [(p, a) for p, a, _ in events] == [("system_prompt", "modified")]
        assert call["verdict"] == "modified"
    if builtin != "deny_tools":
        assert answer.stop == ENDED[dialect]
    if builtin in ("redact", "model_rewrite", "system_prompt"):
        assert request_original != request_final


# --- what the client receives, byte for byte ---------------------------------------------------


def request_body(dialect: Dialect, scenario: str, stream: bool = True) -> dict[str, Any]:
    key = "input" if dialect == RESPONSES else "messages"
    body: dict[str, Any] = {"model": MODELS[dialect], key: [{"role": "user", "content": f"[[mock:{scenario}]]"}]}
    if dialect == "anthropic-messages":
        body["max_tokens"] = 256
    if stream:
        body["stream"] = True
    if stream and dialect == "openai-chat":
        body["stream_options"] = {"include_usage": True}
    return body


def auth(dialect: Dialect, api_key: str) -> dict[str, str]:
    if dialect != "anthropic-messages":
        return {"authorization": f"Bearer {api_key}"}
    return {"x-api-key": api_key, "anthropic-version": "2023-06-01"}


@dataclass
class Received:
    call_id: str
    mock_id: str
    body: bytes
    arrivals: list[tuple[float, int]]  # (time.monotonic(), body length after the chunk)

    def first_arrival_of(self, marker: bytes) -> float:
        """When the chunk that completed the first occurrence of `marker` arrived."""
        end = self.body.index(marker) + len(marker)
        return next(at for at, length in self.arrivals if length >= end)

    def largest_gap(self) -> float:
        times = [at for at, _ in self.arrivals]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def stream_raw(
    clients: ClientFactory,
    dialect: Dialect,
    scenario: str,
    headers: dict[str, str] | None = None,
    first_bytes: threading.Event | None = None,
) -> Received:
    """A streamed POST with a plain client, read chunk by chunk with arrival times."""
    body = bytearray()
    arrivals: list[tuple[float, int]] = []
    with clients.raw().stream(
        "POST",
        URLS[dialect],
        json=request_body(dialect, scenario),
        headers={**auth(dialect, clients.api_key), **(headers or {})},
    ) as response:
        for arrival in timed_chunks(response):
            body += arrival.data
            arrivals.append((arrival.at, len(body)))
            if first_bytes is not None:
                first_bytes.set()
        return Received(response.headers[CALL_ID], response.headers[MOCK_ID], bytes(body), arrivals)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_client_gets_exactly_the_recorded_final_bytes(
    proxies: Callable[[str], ProxyProcess],
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    dialect: Dialect,
) -> None:
    proxy = proxies("deny_tools")
    received = stream_raw(make_clients(proxy), dialect, "tools2")
    assert proxy.db_path is not None
    call = CallsDB(proxy.db_path).wait_call(received.call_id)
    assert call.stages["response_final"]["raw"] == received.body
    assert call.stages["response_original"]["raw"] == mock_provider.exchange(received.mock_id).sent
    assert received.body != mock_provider.exchange(received.mock_id).sent
    assert stream_violations(dialect, received.body, request_body(dialect, "tools2")) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_chain_that_changes_nothing_forwards_the_exact_bytes(
    proxies: Callable[[str], ProxyProcess],
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    dialect: Dialect,
) -> None:
    proxy = proxies("unchanged")
    clients = make_clients(proxy)
    for scenario in ("tools2", "thinking", "unicode"):
        received = stream_raw(clients, dialect, scenario)
        assert received.body == mock_provider.exchange(received.mock_id).sent
        assert proxy.db_path is not None
        assert CallsDB(proxy.db_path).wait_call(received.call_id)["verdict"] == "pass"


# --- verdicts and marks ------------------------------------------------------------------------------


def test_modified_and_blocked_flows_are_marked_with_the_reason(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], tmp_path: Path
) -> None:
    from mitmproxy import io

    flows_file = tmp_path / "flows.mitm"
    config = {
        "policies": [
            {"policy": "replace", "rules": [{"find": "mock provider", "replace": "real vendor"}]},
            {"policy": "deny_tools", "deny": ["read_file"]},
        ]
    }
    proxy = start_proxy(config=config, extra_args=["-w", str(flows_file)])
    clients = make_clients(proxy)
    modified = ask(clients, "anthropic-messages", "hi [[mock:text]]", stream=True)
    blocked = ask(clients, "openai-chat", "files [[mock:tools3]]", stream=True)
    passed = ask(clients, "openai-chat", "weather [[mock:tools2]]", stream=False)
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    verdicts = {a.call_id: db.wait_call(a.call_id)["verdict"] for a in (modified, blocked, passed)}
    assert list(verdicts.values()) == ["modified", "blocked", "pass"]
    assert proxy.addon_errors() == []
    proxy.stop()
    with flows_file.open("rb") as handle:
        flows = {f.metadata["interlock_call_id"]: f for f in io.FlowReader(handle).stream()}
    assert flows[modified.call_id].marked == ":warning:"
    assert flows[modified.call_id].comment == (
        f"interlock {modified.call_id} modified: replace: modified 1 replacement(s) in the response"
    )
    assert flows[blocked.call_id].marked == ":no_entry:"
    assert flows[blocked.call_id].comment.startswith(f"interlock {blocked.call_id} blocked: deny_tools: blocked tool")
    assert "read_file" in flows[blocked.call_id].comment
    assert not flows[passed.call_id].marked
    assert flows[passed.call_id].comment == f"interlock {passed.call_id}"


# --- failing policies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_request_policy_that_fails_closed_answers_with_a_dialect_error(
    proxies: Callable[[str], ProxyProcess],
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    dialect: Dialect,
) -> None:
    proxy = proxies("request_fails_closed")
    before = len(mock_provider.exchanges)
    with pytest.raises((anthropic.PermissionDeniedError, openai.PermissionDeniedError)) as caught:
        ask(make_clients(proxy), dialect, "hi", stream=True)
    assert isinstance(caught.value, anthropic.APIStatusError | openai.APIStatusError)
    assert "policy 'failing' failed (RuntimeError: on_request exploded)" in str(caught.value)
    assert len(mock_provider.exchanges) == before  # upstream never contacted
    assert proxy.db_path is not None
    call = CallsDB(proxy.db_path).wait_call(caught.value.response.headers[CALL_ID])
    assert call["verdict"] == "blocked"
    assert call["status"] == 403
    assert proxy.addon_errors() == []


@pytest.mark.parametrize("on_error", ["allow", "block"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_stream_policy_that_times_out_never_hangs_the_client(
    proxies: Callable[[str], ProxyProcess],
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    dialect: Dialect,
    on_error: str,
) -> None:
    proxy = proxies(f"decision_times_out_{on_error}")
    answer = ask(make_clients(proxy), dialect, "weather [[mock:tools2]]", stream=True)
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    call = db.wait_call(answer.call_id)
    check_recorded_stream(call, dialect, mock_provider, answer.mock_id)
    errors = [(p, a, d["hook"], d["on_error"]) for p, a, d in policy_events(db, answer.call_id) if a == "error"]
    assert errors == [("failing", "error", "on_tool_call", on_error)] * 2
    if on_error == "allow":
        assert [name for name, _ in answer.tools] == ["get_weather", "get_weather"]
        assert call["verdict"] == "pass"
    else:
        assert answer.tools == []
        assert answer.text.count("policy 'failing' failed (timed out)") == 2
        assert call["verdict"] == "blocked"


# --- concurrency: an async policy holds one stream, the other keeps flowing ---------------------------

PACING_MS = 50
MARGIN_S = 0.2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_held_stream_does_not_stall_another(
    proxies: Callable[[str], ProxyProcess],
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    dialect: Dialect,
) -> None:
    proxy = proxies("sleepy")
    clients = make_clients(proxy)
    held_started = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        held_future = pool.submit(stream_raw, clients, dialect, "tool", None, held_started)
        assert held_started.wait(10)
        paced = pool.submit(stream_raw, clients, dialect, "text", {"x-mock-delay-ms": str(PACING_MS)}).result(30)
        held = held_future.result(30)
    # The paced stream flowed at the mock's own pace while the other one was held...
    assert paced.largest_gap() < PACING_MS / 1000 + MARGIN_S
    assert paced.body == mock_provider.exchange(paced.mock_id).sent
    # ...and it really was held meanwhile: its text came before, its tool call after.
    tool_marker = b"get_weather"
    text_marker = b'"content":"Let me check"' if dialect == "openai-chat" else b"Let me check"
    assert held.first_arrival_of(text_marker) < paced.arrivals[0][0]
    assert held.first_arrival_of(tool_marker) > paced.arrivals[-1][0]
    assert held.body == mock_provider.exchange(held.mock_id).sent  # the policy kept everything
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    db.wait_call(held.call_id)
    assert [(p, a) for p, a, _ in policy_events(db, held.call_id)] == [("sleepy", "allowed")]
    assert proxy.addon_errors() == []


# --- live reload -------------------------------------------------------------------------------------


def write_config(path: Path, policies: list[dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump({"policies": policies}, sort_keys=False))


def replace_with(word: str) -> list[dict[str, Any]]:
    return [{"policy": "replace", "rules": [{"find": "mock provider", "replace": word}]}]


def test_editing_the_config_swaps_the_chain_and_a_bad_edit_keeps_it(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], tmp_path: Path
) -> None:
    config = tmp_path / "live.yaml"
    write_config(config, replace_with("first"))
    proxy = start_proxy(config=config)
    clients = make_clients(proxy)

    def text() -> str:
        return ask(clients, "openai-chat", "hi", stream=True).text

    assert text() == "Hello from the first."
    write_config(config, replace_with("second"))
    wait_for(lambda: text() == "Hello from the second.", "the edited chain")

    seen = len(proxy.output())
    write_config(config, [{"policy": "nope"}, *replace_with("third")])
    wait_for(lambda: "config change ignored" in proxy.output()[seen:], "the error about the bad edit")
    assert "policies.0 (nope).policy: unknown policy 'nope'" in proxy.output()[seen:]
    assert text() == "Hello from the second."

    write_config(config, replace_with("third"))  # the watcher is still alive
    wait_for(lambda: text() == "Hello from the third.", "the chain after a fixed edit")
    assert proxy.addon_errors() == []
