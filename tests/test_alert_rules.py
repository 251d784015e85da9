"""The `when` of an alert rule (interlock.alerts.expression) and the `alerts` config
section: what parses, what it means, and errors that name the key."""

from __future__ import annotations

import pytest

from interlock.alerts.expression import Condition, parse_condition
from interlock.config import AlertsConfig, ConfigError, parse_config


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("sum(cost_usd) > 5", ("sum", "cost_usd", ">", 5.0, False)),
        ("count(blocked_tool_calls)>=3", ("count", "blocked_tool_calls", ">=", 3.0, False)),
        ("  rate( errors ) > 20 % ", ("rate", "errors", ">", 0.2, True)),
        ("rate(blocked) <= 0.05", ("rate", "blocked", "<=", 0.05, False)),
        ("max(judge_probability) > .9", ("max", "judge_probability", ">", 0.9, False)),
        ("AVG(tokens) < 1e4", ("avg", "tokens", "<", 10_000.0, False)),
        ("count(calls) == 0", ("count", "calls", "==", 0.0, False)),
    ],
)
def test_conditions_parse(text: str, parsed: tuple[str, str, str, float, bool]) -> None:
    condition = parse_condition(text)
    assert isinstance(condition, Condition)
    assert (condition.aggregate, condition.metric, condition.op, condition.threshold, condition.percent) == parsed
    assert parse_condition(condition.text()) == condition


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("sum(cost_usd)", "is not a condition"),
        ("sum(cost_usd) > ", "is not a condition"),
        ("sum(cost_usd) => 5", "is not a condition"),
        ("sum(cost_usd) > 5 and count(calls) > 1", "is not a condition"),
        ("median(tokens) > 5", "unknown aggregate 'median'"),
        ("sum(dollars) > 5", "unknown metric 'dollars'"),
        ("sum(cost_usd) > 5%", "only for rate"),
        ("", "is not a condition"),
    ],
)
def test_bad_conditions_say_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_condition(text)


def test_holds_compares_with_the_threshold() -> None:
    condition = parse_condition("rate(errors) >= 20%")
    assert condition.holds(0.2) and condition.holds(0.5)
    assert not condition.holds(0.19) and not condition.holds(None)


def alerts_section(data: dict[str, object]) -> AlertsConfig:
    """The section as the config file reads it."""
    return parse_config({"alerts": data}).alerts


def test_a_file_without_alerts_has_the_default_section() -> None:
    assert parse_config({}).alerts == AlertsConfig()


def test_the_default_section_has_no_rules_and_the_terminal_channel() -> None:
    alerts = alerts_section({})
    assert alerts.rules == [] and alerts.channels.configured() == ["terminal"] and alerts.cooldown_s == 900.0


def test_a_full_section_validates() -> None:
    alerts = alerts_section(
        {
            "cooldown": "5m",
            "channels": {
                "webhook": {"url": "https://hooks.example/x", "headers": {"x-token": "t"}},
                "desktop": True,
            },
            "rules": [
                {"name": "spend", "when": "sum(cost_usd) > 5", "window": "1h"},
                {"name": "errors", "when": "rate(errors) > 20%", "window": "10m", "per": "model", "min_calls": 10},
                {
                    "name": "judge",
                    "when": "max(judge_probability) > 0.9",
                    "window": "call",
                    "channels": ["webhook"],
                },
            ],
        }
    )
    assert alerts.channels.configured() == ["terminal", "webhook", "desktop"]
    assert [r.least_calls for r in alerts.rules] == [1, 10, 1]
    assert alerts.rules[1].parsed_window.seconds == 600.0


@pytest.mark.parametrize(
    ("alerts", "says"),
    [
        ({"rules": [{"name": "r", "when": "sum(dollars) > 5"}]}, "alerts.rules.0.when: Value error, unknown metric"),
        ({"rules": [{"name": "r", "when": "sum(cost_usd) > 5", "window": "fortnight"}]}, "alerts.rules.0.window:"),
        ({"rules": [{"name": "r", "when": "sum(cost_usd) > 5", "per": "team"}]}, "alerts.rules.0.per:"),
        ({"rules": [{"name": "r", "when": "sum(cost_usd) > 5", "cooldown": "often"}]}, "alerts.rules.0.cooldown:"),
        ({"rules": [{"name": "r", "when": "sum(cost_usd) > 5", "min_calls": 0}]}, "alerts.rules.0.min_calls:"),
        ({"rules": [{"name": "r", "when": "sum(cost_usd) > 5", "colour": "red"}]}, "alerts.rules.0.colour:"),
        ({"rules": [{"name": "r", "when": "sum(cost_usd) > 5", "channels": ["webhook"]}]}, "rules.0.channels: webhook"),
        (
            {"rules": [{"name": "r", "when": "count(calls) > 1"}, {"name": "r", "when": "count(calls) > 2"}]},
            "rules.1.name",
        ),
        ({"channels": {"webhook": {"url": "hooks.example"}}}, "alerts.channels.webhook.url:"),
        ({"channels": {"webhook": {"url": "http://x", "retries": -1}}}, "alerts.channels.webhook.retries:"),
        ({"cooldown": "forever"}, "alerts.cooldown:"),
    ],
)
def test_bad_sections_name_the_key(alerts: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        alerts_section(alerts)
    assert says in str(raised.value)
