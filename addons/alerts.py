"""Runs the alert rules as calls end and sends the alerts they fire (docs/alerts.md).

`interlock_call_ended`: what the call contributes (`recorder.call_facts`) goes to the
`AlertEngine` of the config in force; a live reload hands it the new `alerts` section,
and the rules it keeps keep their running tallies. At start-up (`running`) the rules
start from the calls and alerts recorded inside their windows (recorder.alert_history),
read in a thread of their own while the calls that end meanwhile wait in a backlog; the
rules a reload adds start the same way, in the reload's thread before it is swapped in:
a restart neither forgets a tally nor repeats an episode's alert. Each alert that fires gets a row in
`alerts` (through the recorder's `SideWriter`, off the event loop), a highlighted
terminal line, and is queued for the webhook and the desktop, whose threads report what
became of it: the row is then replaced with each channel's status. Nothing here waits
for a receiver, a process or the disk. A call that no rule looks at and that carries no
policy warning costs an identity check and a look at its events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
import uuid
from typing import Any

from mitmproxy import http
from rich.console import Console

from addons.config_watch import ConfigWatch
from addons.live_config import Loaded
from addons.recording import Recording
from interlock.alerts.channels import (
    Alert,
    BackgroundChannel,
    DesktopChannel,
    WebhookChannel,
    desktop_command,
    terminal_line,
)
from interlock.alerts.engine import AlertEngine, CallFacts, Firing, RuleState
from interlock.config import AlertChannel, AlertsConfig
from recorder.alert_history import history_since, recorded
from recorder.call_facts import WARNED, call_facts
from recorder.models import CallRecord
from recorder.rows import iso

logger = logging.getLogger(__name__)
TABLE = "alerts"
PENDING = "pending"
SHUTDOWN_WAIT_S = 3.0  # at most this long for a webhook still trying, when the proxy stops


def alert_payload(alert_id: str, firing: Firing) -> dict[str, Any]:
    """An alert as JSON: the webhook's body; the `alerts` row has the same keys."""
    return {
        "alert_id": alert_id,
        "fired_at": iso(firing.fired_at),
        "source": firing.source,
        "rule": firing.rule,
        "condition": firing.condition,
        "value": firing.value,
        "time_window": firing.window,
        "scope": firing.scope,
        "scope_key": firing.key,
        "message": firing.message,
        "call_ids": list(firing.call_ids),
        "unknown_calls": firing.unknown,
    }


def alert_row(
    payload: dict[str, Any], channels: tuple[AlertChannel, ...], deliveries: dict[str, str]
) -> dict[str, Any]:
    return {
        **payload,
        "call_ids": json.dumps(payload["call_ids"]),
        "channels": json.dumps(list(channels)),
        "deliveries": json.dumps(deliveries),
    }


