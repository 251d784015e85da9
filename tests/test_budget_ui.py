"""The Budgets page, in process: each limit's use per scope key from `budget_use`,
linked from the home page; a window that has reset since shows nothing used."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ui_fixtures import side_table_database, ui_page

from recorder.rows import iso


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
    return side_table_database(tmp_path / "budgets.db", "budget_use", rows)


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
    html = await ui_page(path, "/-/interlock/budgets/budgets")
    keys = [part.split('"', 1)[0] for part in html.split('data-scope-key="')[1:]]
    assert keys == ["spent", "gpt-4o", "calm", "yesterday"]
    assert 'class="il-budget-over"' in html and 'class="il-budget-near"' in html
    assert "$1.2 " in html and "900 tokens" in html and "1,000 tokens" in html
    yesterday = html.split('data-scope-key="yesterday"', 1)[1].split("</tr>", 1)[0]
    assert "$0 " in yesterday and "reset at" in yesterday  # its window reset since it was written
    assert "never" in html.split('data-scope-key="gpt-4o"', 1)[1].split("</tr>", 1)[0]


async def test_the_home_page_links_the_budgets_and_a_database_without_any_says_so(tmp_path: Path) -> None:
    path = database(tmp_path, [])
    assert 'href="/-/interlock/budgets/budgets"' in await ui_page(path, "/")
    assert "No budget use yet" in await ui_page(path, "/-/interlock/budgets/budgets")
