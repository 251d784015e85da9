"""The `budget` policy end to end: the real mitmdump with the bundle, the loopback mock
provider, the official SDKs (openai, anthropic, google-genai) with their default retries.

A session's spending limit blocks the call that would pass it with each SDK's own
rate-limit error, at once (one attempt: `x-should-retry: false`), without contacting
upstream, and is recorded; another session is unaffected. Totals survive a restart and
a live reload; `warn` passes and records; `downgrade` rewrites the model upstream sees;
an hourly window's block says when it resets; unknown prices count as configured; a
bad limit refuses start-up naming the key; a WebSocket turn past its budget gets a 429
error frame.

The mock answers every call with 12 input and 34 output tokens: gpt-4o costs $0.00037 a
call, claude-sonnet-4-6 $0.000546, gemini-2.5-pro $0.000355 (litellm's price map).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from harness import MitmCA, ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from harness_reload import edit_config, read_config
from mock_provider import MockProvider
from test_e2e_responses_ws import connect, create, turn
from test_e2e_startup import run_mitmdump

SESSION_HEADER = "x-interlock-session"
WAIT_S = 10.0  # a hang guard for rows the recorder writes in the background


def budget(*limits: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"policies": [{"policy": "budget", "limits": list(limits), **options}]}


def session_cost(max_usd: float, name: str = "session-cost") -> dict[str, Any]:
    return {"name": name, "metric": "cost_usd", "max": max_usd, "window": "session", "scope": "session"}


def with_retries(clients: ClientFactory) -> tuple[openai.OpenAI, anthropic.Anthropic]:
    """The SDK clients as users have them: the SDKs' default retries (2) on."""
    return clients.openai().with_options(max_retries=2), clients.anthropic().with_options(max_retries=2)


def ask_openai(
    client: openai.OpenAI, session: str, model: str = "gpt-4o", stream: bool = False, usage: Any = openai.omit
) -> str:
    headers = {SESSION_HEADER: session}
    messages: Any = [{"role": "user", "content": "hello"}]
    if stream:
        with client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options=usage, extra_headers=headers
        ) as chunks:
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    answer = client.chat.completions.create(model=model, messages=messages, extra_headers=headers)
    return answer.choices[0].message.content or ""


def ask_anthropic(client: anthropic.Anthropic, session: str) -> str:
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={SESSION_HEADER: session},
    )
    return "".join(block.text for block in message.content if block.type == "text")


def ask_gemini(clients: ClientFactory, session: str) -> str:
    from google.genai import types

    config = types.GenerateContentConfig(http_options=types.HttpOptions(headers={SESSION_HEADER: session}))
    answer = clients.gemini().models.generate_content(model="gemini-2.5-pro", contents="hello", config=config)
    return answer.text or ""


def upstream_calls(mock: MockProvider, session: str) -> int:
    return sum(1 for exchange in mock.requests if exchange.headers.get(SESSION_HEADER) == session)


def session_calls(db: CallsDB, session: str) -> list[dict[str, Any]]:
    return db.rows("select * from calls where session_id = ? order by started_at", (session,))


