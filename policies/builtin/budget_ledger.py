"""The budgets' running totals: one process-wide ledger, kept in memory.

A total belongs to a limit's identity (`LimitId`: its policy's instance name, its name,
metric, window and scope), not to a policy object, so a live config reload (which
builds new policy objects) keeps every total whose limit it keeps, and a limit whose
window or scope changed is a new one (restored from the database: `addons.budgets`). Within a limit, each scope key (a session, a model, a user and project, ...)
has a `Use`: its amounts in the limit's window (`interlock.windows.Tally`), how many
calls they are, and how many of those could not be priced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from interlock.windows import Tally, Window

# (policy instance, name, metric, window as configured, scope names in their order)
LimitId = tuple[str, str, str, str, tuple[str, ...]]
ScopeKey = tuple[str | None, ...]


@dataclass(slots=True)
class Use:
    """One scope key's use of one limit."""

    amounts: Tally
    calls: Tally
    unpriced: Tally  # calls the price map could not price
    updated_at: float = 0.0


@dataclass(slots=True)
class Ledger:
    _uses: dict[LimitId, dict[ScopeKey, Use]] = field(default_factory=dict)

    def started(self, limit: LimitId) -> bool:
        """Whether the limit has totals (restored, or charged) in this process."""
        return limit in self._uses

    def start(self, limit: LimitId) -> None:
        """Mark the limit as counted from now on (its past restored, if any)."""
        self._uses.setdefault(limit, {})

    def use(self, limit: LimitId, key: ScopeKey) -> Use | None:
        uses = self._uses.get(limit)
        return uses.get(key) if uses is not None else None

    def total(self, limit: LimitId, key: ScopeKey, now: float) -> float:
        use = self.use(limit, key)
        return use.amounts.sum(now) if use is not None else 0.0

    def add(
        self, limit: LimitId, window: Window, key: ScopeKey, at: float, amount: float, calls: int = 1, unpriced: int = 0
    ) -> Use:
        """Charge `amount` for `calls` calls (`unpriced` of them not priced), at unix time
        `at`, to the key; returns its use."""
        uses = self._uses.setdefault(limit, {})
        use = uses.get(key)
        if use is None:
            use = uses[key] = Use(Tally(window), Tally(window), Tally(window))
        use.amounts.add(at, amount)
        use.calls.add(at, calls)
        if unpriced:
            use.unpriced.add(at, unpriced)
        use.updated_at = max(use.updated_at, at)
        return use


LEDGER = Ledger()
