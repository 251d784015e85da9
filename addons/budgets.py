"""Charges the `budget` policies as calls end, restores their totals at start-up, writes their use.

`running` (before the recorder says "Interlock ready"): every counted limit of the
chain starts from the recorded calls of its window (`recorder.spend`, SQL aggregates;
per session over a session's life, the sessions of the last week: `active_since`).
`interlock_call_ended`: the call's real cost (`record_price`), tokens and 1 call go to
every limit that applies to it, in the process-wide ledger; a call blocked before it
went upstream (no usage) spent nothing, a failed one $0, and one answered without usage
(an OpenAI stream without `stream_options.include_usage`) is counted as unpriced (as
`recorder.spend` counts them). Each touched (limit, key) is upserted into `budget_use`
through the recorder's `SideWriter` (coalesced by key, off the event loop) for the UI.
A limit that a live reload keeps keeps its total; one a reload adds is restored like
those at start-up, before the new config is swapped in (`LiveConfig.before_swap`).
With no budget configured, a call costs one identity check here.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from mitmproxy import http

from addons.config_watch import ConfigWatch
from addons.live_config import Loaded
from addons.recording import Recording
from interlock.policy.chain import PolicyChain
from policies.builtin.budget import BudgetPolicy, Charged, Spend
from policies.builtin.budget_limits import Limit
from recorder.call_facts import caller_of, failed
from recorder.models import CallRecord
from recorder.rows import iso, record_price
from recorder.spend import spent

logger = logging.getLogger(__name__)
TABLE = "budget_use"
SESSION_RESTORE_DAYS = 7


def spend_of(record: CallRecord) -> Spend | None:
    """What the call spent; None for a call blocked before it went upstream."""
    reported = record.usage.reported
    if record.verdict == "blocked" and not reported:
        return None
    if reported:
        cost = record_price(record)[0]
    else:  # an error is not billed; an answer without usage (a stream not asking for it) is unpriced
        cost = 0.0 if failed(record) else None
    model = record.model_final or record.model
    return Spend(caller_of(record), model, record.usage.total, cost, record.ended_at or time.time())


def use_row(charged: Charged, now: float) -> dict[str, Any]:
    """The `budget_use` row of a limit's use for one key."""
    limit, use = charged.limit, charged.use
    return {
        "policy": limit.policy,
        "budget": limit.options.name,
        "metric": limit.options.metric,
        "time_window": limit.options.window,
        "scope": limit.describe_scope(),
        "scope_key": limit.describe_key(charged.key),
        "used": use.amounts.sum(now),
        "maximum": limit.options.max,
        "action": limit.options.action,
        "calls": round(use.calls.sum(now)),
        "unpriced_calls": round(use.unpriced.sum(now)),
        "resets_at": iso(use.amounts.resets_at(now)),
        "updated_at": iso(use.updated_at or now),
    }


def active_since(limit: Limit, now: float) -> float | None:
    """For a limit per session over its whole life (`session`, `ever`): restore only the
    sessions with a call in the last `SESSION_RESTORE_DAYS` (each key held costs memory,
    and an older session is unlikely to go on); None: every key."""
    if limit.window.kind == "ever" and "session" in limit.scope:
        return now - SESSION_RESTORE_DAYS * 86400
    return None


class Budgets:
    def __init__(self, config: ConfigWatch, recording: Recording) -> None:
        self.config = config
        self.recording = recording
        self._chain: PolicyChain | None = None
        self._budgets: list[BudgetPolicy] = []

    def budgets(self) -> list[BudgetPolicy]:
        """The budget policies of the chain in force."""
        loaded = self.config.current
        chain = loaded.chain if loaded is not None else None
        if chain is not self._chain:
            self._chain = chain
            entries = chain.entries if chain is not None else []
            self._budgets = [entry.policy for entry in entries if isinstance(entry.policy, BudgetPolicy)]
        return self._budgets

    def _db_path(self) -> str | None:
        writer = self.recording.writer
        return writer.db_path if writer is not None else None

    def running(self) -> None:
        self._restore(self.config.current)
        if self.config.live is not None:
            self.config.live.before_swap.append(self._restore)

    def _restore(self, loaded: Loaded | None) -> None:
        """Start the chain's counted limits that have no totals yet from the recorded
        calls: at start-up, and for a reloaded config before it is swapped in (in the
        reload's thread: the limits it starts are in no chain in force yet)."""
        db_path = self._db_path()
        if db_path is None or loaded is None:
            return
        now = time.time()
        restored = 0
        for entry in loaded.chain.entries:
            policy = entry.policy
            if not isinstance(policy, BudgetPolicy):
                continue
            for limit in policy.limits:
                if not limit.counted or policy.ledger.started(limit.id):
                    continue
                since = None if limit.window.kind == "ever" else limit.window.start(now)
                try:
                    groups = spent(db_path, limit.columns, since, by_minute=limit.window.kind == "rolling")
                except sqlite3.Error as error:
                    logger.error(
                        "Interlock budget %s: totals not restored from %s: %s", limit.options.name, db_path, error
                    )
                    groups = []
                policy.restore(limit, groups, active_since(limit, now))  # budget_use already has what was written
                restored += 1
        if restored:
            logger.info("Interlock budgets: %d limits' totals restored from %s", restored, db_path)

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        budgets = self.budgets()
        if not budgets:
            return
        spend = spend_of(record)
        if spend is None:
            return
        now = time.time()
        for policy in budgets:
            self._write(policy.charge(spend), now)

    def _write(self, charged: list[Charged], now: float) -> None:
        writer = self.recording.side_writer() if charged else None
        if writer is None:
            return
        for one in charged:
            writer.put(TABLE, use_row(one, now), key=(one.limit.id, one.key))
