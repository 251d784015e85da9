"""Where an alert goes besides the `alerts` table: the terminal, a webhook, the desktop.

`Alert` is what every channel gets: the engine's `Firing` with its id and its JSON form
(`payload`, the webhook's body, built by the addon as the `alerts` row is). The terminal line (`terminal_line`) is printed where it
fires: a rich line, cheap and rare. The webhook and the desktop notification each have a
`BackgroundChannel`: one worker thread, a bounded queue (`put` never blocks; beyond
`queue_size` an alert is dropped, counted and reported), and a callback `on_done(alert_id,
channel, status)` with what became of each alert: `sent`, `sent after N attempts`,
`failed: ...`, `dropped: ...`, `unavailable: ...`. A slow or unreachable receiver only
ever holds that thread.

The webhook POSTs the payload as JSON, each alert tried `1 + retries` times, `backoff_s`
apart and twice as long each time; a 4xx answer other than 408 and 429 is not retried.
Its URL may hold a token (Slack's and Discord's do): statuses and logs name its host only.
The desktop channel runs `notify-send` (Linux) or `osascript` (macOS), the alert's text
passed as arguments, never through a shell.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from rich.text import Text

from interlock.alerts.engine import Firing
from interlock.config import AlertChannel, WebhookConfig

logger = logging.getLogger(__name__)

OnDone = Callable[[str, AlertChannel, str], None]
RETRYABLE_4XX = frozenset({408, 429})
DESKTOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as the channels get it: `payload` is its JSON form (the webhook's body)."""

    alert_id: str
    firing: Firing
    payload: Mapping[str, Any]


def terminal_line(alert: Alert) -> Text:
    """The highlighted line an alert prints: time, ALERT, the message, its calls."""
    firing = alert.firing
    line = Text()
    line.append(datetime.fromtimestamp(firing.fired_at).strftime("%H:%M:%S"), style="dim")
    line.append(" ALERT ", style="bold white on red")
    line.append(f" {firing.message}", style="bold red")
    if firing.call_ids:
        calls = len(firing.call_ids)
        line.append(f"  {calls} call{'s' if calls != 1 else ''}, latest {firing.call_ids[-1]}", style="dim")
    return line


class BackgroundChannel(ABC):
    """A channel that delivers alerts one at a time in a thread of its own."""

    name: AlertChannel

    def __init__(self, on_done: OnDone, queue_size: int) -> None:
        self.on_done = on_done
        self.queue_size = queue_size
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: deque[Alert] = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"interlock-alerts-{self.name}", daemon=True)
        self._thread.start()

    def put(self, alert: Alert) -> None:
        with self._wake:
            if self._closing or len(self._queue) >= self.queue_size:
                why = "the proxy is stopping" if self._closing else f"{self.queue_size} alerts already waiting"
                self._report(alert, f"dropped: {why}")
                return
            self._queue.append(alert)
            self._wake.notify()

    def close(self, timeout_s: float) -> None:
        """Stop taking alerts; deliver what waits for at most `timeout_s`, drop the rest."""
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        self._thread.join(timeout_s)
        with self._wake:
            left = list(self._queue)
            self._queue.clear()
        for alert in left:
            self._report(alert, "dropped: the proxy stopped before it was sent")

    @abstractmethod
    def deliver(self, alert: Alert) -> str:
        """Send one alert; its status."""

    def pause(self, seconds: float) -> bool:
        """Wait between attempts; False when the channel is closing (give up)."""
        with self._wake:
            return not self._wake.wait_for(lambda: self._closing, seconds)

    def _report(self, alert: Alert, status: str) -> None:
        word = status.split(":", 1)[0].split(" ", 1)[0]
        if word == "sent":
            self.sent += 1
        elif word == "dropped":
            self.dropped += 1
        else:
            self.failed += 1
        if word != "sent":
            logger.error(
                "Interlock alert %s (%s) not sent by %s: %s", alert.alert_id, alert.firing.rule, self.name, status
            )
        try:
            self.on_done(alert.alert_id, self.name, status)
        except Exception:
            logger.exception("Interlock: recording the %s status of alert %s failed", self.name, alert.alert_id)

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    return
                alert = self._queue.popleft()
            try:
                status = self.deliver(alert)
            except Exception as error:  # a channel's bug must not stop the others' alerts
                logger.exception("Interlock: the %s channel failed on alert %s", self.name, alert.alert_id)
                status = f"failed: {type(error).__name__}"
            self._report(alert, status)


class WebhookChannel(BackgroundChannel):
    name: AlertChannel = "webhook"

    def __init__(self, config: WebhookConfig, on_done: OnDone) -> None:
        self.config = config
        self.host = urlsplit(config.url).netloc.rpartition("@")[2]
        super().__init__(on_done, config.queue_size)

    def deliver(self, alert: Alert) -> str:
        config = self.config
        body = json.dumps(alert.payload).encode()
        headers = {"content-type": "application/json", "user-agent": "interlock-alerts", **config.headers}
        delay = config.backoff_s
        why = ""
        for attempt in range(1, config.retries + 2):
            if attempt > 1:
                if not self.pause(delay):
                    return f"failed: the proxy stopped after {attempt - 1} attempts ({why})"
                delay *= 2
            request = urllib.request.Request(config.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
                    response.read(65536)
                return "sent" if attempt == 1 else f"sent after {attempt} attempts"
            except urllib.error.HTTPError as error:
                why = f"{self.host} answered {error.code}"
                if 400 <= error.code < 500 and error.code not in RETRYABLE_4XX:
                    return f"failed: {why} (not retried)"
            except (urllib.error.URLError, OSError, ValueError) as error:
                reason = error.reason if isinstance(error, urllib.error.URLError) else error
                why = f"{self.host}: {_without(str(reason), config.url) or type(reason).__name__}"
        return f"failed: {why} after {config.retries + 1} attempts"


def _without(text: str, url: str) -> str:
    """An error's text without the webhook's URL (which may hold a token)."""
    return text.replace(url, "<webhook url>")


def desktop_command(title: str, body: str) -> list[str] | None:
    """The command that shows a desktop notification here; None when there is none."""
    if sys.platform == "darwin" and shutil.which("osascript"):
        script = ["on run argv", "display notification (item 2 of argv) with title (item 1 of argv)", "end run"]
        return ["osascript", *(part for line in script for part in ("-e", line)), title, body]
    notify_send = shutil.which("notify-send")
    if notify_send:
        return [notify_send, "--app-name=Interlock", title, body]
    return None


class DesktopChannel(BackgroundChannel):
    name: AlertChannel = "desktop"

    def __init__(self, on_done: OnDone, queue_size: int = 20) -> None:
        super().__init__(on_done, queue_size)

    def deliver(self, alert: Alert) -> str:
        command = desktop_command(f"Interlock: {alert.firing.rule}", alert.firing.message)
        if command is None:
            return "unavailable: neither notify-send nor osascript is on PATH"
        try:
            done = subprocess.run(command, capture_output=True, timeout=DESKTOP_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"failed: {type(error).__name__}"
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()
            return f"failed: {command[0].rsplit('/', 1)[-1]} exited {done.returncode}" + (
                f" ({detail[-1][:200]})" if detail else ""
            )
        return "sent"
