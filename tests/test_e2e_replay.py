"""Recorded flows replay through Interlock: mitmproxy's own `-w` and `--server-replay`.

A stream recorded with `-w` (and `store_streamed_bodies`) replays with no upstream at
all; the replayed body arrives whole, so the policies run on it in `response`, and the
call is recorded like a live one.
"""

from __future__ import annotations

from pathlib import Path

from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from openai.lib.streaming.chat import ChatCompletionStreamState
from protocol_check import check_openai_chat_stream

from interlock.sse import parse_all

CALL_ID = "x-interlock-call-id"
DENY_WEATHER = {"policies": [{"policy": "deny_tools", "deny": ["get_weather"]}]}
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}


def as_if_from_the_real_host(recorded: Path, out: Path) -> Path:
    """The test reached the mock through map_remote, so the saved requests point at the
    loopback mock; put back the URL a real recording would hold (server_replay matches
    the scheme, and runs before map_remote)."""
    from mitmproxy import io

    with recorded.open("rb") as source, out.open("wb") as target:
        writer = io.FlowWriter(target)
        for flow in io.FlowReader(source).stream():
            flow.request.url = "https://api.openai.com" + flow.request.path  # type: ignore[attr-defined]
            writer.add(flow)
    return out


def ask_weather(clients: ClientFactory) -> tuple[str, bytes, ChatCompletionStreamState[None]]:
    raw = clients.raw().post(
        "https://api.openai.com/v1/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [TOOL],
            "messages": [{"role": "user", "content": "weather in Paris? [[mock:tool]]"}],
        },
        headers={"authorization": f"Bearer {clients.api_key}", "accept-encoding": "identity"},
    )
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    from openai.types.chat import ChatCompletionChunk

    for event in parse_all(raw.content):
        if event.data and event.data != "[DONE]":
            state.handle_chunk(ChatCompletionChunk.model_validate_json(event.data))
    return raw.headers[CALL_ID], raw.content, state


def test_a_recorded_stream_replays_through_the_policies(
    start_proxy: ProxyLauncher, make_clients: object, tmp_path: Path
) -> None:
    flows = tmp_path / "flows.mitm"
    recording: ProxyProcess = start_proxy(extra_args=["-w", str(flows), "--set", "store_streamed_bodies=true"])
    clients = make_clients(recording)  # type: ignore[operator]
    _, live_body, live = ask_weather(clients)
    assert [c.function.name for c in live.get_final_completion().choices[0].message.tool_calls or []] == ["get_weather"]
    recording.stop()
    real_flows = as_if_from_the_real_host(flows, tmp_path / "real.mitm")

    replay = start_proxy(
        config=DENY_WEATHER,
        extra_args=["--server-replay", str(real_flows), "--set", "server_replay_extra=kill",
                    "--set", "server_replay_ignore_host=true", "--set", "server_replay_ignore_port=true"],
    )  # fmt: skip
    call_id, body, replayed = ask_weather(make_clients(replay))  # type: ignore[operator]
    completion = replayed.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    assert "Interlock blocked the tool call `get_weather`" in (choice.message.content or "")
    assert check_openai_chat_stream(parse_all(body)) == []

    assert replay.db_path is not None
    call = CallsDB(replay.db_path).wait_call(call_id)
    assert call["verdict"] == "blocked"
    assert call.stages["response_original"]["raw"] == live_body
    assert call.stages["response_final"]["raw"] == body != live_body
