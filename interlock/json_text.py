"""JSON kept as text (the recorder's `*_json` columns) read back by those that show a
call whatever its columns hold (the UI, the backtests): a value that is not JSON reads
as missing. In the core package: the UI reads the schema, never the recorder."""

from __future__ import annotations

import json
from typing import Any


def loads_or_none(text: str | None) -> Any:
    """JSON text parsed, or None when the column is NULL or does not hold JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
