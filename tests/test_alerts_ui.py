"""The Alerts page, in process: the alerts that fired from `alerts`, newest first, each
linking its calls and (for a session scope) its session, with each channel's status;
narrowed by rule or scope key with bound parameters; bounded; linked from the home page;
a row whose JSON columns are malformed is shown as stored, not refused."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from ui_fixtures import side_table_database, ui_page

from datasette_plugins.ui.alerts import ALERTS_LIMIT
from recorder.rows import iso

URL = "/-/interlock/alerts/alerts"


def alert(alert_id: str, age_s: float, **fields: Any) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "fired_at": iso(time.time() - age_s),
        "source": "rule",
        "rule": "blocked-burst",
        "condition": "count(blocked_tool_calls) >= 3",
        "value": 3.0,
        "time_window": "10m",
        "scope": "session",
        "scope_key": "looping",
        "message": "blocked-burst: count(blocked_tool_calls) >= 3 (3, over 10m) for session looping",
        "call_ids": json.dumps(["c1", "c2", "c3"]),
        "unknown_calls": 0,
        "channels": json.dumps(["terminal", "webhook"]),
        "deliveries": json.dumps({"terminal": "sent", "webhook": "sent"}),
        **fields,
    }


def database(tmp_path: Path, rows: list[dict[str, Any]], *, without_table: bool = False) -> Path:
    path = side_table_database(tmp_path / "alerts.db", "alerts", rows)
    if without_table:  # a database from before alerts
        with sqlite3.connect(path) as conn:
            conn.execute("drop table alerts")
    return path


def shown(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('data-alert-id="')[1:]]


def row_of(html: str, alert_id: str) -> str:
    return html.split(f'data-alert-id="{alert_id}"', 1)[1].split("</tr>", 1)[0]


async def test_the_alerts_page_lists_alerts_newest_first_with_their_calls_session_and_deliveries(
    tmp_path: Path,
) -> None:
    path = database(
        tmp_path,
        [
            alert("old", 600),
            alert(
                "slow",
                60,
                rule="slow-model",
                condition="p95(duration_ms) > 20000",
                value=23456.5,
                scope="model",
                scope_key="gpt-4o",
                message="slow-model: p95(duration_ms) > 20000 (23456.5, over 1h) for model gpt-4o",
                call_ids=json.dumps(["c9"]),
                unknown_calls=2,
                deliveries=json.dumps(
                    {"terminal": "sent", "webhook": "failed: hooks.example answered 500 after 4 attempts"}
                ),
            ),
            alert(
                "warned",
                30,
                source="policy",
                rule="budget",
                condition=None,
                value=None,
                time_window=None,
                scope="session",
                scope_key="s 1/2",
                message="budget: session-cost at 82% of $1",
                call_ids=json.dumps(["c4"]),
                deliveries=json.dumps(
                    {"terminal": "sent", "webhook": "pending", "desktop": "dropped: the proxy is stopping"}
                ),
            ),
        ],
    )
    html = await ui_page(path, URL)
    assert shown(html) == ["warned", "slow", "old"]
    old = row_of(html, "old")
    assert [f'href="/-/interlock/alerts/calls/{c}"' in old for c in ("c1", "c2", "c3")] == [True] * 3
    assert 'href="/-/interlock/alerts/sessions/looping"' in old
    assert "count(blocked_tool_calls) &gt;= 3" in old
    assert 'il-delivery il-delivery-sent" data-channel="webhook">webhook: sent' in old
    slow = row_of(html, "slow")
    assert "/sessions/" not in slow  # a model scope has no page of its own
    assert "23456.5" in slow and "2 with the metric unknown" in slow
    assert 'il-delivery-failed" data-channel="webhook">webhook: failed: hooks.example answered 500' in slow
    warned = row_of(html, "warned")
    assert 'class="il-alert-policy"' in warned.split(">", 1)[0]
    assert 'href="/-/interlock/alerts/sessions/s+1~2F2"' in warned  # tilde-encoded as Datasette does
    assert "il-delivery-pending" in warned and "il-delivery-dropped" in warned
    rules = html.split('class="il-links il-alert-rules"', 1)[1].split("</p>", 1)[0]
    assert (
        "blocked-burst" in rules and "slow-model" in rules and 'href="/-/interlock/alerts/alerts?rule=budget"' in rules
    )


async def test_rule_and_scope_key_filters_are_bound_parameters(tmp_path: Path) -> None:
    tricky = "it's' or 1=1 --"
    path = database(
        tmp_path,
        [
            alert("a", 90),
            alert("b", 60, rule=tricky),
            alert("c", 30, scope_key="elsewhere"),
            alert("d", 10, rule=tricky),
        ],
    )
    assert shown(await ui_page(path, f"{URL}?rule=blocked-burst")) == ["c", "a"]
    html = await ui_page(path, f"{URL}?rule=it%27s%27%20or%201%3D1%20--")
    assert shown(html) == ["d", "b"] and "2 alerts" in html
    assert shown(await ui_page(path, f"{URL}?scope_key=elsewhere")) == ["c"]
    assert shown(await ui_page(path, f"{URL}?rule=blocked-burst&scope_key=looping")) == ["a"]
    nothing = await ui_page(path, f"{URL}?rule=nope")
    assert shown(nothing) == [] and "No alert matches" in nothing


async def test_malformed_json_columns_are_shown_as_stored(tmp_path: Path) -> None:
    path = database(
        tmp_path,
        [alert("bad", 10, call_ids="c1,c2", deliveries='{"webhook": 3}'), alert("null", 5, deliveries=None)],
    )
    html = await ui_page(path, URL)
    assert shown(html) == ["null", "bad"]
    bad = row_of(html, "bad")
    assert "c1,c2" in bad and "/calls/" not in bad
    assert "{&#34;webhook&#34;: 3}" in bad or "{&quot;webhook&quot;: 3}" in bad
    assert 'class="il-delivery' not in row_of(html, "null")  # no deliveries: none shown


async def test_the_page_is_bounded_and_says_how_many_it_left_out(tmp_path: Path) -> None:
    path = database(tmp_path, [alert(f"a{n:04d}", 1000 - n / 10) for n in range(ALERTS_LIMIT + 7)])
    html = await ui_page(path, URL)
    ids = shown(html)
    assert len(ids) == ALERTS_LIMIT and ids[0] == f"a{ALERTS_LIMIT + 6:04d}"
    assert f"The newest {ALERTS_LIMIT} of {ALERTS_LIMIT + 7}" in html


async def test_the_home_page_links_the_alerts_and_an_empty_or_older_database_says_none_fired(
    tmp_path: Path,
) -> None:
    path = database(tmp_path, [])
    assert f'href="{URL}"' in await ui_page(path, "/")
    empty = await ui_page(path, URL)
    assert "No alert has fired yet" in empty and "<table" not in empty
    (tmp_path / "older").mkdir()
    older = database(tmp_path / "older", [alert("gone", 1)], without_table=True)
    assert "No alert has fired yet" in await ui_page(older, URL)
