"""The `when` of an alert rule: `agg(metric) op number`, e.g. `sum(cost_usd) > 5`,
`count(blocked_tool_calls) >= 3`, `rate(errors) > 20%`, `max(judge_probability) > 0.9`.

`parse_condition(text)` reads it into a `Condition` or raises ValueError saying what is
wrong; `Condition.holds(value)` compares a window's value with the threshold. A `%`
(rates only) divides the number by 100: `rate(errors) > 20%` is `rate(errors) > 0.2`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

Aggregate = Literal["count", "sum", "avg", "max", "rate"]
Metric = Literal[
    "calls", "cost_usd", "unpriced", "tokens", "errors", "blocked", "blocked_tool_calls", "judge_probability"
]  # fmt: skip
Operator = Literal[">", ">=", "<", "<=", "=="]
AGGREGATES: tuple[str, ...] = get_args(Aggregate)
METRICS: tuple[str, ...] = get_args(Metric)
# avg and rate say little over a handful of calls: they wait for `min_calls` (rule option).
RATIO_AGGREGATES = frozenset({"avg", "rate"})

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
_SHAPE = re.compile(
    r"^\s*(?P<agg>[A-Za-z_]\w*)\s*\(\s*(?P<metric>[A-Za-z_]\w*)\s*\)\s*(?P<op>>=|<=|==|>|<)"
    r"\s*(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<percent>%)?\s*$"
)


class Condition(BaseModel):
    """A parsed `when`: `threshold` is the number as compared (a percentage divided by 100)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    aggregate: Aggregate
    metric: Metric
    op: Operator
    threshold: float
    percent: bool = False  # written with `%`: shown that way

    def holds(self, value: float | None) -> bool:
        return value is not None and _COMPARE[self.op](value, self.threshold)

    def text(self) -> str:
        """The condition as a person writes it (`rate(errors) > 20%`)."""
        number = f"{self.threshold * 100:g}%" if self.percent else f"{self.threshold:g}"
        return f"{self.aggregate}({self.metric}) {self.op} {number}"


def parse_condition(text: Any) -> Any:
    """A `Condition` from its text; anything else is handed on as it is (pydantic
    validates a mapping, and refuses other types)."""
    if not isinstance(text, str):
        return text
    match = _SHAPE.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a condition: write aggregate(metric) operator number, e.g. 'sum(cost_usd) > 5'"
        )
    aggregate, metric = match["agg"].lower(), match["metric"].lower()
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {match['agg']!r} in {text!r}; known: {', '.join(AGGREGATES)}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {match['metric']!r} in {text!r}; known: {', '.join(METRICS)}")
    percent = match["percent"] is not None
    if percent and aggregate != "rate":
        raise ValueError(f"{text!r}: a percentage is only for rate(...)")
    threshold = float(match["number"]) / (100 if percent else 1)
    return Condition.model_validate(
        {"aggregate": aggregate, "metric": metric, "op": match["op"], "threshold": threshold, "percent": percent}
    )
