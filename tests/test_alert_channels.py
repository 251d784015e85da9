"""The alert channels (interlock.alerts.channels) against real loopback receivers and real
processes: the webhook's retries, backoff, give-up and bounded queue, what each reports,
and the desktop notification's command."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from webhook_receiver import WebhookReceiver

from interlock.alerts.channels import Alert, DesktopChannel, WebhookChannel, terminal_line
from interlock.alerts.engine import Firing
from interlock.config import WebhookConfig

WAIT_S = 10.0  # a hang guard


def alert(alert_id: str = "a1", message: str = "spend: sum(cost_usd) > 5 ($5.2000, rolling 1h)") -> Alert:
    firing = Firing(
        rule="spend",
        condition="sum(cost_usd) > 5",
        value=5.2,
        window="1h",
        scope="overall",
        key="overall",
        fired_at=time.time(),
        call_ids=("c1", "c2"),
        message=message,
        channels=("webhook",),
    )
    return Alert(alert_id, firing, {"alert_id": alert_id, "message": message, "call_ids": ["c1", "c2"]})


class Statuses:
    """What a channel reported, per alert."""

    def __init__(self) -> None:
        self.by_alert: dict[str, str] = {}
        self._changed = threading.Condition()

    def __call__(self, alert_id: str, channel: str, status: str) -> None:
        with self._changed:
            self.by_alert[alert_id] = f"{channel} {status}"
            self._changed.notify_all()

    def wait(self, count: int) -> dict[str, str]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.by_alert) >= count, WAIT_S), self.by_alert
            return dict(self.by_alert)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def webhook(url: str, **options: object) -> WebhookConfig:
    return WebhookConfig.model_validate({"url": url, "backoff_s": 0.05, **options})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_webhook_posts_the_payload_as_json_with_the_configured_headers(receiver: WebhookReceiver) -> None:
    statuses = Statuses()
    channel = WebhookChannel(webhook(receiver.url, headers={"x-token": "t0ken"}), statuses)
    channel.put(alert())
    assert statuses.wait(1) == {"a1": "webhook sent"}
    (post,) = receiver.wait_for_posts(1)
    assert post["body"] == {"alert_id": "a1", "message": alert().firing.message, "call_ids": ["c1", "c2"]}
    assert post["headers"]["x-token"] == "t0ken" and post["headers"]["content-type"] == "application/json"
    channel.close(1)
    assert (channel.sent, channel.failed, channel.dropped) == (1, 0, 0)


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(receiver: WebhookReceiver) -> None:
    receiver.statuses = [500, 503, 429]
    statuses = Statuses()
    channel = WebhookChannel(webhook(receiver.url, retries=3, backoff_s=0.1), statuses)
    started = time.monotonic()
    channel.put(alert())
    assert statuses.wait(1) == {"a1": "webhook sent after 4 attempts"}
    assert time.monotonic() - started >= 0.1 + 0.2 + 0.4  # waits double each time
    assert receiver.attempts == 4
    channel.close(1)


def test_a_client_error_is_not_retried(receiver: WebhookReceiver) -> None:
    receiver.statuses = [404]
    statuses = Statuses()
    channel = WebhookChannel(webhook(receiver.url, retries=3), statuses)
    channel.put(alert())
    assert statuses.wait(1) == {"a1": f"webhook failed: 127.0.0.1:{receiver.port} answered 404 (not retried)"}
    assert receiver.attempts == 1 and channel.failed == 1
    channel.close(1)


def test_an_unreachable_receiver_fails_after_its_attempts_naming_the_host_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    statuses = Statuses()
    url = f"http://127.0.0.1:{port}/services/T000/B000/secret-token"
    channel = WebhookChannel(webhook(url, retries=2), statuses)
    channel.put(alert())
    status = statuses.wait(1)["a1"]
    assert status.startswith(f"webhook failed: 127.0.0.1:{port}: ") and status.endswith("after 3 attempts")
    assert "secret-token" not in status and "secret-token" not in caplog.text
    assert "not sent by webhook" in caplog.text
    channel.close(1)


def test_beyond_its_queue_an_alert_is_dropped_and_said_so() -> None:
    with WebhookReceiver(delay_s=0.5) as slow:
        statuses = Statuses()
        channel = WebhookChannel(webhook(slow.url, queue_size=2), statuses)
        channel.put(alert("a0"))
        slow.wait_for_arrivals(1)  # being sent
        for n in range(1, 5):  # two waiting, two dropped
            channel.put(alert(f"a{n}"))
        reported = statuses.wait(5)
        assert reported == {
            "a0": "webhook sent",
            "a1": "webhook sent",
            "a2": "webhook sent",
            "a3": "webhook dropped: 2 alerts already waiting",
            "a4": "webhook dropped: 2 alerts already waiting",
        }
        assert (channel.sent, channel.dropped) == (3, 2)
        channel.close(1)


def test_closing_stops_the_retries_and_tries_what_waits_once() -> None:
    statuses = Statuses()
    channel = WebhookChannel(webhook(f"http://127.0.0.1:{free_port()}/", retries=5, backoff_s=30), statuses)
    channel.put(alert("trying"))
    channel.put(alert("waiting"))
    time.sleep(0.2)  # the first attempt failed; the channel waits 30 s before the next
    started = time.monotonic()
    channel.close(WAIT_S)
    assert time.monotonic() - started < 5  # no 30 s wait
    reported = statuses.wait(2)
    assert reported["trying"].startswith("webhook failed: the proxy stopped after 1 attempts")
    assert reported["waiting"].startswith("webhook failed: the proxy stopped after 1 attempts")
    channel.put(alert("late"))
    assert statuses.wait(3)["late"] == "webhook dropped: the proxy is stopping"


def test_what_a_slow_receiver_leaves_waiting_at_close_is_dropped() -> None:
    with WebhookReceiver(delay_s=2) as slow:
        statuses = Statuses()
        channel = WebhookChannel(webhook(slow.url), statuses)
        channel.put(alert("sending"))
        slow.wait_for_arrivals(1)
        channel.put(alert("waiting"))
        channel.close(0.2)
        assert statuses.wait(1) == {"waiting": "webhook dropped: the proxy stopped before it was sent"}
        assert statuses.wait(2)["sending"] == "webhook sent"  # the one under way finishes


def notify_send(directory: Path, exit_code: int = 0) -> Path:
    """A `notify-send` that writes its arguments, one per line, beside itself."""
    script = directory / "notify-send"
    script.write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "{directory}/args"\n'
        f"[ {exit_code} = 0 ] || echo 'no session bus' >&2\nexit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_desktop_notification_passes_the_text_as_arguments_not_through_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify_send(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    statuses = Statuses()
    channel = DesktopChannel(statuses)
    message = f"spend: $(touch {tmp_path}/pwned) `id` over"
    channel.put(alert(message=message))
    assert statuses.wait(1) == {"a1": "desktop sent"}
    assert (tmp_path / "args").read_text().splitlines() == ["--app-name=Interlock", "Interlock: spend", message]
    assert not (tmp_path / "pwned").exists()
    channel.close(1)


def test_a_desktop_without_a_notifier_says_unavailable_and_a_failing_one_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    statuses = Statuses()
    channel = DesktopChannel(statuses)
    channel.put(alert("none"))
    assert statuses.wait(1)["none"] == "desktop unavailable: neither notify-send nor osascript is on PATH"
    notify_send(tmp_path, exit_code=1)
    channel.put(alert("broken"))
    assert statuses.wait(2)["broken"] == "desktop failed: notify-send exited 1 (no session bus)"
    channel.close(1)


def test_the_terminal_line_names_the_alert_and_its_latest_call() -> None:
    line = terminal_line(alert())
    assert " ALERT " in line.plain and alert().firing.message in line.plain
    assert line.plain.endswith("2 calls, latest c2")
    assert any("on red" in str(span.style) for span in line.spans)
