"""Pricing from litellm's bundled cost map, without importing litellm."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from interlock.neutral import Usage
from recorder import cost
from recorder.cost import load_cost_map, price


def rates(key: str) -> dict[str, Any]:
    return load_cost_map()[key]


def test_gpt_4o_mini_by_hand() -> None:
    r = rates("gpt-4o-mini")
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=800)
    expected = (
        1200 * r["input_cost_per_token"] + 300 * r["output_cost_per_token"] + 800 * r["cache_read_input_token_cost"]
    )
    cost_usd, key = price("gpt-4o-mini", "openai", usage)
    assert key == "gpt-4o-mini"
    assert cost_usd is not None
    assert cost_usd > 0
    assert cost_usd == pytest.approx(expected)


def test_claude_sonnet_4_5_with_cache_tokens_by_hand() -> None:
    r = rates("claude-sonnet-4-5-20250929")
    usage = Usage(
        input_tokens=3000,
        output_tokens=100,
        cache_read_tokens=5000,
        cache_write_tokens=2000,
    )
    expected = (
        3000 * r["input_cost_per_token"]
        + 100 * r["output_cost_per_token"]
        + 5000 * r["cache_read_input_token_cost"]
        + 2000 * r["cache_creation_input_token_cost"]
    )
    cost_usd, key = price("claude-sonnet-4-5-20250929", "anthropic", usage)
    assert key == "claude-sonnet-4-5-20250929"
    assert cost_usd == pytest.approx(expected)
    # the cache rates really differ from the input rate: each part has its own price
    assert r["cache_read_input_token_cost"] < r["input_cost_per_token"] < r["cache_creation_input_token_cost"]


def test_unknown_model_has_no_price() -> None:
    assert price("no-such-model-anywhere", "openai", Usage(input_tokens=10, output_tokens=10)) == (None, None)
    assert price(None, "openai", Usage(input_tokens=10, output_tokens=10)) == (
        None,
        None,
    )


def test_no_usage_has_no_price() -> None:
    assert price("gpt-4o-mini", "openai", Usage()) == (None, None)


def test_provider_prefixed_key() -> None:
    assert "mistral-large-latest" not in load_cost_map()
    r = rates("mistral/mistral-large-latest")
    cost_usd, key = price("mistral-large-latest", "mistral", Usage(input_tokens=100, output_tokens=10))
    assert key == "mistral/mistral-large-latest"
    assert cost_usd == pytest.approx(100 * r["input_cost_per_token"] + 10 * r["output_cost_per_token"])


def test_date_suffix_stripped_only_to_a_key_the_map_has() -> None:
    assert "gpt-4o-mini-2099-01-01" not in load_cost_map()
    _, key = price("gpt-4o-mini-2099-01-01", "openai", Usage(input_tokens=1, output_tokens=1))
    assert key == "gpt-4o-mini"
    _, key = price(
        "claude-sonnet-4-5-20990101",
        "anthropic",
        Usage(input_tokens=1, output_tokens=1),
    )
    assert key == "claude-sonnet-4-5"
    assert price("imaginary-model-20250101", "openai", Usage(input_tokens=1, output_tokens=1)) == (None, None)


def test_dated_entry_with_its_own_price_wins() -> None:
    dated, undated = rates("gpt-4o-2024-05-13"), rates("gpt-4o")
    assert dated["input_cost_per_token"] != undated["input_cost_per_token"]
    cost_usd, key = price("gpt-4o-2024-05-13", "openai", Usage(input_tokens=1000, output_tokens=0))
    assert key == "gpt-4o-2024-05-13"
    assert cost_usd == pytest.approx(1000 * dated["input_cost_per_token"])


def test_threshold_rates_above_a_long_prompt() -> None:
    r = rates("gemini-2.5-pro")
    usage = Usage(input_tokens=250_000, output_tokens=1000)
    expected = (
        250_000 * r["input_cost_per_token_above_200k_tokens"] + 1000 * r["output_cost_per_token_above_200k_tokens"]
    )
    assert price("gemini-2.5-pro", "gemini", usage)[0] == pytest.approx(expected)
    short = Usage(input_tokens=1000, output_tokens=1000)
    expected_short = 1000 * r["input_cost_per_token"] + 1000 * r["output_cost_per_token"]
    assert price("gemini-2.5-pro", "gemini", short)[0] == pytest.approx(expected_short)


@pytest.fixture
def fake_map(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """A controlled cost map, for rules the real map only shows by accident."""
    entries: dict[str, dict[str, Any]] = {
        "free-input": {"input_cost_per_token": 0.0, "output_cost_per_token": 1e-6},
        "no-output": {"input_cost_per_token": 1e-6},
        "no-cache-rates": {"input_cost_per_token": 2e-6, "output_cost_per_token": 4e-6},
        "free-cache": {
            "input_cost_per_token": 2e-6,
            "output_cost_per_token": 4e-6,
            "cache_read_input_token_cost": 0.0,
        },
        "tiered": {
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 1e-6,
            "tiered_pricing": [{"input_cost_per_token": 5e-7, "range": [0, 1000]}],
        },
    }
    monkeypatch.setattr(cost, "load_cost_map", lambda: entries)
    return entries


@pytest.mark.usefixtures("fake_map")
def test_zero_or_missing_unit_price_is_unknown_not_zero() -> None:
    usage = Usage(input_tokens=10, output_tokens=10)
    assert price("free-input", "x", usage) == (None, None)
    assert price("no-output", "x", usage) == (None, None)
    assert price("tiered", "x", usage) == (None, None)


@pytest.mark.usefixtures("fake_map")
def test_missing_cache_rate_falls_back_to_input_rate_but_explicit_zero_stays() -> None:
    usage = Usage(input_tokens=10, output_tokens=10, cache_read_tokens=100, cache_write_tokens=50)
    assert price("no-cache-rates", "x", usage)[0] == pytest.approx(10 * 2e-6 + 10 * 4e-6 + 150 * 2e-6)
    assert price("free-cache", "x", usage)[0] == pytest.approx(10 * 2e-6 + 10 * 4e-6 + 0 + 50 * 2e-6)


def test_pricing_does_not_import_litellm() -> None:
    code = (
        "import sys\n"
        "from recorder.cost import price\n"
        "from interlock.neutral import Usage\n"
        "cost, key = price('gpt-4o-mini', 'openai', Usage(input_tokens=10, output_tokens=10))\n"
        "assert key == 'gpt-4o-mini' and cost > 0, (cost, key)\n"
        "assert 'litellm' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
