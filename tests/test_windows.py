"""Windows and tallies (interlock.windows): rolling and calendar totals equal a brute-force
recomputation over random call sequences."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.windows import Tally, Window, parse_duration, parse_window

START = datetime(2026, 12, 1, 23, 50, tzinfo=UTC).timestamp()  # 10 minutes before midnight UTC

# Gaps between calls from 0 to 20 minutes, amounts including zero and repeats.
calls = st.lists(
    st.tuples(st.floats(min_value=0, max_value=1200, allow_nan=False), st.floats(min_value=0, max_value=50)),
    min_size=1,
    max_size=60,
)
windows = st.sampled_from(
    [Window("rolling", 60.0), Window("rolling", 900.0), Window("hour"), Window("day"), Window("ever")]
)


def brute_force(window: Window, amounts: list[tuple[float, float]], now: float) -> list[float]:
    start = window.start(now)
    if window.kind == "rolling":
        return [amount for at, amount in amounts if at > start]
    return [amount for at, amount in amounts if at >= start]


@settings(max_examples=300, deadline=None)
@given(calls, windows, st.floats(min_value=0, max_value=3600))
def test_tally_equals_brute_force(sequence: list[tuple[float, float]], window: Window, later: float) -> None:
    tally = Tally(window)
    seen: list[tuple[float, float]] = []
    now = START
    for gap, amount in sequence:
        now += gap
        tally.add(now, amount)
        seen.append((now, amount))
        inside = brute_force(window, seen, now)
        assert tally.sum(now) == pytest.approx(sum(inside), abs=1e-9)
        assert tally.count(now) == len(inside)
        assert tally.max(now) == (max(inside) if inside else None)
    # And some time after the last call, with nothing added.
    now += later
    inside = brute_force(window, seen, now)
    assert tally.sum(now) == pytest.approx(sum(inside), abs=1e-9)
    assert tally.count(now) == len(inside)


def test_calendar_windows_reset_at_the_top_of_the_hour_and_at_midnight_utc() -> None:
    hour, day = Tally(Window("hour")), Tally(Window("day"))
    for tally in (hour, day):
        tally.add(START, 1.0)
        tally.add(START + 300, 2.0)  # 23:55
    assert hour.sum(START + 300) == 3.0 and day.sum(START + 300) == 3.0
    assert hour.resets_at(START + 300) == START + 600  # midnight is also the next hour
    after_midnight = START + 601
    assert hour.sum(after_midnight) == 0.0 and day.sum(after_midnight) == 0.0
    assert day.resets_at(after_midnight) == START + 600 + 86400


def test_rolling_window_resets_when_its_oldest_amount_leaves() -> None:
    tally = Tally(Window("rolling", 600.0))
    tally.add(START, 5.0)
    tally.add(START + 100, 1.0)
    assert tally.resets_at(START + 200) == START + 600
    assert tally.sum(START + 650) == 1.0
    assert tally.resets_at(START + 650) == START + 700


def test_ever_keeps_no_amounts() -> None:
    tally = Tally(Window("ever"))
    for second in range(1000):
        tally.add(START + second, 1.0)
    assert tally.sum(START + 10**7) == 1000.0 and tally.count(START + 10**7) == 1000
    assert tally.resets_at(START) is None
    assert not tally._amounts  # a session's total costs three numbers, not its calls


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", Window("rolling", 1800.0)),
        ("24h", Window("rolling", 86400.0)),
        ("1.5h", Window("rolling", 5400.0)),
        ("session", Window("ever")),
        ("DAY", Window("day")),
        ("call", Window("call")),
    ],
)
def test_parse_window(text: str, expected: Window) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "1w", "-1h", "0s", "hourly", "10"])
def test_parse_window_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="not a window"):
        parse_window(text)


def test_parse_duration_names_the_text() -> None:
    with pytest.raises(ValueError, match="'soon' is not a duration"):
        parse_duration("soon")
