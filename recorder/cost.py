"""Prices a call's token usage from litellm's model cost map, without importing litellm.

`import litellm` costs seconds and a lot of memory; the price map is a JSON file inside
the installed package, located with `importlib.util.find_spec` (which does not import
it) and loaded once: on first use, or ahead of time by calling `load_cost_map()`
in a worker thread (the proxy does at start-up; the writer prices rows in its worker
thread, and the terminal line prices on the event loop only once the map is loaded).

Rules (a guessed price is worse than none):
- The model is looked up as given, then as `provider/model`, then, if it ends with a
  date (`-20250929`, `-2024-07-18`), without it: only keys the map itself has.
- An entry without a positive input and output price, or priced by a `tiered_pricing`
  table, gives no price: `(None, None)`. So does a call without usage.
- `input_tokens` excludes cache reads and writes (see `Usage`); each part is priced at
  its own rate. A missing cache read or write rate falls back to the input rate, as
  litellm's own cost calculation does ("a provider that publishes no cache price bills
  cached tokens as ordinary input"); an explicit 0 stays 0.
- When the prompt (input + cache tokens) exceeds a threshold the entry prices
  (`input_cost_per_token_above_200k_tokens` and friends), every rate comes from the
  highest such threshold, each falling back to its base rate, as in litellm.
- Cache writes are priced at the base (5-minute) write rate: `Usage` does not say how
  many were written with the 1-hour TTL.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from functools import cache
from pathlib import Path
from typing import Any

from recorder.models import Usage

log = logging.getLogger(__name__)

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"

_INPUT = "input_cost_per_token"
_OUTPUT = "output_cost_per_token"
_CACHE_READ = "cache_read_input_token_cost"
_CACHE_WRITE = "cache_creation_input_token_cost"
_THRESHOLD_KEY = re.compile(rf"^(?:{_INPUT}|{_OUTPUT}|{_CACHE_READ}|{_CACHE_WRITE})_above_(\d+)(k?)_tokens$")
_DATE_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


@cache
def load_cost_map() -> dict[str, dict[str, Any]]:
    """litellm's bundled model cost map; empty (every price unknown) if not installed."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        log.warning("litellm is not installed: call costs will be NULL")
        return {}
    path = Path(spec.origin).parent / PRICE_MAP_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning(
            "cannot read litellm's price map %s (%s): call costs will be NULL",
            path,
            exc,
        )
        return {}
    return {key: entry for key, entry in data.items() if isinstance(entry, dict)}


def pricing_key(model: str, provider: str) -> str | None:
    """The cost-map key for `model` served by `provider`, or None if the map has none."""
    prices = load_cost_map()
    undated = _DATE_SUFFIX.sub("", model)
    candidates = [model, f"{provider}/{model}"]
    if undated != model:
        candidates += [undated, f"{provider}/{undated}"]
    return next((key for key in candidates if key in prices), None)


def cost_map_loaded() -> bool:
    """True once `load_cost_map` has run: pricing is then a few dictionary look-ups."""
    return load_cost_map.cache_info().currsize > 0


def price(model: str | None, provider: str, usage: Usage) -> tuple[float | None, str | None]:
    """(cost in USD, cost-map key used) for one call, or (None, None) when not known."""
    if not model or (usage.input_tokens is None and usage.output_tokens is None):
        return None, None
    key = pricing_key(model, provider)
    if key is None:
        return None, None
    entry = load_cost_map()[key]
    if "tiered_pricing" in entry:
        return None, None
    input_tokens = usage.input_tokens or 0
    cache_read = usage.cache_read_tokens or 0
    cache_write = usage.cache_write_tokens or 0
    rates = _rates(entry, prompt_tokens=input_tokens + cache_read + cache_write)
    if rates is None:
        return None, None
    input_rate, output_rate, cache_read_rate, cache_write_rate = rates
    cost = (
        input_tokens * input_rate
        + (usage.output_tokens or 0) * output_rate
        + cache_read * cache_read_rate
        + cache_write * cache_write_rate
    )
    return cost, key


def _rates(entry: dict[str, Any], prompt_tokens: int) -> tuple[float, float, float, float] | None:
    """(input, output, cache read, cache write) per-token rates for a prompt this size."""
    suffix = _threshold_suffix(entry, prompt_tokens)

    def rate(name: str) -> float | None:
        value = entry.get(f"{name}{suffix}", entry.get(name)) if suffix else entry.get(name)
        return float(value) if isinstance(value, int | float) else None

    input_rate = rate(_INPUT)
    output_rate = rate(_OUTPUT)
    if input_rate is None or output_rate is None or input_rate <= 0 or output_rate <= 0:
        return None
    cache_read_rate = rate(_CACHE_READ)
    cache_write_rate = rate(_CACHE_WRITE)
    return (
        input_rate,
        output_rate,
        input_rate if cache_read_rate is None else cache_read_rate,
        input_rate if cache_write_rate is None else cache_write_rate,
    )


def _threshold_suffix(entry: dict[str, Any], prompt_tokens: int) -> str:
    """`_above_200k_tokens` for the highest threshold the prompt exceeds, else ""."""
    best: tuple[int, str] = (0, "")
    for name in entry:
        match = _THRESHOLD_KEY.match(name)
        if match is None:
            continue
        threshold = int(match[1]) * (1000 if match[2] else 1)
        if prompt_tokens > threshold > best[0]:
            best = (threshold, f"_above_{match[1]}{match[2]}_tokens")
    return best[1]
