"""Alert rules end to end: the real mitmdump with the bundle, the loopback mock provider,
the openai SDK, a loopback webhook receiver.

A burst of blocked tool calls in one session fires the rule once, to the webhook, the
terminal and the `alerts` table (naming the calls), and not again within its cool-down;
another session has its own episode; a live reload keeps the running tally, and so does
a restart, which does not repeat an alert already sent; a budget's
warning is an alert too; a slow or unreachable webhook does not slow the calls; a bad
rule refuses start-up naming the key.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import openai
import pytest
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from harness_reload import edit_config, read_config
from test_e2e_budget import budget, db_of, events, wait_rows
from test_e2e_policies import CALL_ID, WEATHER_OPENAI
from test_e2e_startup import run_mitmdump
from ui_fixtures import ui_page
from webhook_receiver import WebhookReceiver

SESSION_HEADER = "x-interlock-session"
BURST = {"name": "blocked-burst", "when": "count(blocked_tool_calls) >= 3", "window": "10m", "per": "session"}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def alerts_config(webhook: dict[str, Any], *rules: dict[str, Any], **section: Any) -> dict[str, Any]:
    return {
        "policies": [{"policy": "deny_tools", "deny": ["get_weather"]}],
        "alerts": {"cooldown": "1h", "channels": {"webhook": webhook}, "rules": list(rules), **section},
    }


def ask_weather(client: openai.OpenAI, session: str) -> str:
    """A call whose answer is a get_weather tool call (deny_tools blocks it); its call id."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_OPENAI],
        extra_headers={SESSION_HEADER: session, "x-mock-scenario": "tool"},
    )
    raw.parse()
    return raw.headers[CALL_ID]


def alert_rows(db: CallsDB, count: int, delivered: bool = True) -> list[dict[str, Any]]:
    """The `alerts` rows, once there are `count` (and, with `delivered`, none pending)."""

    def read() -> list[dict[str, Any]]:
        if not db.rows("select name from sqlite_master where name = 'alerts'"):
            return []
        rows = db.rows("select * from alerts order by fired_at")
        if delivered and any("pending" in (row["deliveries"] or "") for row in rows):
            return []
        return rows

    rows = wait_rows(read, count)
    return [
        {**row, "call_ids": json.loads(row["call_ids"]), "deliveries": json.loads(row["deliveries"])} for row in rows
    ]


def test_a_burst_of_blocked_tool_calls_fires_once_per_session_and_not_again_in_its_cooldown(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], receiver: WebhookReceiver
) -> None:
    proxy = start_proxy(config=alerts_config({"url": receiver.url, "headers": {"x-hook-token": "s3cret"}}, BURST))
    db = db_of(proxy)
    client = make_clients(proxy).openai()
    burst = [ask_weather(client, "looping") for _ in range(3)]
    (post,) = receiver.wait_for_posts(1)
    body = post["body"]
    assert (body["rule"], body["source"], body["scope"], body["scope_key"]) == (
        "blocked-burst",
        "rule",
        "session",
        "looping",
    )
    assert body["call_ids"] == burst and body["value"] == 3 and body["condition"] == "count(blocked_tool_calls) >= 3"
    assert post["headers"]["x-hook-token"] == "s3cret"
    for call_id in burst:  # the alert fires as the call ends; its record reaches the disk soon after
        recorded = wait_rows(partial(events, db, call_id), 1)
        assert [(e["policy"], e["action"]) for e in recorded] == [("deny_tools", "blocked")]

    more = [ask_weather(client, "looping") for _ in range(3)]  # the same episode, and within the cool-down
    other = [ask_weather(client, "elsewhere") for _ in range(3)]  # another session: an episode of its own
    posts = receiver.wait_for_posts(2)
    time.sleep(0.5)  # a third post would come by now: the calls above ended before the second one
    assert [p["body"]["scope_key"] for p in receiver.posts] == ["looping", "elsewhere"]
    assert posts[1]["body"]["call_ids"] == other

    rows = alert_rows(db, 2)
    assert [(row["rule"], row["scope_key"], row["call_ids"]) for row in rows] == [
        ("blocked-burst", "looping", burst),
        ("blocked-burst", "elsewhere", other),
    ]
    assert all(row["deliveries"] == {"terminal": "sent", "webhook": "sent"} for row in rows)
    assert json.loads(db.rows("select channels from alerts limit 1")[0]["channels"]) == ["terminal", "webhook"]
    assert set(more).isdisjoint(rows[0]["call_ids"])
    lines = [line for line in proxy.output().splitlines() if " ALERT " in line]
    assert len(lines) == 2 and "blocked-burst: count(blocked_tool_calls) >= 3 (3," in lines[0]
    assert "for session looping" in lines[0] and lines[0].endswith(f"3 calls, latest {burst[-1]}")
    assert "s3cret" not in proxy.output()
    assert "s3cret" not in json.dumps(db.rows("select * from alerts"))
    db_path = Path(str(proxy.db_path))
    page = asyncio.run(ui_page(db_path, f"/-/interlock/{db_path.stem}/alerts"))  # the UI shows the recorded alerts
    for row, calls in zip(rows, (burst, other), strict=True):
        shown = page.split(f'data-alert-id="{row["alert_id"]}"', 1)[1].split("</tr>", 1)[0]
        assert all(call_id in shown for call_id in calls) and "webhook: sent" in shown


