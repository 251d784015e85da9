"""The Budgets page, in process: each limit's use per scope key from `budget_use`,
linked from the home page; a window that has reset since shows nothing used."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from datasette.app import Datasette

from datasette_plugins.ui import serve
from recorder.rows import iso
from recorder.schema import migrate


def use(scope_key: str, used: float, resets_at: float | None, **fields: Any) -> dict[str, Any]:
    return {
        "policy": "budget",
        "budget": "session-cost",
        "metric": "cost_usd",
        "time_window": "day",
        "scope": "session",
        "scope_key": scope_key,
        "used": used,
        "maximum": 1.0,
        "action": "block",
        "calls": 3,
        "unpriced_calls": 0,
        "resets_at": iso(resets_at),
        "updated_at": iso(time.time() - 60),
        **fields,
    }


def database(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "budgets.db"
    migrate(str(path))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "insert into calls (call_id, started_at, provider, dialect, host, path, verdict, cost_usd)"
            " values ('c1', ?, 'openai', 'd', 'h', '/p', 'pass', 0.5)",
            (iso(time.time()),),
        )
        for row in rows:
            conn.execute(
                f"insert into budget_use ({', '.join(row)}) values ({', '.join('?' * len(row))})", list(row.values())
            )
    return path


async def get(path: Path, url: str) -> str:
    ds = Datasette([str(path)], **serve.datasette_kwargs())
    await ds.invoke_startup()
    response = await ds.client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:500]}"
    return response.text


async def test_the_budgets_page_lists_each_limits_use_closest_to_its_max_first(tmp_path: Path) -> None:
    later = time.time() + 3600
    path = database(
        tmp_path,
        [
            use("calm", 0.1, later),
            use("spent", 1.2, later),
            use("yesterday", 0.95, time.time() - 10),
            use("gpt-4o", 900, None, budget="tokens", metric="tokens", scope="model", maximum=1000, time_window="ever"),
        ],
    )
    html = await get(path, "/-/interlock/budgets/budgets")
    keys = [part.split('"', 1)[0] for part in html.split('data-scope-key="')[1:]]
    assert keys == ["spent", "gpt-4o", "calm", "yesterday"]
    assert 'class="il-budget-over"' in html and 'class="il-budget-near"' in html
    assert "$1.2 " in html and "900 tokens" in html and "1,000 tokens" in html
    yesterday = html.split('data-scope-key="yesterday"', 1)[1].split("</tr>", 1)[0]
    assert "$0 " in yesterday and "reset at" in yesterday  # its window reset since it was written
    assert "never" in html.split('data-scope-key="gpt-4o"', 1)[1].split("</tr>", 1)[0]


async def test_the_home_page_links_the_budgets_and_a_database_without_any_says_so(tmp_path: Path) -> None:
    path = database(tmp_path, [])
    assert 'href="/-/interlock/budgets/budgets"' in await get(path, "/")
    assert "No budget use yet" in await get(path, "/-/interlock/budgets/budgets")
