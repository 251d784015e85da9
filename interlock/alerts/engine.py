"""Evaluates alert rules as calls end: no polling, no database, memory bounded.

`AlertEngine.feed(facts)` takes what one ended call contributes (`CallFacts`: its
metrics, its scope keys, its policy warnings) and returns the alerts it fires. Each rule
keeps one `Tally` (interlock.windows) per scope key (a session, a model, ...) of the
rule's metric, and per key an episode: the rule fires when its condition becomes true,
at most once until the condition has been seen false again, and never within the rule's
cool-down of its last alert for that key. An episode that starts within the cool-down
fires at the first call after the cool-down while it lasts. The condition is evaluated
at the calls of its key only. A key whose state is back to that of a new key (window
empty, no episode, cool-down over) is dropped, and at most `max_keys` keys are kept per
rule (the least recently used go first).

A policy event with action `warned` (a budget's warning) is an alert of its own, once
per (policy, limit, key) within the section's cool-down.

`restore(history, alerts, now)` starts the rules after a restart: the recorded calls are
fed with nothing fired, then each key takes its alerts as recorded (`RecordedAlert`), so
the engine goes on as if it had not stopped (the caller reads them: recorder.alert_history).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from interlock.alerts.expression import Condition
from interlock.config import AlertChannel, AlertRule, AlertsConfig
from interlock.windows import Tally, Window, parse_duration

logger = logging.getLogger(__name__)

MAX_KEYS = 10_000
MAX_CALL_IDS = 50  # an alert names at most this many of the calls that caused it (the last)
NO_KEY = "(none)"  # the scope key of calls that have no such value (no session, ...)


@dataclass(frozen=True, slots=True)
class PolicyWarning:
    """A policy event with action `warned`."""

    policy: str
    reason: str
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What one ended call contributes to the rules: each metric's amount (None: not
    known for this call, e.g. the cost of a model without a price, a judge probability
    of a call nobody judged), its scope values (None: the call has none) and warnings."""

    call_id: str
    at: float
    metrics: Mapping[str, float | None]
    scopes: Mapping[str, str | None]
    warnings: tuple[PolicyWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordedAlert:
    """An alert the `alerts` table holds: what a restart needs of it."""

    source: Literal["rule", "policy"]
    rule: str
    condition: str  # a policy warning's limit
    key: str
    fired_at: float


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert: which rule, over which scope key, with the value that made it true."""

    rule: str
    condition: str
    value: float | None
    window: str
    scope: str
    key: str
    fired_at: float
    call_ids: tuple[str, ...]
    message: str
    channels: tuple[AlertChannel, ...]
    unknown: int = 0  # calls in the window whose metric was not known (e.g. unpriced)
    source: Literal["rule", "policy"] = "rule"  # an alert rule, or a policy's warning


def inside(window: Window, at: float, now: float) -> bool:
    """Whether an amount added at `at` still counts at `now` (as `Tally` counts it)."""
    if window.kind == "rolling":
        return at > window.start(now)
    return at >= window.start(now)


def amount(condition: Condition, value: float | None) -> float | None:
    """What the rule's tally adds for one call: `count` adds 1 for a call whose metric
    is non-zero, the others the metric itself."""
    if value is None or condition.aggregate != "count":
        return value
    return 1.0 if value else 0.0


def window_value(condition: Condition, tally: Tally, now: float) -> float | None:
    if condition.aggregate in ("count", "sum"):
        return tally.sum(now)
    if condition.aggregate == "max":
        return tally.max(now)
    calls = tally.count(now)
    return tally.sum(now) / calls if calls else None


def format_value(condition: Condition, value: float | None) -> str:
    if value is None:
        return "-"
    if condition.percent:
        return f"{value * 100:.1f}%"
    if condition.metric == "cost_usd" and condition.aggregate != "count":
        return f"${value:.4f}"
    return f"{value:g}"


@dataclass(slots=True)
class _KeyState:
    tally: Tally
    unknown: Tally  # 1 per call whose metric was not known
    causes: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=MAX_CALL_IDS))
    active: bool = False  # the condition held at this key's last call
    active_since: float = 0.0  # when this episode began (its first call's time)
    fired: bool = False  # this episode has fired
    last_fired: float | None = None


class RuleState:
    """One rule's keys and their tallies and episodes."""

    def __init__(self, rule: AlertRule, max_keys: int = MAX_KEYS) -> None:
        self.rule = rule
        self._cooldown_s: float | None = None
        self.retarget(rule)
        self.window = rule.parsed_window
        self.max_keys = max_keys
        self.keys: OrderedDict[str, _KeyState] = OrderedDict()
        self._evicted_warned = False

    @property
    def identity(self) -> tuple[Any, ...]:
        """What a reload must keep equal for the running tallies to carry over."""
        rule = self.rule
        return (rule.name, rule.when, rule.window, rule.per, rule.least_calls)

    def cooldown_s(self, default_s: float) -> float:
        return self._cooldown_s if self._cooldown_s is not None else default_s

    def retarget(self, rule: AlertRule) -> None:
        """The same rule, reloaded: its channels or cool-down may have changed."""
        self.rule = rule
        self._cooldown_s = parse_duration(rule.cooldown) if rule.cooldown is not None else None

    def feed(self, facts: CallFacts, cooldown_s: float, channels: tuple[AlertChannel, ...]) -> Firing | None:
        rule, now = self.rule, facts.at
        condition = rule.when
        key = "overall" if rule.per == "overall" else facts.scopes.get(rule.per) or NO_KEY
        state = self.keys.get(key)
        if state is None:
            state = self.keys[key] = _KeyState(Tally(self.window), Tally(self.window))
        else:
            self.keys.move_to_end(key)
        added = amount(condition, facts.metrics.get(condition.metric))
        state.unknown.add(now, 1.0 if added is None else 0.0)
        if added is not None:
            state.tally.add(now, added)
            if added:
                state.causes.append((now, facts.call_id))
        value = window_value(condition, state.tally, now)
        holds = state.tally.count(now) >= rule.least_calls and condition.holds(value)
        firing = None
        if not holds:
            state.active = False
        else:
            if not state.active:
                state.active, state.active_since, state.fired = True, now, False
            if not state.fired and (state.last_fired is None or now - state.last_fired >= cooldown_s):
                state.fired, state.last_fired = True, now
                firing = self._firing(key, state, value, now, channels)
        self._forget(now, cooldown_s)
        return firing

    def restore(self, history: Iterable[CallFacts], fired: Mapping[str, float], now: float, cooldown_s: float) -> None:
        """Start from recorded calls (`history`, oldest first) and this rule's recorded
        alerts (`fired`: scope key -> when its last alert fired): the calls are fed with
        nothing fired, then each key takes its alerts as recorded, so an episode under
        way that had its alert does not fire again, and one that had none fires at its
        next call."""
        for facts in history:
            self.feed(facts, cooldown_s, ())
        for key, last in fired.items():
            if key not in self.keys and now - last < cooldown_s:  # only its cool-down to keep
                self.keys[key] = _KeyState(Tally(self.window), Tally(self.window))
        for key, state in self.keys.items():
            state.last_fired = fired.get(key)
            state.fired = state.active and state.last_fired is not None and state.last_fired >= state.active_since

    def _firing(
        self, key: str, state: _KeyState, value: float | None, now: float, channels: tuple[AlertChannel, ...]
    ) -> Firing:
        rule, condition = self.rule, self.rule.when
        call_ids = tuple(call_id for at, call_id in state.causes if inside(self.window, at, now))
        unknown = int(state.unknown.sum(now))
        where = "" if rule.per == "overall" else f" for {rule.per} {key}"
        message = f"{rule.name}: {condition.text()} ({format_value(condition, value)}, {self.window.describe()}{where})"
        if unknown:
            message += f"; {unknown} calls with {condition.metric} unknown not counted"
        return Firing(
            rule=rule.name,
            condition=condition.text(),
            value=value,
            window=rule.window,
            scope=rule.per,
            key=key,
            fired_at=now,
            call_ids=call_ids,
            message=message,
            channels=channels,
            unknown=unknown,
        )

    def _forget(self, now: float, cooldown_s: float) -> None:
        """Drop the least recently used keys that are as good as new, and any beyond `max_keys`."""
        while self.keys:
            oldest, state = next(iter(self.keys.items()))
            fresh = (
                not state.active
                and (state.last_fired is None or now - state.last_fired >= cooldown_s)
                and state.unknown.count(now) == 0
            )
            if len(self.keys) <= self.max_keys and not fresh:
                return
            if not fresh and not self._evicted_warned:
                self._evicted_warned = True
                logger.warning(
                    "Interlock alert rule %r: more than %d %s keys; the least recently used are forgotten",
                    self.rule.name,
                    self.max_keys,
                    self.rule.per,
                )
            del self.keys[oldest]


class WarningState:
    """When each (policy, limit, key) warning last became an alert."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self.last: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def restore(self, fired: Iterable[RecordedAlert], now: float, cooldown_s: float) -> None:
        """The policy warnings' recorded alerts still within the cool-down, oldest first."""
        for alert in sorted(fired, key=lambda alert: alert.fired_at):
            if alert.source == "policy" and now - alert.fired_at < cooldown_s:
                slot = (alert.rule, alert.condition, alert.key)
                self.last.pop(slot, None)
                self.last[slot] = alert.fired_at

    def feed(self, facts: CallFacts, cooldown_s: float, channels: tuple[AlertChannel, ...]) -> list[Firing]:
        firings = []
        for warning in facts.warnings:
            details = warning.details
            slot = (warning.policy, str(details.get("limit") or "warned"), str(details.get("key") or ""))
            last = self.last.get(slot)
            if last is not None and facts.at - last < cooldown_s:
                continue
            self.last.pop(slot, None)
            self.last[slot] = facts.at
            spent = details.get("spent")
            firings.append(
                Firing(
                    rule=warning.policy,
                    condition=str(details.get("limit") or "warned"),
                    value=float(spent) if isinstance(spent, int | float) else None,
                    window=str(details.get("window") or details.get("resets_at") or ""),
                    scope=str(details.get("scope") or ""),
                    key=str(details.get("key") or ""),
                    fired_at=facts.at,
                    call_ids=(facts.call_id,),
                    message=f"{warning.policy}: {warning.reason or 'warned'}",
                    channels=channels,
                    source="policy",
                )
            )
        while self.last and (len(self.last) > self.max_keys or facts.at - next(iter(self.last.values())) >= cooldown_s):
            self.last.popitem(last=False)
        return firings


class AlertEngine:
    """Every rule of an `alerts` section, and the policy warnings."""

    def __init__(self, config: AlertsConfig, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self.config = config
        self.cooldown_s = config.cooldown_s
        self.rules: dict[str, RuleState] = {}
        self.warnings = WarningState(max_keys)
        self.update(config)

    def update(self, config: AlertsConfig, restored: Mapping[tuple[Any, ...], RuleState] | None = None) -> None:
        """Take a reloaded section: a rule whose identity is unchanged keeps its state; a
        new one takes its state from `restored` (by identity) when it is there."""
        kept = {state.identity: state for state in self.rules.values()}
        self.config = config
        self.cooldown_s = config.cooldown_s
        self.rules = {}
        for rule in config.rules:
            state = RuleState(rule, self.max_keys)
            old = kept.get(state.identity) or (restored or {}).get(state.identity)
            if old is not None:
                old.retarget(rule)
                state = old
            self.rules[rule.name] = state

    def new_rules(self, config: AlertsConfig) -> list[RuleState]:
        """Fresh states for the rules of `config` that `update` would not keep."""
        kept = {state.identity for state in list(self.rules.values())}
        fresh = [RuleState(rule, self.max_keys) for rule in config.rules]
        return [state for state in fresh if state.identity not in kept]

    def restore(
        self,
        history: Sequence[CallFacts],
        alerts: Iterable[RecordedAlert],
        now: float,
        rules: Iterable[RuleState] | None = None,
        section_cooldown_s: float | None = None,
    ) -> None:
        """Start `rules` (default: all of them, and the policy warnings' cool-downs) from
        recorded calls, oldest first, and the recorded alerts; `section_cooldown_s` is the
        default cool-down of the section the rules come from (default: this one's)."""
        default_s = self.cooldown_s if section_cooldown_s is None else section_cooldown_s
        last: dict[tuple[str, str], float] = {}
        alerts = list(alerts)
        for alert in alerts:
            if alert.source == "rule":
                slot = (alert.rule, alert.key)
                last[slot] = max(alert.fired_at, last.get(slot, alert.fired_at))
        for state in self.rules.values() if rules is None else rules:
            fired = {key: at for (rule, key), at in last.items() if rule == state.rule.name}
            state.restore(history, fired, now, state.cooldown_s(default_s))
        if rules is None:
            self.warnings.restore(alerts, now, self.cooldown_s)

    def _channels(self, rule: AlertRule | None) -> tuple[AlertChannel, ...]:
        configured = self.config.channels.configured()
        if rule is None or rule.channels is None:
            return tuple(configured)
        return tuple(name for name in configured if name in rule.channels)

    def feed(self, facts: CallFacts) -> list[Firing]:
        firings = []
        for state in self.rules.values():
            firing = state.feed(facts, state.cooldown_s(self.cooldown_s), self._channels(state.rule))
            if firing is not None:
                firings.append(firing)
        if self.config.policy_warnings and facts.warnings:
            firings += self.warnings.feed(facts, self.cooldown_s, self._channels(None))
        return firings
