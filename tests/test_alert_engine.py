"""The alert engine (interlock.alerts.engine): over random call streams its alerts equal
a brute-force recomputation of the documented semantics (the window's value from every
call in it, episodes as runs of calls where the condition holds, the cool-down from the
previous alert of the key); reloads keep the tallies of unchanged rules; warnings of
policies become alerts once per cool-down; idle keys are forgotten."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.alerts.engine import MAX_CALL_IDS, AlertEngine, CallFacts, PolicyWarning, RecordedAlert, inside
from interlock.alerts.expression import Operator
from interlock.config import AlertRule, AlertsConfig
from interlock.windows import parse_duration, parse_window

START = 1_796_169_000.0  # 2026-12-01 23:50 UTC: streams cross the hour and the day


@dataclass(frozen=True)
class Call:
    call_id: str
    at: float
    session: str
    value: float | None  # the rule's metric for this call


def facts(call: Call, metric: str = "errors", warnings: tuple[PolicyWarning, ...] = ()) -> CallFacts:
    return CallFacts(call.call_id, call.at, {metric: call.value}, {"session": call.session}, warnings)


def engine_for(rule: dict[str, Any], cooldown: str = "15m", **section: Any) -> AlertEngine:
    return AlertEngine(AlertsConfig.model_validate({"cooldown": cooldown, "rules": [rule], **section}))


def brute_force(rule: AlertRule, cooldown_s: float, calls: list[Call]) -> list[tuple[int, float | None, list[str]]]:
    """(index of the call that fired, value, call ids) for every alert, recomputed from scratch."""
    window, condition = parse_window(rule.window), rule.when
    holds: list[bool] = []
    values: list[float | None] = []
    fired: list[tuple[int, float | None, list[str]]] = []
    for i, call in enumerate(calls):
        same = [j for j in range(i + 1) if calls[j].session == call.session]
        if window.kind == "call":
            members = [j for j in same if calls[j].at == call.at]
        else:
            members = [j for j in same if inside(window, calls[j].at, call.at)]
        known: list[float] = [v for j in members if (v := calls[j].value) is not None]
        amounts: list[float] = [1.0 if v else 0.0 for v in known] if condition.aggregate == "count" else known
        value: float | None
        if condition.aggregate in ("count", "sum"):
            value = sum(amounts)
        elif condition.aggregate == "max":
            value = max(amounts) if amounts else None
        else:
            value = sum(amounts) / len(amounts) if amounts else None
        holds.append(len(amounts) >= rule.least_calls and condition.holds(value))
        values.append(value)
        if not holds[i]:
            continue
        start = i  # the episode: the run of this key's calls where the condition held
        for j in reversed(same[:-1]):
            if not holds[j]:
                break
            start = j
        earlier = [k for k, _, _ in fired if calls[k].session == call.session]
        if any(k >= start for k in earlier):
            continue
        if earlier and call.at - calls[earlier[-1]].at < cooldown_s:
            continue
        causes = [calls[j].call_id for j in members if calls[j].value]
        fired.append((i, value, causes[-MAX_CALL_IDS:]))
    return fired


gaps = st.sampled_from([0.0, 0.5, 1.0, 5.0, 20.0, 60.0, 400.0, 1800.0])
streams = st.lists(
    st.tuples(gaps, st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.integers(0, 4).map(float))),
    min_size=1,
    max_size=80,
)
rules = st.fixed_dictionaries(
    {
        "aggregate": st.sampled_from(["count", "sum", "avg", "max", "rate"]),
        "op": st.sampled_from(get_args(Operator)),
        "threshold": st.sampled_from([0, 0.5, 1, 2, 3, 5, 8]),
        "window": st.sampled_from(["call", "session", "hour", "day", "10s", "1m", "30m"]),
        "cooldown": st.sampled_from(["1s", "30s", "10m", "1h"]),
        "min_calls": st.one_of(st.none(), st.integers(1, 4)),
    }
)


def rule_of(spec: Any) -> dict[str, Any]:
    """The session rule over `errors` a drawn `rules` spec describes."""
    return {
        "name": "r",
        "when": f"{spec['aggregate']}(errors) {spec['op']} {spec['threshold']}",
        "window": spec["window"],
        "per": "session",
        "min_calls": spec["min_calls"],
    }


def calls_of(stream: list[tuple[float, str, float | None]]) -> list[Call]:
    now, calls = START, []
    for n, (gap, session, value) in enumerate(stream):
        now += gap
        calls.append(Call(f"c{n}", now, session, value))
    return calls


@settings(max_examples=400, deadline=None)
@given(streams, rules)
def test_alerts_equal_a_brute_force_recomputation(stream: list[tuple[float, str, float | None]], spec: Any) -> None:
    engine = engine_for(rule_of(spec), cooldown=spec["cooldown"])
    rule = engine.rules["r"].rule
    calls = calls_of(stream)
    got = []
    for i, call in enumerate(calls):
        for firing in engine.feed(facts(call)):
            assert firing.key == call.session and firing.fired_at == call.at
            got.append((i, firing.value, list(firing.call_ids)))
    assert got == brute_force(rule, parse_duration(spec["cooldown"]), calls)


def test_a_burst_fires_once_and_again_after_the_cool_down_in_a_new_episode() -> None:
    engine = engine_for({"name": "blocked", "when": "count(errors) >= 3", "window": "10m"}, cooldown="15m")
    burst = [Call(f"c{i}", START + i, "s", 1.0) for i in range(6)]
    fired = [f for call in burst for f in engine.feed(facts(call))]
    assert [(f.rule, f.value, f.call_ids) for f in fired] == [("blocked", 3.0, ("c0", "c1", "c2"))]
    assert fired[0].message == "blocked: count(errors) >= 3 (3, rolling 10m)"
    quiet = Call("q", START + 700, "s", 0.0)  # the window emptied: the episode is over
    assert engine.feed(facts(quiet)) == []
    inside_cooldown = [Call(f"d{i}", START + 710 + i, "s", 1.0) for i in range(3)]
    assert [f for call in inside_cooldown for f in engine.feed(facts(call))] == []  # 712 s < 15 m
    late = Call("late", START + 903, "s", 1.0)  # same episode, cool-down over: it fires now
    assert [f.call_ids for f in engine.feed(facts(late))] == [("d0", "d1", "d2", "late")]


def test_unknown_amounts_are_not_counted_as_zero_and_are_said() -> None:
    engine = engine_for({"name": "spend", "when": "sum(cost_usd) > 1", "window": "1h"})
    calls = [Call("a", START, "s", 0.8), Call("b", START + 1, "s", None), Call("c", START + 2, "s", 0.3)]
    fired = [f for call in calls for f in engine.feed(facts(call, "cost_usd"))]
    assert [(f.unknown, f.call_ids) for f in fired] == [(1, ("a", "c"))]
    assert fired[0].message.endswith("$1.1000, rolling 1h); 1 calls with cost_usd unknown not counted")


def test_a_reload_keeps_the_tallies_of_unchanged_rules_only() -> None:
    kept = {"name": "kept", "when": "count(errors) >= 2", "window": "1h"}
    changed = {"name": "changed", "when": "count(errors) >= 2", "window": "1h"}
    engine = AlertEngine(AlertsConfig.model_validate({"rules": [kept, changed]}))
    assert engine.feed(facts(Call("a", START, "s", 1.0))) == []
    engine.update(
        AlertsConfig.model_validate(
            {"cooldown": "1m", "rules": [{**kept, "cooldown": "2h"}, {**changed, "window": "2h"}]}
        )
    )
    assert [f.rule for f in engine.feed(facts(Call("b", START + 1, "s", 1.0)))] == ["kept"]
    assert engine.rules["kept"].cooldown_s(engine.cooldown_s) == 7200.0


def test_rule_channels_are_the_configured_subset() -> None:
    engine = engine_for(
        {"name": "r", "when": "max(errors) > 0", "channels": ["terminal"]},
        channels={"desktop": True, "webhook": {"url": "http://127.0.0.1:9/hook"}},
    )
    assert [f.channels for f in engine.feed(facts(Call("a", START, "s", 1.0)))] == [("terminal",)]


def recorded(firings: list[Any]) -> list[RecordedAlert]:
    return [RecordedAlert(f.source, f.rule, f.condition, f.key, f.fired_at) for f in firings]


@settings(max_examples=300, deadline=None)
@given(streams.filter(lambda stream: len(stream) > 1), rules, st.data())
def test_a_restart_restored_from_the_recorded_calls_and_alerts_fires_as_if_it_had_not_stopped(
    stream: list[tuple[float, str, float | None]], spec: Any, data: st.DataObject
) -> None:
    """One engine fed every call; another fed the calls up to a restart, whose alerts are
    recorded; a third restored from those calls and alerts at the restart and fed the
    rest: the third fires exactly what the first fires after the restart. (Calls at
    distinct times: the database keeps milliseconds, and an episode that began in the
    very millisecond of the last one's alert is taken as alerted.)"""
    stream = [(gap or 0.25, session, value) for gap, session, value in stream]
    rule_data = rule_of(spec)
    calls = calls_of(stream)
    split = data.draw(st.integers(1, len(calls) - 1))
    live, before = engine_for(rule_data, cooldown=spec["cooldown"]), engine_for(rule_data, cooldown=spec["cooldown"])
    expected = [[(f.key, f.value, f.call_ids) for f in live.feed(facts(call))] for call in calls][split:]
    fired_before = [firing for call in calls[:split] for firing in before.feed(facts(call))]
    restarted = engine_for(rule_data, cooldown=spec["cooldown"])
    restart_at = (calls[split - 1].at + calls[split].at) / 2
    restarted.restore([facts(call) for call in calls[:split]], recorded(fired_before), restart_at)
    got = [[(f.key, f.value, f.call_ids) for f in restarted.feed(facts(call))] for call in calls[split:]]
    assert got == expected


def test_a_restored_episode_that_had_its_alert_does_not_fire_again_and_one_that_had_none_does() -> None:
    rule = {"name": "burst", "when": "count(errors) >= 2", "window": "10m", "per": "session"}
    history = [facts(Call(f"h{n}", START + n, session, 1.0)) for n, session in enumerate(["a", "a", "b", "b"])]
    engine = engine_for(rule, cooldown="1h")
    # "a" fired before the restart; "b"'s alert was never recorded (a rule added since)
    engine.restore(history, [RecordedAlert("rule", "burst", "count(errors) >= 2", "a", START + 1)], START + 10)
    assert engine.feed(facts(Call("a3", START + 20, "a", 1.0))) == []
    (firing,) = engine.feed(facts(Call("b3", START + 21, "b", 1.0)))
    assert firing.key == "b" and firing.call_ids == ("h2", "h3", "b3") and firing.value == 3
    # a key whose calls are outside the history still keeps its cool-down
    quiet = engine_for(rule, cooldown="1h")
    quiet.restore([], [RecordedAlert("rule", "burst", "count(errors) >= 2", "c", START)], START + 600)
    assert quiet.feed(facts(Call("c1", START + 700, "c", 1.0))) == []
    assert quiet.feed(facts(Call("c2", START + 701, "c", 1.0))) == []  # true again, within the hour
    assert quiet.feed(facts(Call("c3", START + 3601, "c", 1.0))) == []  # alone in its 10 minutes
    assert [f.key for f in quiet.feed(facts(Call("c4", START + 3602, "c", 1.0)))] == ["c"]


def test_restored_policy_warnings_keep_their_cool_down() -> None:
    engine = AlertEngine(AlertsConfig.model_validate({"cooldown": "10m"}))
    details = {"limit": "daily", "scope": "session", "key": "s1", "spent": 4.2}
    warned = (PolicyWarning("budget", "80% of daily for s1", details),)
    engine.restore([], [RecordedAlert("policy", "budget", "daily", "s1", START)], START + 60)
    assert engine.feed(facts(Call("a", START + 120, "s", 0.0), warnings=warned)) == []
    assert [f.key for f in engine.feed(facts(Call("b", START + 601, "s", 0.0), warnings=warned))] == ["s1"]


def test_policy_warnings_fire_once_per_policy_limit_and_key_within_the_cool_down() -> None:
    engine = AlertEngine(AlertsConfig.model_validate({"cooldown": "10m"}))

    def warned(key: str) -> PolicyWarning:
        details = {"limit": "daily", "scope": "session", "key": key, "spent": 4.2, "max": 5, "resets_at": "x"}
        return PolicyWarning("budget", f"80% of daily for {key}", details)

    def feed(call_id: str, at: float, *keys: str) -> list[tuple[str, str, float | None, tuple[str, ...]]]:
        found = engine.feed(facts(Call(call_id, at, "s", 0.0), warnings=tuple(warned(k) for k in keys)))
        return [(f.rule, f.key, f.value, f.call_ids) for f in found]

    assert feed("a", START, "s1") == [("budget", "s1", 4.2, ("a",))]
    assert feed("b", START + 60, "s1", "s2") == [("budget", "s2", 4.2, ("b",))]
    assert feed("c", START + 601, "s1") == [("budget", "s1", 4.2, ("c",))]
    off = AlertEngine(AlertsConfig.model_validate({"policy_warnings": False}))
    assert off.feed(facts(Call("d", START, "s", 0.0), warnings=(warned("s1"),))) == []


def test_idle_keys_are_forgotten_and_the_number_of_keys_is_bounded() -> None:
    config = AlertsConfig.model_validate(
        {"rules": [{"name": "r", "when": "count(errors) >= 1", "window": "1m", "per": "session"}], "cooldown": "1m"}
    )
    engine = AlertEngine(config, max_keys=10)
    for i in range(100):
        engine.feed(facts(Call(f"c{i}", START + i * 61, f"s{i}", 0.0)))
    assert len(engine.rules["r"].keys) == 1  # each earlier session's window emptied
    for i in range(100):
        engine.feed(facts(Call(f"d{i}", START + 10_000 + i * 0.01, f"t{i}", 1.0)))
    assert len(engine.rules["r"].keys) == 10