def test_a_live_reload_keeps_the_running_tally(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], receiver: WebhookReceiver
) -> None:
    proxy = start_proxy(config=alerts_config({"url": receiver.url}, BURST))
    client = make_clients(proxy).openai()
    first = [ask_weather(client, "reloaded") for _ in range(2)]
    config = read_config(proxy)
    config["alerts"]["rules"][0]["cooldown"] = "2h"  # the same rule: its tally carries over
    config["alerts"]["channels"]["webhook"]["headers"] = {"x-after": "reload"}
    edit_config(proxy, config)
    third = ask_weather(client, "reloaded")
    (post,) = receiver.wait_for_posts(1)
    assert post["body"]["call_ids"] == [*first, third] and post["headers"]["x-after"] == "reload"


def test_a_rule_a_reload_adds_starts_from_the_recorded_calls(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], receiver: WebhookReceiver
) -> None:
    proxy = start_proxy(config=alerts_config({"url": receiver.url}))
    client = make_clients(proxy).openai()
    first = [ask_weather(client, "added") for _ in range(2)]
    db = db_of(proxy)
    wait_rows(lambda: db.rows("select call_id from calls where session_id = 'added'"), 2)
    config = read_config(proxy)
    config["alerts"]["rules"] = [BURST]
    edit_config(proxy, config)
    assert "Interlock alerts: 1 rules restored" in proxy.output()
    third = ask_weather(client, "added")
    (post,) = receiver.wait_for_posts(1)
    assert post["body"]["call_ids"] == [*first, third]


