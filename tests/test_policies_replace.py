"""`replace` finds every match however the stream is split.

Property: for any text, any split of it into deltas and any list of literal or regex
rules (including matches spanning deltas, case-insensitive rules, `\\b`, `$`, lookahead
and lookbehind), the streamed output equals Python's `re.sub` of the rules, in order,
over the whole text. Checked on the policy itself and through the engine in both
dialects, read back with the official SDKs.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_fixtures import DIALECTS, chain_of, context, police_stream, sdk_summary, stream_violations
from wire_scenarios import Scenario, sse_for

from interlock.policy.chain import PolicyChain

ALPHABET = "abcxyAB é日-\n"
# Regexes with bounded matches (the policy refuses unbounded ones without max_match_length).
REGEXES = [
    r"ab",
    r"a[bc]{1,3}",
    r"colou?r",
    r"\bab\b",
    r"\Bb",
    r"x$",
    r"^a",
    r"ab(?=c)",
    r"(?<=x)y",
    r"(?<!a)b",
    r"a(?!b)",
    r"(a|bc)x",
    r"é日",
    r"(?P<w>[xy]{2})",
]


@st.composite
def rules(draw: st.DrawFn) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        regex = draw(st.booleans())
        find = draw(st.sampled_from(REGEXES)) if regex else draw(st.text(ALPHABET, min_size=1, max_size=5))
        replacement = draw(st.text("XYab", max_size=3))
        if regex and draw(st.booleans()):
            replacement += r"[\g<0>]"
        found.append({"find": find, "replace": replacement, "regex": regex, "ignore_case": draw(st.booleans())})
    return found


def whole_text(text: str, rules: list[dict[str, Any]]) -> str:
    for rule in rules:
        pattern = rule["find"] if rule["regex"] else re.escape(rule["find"])
        flags = re.IGNORECASE if rule["ignore_case"] else 0
        if rule["regex"]:
            text = re.sub(pattern, rule["replace"], text, flags=flags)
        else:
            text = re.sub(pattern, lambda _m, r=rule["replace"]: r, text, flags=flags)
    return text


def split(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(text)}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


async def stream_through(chain: PolicyChain, pieces: list[str]) -> str:
    ctx = context("openai-chat")
    out = [await chain.text(ctx, piece) for piece in pieces]
    return "".join(out) + await chain.text_end(ctx)


@settings(max_examples=400, deadline=None)
@given(text=st.text(ALPHABET, max_size=40), cuts=st.lists(st.integers(0, 40), max_size=12), found=rules())
async def test_streamed_replacement_equals_replacing_the_whole_text(
    text: str, cuts: list[int], found: list[dict[str, Any]]
) -> None:
    chain = chain_of({"policy": "replace", "rules": found})
    assert await stream_through(chain, split(text, cuts)) == whole_text(text, found)


@settings(max_examples=400, deadline=None)
@given(text=st.text(ALPHABET, max_size=40), cuts=st.lists(st.integers(0, 40), max_size=12), found=rules())
async def test_each_rule_in_its_own_policy_gives_the_same_result(
    text: str, cuts: list[int], found: list[dict[str, Any]]
) -> None:
    chain = chain_of(*({"policy": "replace", "rules": [rule]} for rule in found))
    assert await stream_through(chain, split(text, cuts)) == whole_text(text, found)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=100, deadline=None)
@given(
    text=st.text(ALPHABET.replace("\n", ""), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=8),
    found=rules(),
)
async def test_through_the_engine_the_sdk_reads_the_replaced_text(
    dialect: str, text: str, cuts: list[int], found: list[dict[str, Any]]
) -> None:
    s = Scenario(text=split(text, cuts))
    chunks = sse_for(dialect, s, "m")
    out, ctx = await police_stream(chain_of({"policy": "replace", "rules": found}), dialect, chunks)
    expected = whole_text(text, found)
    if expected:  # a message whose text all went away has no text block (and no empty one)
        assert stream_violations(dialect, out) == []
    assert sdk_summary(dialect, out)[0] == expected
    if expected != text:
        assert [e.action for e in ctx.events] == ["modified"]


async def test_matches_spanning_deltas_hold_back_only_what_they_need() -> None:
    """A tail that could begin `secret-token` is held; what cannot be part of a match flows at once."""
    chain = chain_of({"policy": "replace", "rules": [{"find": "secret-token", "replace": "***"}]})
    ctx = context("openai-chat")
    assert await chain.text(ctx, "Here is the secr") == "Here is the "
    assert await chain.text(ctx, "et-token and more text") == "*** and more text"
    assert await chain.text(ctx, " sec") == " "
    assert await chain.text(ctx, "ond") == "second"
    assert await chain.text_end(ctx) == ""


@pytest.mark.parametrize(
    "rule",
    [
        {"find": "secret-token"},
        {"find": "Secret", "ignore_case": True},
        {"find": r"sk-[a-z0-9]{8,20}", "regex": True},
        {"find": r"\bpassword\b", "regex": True},
        {"find": r"api(?=_key)", "regex": True},
    ],
)
async def test_a_delta_that_cannot_begin_a_match_is_forwarded_before_the_next_one(rule: dict[str, Any]) -> None:
    """A drip of deltas in which the pattern does not occur: each one reaches the client
    whole, when it arrives, not with the next."""
    chain = chain_of({"policy": "replace", "rules": [{**rule, "replace": "***"}]})
    ctx = context("openai-chat")
    for delta in ["The answer ", "is forty", "-two, ", "as al", "ways.\n"]:
        assert await chain.text(ctx, delta) == delta
    assert await chain.text_end(ctx) == ""


async def test_replacement_counts_are_recorded_per_side() -> None:
    chain = chain_of({"policy": "replace", "rules": [{"find": "a", "replace": "b"}], "apply_to": "both"})
    ctx = context("openai-chat")
    request = {"model": "m", "messages": [{"role": "system", "content": "aa"}, {"role": "user", "content": "a"}]}
    edited = await chain.request(ctx, request)
    assert [m["content"] for m in edited["messages"]] == ["bb", "b"]
    assert await chain.text(ctx, "a") + await chain.text_end(ctx) == "b"
    assert [(e.action, e.details["side"], e.details["replacements"]) for e in ctx.events] == [
        ("modified", "request", 3),
        ("modified", "response", 1),
    ]


async def test_literal_replacement_is_inserted_as_is() -> None:
    chain = chain_of({"policy": "replace", "rules": [{"find": "dir", "replace": r"C:\new\g<0>"}]})
    ctx = context("openai-chat")
    assert await chain.text(ctx, "a dir") + await chain.text_end(ctx) == r"a C:\new\g<0>"
