"""Reading the recorder's JSON columns (`*_json`) back: the UI and the backtests show a
call whatever its columns hold, so a value that is not JSON reads as missing."""

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
