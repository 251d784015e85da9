"""The Budgets page: the budgets' current use, one row per limit and scope key.

Reads `budget_use` (README, "Database schema"), which the proxy upserts as calls end.
A row whose window has reset since it was written (`resets_at` passed) shows nothing
used: the proxy's next charge writes the new total. Bounded (`LIMIT`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from datasette.app import Datasette
from datasette.database import Database
from datasette.utils.asgi import Request, Response
from pydantic import BaseModel

from datasette_plugins.ui import fmt
from datasette_plugins.ui.views import recorder_database

USES_LIMIT = 1000
NEAR = 0.8  # a use this share of its max or more is shown as near it


class UseRow(BaseModel):
    policy: str
    budget: str
    metric: str
    time_window: str
    scope: str
    scope_key: str
    used: float
    maximum: float
    action: str
    calls: int | None = None
    unpriced_calls: int | None = None
    resets_at: str | None = None
    updated_at: str
    reset: bool = False  # the window reset since the row was written

    @property
    def current(self) -> float:
        return 0.0 if self.reset else self.used

    @property
    def share(self) -> float:
        return self.current / self.maximum

    @property
    def state(self) -> str:
        return "over" if self.share >= 1 else "near" if self.share >= NEAR else "ok"

    def amount(self, value: float) -> str:
        if self.metric == "cost_usd":
            return fmt.usd(value)
        return f"{value:,.0f} {'tokens' if self.metric == 'tokens' else 'calls'}"


def _reset(resets_at: str | None, now: datetime) -> bool:
    return resets_at is not None and datetime.fromisoformat(resets_at) <= now


async def load_uses(db: Database) -> list[UseRow]:
    """Every use, the closest to its max first; none when the table is missing (a
    database from before budgets)."""
    if not await db.table_exists("budget_use"):
        return []
    result = await db.execute(f"select * from budget_use order by used / maximum desc limit {USES_LIMIT}")
    now = datetime.now(UTC)
    uses = [UseRow(**dict(row)) for row in result.rows]
    uses = [use.model_copy(update={"reset": _reset(use.resets_at, now)}) for use in uses]
    return sorted(uses, key=lambda use: (-use.share, use.policy, use.budget, use.scope_key))


async def page(datasette: Datasette, request: Request) -> Response:
    database, db = await recorder_database(datasette, request)
    context = {"database": database, "uses": await load_uses(db)}
    return Response.html(await datasette.render_template("interlock_budgets.html", context, request=request))
