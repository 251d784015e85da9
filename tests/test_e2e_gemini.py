"""The `gemini` dialect end to end: the real mitmdump, the official `google-genai` SDK
(and a raw HTTP client for Vertex AI's Bearer route, Code Assist's wrapped route and the
`?key=` form), the loopback mock speaking Gemini (Gemini 3 models refuse a history whose
function call lost its thought signature).

What the SDK gets (text, streamed thoughts and text, function calls with automatic
function calling off, errors) and what is recorded; unpoliced streams byte-identical;
deny_tools turning a blocked call into a notice while the next turn (with the kept
call's signature) is accepted; model_rewrite rewriting the model in the URL path and
system_prompt reaching `systemInstruction`; the key, sent as `x-goog-api-key` and as
`?key=`, nowhere in the database files or the proxy's output.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from google.genai import errors, types
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from mock_provider import MockProvider
from protocol_check import check_gemini_response, check_gemini_stream
from wire_scenarios import SCENARIOS, gemini_ids

from interlock.sse import parse_all

CALL_ID = "x-interlock-call-id"
MOCK_ID = "x-mock-request-id"
MODEL = "gemini-2.5-flash"
AI_STUDIO = "https://generativelanguage.googleapis.com/v1beta/models"
VERTEX = "https://us-central1-aiplatform.googleapis.com/v1/projects/p-1/locations/us-central1/publishers/google/models"
CODE_ASSIST = "https://cloudcode-pa.googleapis.com/v1internal"
NO_AFC = types.GenerateContentConfig(automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
DENY = {"policy": "deny_tools", "rules": [{"tool": "*", "pattern": "rm -rf", "reason": "recursive delete"}]}
POLICIES = {
    "policies": [
        {"policy": "model_rewrite", "map": {"gemini-2.5-pro": MODEL}},
        {"policy": "system_prompt", "text": "Never print secrets.", "position": "append"},
        DENY,
    ]
}


@pytest.fixture(scope="module")
def plain(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    return start_module_proxy()


@pytest.fixture(scope="module")
def guarded(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    return start_module_proxy(config=POLICIES)


def db_of(proxy: ProxyProcess) -> CallsDB:
    assert proxy.db_path is not None
    return CallsDB(proxy.db_path)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


# --- the SDK through the proxy ----------------------------------------------------------


def test_generate_content_and_its_record(
    plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory]
) -> None:
    response = make_clients(plain).gemini().models.generate_content(model=MODEL, contents="say hello")
    assert response.text == "Hello from the mock provider."
    headers = response.sdk_http_response.headers if response.sdk_http_response else None
    assert headers is not None
    call = db_of(plain).wait_call(headers[CALL_ID])
    assert (call["dialect"], call["provider"], call["model"], call["stream"], call["status"]) == (
        "gemini",
        "gemini",
        MODEL,
        0,
        200,
    )
    assert call["path"] == f"/v1/models/{MODEL}:generateContent"  # the SDK asks /v1
    assert (call["input_tokens"], call["output_tokens"]) == (12, 34)
    assert (call["response_text"], call["prompt_text"]) == ("Hello from the mock provider.", "say hello")
    assert isinstance(call["cost_usd"], float) and call["cost_usd"] > 0
    assert check_gemini_response(call.stage_body("response_final")) == []


def test_a_streamed_turn_with_thoughts_is_byte_identical(
    plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    chunks = list(
        make_clients(plain).gemini().models.generate_content_stream(model=MODEL, contents="hi [[mock:thinking+split]]")
    )
    parts = [part for chunk in chunks for part in (chunk.candidates or [])[0].content.parts or []]  # type: ignore[union-attr]
    assert "".join(p.text or "" for p in parts if p.thought) == "The user wants a greeting. Keep it short."
    assert "".join(p.text or "" for p in parts if not p.thought) == "Hi there!"
    assert parts[-1].thought_signature is not None
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    headers = chunks[0].sdk_http_response.headers  # type: ignore[union-attr]
    assert headers is not None
    sent = mock_provider.exchange(headers[MOCK_ID]).sent
    call = db_of(plain).wait_call(headers[CALL_ID])
    assert call.stages["response_original"]["raw"] == sent == call.stages["response_final"]["raw"]
    assert (call["stream"], call["input_tokens"], call["output_tokens"]) == (1, 12, 42)  # thoughts are output
    assert call["response_text"] == "Hi there!"
    assert call["ttft_ms"] is not None


def test_a_function_call_with_automatic_calling_off_and_an_error(
    plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory]
) -> None:
    client = make_clients(plain).gemini()
    response = client.models.generate_content(model=MODEL, contents="weather? [[mock:tool]]", config=NO_AFC)
    [call] = response.function_calls or []
    assert (call.name, call.args) == ("get_weather", {"location": "Paris, France", "unit": "celsius"})
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=MODEL, contents="busy? [[mock:error_429]]")
    assert (raised.value.code, raised.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert raised.value.response is not None
    row = db_of(plain).wait_call(raised.value.response.headers[CALL_ID])
    assert (row["dialect"], row["status"]) == ("gemini", 429) and "HTTP 429" in row["error"]


# --- policies ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_deny_tools_blocks_a_call_and_the_next_turn_keeps_its_signature(
    guarded: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], stream: bool
) -> None:
    """`interleaved`: Bash `rm -rf /` (it carries the step's signature) then read_file. The
    blocked call becomes a notice; read_file gets the signature; Gemini 3 accepts the
    next turn built from what the SDK got."""
    client = make_clients(guarded).gemini()
    model = "gemini-3-pro-preview"
    contents: list[Any] = [user("clean up [[mock:interleaved]]")]
    if stream:
        chunks = list(client.models.generate_content_stream(model=model, contents=contents, config=NO_AFC))
        got = [p for c in chunks for p in (c.candidates or [])[0].content.parts or []]  # type: ignore[union-attr]
        headers = chunks[0].sdk_http_response.headers  # type: ignore[union-attr]
    else:
        response = client.models.generate_content(model=model, contents=contents, config=NO_AFC)
        got = list((response.candidates or [])[0].content.parts or [])  # type: ignore[union-attr]
        headers = response.sdk_http_response.headers  # type: ignore[union-attr]
    assert headers is not None
    calls = [p.function_call for p in got if p.function_call]
    assert [(c.name, c.args) for c in calls] == [("read_file", {"path": "/etc/hostname"})]
    notice = "".join(p.text or "" for p in got)
    assert "Bash" in notice and "recursive delete" in notice
    _, signature = gemini_ids(SCENARIOS["interleaved"])
    signed = [p for p in got if p.thought_signature]
    assert [p.function_call.name if p.function_call else "notice" for p in signed] == ["notice", "read_file"]
    assert {p.thought_signature for p in signed} == {base64.b64decode(signature)}  # exactly as upstream sent it
    recorded = db_of(guarded).wait_call(headers[CALL_ID])
    assert recorded["verdict"] == "blocked"
    if stream:
        assert check_gemini_stream(parse_all(recorded.stages["response_final"]["raw"])) == []
    else:
        assert check_gemini_response(recorded.stage_body("response_final")) == []
    history = [
        *contents,
        types.Content(role="model", parts=got),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="read_file", response={"output": "host-1"})],
        ),
    ]
    follow_up = client.models.generate_content(model=model, contents=history, config=NO_AFC)
    assert follow_up.text == "Hello from the mock provider."


def test_model_rewrite_changes_the_path_and_system_prompt_the_instruction(
    guarded: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    config = types.GenerateContentConfig(system_instruction="Be brief.")
    response = (
        make_clients(guarded).gemini().models.generate_content(model="gemini-2.5-pro", contents="hello", config=config)
    )
    headers = response.sdk_http_response.headers  # type: ignore[union-attr]
    assert headers is not None
    exchange = mock_provider.exchange(headers[MOCK_ID])
    assert exchange.path == f"/v1/models/{MODEL}:generateContent"
    sent = exchange.json()
    assert "model" not in sent  # the model travels in the path only, as the client sent it
    assert [p["text"] for p in sent["systemInstruction"]["parts"]] == ["Be brief.", "Never print secrets."]
    call = db_of(guarded).wait_call(headers[CALL_ID])
    assert (call["model"], call["model_final"], call["verdict"]) == ("gemini-2.5-pro", MODEL, "modified")


# --- Vertex AI and Code Assist (raw HTTP) --------------------------------------------------


def test_vertex_ai_with_a_bearer_token_streams_byte_identical(
    plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    raw = make_clients(plain).raw()
    body = {"contents": [user("hi [[mock:tools2+coalesce]]")]}
    url = f"{VERTEX}/{MODEL}:streamGenerateContent?alt=sse"
    with raw.stream("POST", url, json=body, headers={"authorization": "Bearer ya29.vertex-token-123456"}) as answer:
        got = b"".join(answer.iter_raw())
        headers = answer.headers
    assert got == mock_provider.exchange(headers[MOCK_ID]).sent
    call = db_of(plain).wait_call(headers[CALL_ID])
    assert (call["provider"], call["dialect"], call["model"], call["stream"]) == ("vertex-ai", "gemini", MODEL, 1)
    names = db_of(plain).rows(
        "select name from tool_calls where call_id = ? and stage = 'response_final'", (headers[CALL_ID],)
    )
    assert [r["name"] for r in names] == ["get_weather", "get_weather"]
    assert "ya29.vertex-token-123456" not in json.dumps(call.stage_headers("request_original"))


@pytest.mark.parametrize("proxy_name", ["plain", "guarded"])
def test_code_assist_wrapped_requests_and_chunks(
    proxy_name: str,
    request: pytest.FixtureRequest,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
) -> None:
    """Gemini CLI with a Google login: `{model, project, request}` in, `{response, traceId}`
    chunks out; policed inside the wrapping."""
    proxy: ProxyProcess = request.getfixturevalue(proxy_name)
    body = {
        "model": "gemini-2.5-pro",
        "project": "p-1",
        "user_prompt_id": "u-1",
        "request": {"contents": [user("tidy [[mock:interleaved]]")], "session_id": "s-42"},
    }
    url = f"{CODE_ASSIST}:streamGenerateContent?alt=sse"
    with make_clients(proxy).raw().stream("POST", url, json=body, headers={"authorization": "Bearer t-1"}) as answer:
        got = b"".join(answer.iter_raw())
        headers = answer.headers
    frames: list[Any] = [event.json() for event in parse_all(got)]
    assert all(set(frame) == {"response", "traceId"} for frame in frames)
    calls = [
        p["functionCall"]["name"]
        for f in frames
        for p in f["response"]["candidates"][0]["content"]["parts"]
        if "functionCall" in p
    ]
    call = db_of(proxy).wait_call(headers[CALL_ID])
    assert (call["provider"], call["model_final"], call["session_id"]) == (
        "code-assist",
        MODEL if proxy_name == "guarded" else "gemini-2.5-pro",
        "gc-s-42",
    )
    if proxy_name == "plain":
        assert got == mock_provider.exchange(headers[MOCK_ID]).sent
        assert calls == ["Bash", "read_file"]
    else:
        assert calls == ["read_file"]
        assert check_gemini_stream(parse_all(got)) == []
        assert mock_provider.exchange(headers[MOCK_ID]).json()["model"] == MODEL


# --- secrets ------------------------------------------------------------------------------


def test_the_key_sent_both_ways_is_recorded_nowhere(
    plain: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], api_key: str
) -> None:
    clients = make_clients(plain)
    in_header = clients.gemini().models.generate_content(model=MODEL, contents="header key")
    query_key = api_key.replace("SECRET", "QUERY")
    answer = clients.raw().post(
        f"{AI_STUDIO}/{MODEL}:streamGenerateContent?alt=sse&key={query_key}", json={"contents": [user("query key")]}
    )
    assert answer.status_code == 200
    ids = [in_header.sdk_http_response.headers[CALL_ID], answer.headers[CALL_ID]]  # type: ignore[union-attr,index]
    for call_id in ids:
        db_of(plain).wait_call(call_id)
    stored = db_of(plain).file_bytes()
    output = plain.output()
    for key in (api_key, query_key):
        assert key.encode() not in stored
        assert key not in output  # nor in the flow line (tests/test_flow_line.py: its format)


def test_a_json_array_stream_passes_as_it_came_and_is_recorded(
    guarded: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    """Without `alt=sse` the chunks come as one JSON array: with nothing to change it is
    forwarded and recorded as it came."""
    answer = (
        make_clients(guarded)
        .raw()
        .post(
            f"{AI_STUDIO}/{MODEL}:streamGenerateContent",
            json={"contents": [user("hi [[mock:text]]")]},
            headers={"x-goog-api-key": "AIza-array-key-123456"},
        )
    )
    assert answer.content == mock_provider.exchange(answer.headers[MOCK_ID]).sent
    call = db_of(guarded).wait_call(answer.headers[CALL_ID])
    assert call["stream"] == 1 and call["status"] == 200
    assert call.stage_body("response_original") == json.loads(answer.content)


def test_a_json_array_stream_is_policed_whole(
    guarded: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    """mitmproxy buffers a JSON-array stream; its chunks go through the stream rewriter as
    events: the `rm -rf` call never reaches the client, read_file does, with the step's
    signature, and the array stays one valid array of chunks."""
    answer = (
        make_clients(guarded)
        .raw()
        .post(
            f"{AI_STUDIO}/gemini-3-pro-preview:streamGenerateContent",
            json={"contents": [user("clean up [[mock:interleaved]]")]},
            headers={"x-goog-api-key": "AIza-array-key-123456"},
        )
    )
    assert answer.status_code == 200
    upstream = json.loads(mock_provider.exchange(answer.headers[MOCK_ID]).sent)
    assert any("rm -rf" in json.dumps(chunk) for chunk in upstream)
    chunks = json.loads(answer.content)
    assert isinstance(chunks, list) and chunks
    assert "recursive delete" in answer.text  # the notice (it quotes the call's arguments)
    sse = b"".join(f"data: {json.dumps(chunk)}\r\n\r\n".encode() for chunk in chunks)
    assert check_gemini_stream(parse_all(sse)) == []
    parts = [p for c in chunks for p in c["candidates"][0].get("content", {}).get("parts", [])]
    calls = [p["functionCall"]["name"] for p in parts if "functionCall" in p]
    assert calls == ["read_file"]
    _, signature = gemini_ids(SCENARIOS["interleaved"])
    assert signature in [p.get("thoughtSignature") for p in parts if "functionCall" in p]
    call = db_of(guarded).wait_call(answer.headers[CALL_ID])
    assert call["verdict"] == "blocked"
    assert call.stage_body("response_original") == upstream
