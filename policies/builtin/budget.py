"""`budget`: limits on cost, tokens and calls per window and scope, checked before each call.

`on_request` checks every limit that applies to the call (see `budget_limits`): one is
exceeded when its total for the call's scope key has reached `max`, or would pass it with
this call's estimate (the prompt at about 4 bytes of request JSON a token, priced at the
model's input rate; 1 for `calls`). An exceeded `block` limit refuses the call
(`Refused`: a 429 in the dialect's words, with when the window resets) and records
`blocked`; `warn` records `warned` and lets it pass; `downgrade` asks for `downgrade_to`
instead and records `modified`. Each event's details name the limit, scope, key, what
was spent, the max and when it resets.

The call's real cost is charged when it ends (`charge`, from its record: see
`addons.budgets`) into the process-wide `LEDGER`, and restored from the database at
start-up (`restore`). A model the price map does not know counts as `unknown_cost`
says, never as a silent $0.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from interlock.neutral import Usage
from interlock.policy.base import Caller, Policy, PolicyContext, Refused
from policies.builtin.budget_ledger import LEDGER, ScopeKey, Use
from policies.builtin.budget_limits import BudgetOptions, Limit
from recorder.cost import load_cost_map, price
from recorder.spend import Spent

BYTES_PER_TOKEN = 4  # the estimate of a prompt's tokens from its request JSON


@dataclass(frozen=True, slots=True)
class Spend:
    """What one ended call spent, as its record says."""

    caller: Caller
    model: str | None  # as sent upstream
    tokens: int  # input, output and cache tokens
    cost_usd: float | None  # None: it reported usage the price map could not price
    at: float  # when it ended


@dataclass(frozen=True, slots=True)
class Charged:
    """A limit's use for one key, after a charge or a restore."""

    limit: Limit
    key: ScopeKey
    use: Use


@dataclass(frozen=True, slots=True)
class Exceeded:
    limit: Limit
    key: ScopeKey
    spent: float
    estimate: float
    resets_at: float | None  # None: not by waiting (a per-call or whole-session limit)

    def message(self, now: float) -> str:
        limit, o = self.limit, self.limit.options
        text = (
            f"Interlock budget '{o.name}' exceeded: {limit.amount_text(self.spent)} of "
            f"{limit.amount_text(o.max)} {limit.window.describe()}"
        )
        if limit.scope:
            text += f" for {limit.describe_scope()} {limit.describe_key(self.key)}"
        text += f"; this call would add about {limit.amount_text(self.estimate)}."
        if self.resets_at is None:
            return f"{text} It does not reset by waiting."
        return f"{text} It resets at {_iso(self.resets_at)} (in {_duration(self.resets_at - now)})."

    def details(self) -> dict[str, Any]:
        limit = self.limit
        return {
            "limit": limit.options.name,
            "metric": limit.options.metric,
            "window": limit.options.window,
            "scope": limit.describe_scope(),
            "key": limit.describe_key(self.key),
            "spent": self.spent,
            "estimate": self.estimate,
            "max": limit.options.max,
            "resets_at": _iso(self.resets_at) if self.resets_at is not None else None,
        }

    def retry_after_s(self, now: float) -> int | None:
        return max(1, math.ceil(self.resets_at - now)) if self.resets_at is not None else None


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


