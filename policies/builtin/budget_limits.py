"""The `budget` policy's options and its limits: what each counts, over which window, per what.

A limit counts one metric (`cost_usd`, `tokens`, `calls`) over a window
(`interlock.windows` spelling: `call`, `session`, `hour`, `day`, `30m`, `24h`, ...)
per scope key: `overall`, or per `session`, `model`, `client` (user-agent), `user`,
`project`, or a list of them (the key is the tuple: per user and project). `models`
(globs) narrows the calls it applies to; the model is the one the call asks for when the
budget sees it (after earlier policies' rewrites), and the one sent upstream when it is
charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from interlock.policy.base import Caller, PolicyOptions
from interlock.windows import Window, parse_window
from policies.builtin.budget_ledger import LimitId, ScopeKey

Metric = Literal["cost_usd", "tokens", "calls"]
Scope = Literal["overall", "session", "model", "client", "user", "project"]
Action = Literal["block", "warn", "downgrade"]
# The `calls` column each scope is recorded in (`model`: the model sent upstream).
SCOPE_COLUMNS: dict[str, str] = {"session": "session_id", "client": "client", "user": "user", "project": "project"}
NO_KEY = "(none)"


class LimitOptions(PolicyOptions):
    name: str = Field(min_length=1)
    metric: Metric
    max: float = Field(gt=0, allow_inf_nan=False)
    window: str
    scope: Scope | list[Scope] = "overall"
    action: Action = "block"
    downgrade_to: str | None = Field(default=None, validate_default=True)  # what a `downgrade` asks for instead
    models: list[str] | None = None  # globs of the models it applies to; None: every model

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_window(value)  # its ValueError names the spellings
        return value.strip().lower()

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: Scope | list[Scope]) -> Scope | list[Scope]:
        if isinstance(value, list):
            if not value:
                raise ValueError("an empty list: give one scope or several")
            if len(set(value)) != len(value):
                raise ValueError("a scope named twice")
            if "overall" in value and len(value) > 1:
                raise ValueError("overall cannot be combined with other scopes")
        return value

    @field_validator("downgrade_to")
    @classmethod
    def _downgrade(cls, value: str | None, info: ValidationInfo) -> str | None:
        action = info.data.get("action")
        if action == "downgrade" and not value:
            raise ValueError("required with action downgrade: the model to ask for instead")
        if action != "downgrade" and value is not None:
            raise ValueError("only with action downgrade")
        return value


class BudgetOptions(PolicyOptions):
    limits: list[LimitOptions] = Field(min_length=1)
    # A call whose model the price map does not know, for cost limits: `block` (refused
    # before it goes upstream), `allow` (counted as $0, recorded as `unpriced`),
    # `count_tokens` (its tokens at `unknown_usd_per_million_tokens`).
    unknown_cost: Literal["block", "allow", "count_tokens"] = "block"
    unknown_usd_per_million_tokens: float | None = Field(default=None, gt=0, allow_inf_nan=False, validate_default=True)

    @field_validator("limits")
    @classmethod
    def _unique(cls, limits: list[LimitOptions]) -> list[LimitOptions]:
        names = [limit.name for limit in limits]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"limit names must be unique: {', '.join(twice)}")
        return limits

    @field_validator("unknown_usd_per_million_tokens")
    @classmethod
    def _rate(cls, value: float | None, info: ValidationInfo) -> float | None:
        if info.data.get("unknown_cost") == "count_tokens" and value is None:
            raise ValueError("required with unknown_cost count_tokens")
        return value


@dataclass(frozen=True, slots=True)
class Limit:
    """One configured limit, ready to match calls."""

    policy: str  # the instance name of the budget policy it belongs to
    options: LimitOptions
    window: Window
    scope: tuple[str, ...]  # empty: overall

    @classmethod
    def of(cls, policy: str, options: LimitOptions) -> Limit:
        scopes = options.scope if isinstance(options.scope, list) else [options.scope]
        return cls(policy, options, parse_window(options.window), tuple(s for s in scopes if s != "overall"))

    @property
    def id(self) -> LimitId:
        o = self.options
        return (self.policy, o.name, o.metric, o.window, self.scope or ("overall",))

    @property
    def columns(self) -> tuple[str, ...]:
        """The `calls` columns its keys come from, besides the model."""
        return tuple(SCOPE_COLUMNS[s] for s in self.scope if s in SCOPE_COLUMNS)

    @property
    def counted(self) -> bool:
        """Whether calls add up: a per-call limit only looks at the call itself."""
        return self.window.kind != "call"

    def applies(self, model: str | None) -> bool:
        patterns = self.options.models
        return patterns is None or (model is not None and any(fnmatchcase(model, p) for p in patterns))

    def key(self, caller: Caller, model: str | None) -> ScopeKey:
        values = caller.scopes(model)
        return tuple(values[s] for s in self.scope)

    def key_of(self, columns: tuple[str | None, ...], model: str | None) -> ScopeKey:
        """The key of a group of recorded calls (`recorder.spend`, grouped by `columns`)."""
        values = dict(zip(self.columns, columns, strict=True))
        return tuple(model if s == "model" else values[SCOPE_COLUMNS[s]] for s in self.scope)

    def describe_scope(self) -> str:
        return "+".join(self.scope) or "overall"

    def describe_key(self, key: ScopeKey) -> str:
        return " / ".join(NO_KEY if part is None else part for part in key) or "overall"

    def amount_text(self, amount: float) -> str:
        metric = self.options.metric
        if metric == "cost_usd":
            return f"${amount:,.2f}" if amount >= 1 else "$" + (f"{amount:.6f}".rstrip("0").rstrip(".") or "0")
        return f"{amount:,.0f} {'tokens' if metric == 'tokens' else 'calls'}"
