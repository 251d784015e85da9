"""The Alerts page: the alerts that fired, newest first, with their calls and what each
channel said.

Reads `alerts` (README, "Database schema"), which the proxy writes as an alert fires and
rewrites once its channels have been tried. `?rule=` and `?scope_key=` narrow the list
(bound parameters); each alert links its calls' pages and, for a session scope, the
session's page. A row whose JSON columns are not what the proxy writes is shown as it is,
not refused. Bounded (`LIMIT`).
"""

from __future__ import annotations

import json
from typing import Any

from datasette.app import Datasette
from datasette.database import Database
from datasette.utils.asgi import Request, Response
from pydantic import BaseModel

from datasette_plugins.ui import paths
from datasette_plugins.ui.views import recorder_database

ALERTS_LIMIT = 500
FILTERS = ("rule", "scope_key")


class Delivery(BaseModel):
    channel: str
    status: str

    @property
    def state(self) -> str:
        """The status's first word ("sent", "failed", "dropped", "pending", ...): its CSS class."""
        word = self.status.split(":", 1)[0].split(" ", 1)[0].lower()
        return word if word.isalpha() else "other"


class AlertRow(BaseModel):
    alert_id: str
    fired_at: str
    source: str
    rule: str
    condition: str | None = None
    value: float | None = None
    time_window: str | None = None
    scope: str | None = None
    scope_key: str | None = None
    message: str
    call_ids: list[str] = []
    call_ids_raw: str | None = None  # the column as stored when it is not a list of ids
    unknown_calls: int | None = None
    deliveries: list[Delivery] = []
    deliveries_raw: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> AlertRow:
        calls, calls_raw = _ids(row.pop("call_ids", None))
        deliveries, deliveries_raw = _deliveries(row.pop("deliveries", None))
        row.pop("channels", None)  # the deliveries name every channel tried
        return cls(**row, call_ids=calls, call_ids_raw=calls_raw, deliveries=deliveries, deliveries_raw=deliveries_raw)


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _ids(text: Any) -> tuple[list[str], str | None]:
    value = _json(text)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value, None
    return [], None if text in (None, "") else str(text)


def _deliveries(text: Any) -> tuple[list[Delivery], str | None]:
    value = _json(text)
    if isinstance(value, dict) and all(isinstance(status, str) for status in value.values()):
        return [Delivery(channel=str(channel), status=status) for channel, status in value.items()], None
    return [], None if text in (None, "") else str(text)


class AlertsPage(BaseModel):
    alerts: list[AlertRow]
    rules: list[tuple[str, int]]  # every rule that fired, how many times
    total: int  # alerts matching the filters, shown or not
    filters: dict[str, str]


async def load_alerts(db: Database, filters: dict[str, str]) -> AlertsPage:
    """The newest alerts matching `filters`; none when the table is missing (a database
    from before alerts)."""
    if not await db.table_exists("alerts"):
        return AlertsPage(alerts=[], rules=[], total=0, filters=filters)
    where = " and ".join(f"{column} = :{column}" for column in filters) or "1"
    result = await db.execute(
        f"select * from alerts where {where} order by fired_at desc, rowid desc limit {ALERTS_LIMIT}", filters
    )
    total = (await db.execute(f"select count(*) from alerts where {where}", filters)).rows[0][0]
    rules = await db.execute("select rule, count(*) from alerts group by rule order by count(*) desc, rule")
    return AlertsPage(
        alerts=[AlertRow.of(dict(row)) for row in result.rows],
        rules=[(row[0], row[1]) for row in rules.rows],
        total=total,
        filters=filters,
    )


async def page(datasette: Datasette, request: Request) -> Response:
    database, db = await recorder_database(datasette, request)
    filters = {name: value for name in FILTERS if (value := request.args.get(name))}
    context = {
        "database": database,
        "page": await load_alerts(db, filters),
        "limit": ALERTS_LIMIT,
        "alerts_url": paths.alerts_url(datasette, database),
        "call_url": lambda call_id: paths.call_url(datasette, database, call_id),
        "session_url": lambda session_id: paths.session_url(datasette, database, session_id),
        "filtered_url": lambda **args: paths.alerts_url(datasette, database, **args),
    }
    return Response.html(await datasette.render_template("interlock_alerts.html", context, request=request))