class Alerts:
    def __init__(self, config: ConfigWatch, recording: Recording) -> None:
        self.config = config
        self.recording = recording
        self.engine: AlertEngine | None = None
        self.webhook: WebhookChannel | None = None
        self.desktop: DesktopChannel | None = None
        self._loaded: Loaded | None = None
        self._console = Console(highlight=False, soft_wrap=True)
        self._lock = threading.Lock()  # the channels' threads report through `_delivered`
        self._waiting: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}  # alert_id -> (row, deliveries)
        self._restored: dict[tuple[Any, ...], RuleState] = {}  # a reload's new rules, restored
        self._backlog: list[CallFacts] | None = None  # calls ended while the rules are restored

    def running(self) -> None:
        """The rules start from the recorded calls and alerts (`_start_restore`); a
        reload's new rules start the same way, in the reload's thread (`_prepare`)."""
        loaded = self.config.current
        if loaded is not None:
            self._take(loaded)
            self._start_restore()
        if self.config.live is not None:
            self.config.live.before_swap.append(self._prepare)

    def _start_restore(self) -> None:
        """Read the history in a thread; the calls that end meanwhile wait in a backlog
        and are fed once it is done (`_caught_up`, on the event loop)."""
        engine, writer = self.engine, self.recording.writer
        if engine is None or writer is None or not (engine.rules or engine.config.policy_warnings):
            return
        self._backlog = []
        loop = asyncio.get_running_loop()

        def restore() -> None:
            try:
                self._restore(engine, None, engine.config, writer.db_path)
            finally:
                loop.call_soon_threadsafe(self._caught_up)

        threading.Thread(target=restore, name="interlock-alerts-restore", daemon=True).start()

    def _caught_up(self) -> None:
        """The restore is done (on the event loop): the calls that ended meanwhile, fed."""
        backlog, self._backlog = self._backlog or [], None
        if self.engine is not None:
            for facts in backlog:
                for firing in self.engine.feed(facts):
                    self._send(firing)

    def _prepare(self, loaded: Loaded) -> None:
        """A reloaded config, before it is in force: the rules it adds, restored."""
        engine, writer = self.engine, self.recording.writer
        if engine is None or writer is None:
            return
        section = loaded.config.alerts
        states = engine.new_rules(section)
        if states:
            self._restore(engine, states, section, writer.db_path)
        with self._lock:
            self._restored = {state.identity: state for state in states}

    @staticmethod
    def _restore(engine: AlertEngine, states: list[RuleState] | None, section: AlertsConfig, db_path: str) -> None:
        """`states` (None: all the engine's rules, and its policy warnings) from the
        calls and alerts recorded in `db_path`; on a read error, as they are."""
        started, now = time.monotonic(), time.time()
        rules = list(engine.rules.values()) if states is None else states
        since = history_since((state.window for state in rules), now)
        cooldown_s = max([section.cooldown_s, *(state.cooldown_s(section.cooldown_s) for state in rules)])
        try:
            history, alerts = recorded(db_path, since, min(since or now, now - cooldown_s))
        except sqlite3.Error as error:
            logger.error("Interlock alerts: tallies not restored from %s: %s", db_path, error)
            return
        engine.restore(history, alerts, now, rules=states, section_cooldown_s=section.cooldown_s)
        if rules:
            logger.info(
                "Interlock alerts: %d rules restored from %s (%d calls, %d alerts, %.2f s)",
                len(rules),
                db_path,
                len(history),
                len(alerts),
                time.monotonic() - started,
            )

    def _take(self, loaded: Loaded) -> None:
        """The config in force: the rules to the engine, the channels (re)started."""
        self._loaded = loaded
        section: AlertsConfig = loaded.config.alerts
        if self.engine is None:
            self.engine = AlertEngine(section)
        else:
            with self._lock:
                restored, self._restored = self._restored, {}
            self.engine.update(section, restored)
        webhook = section.channels.webhook
        if (self.webhook.config if self.webhook is not None else None) != webhook:
            if self.webhook is not None:  # its waiting alerts are reported dropped
                self.webhook.close(timeout_s=0)
            self.webhook = WebhookChannel(webhook, self._delivered) if webhook is not None else None
        if section.channels.desktop and self.desktop is None:
            if desktop_command("Interlock", "") is None:
                logger.warning(
                    "Interlock alerts.channels.desktop: neither notify-send nor osascript is on PATH;"
                    " desktop alerts will be recorded as unavailable"
                )
            self.desktop = DesktopChannel(self._delivered)
        elif not section.channels.desktop and self.desktop is not None:
            self.desktop.close(timeout_s=0)
            self.desktop = None

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        loaded = self.config.current
        if loaded is None:
            return
        if loaded is not self._loaded:
            self._take(loaded)
        engine = self.engine
        if engine is None:
            return
        warned = engine.config.policy_warnings and any(event.action == WARNED for event in record.events)
        if not engine.rules and not warned:
            return
        if self._backlog is not None:  # the rules are still being restored
            self._backlog.append(call_facts(record))
            return
        for firing in engine.feed(call_facts(record)):
            self._send(firing)

    def _background(self, channel: str) -> BackgroundChannel | None:
        return self.webhook if channel == "webhook" else self.desktop if channel == "desktop" else None

    def _send(self, firing: Firing) -> None:
        alert_id = uuid.uuid4().hex
        payload = alert_payload(alert_id, firing)
        alert = Alert(alert_id, firing, payload)
        deliveries: dict[str, str] = {channel: PENDING for channel in firing.channels}
        if "terminal" in deliveries:
            self._console.print(terminal_line(alert))
            deliveries["terminal"] = "sent"
        background = [channel for name in deliveries if (channel := self._background(name)) is not None]
        row = alert_row(payload, firing.channels, deliveries)
        if background:
            with self._lock:
                self._waiting[alert_id] = (row, deliveries)
        self._write(row)
        for channel in background:
            channel.put(alert)

    def _delivered(self, alert_id: str, channel: AlertChannel, status: str) -> None:
        """A channel's word on an alert (from its thread): the row replaced with it."""
        with self._lock:
            waiting = self._waiting.get(alert_id)
            if waiting is None:
                return
            row, deliveries = waiting
            deliveries[channel] = status
            if PENDING not in deliveries.values():
                del self._waiting[alert_id]
            row = {**row, "deliveries": json.dumps(deliveries)}
        self._write(row)

    def _write(self, row: dict[str, Any]) -> None:
        writer = self.recording.side_writer()
        if writer is not None:
            writer.put(TABLE, row, key=row["alert_id"])

    def done(self) -> None:
        """Before the recorder's `done` (bundle order): the channels' last words reach the table."""
        if self._backlog:
            logger.warning(
                "Interlock alerts: the proxy stopped while the rules were being restored: %d calls not evaluated",
                len(self._backlog),
            )
        for channel in (self.webhook, self.desktop):
            if channel is not None:
                channel.close(timeout_s=SHUTDOWN_WAIT_S)
        self.webhook = self.desktop = None
        with self._lock:  # still being sent when the wait ran out: its fate is not known
            waiting, self._waiting = self._waiting, {}
        for row, deliveries in waiting.values():
            unsure = {
                name: "unknown: the proxy stopped while sending it" for name, s in deliveries.items() if s == PENDING
            }
            self._write({**row, "deliveries": json.dumps({**deliveries, **unsure})})
