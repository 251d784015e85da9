"""Time windows over a stream of amounts: what budgets and alert rules add up.

A `Window` is one of: a single call (`call`), everything since the first amount
(`ever`, e.g. a session's whole life), a calendar period in UTC (`hour`, `day`: the
total resets at the top of the hour, at midnight UTC), or a rolling duration (`30m`,
`24h`: the amounts of the last 30 minutes). `parse_window("1h")` reads the config's
spelling. A `Tally` keeps one window's amounts for one key (a session, a model, ...):
its `sum`, `count` and `max` are exact, amortised O(1) per amount; only a rolling
window holds its amounts (those still inside it), the others three numbers.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Literal

WindowKind = Literal["call", "ever", "hour", "day", "rolling"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in `90s`, `30m`, `1.5h`, `7d`; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: a number and s, m, h or d (e.g. 30m, 24h)")
    seconds = float(match[1]) * _UNIT_S[match[2]]
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be positive")
    return seconds


@dataclass(frozen=True, slots=True)
class Window:
    kind: WindowKind
    seconds: float = 0.0  # rolling windows only

    def start(self, now: float) -> float:
        """The earliest time an amount still counts at `now` (-inf for `ever`)."""
        if self.kind == "rolling":
            return now - self.seconds
        if self.kind in ("hour", "day"):  # Unix time has no leap seconds: UTC periods are multiples
            period = 3600.0 if self.kind == "hour" else 86400.0
            return now - now % period
        if self.kind == "call":
            return now
        return float("-inf")

    def resets_at(self, now: float, oldest: float | None = None) -> float | None:
        """When the total next goes down: the next hour or midnight UTC for a calendar
        window, when the `oldest` amount leaves a rolling one; None for `ever`."""
        if self.kind == "hour":
            return self.start(now) + 3600.0
        if self.kind == "day":
            return self.start(now) + 86400.0
        if self.kind == "rolling":
            return (oldest if oldest is not None else now) + self.seconds
        return None

    def describe(self) -> str:
        if self.kind == "rolling":
            return f"rolling {describe_duration(self.seconds)}"
        return {"call": "per call", "ever": "in total", "hour": "this hour (UTC)", "day": "today (UTC)"}[self.kind]


def describe_duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_window(text: str) -> Window:
    """`call`, `ever` (also `session`: a session's whole life), `hour`, `day`, or a
    rolling duration (`30m`, `24h`)."""
    word = text.strip().lower()
    if word in ("call", "ever", "hour", "day"):
        return Window(word)  # type: ignore[arg-type]
    if word == "session":
        return Window("ever")
    try:
        return Window("rolling", parse_duration(word))
    except ValueError:
        raise ValueError(f"{text!r} is not a window: call, session, ever, hour, day or a duration (30m, 24h)") from None


class Tally:
    """One window's amounts for one key. Amounts must be added in time order (a call's
    end time); an amount added out of order counts from when it is added."""

    __slots__ = ("_amounts", "_count", "_last", "_max", "_period", "_sum", "_top", "window")

    def __init__(self, window: Window) -> None:
        self.window = window
        self._amounts: deque[tuple[float, float]] = deque()  # (time, amount) inside a rolling window
        self._max: deque[tuple[float, float]] = deque()  # decreasing amounts: the window's max in front
        self._sum = 0.0
        self._count = 0  # not rolling: the amounts added in the period
        self._top: float | None = None  # not rolling: their max
        self._period = float("-inf")  # the calendar period the totals are for
        self._last = float("-inf")

    def add(self, at: float, amount: float) -> None:
        at = max(at, self._last)
        self._last = at
        self._expire(at)
        self._sum += amount
        if self.window.kind != "rolling":
            self._count += 1
            self._top = amount if self._top is None else max(self._top, amount)
            return
        self._amounts.append((at, amount))
        while self._max and self._max[-1][1] <= amount:
            self._max.pop()
        self._max.append((at, amount))

    def _expire(self, now: float) -> None:
        kind = self.window.kind
        if kind == "ever":
            return
        if kind in ("hour", "day", "call"):
            period = self.window.start(now) if kind != "call" else now
            if period != self._period:
                self._period = period
                self._sum, self._count, self._top = 0.0, 0, None
            return
        start = self.window.start(now)
        while self._amounts and self._amounts[0][0] <= start:
            _, amount = self._amounts.popleft()
            self._sum -= amount
        while self._max and self._max[0][0] <= start:
            self._max.popleft()
        if not self._amounts:
            self._sum = 0.0  # no float drift left over from what expired

    def sum(self, now: float) -> float:
        self._expire(max(now, self._last))
        return self._sum

    def count(self, now: float) -> int:
        self._expire(max(now, self._last))
        return len(self._amounts) if self.window.kind == "rolling" else self._count

    def max(self, now: float) -> float | None:
        self._expire(max(now, self._last))
        if self.window.kind != "rolling":
            return self._top
        return self._max[0][1] if self._max else None

    def oldest(self, now: float) -> float | None:
        """When the oldest amount a rolling window still counts was added."""
        self._expire(max(now, self._last))
        return self._amounts[0][0] if self._amounts else None

    def resets_at(self, now: float) -> float | None:
        return self.window.resets_at(now, self.oldest(now))
