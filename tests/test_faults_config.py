"""Fault suite, the configuration (issue 9): the config file edited to something invalid
while the proxy runs, and a reload while calls are in flight.

An invalid edit keeps the previous configuration in force, the log names the key (or
the YAML error), and calls keep flowing under the old chain. A call takes the chain in
force when it starts: a stream that started before a reload finishes on the old chain,
one started after runs on the new one, whatever the stream was doing at the reload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import pytest
from fault_kit import PacedStream, conclude
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory, auth_headers, llm_request
from harness_db import CallsDB
from harness_reload import IGNORED, edit_config
from policy_fixtures import sdk_summary

# Each case measures a concurrent stream's pacing: nothing else runs meanwhile (tests/solo.py).
pytestmark = pytest.mark.solo

Dialect = Literal["openai-chat", "anthropic-messages"]
DIALECTS: tuple[Dialect, ...] = ("openai-chat", "anthropic-messages")
URLS = {
    "openai-chat": "https://api.openai.com/v1/chat/completions",
    "anthropic-messages": "https://api.anthropic.com/v1/messages",
}
MODELS = {"openai-chat": "gpt-4o-mini", "anthropic-messages": "claude-sonnet-4-6"}
EVENT_DELAY_MS = 700  # slow enough that a reload lands in the middle of a stream
ANSWER_BOUND_S = 15.0
FIRST, SECOND = "[first chain]", "[second chain]"  # what "mock" becomes before and after the reload


def replacing(word: str) -> dict[str, Any]:
    """A chain that turns the mock's "mock" into `word` in responses."""
    return {"policies": [{"policy": "replace", "rules": [{"find": "mock", "replace": word}]}]}


# Invalid edits, and what the log must name.
INVALID = {
    "unknown option": (
        "policies:\n  - policy: replace\n    rules:\n      - {find: mock, replace: Y, regexx: true}\n",
        "regexx",
    ),
    "bad value": ("recorder:\n  queue_size: lots\npolicies: []\n", "recorder.queue_size"),
    "broken YAML": ("policies: [\n  - policy: replace\n", "not valid YAML"),
}


def text_of(
    dialect: Dialect, clients: ClientFactory, delay_ms: int = 0, started: threading.Event | None = None
) -> tuple[str, str, dict[str, float]]:
    """A streamed call's text (as the SDK accumulates it), its call id, and when the
    client got the headers and the text the policy rewrote (time.monotonic());
    `started` is set once the headers are in."""
    body = llm_request(dialect, MODELS[dialect], [{"role": "user", "content": "Hi"}], stream=True)
    headers = {**auth_headers(dialect, clients.api_key), "x-mock-delay-ms": str(delay_ms)}
    received = bytearray()
    times: dict[str, float] = {}
    with clients.raw().stream("POST", URLS[dialect], json=body, headers=headers) as response:
        assert response.status_code == 200
        call_id = response.headers["x-interlock-call-id"]
        times["headers"] = time.monotonic()
        if started is not None:
            started.set()
        for data in response.iter_raw():
            received += data
            if b" chain]" in received and "word" not in times:
                times["word"] = time.monotonic()
    return sdk_summary(dialect, bytes(received))[0], call_id, times


@pytest.mark.parametrize("edit", list(INVALID))
def test_an_invalid_edit_keeps_the_previous_config(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], api_key: str, edit: str
) -> None:
    proxy = start_proxy(config=replacing(FIRST))
    clients = make_clients(proxy)
    paced = PacedStream(clients)
    paced.start()
    assert text_of("openai-chat", clients)[0] == f"Hello from the {FIRST} provider."
    text, needle = INVALID[edit]
    since = len(proxy.output())
    edit_config(proxy, text, expect=IGNORED)
    [logged] = [line for line in proxy.output()[since:].splitlines() if IGNORED in line]
    assert needle in logged, logged
    started = time.monotonic()
    after = [text_of(dialect, clients)[0] for dialect in DIALECTS]
    answered_s = time.monotonic() - started
    assert after == [f"Hello from the {FIRST} provider."] * 2  # still the previous chain
    paced.finish()
    paced.assert_paced()
    assert proxy.addon_errors() == []
    calls = 3 + paced.calls
    conclude(
        proxy,
        calls,
        f"config edited to invalid ({edit})",
        "previous config kept, key logged, calls flowing",
        secrets=(api_key,),
        paced=paced,
        answer_s=round(answered_s, 2),
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_calls_in_flight_finish_on_the_chain_they_started_with(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    api_key: str,
    dialect: Dialect,
) -> None:
    proxy = start_proxy(config=replacing(FIRST))
    clients = make_clients(proxy)
    paced = PacedStream(clients)
    paced.start()
    results: dict[str, tuple[str, str, dict[str, float]]] = {}
    started = threading.Event()

    def stream(name: str) -> None:
        results[name] = text_of(dialect, clients, EVENT_DELAY_MS, started)

    before = threading.Thread(target=stream, args=("before",))
    before.start()
    assert started.wait(ANSWER_BOUND_S), "the first stream never started"
    reloaded_at = edit_config(proxy, replacing(SECOND))
    after = threading.Thread(target=stream, args=("after",))
    after.start()
    for thread in (before, after):
        thread.join(ANSWER_BOUND_S)
        assert not thread.is_alive(), "a stream hung across the reload"
    paced.finish()
    paced.assert_paced()
    text_before, id_before, times_before = results["before"]
    text_after, id_after, _ = results["after"]
    # The first stream's rewritten word came after the reload: it really was in flight.
    assert times_before["headers"] < reloaded_at < times_before["word"], (times_before, reloaded_at)
    assert text_before == f"Hello from the {FIRST} provider."
    assert text_after == f"Hello from the {SECOND} provider."
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    finals = {call_id: db.wait_call(call_id)["response_text"] for call_id in (id_before, id_after)}
    assert finals == {id_before: f"Hello from the {FIRST} provider.", id_after: f"Hello from the {SECOND} provider."}
    calls = 2 + paced.calls
    conclude(
        proxy,
        calls,
        f"config reload with a call in flight ({dialect})",
        "in-flight stream finished on its chain, the next on the new one",
        secrets=(api_key,),
        paced=paced,
        reload_into_stream_s=round(reloaded_at - times_before["headers"], 2),
    )
