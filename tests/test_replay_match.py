"""Replay matching (`interlock.replay_match`): tolerant of key order and the ignored
paths, strict on what changes the answer, with the differing path named."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlock.cassette import CassetteEntry, CassetteRequest, CassetteResponse, Chunk
from interlock.config import ConfigError, parse_config
from interlock.replay_match import (
    DEFAULT_IGNORED_PATHS,
    IgnoredPaths,
    Miss,
    PathPattern,
    PathPatternError,
    ReplayIndex,
    ReplayRequest,
    format_path,
)

URL = "https://api.anthropic.com/v1/messages"
DIALECT = "anthropic-messages"
BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 1024,
    "metadata": {"user_id": '{"device_id":"d1","session_id":"s1"}'},
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
    ],
}


def entry(body: Any, call_id: str = "c1", url: str = URL, text: str = "answer") -> CassetteEntry:
    return CassetteEntry(
        call_id=call_id,
        recorded_at="2026-01-01T00:00:00Z",
        dialect=DIALECT,
        provider="anthropic",
        request=CassetteRequest(url=url, body=body),
        response=CassetteResponse(status=200, body=Chunk(t=0.1, text=text)),
    )


def live(body: Any, url: str = URL) -> ReplayRequest:
    return ReplayRequest("http", DIALECT, "POST", url, body)


def index(*entries: CassetteEntry, ignored: tuple[str, ...] = DEFAULT_IGNORED_PATHS) -> ReplayIndex:
    return ReplayIndex.of(entries, IgnoredPaths(ignored))


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON with every object's keys in another order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {key: shuffled(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [shuffled(item, rng) for item in value]
    return value


def copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


@given(st.randoms(use_true_random=False))
def test_key_order_never_matters(rng: random.Random) -> None:
    assert index(entry(BODY)).take(live(shuffled(BODY, rng))) == 0


def test_ignored_paths_are_tolerated() -> None:
    changed = copy(BODY)
    changed["metadata"]["user_id"] = '{"device_id":"d2","session_id":"s2"}'
    del changed["system"][0]["cache_control"]
    changed["messages"][2]["content"][0]["cache_control"] = {"type": "ephemeral"}
    changed["prompt_cache_key"] = "another-run"
    assert index(entry(BODY)).take(live(changed)) == 0


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda b: b["messages"][2]["content"][0].update(content="rainy"), "messages[2].content[0].content"),
        (lambda b: b.update(model="claude-opus-4-6"), "model"),
        (lambda b: b["tools"][0].update(name="get_time"), "tools[0].name"),
        (lambda b: b["messages"].append({"role": "user", "content": "and?"}), "messages[3]"),
        (lambda b: b.update(tool_choice={"type": "any"}), "tool_choice"),
        (lambda b: b.update(max_tokens=1024.0), "max_tokens"),
        (lambda b: b["metadata"].update(other="x"), "metadata.other"),
    ],
)
def test_what_changes_the_answer_is_a_miss_naming_the_path(edit: Any, path: str) -> None:
    changed = copy(BODY)
    edit(changed)
    found = index(entry(BODY, "c-closest")).take(live(changed))
    assert isinstance(found, Miss)
    assert found.paths == (path,) and found.parts == ()
    message = found.message("calls.jsonl")
    assert "c-closest" in message and "2026-01-01T00:00:00Z" in message and path in message


def test_the_closest_call_is_named_and_the_url_counts() -> None:
    near = copy(BODY)
    near["messages"][0]["content"] = "weather in Paris?"
    found = index(entry({"model": "x"}, "far"), entry(BODY, "near")).take(live(near))
    assert isinstance(found, Miss) and found.closest is not None
    assert found.closest.call_id == "near" and found.paths == ("messages[0].content",)
    other = index(entry(BODY)).take(live(BODY, "https://api.anthropic.com/v1/other"))
    assert isinstance(other, Miss) and other.parts == ("url",) and "its url (" + URL in other.message("c")


def test_same_key_answers_in_recorded_order_then_the_last_again() -> None:
    replay = index(entry(BODY, "first"), entry(BODY, "second"))
    assert [replay.entry(replay.take(live(BODY))).call_id for _ in range(4)] == [  # type: ignore[arg-type]
        "first",
        "second",
        "second",
        "second",
    ]


def test_an_empty_cassette_says_so() -> None:
    found = index().take(live(BODY))
    assert isinstance(found, Miss) and "holds no call" in found.message("empty.jsonl")


def test_a_long_difference_is_cut() -> None:
    found = index(entry({"a": list(range(20))})).take(live({"a": list(range(100, 120))}))
    assert isinstance(found, Miss) and len(found.paths) == 6 and found.more == 14
    assert "and 14 more" in found.message("c")


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        ("a.b", ("a", "b"), True),
        ("a.b", ("b",), False),
        ("**.x", ("x",), True),
        ("**.x", ("a", 0, "b", "x"), True),
        ("a[*].x", ("a", 3, "x"), True),
        ("a[*].x", ("a", "k", "x"), False),
        ("a[1]", ("a", 1), True),
        ("a.*.c", ("a", "b", "c"), True),
        ("a.**", ("a", "b"), True),
    ],
)
def test_path_patterns(pattern: str, path: tuple[str | int, ...], ignored: bool) -> None:
    value: Any = "leaf"
    for part in reversed(path):
        value = [None] * part + [value] if isinstance(part, int) else {part: value}
    stripped = IgnoredPaths([pattern]).strip(value)
    assert (stripped != value) is ignored, (stripped, value)


def test_an_ignored_list_item_keeps_the_indices_after_it() -> None:
    assert IgnoredPaths(["a[0]"]).strip({"a": [1, 2]}) == {"a": ["<ignored>", 2]}


@pytest.mark.parametrize("text", ["", "a..b", "a[x]", "a[", "."])
def test_bad_path_patterns_are_refused(text: str) -> None:
    with pytest.raises(PathPatternError):
        PathPattern.parse(text)


def test_paths_are_written_as_people_read_them() -> None:
    assert format_path(("messages", 2, "content")) == "messages[2].content"
    assert format_path(()) == "(the body)"


def test_replay_config_adds_and_replaces_ignored_paths() -> None:
    config = parse_config({"replay": {"extra_ignore_paths": ["request.user_prompt_id"]}}).replay
    assert config.ignored() == [*DEFAULT_IGNORED_PATHS, "request.user_prompt_id"]
    assert parse_config({"replay": {"ignore_paths": []}}).replay.ignored() == []
    with pytest.raises(ConfigError, match=r"replay\.ignore_paths"):
        parse_config({"replay": {"ignore_paths": ["a..b"]}})
    with pytest.raises(ConfigError, match=r"replay\.ignore"):
        parse_config({"replay": {"ignore": ["a"]}})