def wait_rows(read: Callable[[], list[dict[str, Any]]], count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    while len(rows := read()) < count:
        assert time.monotonic() < deadline, f"{len(rows)} rows, not {count}, within {WAIT_S} s: {rows}"
        time.sleep(0.05)
    return rows


def wait_use(db: CallsDB, key: str, calls: int) -> dict[str, Any]:
    """The `budget_use` row of a scope key once it counts `calls` calls."""

    def read() -> list[dict[str, Any]]:
        return db.rows("select * from budget_use where scope_key = ? and calls >= ?", (key, calls))

    return wait_rows(read, 1)[0]


def events(db: CallsDB, call_id: str) -> list[dict[str, Any]]:
    rows = db.rows("select * from policy_events where call_id = ? order by id", (call_id,))
    return [{**row, "details": json.loads(row["details_json"] or "{}")} for row in rows]


def db_of(proxy: ProxyProcess) -> CallsDB:
    assert proxy.db_path is not None
    return CallsDB(proxy.db_path)


# -- a session budget blocks, with each SDK's error -----------------------------------------


def call_until_refused(ask: Callable[[], str], most: int = 4) -> tuple[int, Exception]:
    """Call until the SDK raises; (calls that passed, the error)."""
    for passed in range(most):
        try:
            ask()
        except Exception as error:  # noqa: BLE001 - the test asserts on what it is
            return passed, error
    raise AssertionError(f"{most} calls passed a budget that allows fewer")


@pytest.fixture(scope="module")
def session_budget_proxy(start_module_proxy: ProxyLauncher) -> ProxyProcess:
    return start_module_proxy(config=budget(session_cost(0.0006)))


@pytest.mark.parametrize("sdk", ["openai", "anthropic", "gemini"])
def test_a_session_budget_blocks_the_call_that_would_pass_it_with_the_sdks_rate_limit_error(
    session_budget_proxy: ProxyProcess,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    mock_provider: MockProvider,
    sdk: str,
) -> None:
    proxy, clients = session_budget_proxy, make_clients(session_budget_proxy)
    db = db_of(proxy)
    openai_client, anthropic_client = with_retries(clients)
    asks: dict[str, Callable[[str], str]] = {
        "openai": lambda s: ask_openai(openai_client, s),
        "anthropic": lambda s: ask_anthropic(anthropic_client, s),
        "gemini": lambda s: ask_gemini(clients, s),
    }
    session = f"budget-{sdk}"

    def ask() -> str:
        text = asks[sdk](session)
        wait_use(db, session, upstream_calls(mock_provider, session))  # charged before the next call
        return text

    passed, error = call_until_refused(ask)
    # gpt-4o and gemini-2.5-pro: $0.00037 and $0.000355 a call, two fit in $0.0006 with
    # the second's estimate; claude-sonnet-4-6 ($0.000546): one.
    assert passed == (1 if sdk == "anthropic" else 2), repr(error)
    if sdk == "openai":
        assert isinstance(error, openai.RateLimitError)
        assert error.code == "insufficient_quota" and error.response.headers["x-should-retry"] == "false"
    elif sdk == "anthropic":
        assert isinstance(error, anthropic.RateLimitError)
        assert error.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    else:
        from google.genai import errors

        assert isinstance(error, errors.ClientError)
        assert error.code == 429 and error.status == "RESOURCE_EXHAUSTED"
    assert "budget 'session-cost' exceeded" in str(error) and "does not reset by waiting" in str(error)
    assert upstream_calls(mock_provider, session) == passed  # the blocked call never went upstream

    rows = wait_rows(lambda: session_calls(db, session), passed + 1)
    blocked = [row for row in rows if row["verdict"] == "blocked"]
    assert len(blocked) == 1, "the SDK retried the refused call"  # one attempt: no retry loop
    assert blocked[0]["status"] == 429 and blocked[0]["cost_usd"] is None
    [event] = events(db, blocked[0]["call_id"])
    assert (event["policy"], event["action"]) == ("budget", "blocked")
    details = event["details"]
    assert (details["limit"], details["scope"], details["key"], details["max"]) == (
        "session-cost",
        "session",
        session,
        0.0006,
    )
    assert details["spent"] == pytest.approx(sum(row["cost_usd"] for row in rows if row["verdict"] == "pass"))

    assert asks[sdk](f"{session}-other")  # another session has its own total


def test_a_streamed_call_is_charged_when_it_ends(
    session_budget_proxy: ProxyProcess, make_clients: Callable[[ProxyProcess], ClientFactory]
) -> None:
    db = db_of(session_budget_proxy)
    client = make_clients(session_budget_proxy).openai()
    usage = {"include_usage": True}
    assert ask_openai(client, "budget-stream", stream=True, usage=usage) == "Hello from the mock provider."
    use = wait_use(db, "budget-stream", 1)
    [row] = wait_rows(lambda: session_calls(db, "budget-stream"), 1)
    assert use["used"] == pytest.approx(row["cost_usd"]) and row["cost_usd"] > 0
    assert (use["budget"], use["scope"], use["maximum"], use["resets_at"]) == ("session-cost", "session", 0.0006, None)
    assert use["unpriced_calls"] == 0

    # Without `include_usage` the stream says nothing of its tokens: counted as unpriced, not as a silent $0.
    ask_openai(client, "budget-stream-no-usage", stream=True)
    use = wait_use(db, "budget-stream-no-usage", 1)
    assert (use["used"], use["unpriced_calls"]) == (0.0, 1)


# -- restarts and reloads keep totals --------------------------------------------------------


def test_totals_survive_a_proxy_restart(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], tmp_path: Path
) -> None:
    """$0.00037 spent before the restart: the next call's estimate takes it past $0.0004."""
    db_path = tmp_path / "kept.db"
    config = budget(session_cost(0.0004))
    first = start_proxy(config=config, db=db_path)
    ask_openai(make_clients(first).openai(), "restarted")
    wait_use(CallsDB(db_path), "restarted", 1)
    first.stop()

    second = start_proxy(config=config, db=db_path)
    output = second.wait_for_output("Interlock ready")  # listening may come first
    assert output.index("totals restored") < output.index("Interlock ready")
    client = make_clients(second).openai()
    with pytest.raises(openai.RateLimitError, match=r"\$0\.00037 of \$0\.0004"):
        ask_openai(client, "restarted")
    assert ask_openai(client, "not-restarted")


