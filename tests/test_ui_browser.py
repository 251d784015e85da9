"""The UI in a real browser: headless Debian chromium against a running `datasette`.

Starts the UI the way `just ui` does (`python -m datasette_plugins.ui.serve`) on a free
loopback port, loads the diff page, the session page, the calls table and the Alerts page,
asserts on the DOM and saves screenshots to test-artifacts/. Needs /usr/bin/chromium (.ci/install-debian-packages.sh).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from ui_fixtures import UIExpectations, write_ui_database

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


ALERT_ID = "ui-alert-1"


def add_alert(db: Path, expect: UIExpectations) -> None:
    """An alert naming the blocked call, for the session, its webhook delivery failed."""
    row = {
        "alert_id": ALERT_ID,
        "fired_at": "2026-11-23T11:40:00.000Z",
        "source": "rule",
        "rule": "blocked-burst",
        "condition": "count(blocked_tool_calls) >= 1",
        "value": 1.0,
        "time_window": "10m",
        "scope": "session",
        "scope_key": expect.session_id,
        "message": f"blocked-burst: count(blocked_tool_calls) >= 1 (1, over 10m) for session {expect.session_id}",
        "call_ids": json.dumps([expect.blocked_call]),
        "unknown_calls": 0,
        "channels": json.dumps(["terminal", "webhook"]),
        "deliveries": json.dumps(
            {"terminal": "sent", "webhook": "failed: hooks.example answered 500 after 4 attempts"}
        ),
    }
    with sqlite3.connect(db) as conn:
        conn.execute(f"insert into alerts ({', '.join(row)}) values ({', '.join('?' * len(row))})", list(row.values()))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, UIExpectations]]:
    """(base URL, expectations) of a datasette serving the UI database."""
    workdir = tmp_path_factory.mktemp("ui-browser")
    db = workdir / "interlock.db"
    expect = asyncio.run(write_ui_database(db))
    add_alert(db, expect)
    port = free_port()
    log = (workdir / "datasette.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "datasette_plugins.ui.serve", str(db), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"datasette did not start: {(workdir / 'datasette.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", expect
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian chromium is missing: run .ci/install-debian-packages.sh"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_diff_page_in_a_browser(served: tuple[str, UIExpectations], page: Page) -> None:
    base, expect = served
    page.goto(f"{base}/-/interlock/interlock/calls/{expect.modified_call}")
    assert page.locator("tr.il-del .il-code").inner_text().endswith(expect.removed_line)
    assert page.locator("tr.il-add .il-code").inner_text().endswith(expect.added_line)
    assert page.locator("tr.il-add ins").inner_text() == "[REDACTED]"
    assert page.locator(".il-side .il-event").count() == 2
    run = page.locator("details.il-run").first  # the unchanged system message, collapsed
    assert not run.evaluate("d => d.open")
    assert not page.get_by_text("You are a helpful assistant.").is_visible()
    run.locator("summary").click()
    assert page.get_by_text("You are a helpful assistant.").is_visible()
    screenshot(page, "ui-diff-modified")

    page.goto(f"{base}/-/interlock/interlock/calls/{expect.blocked_call}")
    blocked = page.locator(".il-block-tool_call.il-blocked")
    assert blocked.count() == 1
    assert expect.blocked_reason in blocked.inner_text()
    assert page.locator(".il-judge-blocked").inner_text().count(expect.judge_probability) == 1
    screenshot(page, "ui-diff-blocked")
    page.get_by_role("link", name="SSE").first.click()
    assert page.locator("body").inner_text().startswith("event: message_start")


def test_session_page_in_a_browser(served: tuple[str, UIExpectations], page: Page) -> None:
    base, expect = served
    page.goto(f"{base}/-/interlock/interlock/sessions/{expect.session_id}")
    assert page.locator("li.il-turn").count() == expect.session_turns
    assert page.locator('[data-total="turns"]').inner_text() == str(expect.session_turns)
    first_tool = expect.session_tool_calls[0]
    page.locator(f'a[href^="#result-"][href$="-{first_tool}"]').click()
    assert page.evaluate("location.hash").endswith(first_tool)
    target = page.locator(":target")
    assert "result of" in target.inner_text() and target.is_visible()
    screenshot(page, "ui-session")
    page.locator("li.il-turn").nth(1).get_by_role("link", name="diff →").click()
    assert page.locator("h1").inner_text().startswith("Call ui-session-2")


def test_calls_table_and_chart_in_a_browser(served: tuple[str, UIExpectations], page: Page) -> None:
    base, expect = served
    page.goto(f"{base}/")
    chart = page.locator("svg.il-chart")
    assert chart.is_visible() and chart.locator("rect.il-bar").count() == 1
    screenshot(page, "ui-index")
    page.goto(f"{base}/interlock/calls")
    page.locator(f'a.il-call-link:text-is("{expect.blocked_call}")').click()
    assert page.locator(".il-title .il-badge").inner_text() == "blocked"
    page.goto(f"{base}/interlock/calls")
    screenshot(page, "ui-calls")


def test_alerts_page_in_a_browser(served: tuple[str, UIExpectations], page: Page) -> None:
    base, expect = served
    page.goto(f"{base}/")
    page.get_by_role("link", name="Alerts", exact=True).click()
    alert = page.locator(f'tr[data-alert-id="{ALERT_ID}"]')
    assert alert.count() == 1 and "blocked-burst" in alert.inner_text()
    failed = alert.locator('.il-delivery[data-channel="webhook"]')
    assert failed.inner_text().startswith("webhook: failed") and failed.evaluate("e => getComputedStyle(e).color") == (
        "rgb(207, 34, 46)"
    )
    screenshot(page, "ui-alerts")
    alert.locator("a.il-alert-session").click()
    assert page.locator("li.il-turn").count() == expect.session_turns
    page.go_back()
    page.locator(f'tr[data-alert-id="{ALERT_ID}"] .il-alert-calls a').click()
    assert page.locator(".il-title .il-badge").inner_text() == "blocked"