class BudgetPolicy(Policy):
    name = "budget"
    Options = BudgetOptions
    description = "Limits on cost, tokens and calls per window and scope: block (429), warn or downgrade."
    options: BudgetOptions

    def __init__(self, options: BudgetOptions, instance_name: str) -> None:
        super().__init__(options, instance_name)
        self.limits = [Limit.of(instance_name, limit) for limit in options.limits]
        self.needs_session = any("session" in limit.scope for limit in self.limits)
        self.ledger = LEDGER
        if any(limit.options.metric == "cost_usd" for limit in self.limits):
            load_cost_map()  # now (at load, or in the reload thread), not on a call's path

    # -- before the call ---------------------------------------------------------------

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        model = ctx.dialect.request_model(request)
        applying = [limit for limit in self.limits if limit.applies(model)]
        if not applying:
            return request
        now = time.time()
        tokens = math.ceil(len(json.dumps(request, separators=(",", ":"))) / BYTES_PER_TOKEN)
        cost = self._estimated_cost(ctx, model, tokens, applying)
        exceeded = [
            found
            for limit in applying
            if (found := self._exceeded(limit, limit.key(ctx.caller, model), tokens, cost, now)) is not None
        ]
        for found in exceeded:
            if found.limit.options.action == "block":
                ctx.record(self.instance_name, "blocked", found.message(now), side="request", **found.details())
                raise Refused(self.instance_name, found.message(now), retry_after_s=found.retry_after_s(now))
        target: str | None = None
        for found in exceeded:
            action, to = found.limit.options.action, found.limit.options.downgrade_to
            if action == "warn":
                ctx.record(self.instance_name, "warned", found.message(now), side="request", **found.details())
            elif target is None and to is not None and to != model:
                target = to
                reason = f"{found.message(now)} Model {model} -> {to}."
                details = found.details()
                ctx.record(
                    self.instance_name, "modified", reason, side="request", model_from=model, model_to=to, **details
                )
        return ctx.dialect.with_model(request, target) if target is not None else request

    def _estimated_cost(self, ctx: PolicyContext, model: str | None, tokens: int, applying: list[Limit]) -> float:
        """The prompt's cost at the model's input rate; an unknown price as
        `unknown_cost` says (`block` refuses the call here)."""
        if not any(limit.options.metric == "cost_usd" for limit in applying):
            return 0.0
        cost, _ = price(model, ctx.caller.provider, Usage(input_tokens=tokens, output_tokens=0))
        if cost is not None:
            return cost
        mode = self.options.unknown_cost
        reason = f"the price of model {model or '(none)'} is unknown to litellm's price map"
        if mode == "block":
            message = (
                f"Interlock budget refused this call: {reason}, so its cost limits cannot count it "
                "(unknown_cost: block; use allow or count_tokens to let such calls through)."
            )
            ctx.record(self.instance_name, "blocked", message, side="request", model=model, unknown_cost=mode)
            raise Refused(self.instance_name, message)
        rate = self.options.unknown_usd_per_million_tokens
        ctx.record(self.instance_name, "unpriced", reason, side="request", model=model, unknown_cost=mode, rate=rate)
        return tokens * rate / 1e6 if rate is not None and mode == "count_tokens" else 0.0

    def _exceeded(self, limit: Limit, key: ScopeKey, tokens: int, cost: float, now: float) -> Exceeded | None:
        o = limit.options
        estimate = {"cost_usd": cost, "tokens": float(tokens), "calls": 1.0}[o.metric]
        spent = self.ledger.total(limit.id, key, now) if limit.counted else 0.0
        if spent < o.max and spent + estimate <= o.max:
            return None
        if not limit.counted or estimate > o.max:
            resets_at = None  # this call alone is over the limit: waiting does not help
        else:
            use = self.ledger.use(limit.id, key)
            resets_at = use.amounts.resets_at(now) if use is not None else limit.window.resets_at(now)
        return Exceeded(limit, key, spent, estimate, resets_at)

    # -- after the call ----------------------------------------------------------------

    def charge(self, spend: Spend) -> list[Charged]:
        """Add an ended call to every limit that counts it; their uses after it."""
        charged = []
        for limit in self.limits:
            if not limit.counted or not limit.applies(spend.model):
                continue
            unpriced = limit.options.metric == "cost_usd" and spend.cost_usd is None
            amount = self._amount(limit, spend.tokens, spend.cost_usd, spend.tokens if unpriced else 0, 1)
            key = limit.key(spend.caller, spend.model)
            use = self.ledger.add(limit.id, limit.window, key, spend.at, amount, unpriced=int(unpriced))
            charged.append(Charged(limit, key, use))
        return charged

    def restore(self, limit: Limit, groups: list[Spent], active_since: float | None = None) -> list[Charged]:
        """Start counting `limit` from the recorded calls' groups (`recorder.spend`,
        grouped by `limit.columns`, from its window's start), leaving out the keys with no
        call since `active_since`; their uses after it."""
        self.ledger.start(limit.id)
        keyed = [(limit.key_of(g.key, g.model), g) for g in groups if limit.applies(g.model)]
        latest: dict[ScopeKey, float] = {}
        for key, group in keyed:
            latest[key] = max(latest.get(key, group.at), group.at)
        touched: dict[ScopeKey, Use] = {}
        for key, group in sorted(keyed, key=lambda pair: pair[1].at):
            if active_since is not None and latest[key] < active_since:
                continue
            unpriced = group.unpriced_calls if limit.options.metric == "cost_usd" else 0
            amount = self._amount(limit, group.tokens, group.cost_usd, group.unpriced_tokens, group.calls)
            touched[key] = self.ledger.add(limit.id, limit.window, key, group.at, amount, group.calls, unpriced)
        return [Charged(limit, key, use) for key, use in touched.items()]

    def _amount(self, limit: Limit, tokens: int, cost: float | None, unpriced_tokens: int, calls: int) -> float:
        """What `calls` calls add to the limit: their cost (their `unpriced_tokens` at
        the configured rate with `unknown_cost: count_tokens`, else nothing), tokens or
        number."""
        metric = limit.options.metric
        if metric == "calls":
            return float(calls)
        if metric == "tokens":
            return float(tokens)
        rate = self.options.unknown_usd_per_million_tokens
        guessed = unpriced_tokens * rate / 1e6 if self.options.unknown_cost == "count_tokens" and rate else 0.0
        return (cost or 0.0) + guessed