def test_a_live_reload_keeps_totals(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory]
) -> None:
    proxy = start_proxy(config=budget(session_cost(0.0004)))
    client = make_clients(proxy).openai()
    ask_openai(client, "reloaded")
    wait_use(db_of(proxy), "reloaded", 1)
    config = read_config(proxy)
    config["policies"][0]["limits"].append({"name": "tokens", "metric": "tokens", "max": 10**6, "window": "day"})
    edit_config(proxy, config)
    with pytest.raises(openai.RateLimitError, match="session-cost"):
        ask_openai(client, "reloaded")
    config["policies"][0]["limits"][0]["name"] = "renamed"  # another limit: restored from the calls
    restored = proxy.output().count("totals restored")
    edit_config(proxy, config)
    assert proxy.output().count("totals restored") == restored + 1  # before the reload was taken
    with pytest.raises(openai.RateLimitError, match=r"'renamed' exceeded: \$0\.00037 of \$0\.0004"):
        ask_openai(client, "reloaded")
    config["policies"][0]["limits"][0]["window"] = "day"  # per day: the same call, the same total
    edit_config(proxy, config)
    with pytest.raises(openai.RateLimitError, match=r"'renamed' exceeded: \$0\.00037 of \$0\.0004 today"):
        ask_openai(client, "reloaded")


# -- warn, downgrade, windows, unknown prices ------------------------------------------------


def test_warn_passes_and_downgrade_rewrites_the_model_upstream_sees(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    proxy = start_proxy(
        config=budget(
            {"name": "heads-up", "metric": "calls", "max": 1, "window": "day", "scope": "session", "action": "warn"},
            {
                "name": "cheaper",
                "metric": "tokens",
                "max": 50,
                "window": "1h",
                "scope": ["session", "model"],
                "action": "downgrade",
                "downgrade_to": "gpt-4o-mini",
                "models": ["gpt-4o"],
            },
        )
    )
    db = db_of(proxy)
    client = make_clients(proxy).openai()
    for calls in (1, 2):
        ask_openai(client, "thrifty")
        wait_rows(lambda: session_calls(db, "thrifty"), calls)
    first, second = session_calls(db, "thrifty")
    assert events(db, first["call_id"]) == []
    assert [
        json.loads(e.body)["model"] for e in mock_provider.requests if e.headers.get(SESSION_HEADER) == "thrifty"
    ] == [
        "gpt-4o",
        "gpt-4o-mini",
    ]
    assert (second["verdict"], second["model"], second["model_final"]) == ("modified", "gpt-4o", "gpt-4o-mini")
    by_action = {event["action"]: event for event in events(db, second["call_id"])}
    assert set(by_action) == {"warned", "modified"}
    assert by_action["warned"]["details"]["limit"] == "heads-up"
    assert by_action["warned"]["details"]["spent"] == 1
    modified = by_action["modified"]["details"]
    assert (modified["limit"], modified["model_from"], modified["model_to"]) == ("cheaper", "gpt-4o", "gpt-4o-mini")
    assert modified["key"] == "thrifty / gpt-4o" and modified["spent"] == 46  # 12 + 34 tokens


def test_an_hourly_window_says_when_it_resets(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory]
) -> None:
    proxy = start_proxy(config=budget({"name": "hourly", "metric": "calls", "max": 1, "window": "hour"}))
    raw = make_clients(proxy).raw()
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}
    url = "https://api.openai.com/v1/chat/completions"
    headers = {"authorization": "Bearer sk-test"}
    assert raw.post(url, json=body, headers=headers).status_code == 200
    wait_use(db_of(proxy), "overall", 1)
    refused = raw.post(url, json=body, headers=headers)
    now = time.time()
    assert refused.status_code == 429
    to_the_hour = math.ceil(3600 - now % 3600)
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 3600 and abs(retry_after - to_the_hour) <= 5
    assert refused.headers.get("x-should-retry") == ("false" if retry_after > 60 else None)
    error = refused.json()["error"]
    assert error["code"] == ("rate_limit_exceeded" if retry_after <= 60 else "insufficient_quota")
    assert "1 calls of 1 calls this hour (UTC)" in error["message"] and "resets at" in error["message"]


