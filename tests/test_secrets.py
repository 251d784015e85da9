"""Secrets never reach the database: header and URL redaction, scrubbing, the file's bytes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_fixtures import chain_of, context

from interlock.detectors import DETECTORS, check_pattern, record_detectors
from interlock.policy.base import Policy, PolicyContext
from interlock.secrets import (
    Scrubber,
    redact_headers,
    redact_url,
    secret_values,
)
from recorder.models import CallRecord, JudgeRecord, PolicyEventRecord, StageRecord
from recorder.writer import RecorderWriter

KEY = "sk-proj-4f9aZq81LmXv0TqW7yBc2dEe5Rr3"
COOKIE = "sess-8d1f0c7a9b3e44e1"


@pytest.mark.parametrize("name", ["x-api-key", "X-Api-Key", "api-key", "x-goog-api-key"])
def test_key_headers(name: str) -> None:
    redacted = redact_headers([(name, KEY), ("content-type", "application/json")])
    assert redacted == {
        name: f"<redacted len={len(KEY)}>",
        "content-type": "application/json",
    }


@pytest.mark.parametrize("name", ["Authorization", "authorization", "Proxy-Authorization"])
def test_authorization_keeps_only_the_scheme(name: str) -> None:
    redacted = redact_headers([(name, f"Bearer {KEY}")])[name]
    assert redacted == f"Bearer <redacted len={len(KEY)}>"
    assert KEY[-4:] not in redacted and KEY[:6] not in redacted
    assert redact_headers([(name, KEY)])[name] == f"<redacted len={len(KEY)}>"


def test_cookies_keep_names_and_attributes_not_values() -> None:
    redacted = redact_headers(
        [
            ("Cookie", f"session={COOKIE}; theme=dark"),
            ("Set-Cookie", f"session={COOKIE}; Path=/; HttpOnly"),
        ]
    )
    assert redacted["Cookie"] == f"session=<redacted len={len(COOKIE)}>; theme=<redacted len=4>"
    assert redacted["Set-Cookie"] == f"session=<redacted len={len(COOKIE)}>; Path=/; HttpOnly"


def test_repeated_headers_are_joined() -> None:
    redacted = redact_headers([("Accept", "a"), ("Accept", "b"), ("x-api-key", KEY), ("x-api-key", COOKIE)])
    assert redacted["Accept"] == "a, b"
    assert redacted["x-api-key"] == f"<redacted len={len(KEY)}>, <redacted len={len(COOKIE)}>"


@pytest.mark.parametrize("param", ["key", "api_key", "api-key", "access_token", "token", "KEY", "Api_Key"])
def test_url_credentials(param: str) -> None:
    url = f"https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent?alt=sse&{param}={KEY}"
    assert redact_url(url) == (
        f"https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent?alt=sse&{param}=<redacted>"
    )


def test_url_without_credentials_is_unchanged() -> None:
    for url in (
        "https://api.openai.com/v1/chat/completions",
        "https://h/p?beta=true&monkey=1&keys=2",
    ):
        assert redact_url(url) == url


def test_secret_values() -> None:
    found = secret_values(
        [
            ("Authorization", f"Bearer {KEY}"),
            ("x-goog-api-key", "goog-key-123456"),
            ("Cookie", f"session={COOKIE}; theme=dark"),
            ("content-type", "application/json"),
        ],
        "https://h/p?alt=sse&key=abc%2Bdef%2Fghi&other=visible",
    )
    assert set(found) == {
        KEY,
        "goog-key-123456",
        COOKIE,
        "dark",
        "abc%2Bdef%2Fghi",
        "abc+def/ghi",
    }
    assert "Bearer" not in " ".join(found)


def test_scrub_str_bytes_and_nested() -> None:
    secrets = [KEY, COOKIE]
    assert Scrubber(secrets)(f"key is {KEY}!") == "key is <redacted>!"
    assert Scrubber(secrets)(f'data: {{"k": "{KEY}"}}\n\n'.encode()) == b'data: {"k": "<redacted>"}\n\n'
    nested = {
        "a": [KEY, {"b": (f"x{COOKIE}y", 3, None, 1.5, True)}],
        KEY: "key as a key",
    }
    assert Scrubber(secrets)(nested) == {
        "a": ["<redacted>", {"b": ("x<redacted>y", 3, None, 1.5, True)}],
        "<redacted>": "key as a key",
    }


def test_a_container_shared_by_two_stages_is_scrubbed_in_both() -> None:
    """A body nobody changed is one object in both of its stages: its texts are searched
    once and rewritten wherever they occur."""
    body = {"messages": [{"role": "user", "content": f"use {KEY}"}]}
    stages = [StageRecord(stage="request_original", body=body), StageRecord(stage="request_final", body=body)]
    scrubbed = Scrubber([KEY])(stages)
    assert [stage.body for stage in scrubbed] == [{"messages": [{"role": "user", "content": "use <redacted>"}]}] * 2
    assert body["messages"][0]["content"] == f"use {KEY}"  # the original is untouched


_LEAF_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.sampled_from(["", "x", KEY, f"a{KEY}b"])
)
_NESTED = st.recursive(
    _LEAF_VALUES | st.sampled_from([KEY.encode(), b"\xff" + KEY.encode()]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.sampled_from(["k", KEY]), inner, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_NESTED)
def test_no_secret_is_left_at_any_depth(value: Any) -> None:
    scrubbed = Scrubber([KEY])({"a": value, "again": value})  # the same objects twice
    assert KEY not in repr(scrubbed) and KEY.encode() not in repr(scrubbed).encode()
    if KEY not in repr(value):
        assert scrubbed == {"a": value, "again": value}


def test_scrub_ignores_short_values() -> None:
    assert Scrubber(["dark"])("theme=dark") == "theme=dark"
    assert Scrubber(["abc", ""])(b"abc") == b"abc"


def secret_everywhere() -> CallRecord:
    """A call whose client put the key in every field a record carries."""
    return CallRecord(
        call_id="call-1",
        started_at=1795433522.0,
        ended_at=1795433523.0,
        provider="openai",
        dialect="openai-chat",
        host="api.openai.com",
        path="/v1/chat/completions",
        error=f"upstream said: invalid key {KEY}",
        verdict="blocked",
        prompt_text=f"my key is {KEY}",
        response_text=f"your key {KEY} is leaked",
        stages=[
            StageRecord(
                stage="request_original",
                headers={"x-echo": KEY},
                body={"messages": [{"role": "user", "content": f"use {KEY}"}]},
            ),
            StageRecord(stage="request_final", body={"messages": [], "meta": {KEY: KEY}}),
            StageRecord(stage="response_original", raw=f'data: {{"text": "{KEY}"}}\n\n'.encode()),
            StageRecord(stage="response_final", raw=KEY.encode(), note=f"truncated at {KEY}"),
        ],
        events=[PolicyEventRecord(policy="p", action="blocked", reason=KEY, details={"k": [KEY]}, at=1.0)],
        judgements=[
            JudgeRecord(
                tool_call_id="t",
                tool_name="bash",
                arguments={"cmd": f"curl -H 'x-api-key: {KEY}'"},
                judge_model="gpt-4o-mini",
                prompt=[{"role": "user", "content": KEY}],
                raw_answer=KEY,
                explanation=KEY,
                decision="blocked",
                error=KEY,
                at=1.0,
            )
        ],
    )


def test_scrub_covers_every_field_of_a_record() -> None:
    record = secret_everywhere()
    assert KEY in record.model_dump_json()
    scrubbed = Scrubber([KEY])(record)
    assert KEY not in scrubbed.model_dump_json()
    assert KEY.encode() not in b"".join(stage.raw or b"" for stage in scrubbed.stages)
    assert scrubbed.prompt_text == "my key is <redacted>"
    assert scrubbed.stages[3].raw == b"<redacted>"
    assert scrubbed.judgements[0].arguments == {"cmd": "curl -H 'x-api-key: <redacted>'"}
    assert record.prompt_text == f"my key is {KEY}"  # the original is untouched


def test_scrub_covers_the_exact_bytes_a_cassette_replays() -> None:
    """`StageRecord.exact` is never stored, but a cassette writes it: scrubbed like the rest."""
    body = {"text": f"key {KEY}"}
    stage = StageRecord(stage="response_original", body=body, exact=json.dumps(body).encode())
    scrubbed = Scrubber([KEY])(stage)
    assert scrubbed.exact is not None and KEY.encode() not in scrubbed.exact
    assert json.loads(scrubbed.exact) == {"text": "key <redacted>"}


def database_bytes(db_path: Path) -> bytes:
    files = sorted(db_path.parent.glob(db_path.name + "*"))  # the db, -wal and -shm
    assert db_path in files
    return b"".join(path.read_bytes() for path in files)


def contains_key(data: bytes) -> bool:
    # the full-text index stores lowercased tokens: look for the key's longest one too
    return KEY.encode() in data or KEY.split("-")[-1].lower().encode() in data


@pytest.mark.parametrize("scrubbed", [True, False])
async def test_secret_never_reaches_the_database_file(tmp_path: Path, scrubbed: bool) -> None:
    db_path = tmp_path / "interlock.db"
    record = secret_everywhere()
    if scrubbed:
        record = Scrubber(secret_values([("Authorization", f"Bearer {KEY}")], "https://h/p"))(record)
    writer = RecorderWriter(str(db_path))
    await writer.start()
    writer.submit(record)
    for _ in range(2000):  # until written: the WAL holds it, not yet the main file
        if writer.stats.written:
            break
        await asyncio.sleep(0.005)
    assert writer.stats.written == 1
    assert Path(f"{db_path}-wal").exists()
    while_open = database_bytes(db_path)
    await writer.stop()
    after_close = database_bytes(db_path)
    # unscrubbed, the key is in the files: the check can see it
    assert contains_key(while_open) is not scrubbed
    assert contains_key(after_close) is not scrubbed


AWS = "AKIAIOSFODNN7EXAMPLE"


def key_scrubber(*secrets: str, extra: dict[str, str] | None = None) -> Scrubber:
    return Scrubber(secrets, record_detectors([extra or {}]))


def test_detected_keys_become_their_kind_in_str_bytes_and_keys() -> None:
    scrub = key_scrubber()
    assert scrub(f"use {KEY} and {AWS}.") == "use <redacted:openai_key> and <redacted:aws_access_key_id>."
    assert scrub(f"data: {AWS}\n\n".encode()) == b"data: <redacted:aws_access_key_id>\n\n"
    assert scrub({KEY: [AWS]}) == {"<redacted:openai_key>": ["<redacted:aws_access_key_id>"]}


def test_e_mail_is_only_scrubbed_when_a_redact_policy_asks_for_it() -> None:
    assert key_scrubber()("mail jane@example.org") == "mail jane@example.org"
    chain = chain_of({"policy": "redact", "detectors": ["email"], "patterns": {"ticket": r"ACME-\d+"}})
    scrub = Scrubber([], chain.record_detectors)
    assert scrub(f"mail jane@example.org, ACME-12, {AWS}") == (
        "mail <redacted:email>, <redacted:ticket>, <redacted:aws_access_key_id>"
    )


def test_exact_secrets_go_first_then_the_detectors() -> None:
    header_key = "sk-test-SECRET-0123456789abcdef"
    assert key_scrubber(header_key)(f"{header_key} {KEY}") == "<redacted> <redacted:openai_key>"


def test_a_clean_value_comes_back_as_the_same_object() -> None:
    body = {"messages": [{"role": "user", "content": "nothing to see " * 1000}], "n": 1}
    assert key_scrubber(KEY)(body) is body


def test_bytes_that_are_not_utf8_round_trip() -> None:
    raw = b"\xff\xfe gzip-ish \x8b " + AWS.encode() + b" \xc3"
    assert key_scrubber()(raw) == b"\xff\xfe gzip-ish \x8b <redacted:aws_access_key_id> \xc3"
    assert key_scrubber()(b"\xff\x00 clean") == b"\xff\x00 clean"


def test_a_name_taken_by_another_pattern_keeps_both() -> None:
    detectors = record_detectors([{"ticket": r"ACME-\d+"}, {"ticket": r"TCK-\d+"}])
    scrub = Scrubber([], detectors)
    assert scrub("ACME-1 TCK-2") == "<redacted:ticket> <redacted:1.ticket>"


@pytest.mark.parametrize("pattern", ["a*", "(x)?", ""])
def test_a_pattern_matching_nothing_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="matches the empty string"):
        check_pattern(pattern)


def test_the_record_scrubs_every_field_with_detectors() -> None:
    record = secret_everywhere()
    dirty = record.model_copy(update={"prompt_text": f"aws {AWS}", "response_text": f"-- {AWS} --"})
    scrubbed = key_scrubber()(dirty)
    dumped = scrubbed.model_dump_json()
    assert KEY not in dumped and AWS not in dumped
    assert scrubbed.prompt_text == "aws <redacted:aws_access_key_id>"
    assert scrubbed.stages[2].raw == b'data: {"text": "<redacted:openai_key>"}\n\n'


class QuotingPolicy(Policy):
    """Fails quoting the request's text, as a KeyError on a value would."""

    name = "quoting"

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        raise KeyError(request["messages"][0]["content"])