def test_a_restart_keeps_the_tally_and_does_not_repeat_an_episodes_alert(
    start_proxy: ProxyLauncher,
    make_clients: Callable[[ProxyProcess], ClientFactory],
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "kept.db"
    config = alerts_config({"url": receiver.url}, BURST)
    first = start_proxy(config=config, db=db_path)
    before = [ask_weather(make_clients(first).openai(), "restarted") for _ in range(2)]
    first.stop()
    assert receiver.posts == []

    second = start_proxy(config=config, db=db_path)
    third = ask_weather(make_clients(second).openai(), "restarted")  # perhaps before the restore is done
    (post,) = receiver.wait_for_posts(1)
    assert post["body"]["call_ids"] == [*before, third]  # two calls before the restart, one after
    assert "Interlock alerts: 1 rules restored from" in second.output()
    alert_rows(db_of(second), 1)
    second.stop()

    last = start_proxy(config=config, db=db_path)
    client = make_clients(last).openai()
    ask_weather(client, "restarted")  # the same episode, its alert recorded: not again
    fresh = [ask_weather(client, "fresh") for _ in range(3)]
    posts = receiver.wait_for_posts(2)
    time.sleep(0.5)
    assert [p["body"]["scope_key"] for p in receiver.posts] == ["restarted", "fresh"]
    assert posts[1]["body"]["call_ids"] == fresh


def test_a_budget_warning_is_an_alert(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], receiver: WebhookReceiver
) -> None:
    warn = {"name": "heads-up", "metric": "calls", "max": 1, "window": "day", "scope": "session", "action": "warn"}
    proxy = start_proxy(config={**budget(warn), "alerts": {"channels": {"webhook": {"url": receiver.url}}}})
    client = make_clients(proxy).openai()
    for _ in range(3):
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], extra_headers={SESSION_HEADER: "warned"}
        )
    (row,) = alert_rows(db_of(proxy), 1)
    assert (row["source"], row["rule"], row["condition"], row["scope_key"]) == (
        "policy",
        "budget",
        "heads-up",
        "warned",
    )
    assert row["deliveries"] == {"terminal": "sent", "webhook": "sent"}
    time.sleep(0.5)
    assert len(receiver.posts) == 1  # the third call warned too: within the cool-down


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("receiver_kind", ["slow", "unreachable"])
def test_a_slow_or_unreachable_webhook_does_not_slow_the_calls(
    start_proxy: ProxyLauncher, make_clients: Callable[[ProxyProcess], ClientFactory], receiver_kind: str
) -> None:
    every_call = {"name": "every-session", "when": "count(calls) >= 1", "window": "call", "per": "session"}
    with WebhookReceiver(delay_s=4) as slow:
        url = slow.url if receiver_kind == "slow" else f"http://127.0.0.1:{free_port()}/hook"
        webhook = {"url": url, "timeout_s": 10, "retries": 3, "backoff_s": 2, "queue_size": 2}
        proxy = start_proxy(config=alerts_config(webhook, every_call, policy_warnings=False))
        client = make_clients(proxy).openai()
        for n in range(6):  # each call a session of its own: each fires
            if n == 1:
                started = time.monotonic()  # after the first call's connections are set up
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], extra_headers={SESSION_HEADER: f"s{n}"}
            )
        elapsed = time.monotonic() - started
        # A call waiting on the webhook would take 4 s (slow) or 2 + 4 + 8 s of backoff (unreachable).
        assert elapsed < 3.0, f"5 calls took {elapsed:.1f} s"
        # One alert being sent and two waiting: the others dropped (each drop written just
        # after its row, so wait for the three).
        dropped = "dropped: 2 alerts already waiting"
        db = db_of(proxy)
        wait_rows(
            lambda: [row for row in alert_rows(db, 6, delivered=False) if dropped in row["deliveries"].values()], 3
        )
        rows = alert_rows(db, 6, delivered=False)
        assert all(row["deliveries"]["terminal"] == "sent" for row in rows)
        assert [row["deliveries"]["webhook"] for row in rows].count(dropped) >= 3
        proxy.stop()
        final = [json.loads(row["deliveries"])["webhook"] for row in db_of(proxy).rows("select * from alerts")]
        assert "pending" not in final  # each alert's fate written by the time the proxy stopped
        if receiver_kind == "unreachable":
            assert not any(status.startswith("sent") for status in final)


def test_a_bad_rule_refuses_start_up_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("alerts:\n  rules:\n    - {name: spend, when: 'sum(dollars) > 5', window: 1h}\n")
    result = run_mitmdump(tmp_path, "--set", f"interlock_config={config}")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "alerts.rules.0.when" in output and "unknown metric 'dollars'" in output