def test_unknown_prices_count_as_configured(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], mock_provider: MockProvider
) -> None:
    """One budget policy per `unknown_cost` mode, each for its own made-up model."""

    def entry(mode: str, **options: Any) -> dict[str, Any]:
        limit = {**session_cost(0.05, name=f"cost-{mode}"), "models": [f"mystery-{mode}"]}
        return {"policy": "budget", "limits": [limit], "unknown_cost": mode, **options}

    proxy = start_proxy(
        config={
            "policies": [
                entry("block"),
                entry("allow"),
                entry("count_tokens", unknown_usd_per_million_tokens=1000.0),
            ]
        }
    )
    db = db_of(proxy)
    client = make_clients(proxy).openai()

    with pytest.raises(openai.RateLimitError, match="price of model mystery-block is unknown"):
        ask_openai(client, "unknown-block", model="mystery-block")
    assert upstream_calls(mock_provider, "unknown-block") == 0

    ask_openai(client, "unknown-allow", model="mystery-allow")
    use = wait_use(db, "unknown-allow", 1)
    assert (use["used"], use["unpriced_calls"]) == (0.0, 1)
    [row] = wait_rows(lambda: session_calls(db, "unknown-allow"), 1)
    assert [e["action"] for e in events(db, row["call_id"])] == ["unpriced"]
    assert row["verdict"] == "pass" and row["cost_usd"] is None

    # 46 tokens at $1000 a million: $0.046; the next call's estimate takes it past $0.05.
    ask_openai(client, "unknown-count", model="mystery-count_tokens")
    use = wait_use(db, "unknown-count", 1)
    assert use["used"] == pytest.approx(0.046) and use["unpriced_calls"] == 1
    with pytest.raises(openai.RateLimitError, match="cost-count_tokens"):
        ask_openai(client, "unknown-count", model="mystery-count_tokens")


def test_a_bad_limit_refuses_start_up_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "policies:\n  - policy: budget\n    limits:\n"
        "      - {name: daily, metric: cost_usd, max: 5, window: fortnight}\n"
    )
    result = run_mitmdump(tmp_path, "--set", f"interlock_config={config}")
    assert result.returncode != 0
    assert "policies.0 (budget).limits.0.window" in result.stdout + result.stderr


async def test_a_websocket_turn_past_its_budget_gets_a_429_error_frame(
    start_proxy: ProxyLauncher, mock_provider: MockProvider, mitm_ca: MitmCA
) -> None:
    """Codex's Responses WebSocket: each turn is a call, checked and charged as over HTTP."""
    proxy = start_proxy(config=budget({"name": "turns", "metric": "calls", "max": 1, "window": "day"}))
    tls = mitm_ca.ssl_context()
    async with connect(proxy, tls) as ws:
        first = await turn(ws, create("hello"))
        assert json.loads(first[-1])["type"] == "response.completed"
        await asyncio.to_thread(wait_use, db_of(proxy), "overall", 1)
        upstream = len(mock_provider.exchanges)
        [refused] = await turn(ws, create("hello again"))
    error = json.loads(refused)
    assert (error["type"], error["status"], error["error"]["code"]) == ("error", 429, "insufficient_quota")
    assert "budget 'turns' exceeded" in error["error"]["message"]
    assert len(mock_provider.exchanges) == upstream  # the refused turn never went upstream