async def test_a_failing_policy_quoting_a_key_logs_and_records_its_kind(caplog: pytest.LogCaptureFixture) -> None:
    chain = chain_of({"policy": "test_secrets:QuotingPolicy"})
    ctx = context("openai-chat")
    request = {"model": "m", "messages": [{"role": "user", "content": f"deploy {KEY}"}]}
    assert await chain.request(ctx, request) is request  # on_error: allow
    (event,) = ctx.events
    assert event.reason == "KeyError: 'deploy <redacted:openai_key>'"
    assert "<redacted:openai_key>" in caplog.text and KEY not in caplog.text


def test_kinds_names_what_the_detectors_find() -> None:
    scrub = key_scrubber()
    assert scrub.kinds({"content": [f"a {AWS}", {"t": KEY}]}) == {"aws_access_key_id", "openai_key"}
    assert scrub.kinds({"content": "clean"}) == set()
    assert Scrubber([KEY]).kinds(KEY) == set()  # exact secrets are not detections


FRAGMENTS = [KEY, AWS, "sk-", "AKIA", "ACME-7", "x", " ", "jane@example.org", "\n", "eyJ", "ä"]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=6).map("".join), max_size=8))
def test_rewriting_only_the_texts_found_equals_rewriting_every_text(texts: list[str]) -> None:
    """Positions map each hit to its own text: nothing a detector matches is skipped."""
    detectors = record_detectors([{"email": DETECTORS["email"]}])
    expected = []
    for text in texts:
        text = text.replace(KEY, "<redacted>")
        expected.append(detectors.sub(text, lambda name: f"<redacted:{name}>"))
    value = {"texts": texts, "raw": [t.encode() for t in texts]}
    assert Scrubber([KEY], detectors)(value) == {"texts": expected, "raw": [t.encode() for t in expected]}
