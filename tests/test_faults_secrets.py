"""Fault suite, secrets (issue 9): keys pasted into a prompt or echoed by a provider never
reach the database in any stage, whatever the policy chain; `redact` decides only what
goes upstream (`mode: request`) or nothing (`mode: record_only`); a `?key=` query value
never shows in mitmdump's flow line. Real mitmdump, real SDKs, both dialects, streamed
and not, a concurrent paced stream throughout."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import pytest
from fault_kit import PacedStream, assert_accounted, assert_no_secret, report
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from mock_provider import MockProvider
from wire_scenarios import SCENARIOS, Scenario

# Each case measures a concurrent stream's pacing: nothing else runs meanwhile (tests/solo.py).
pytestmark = pytest.mark.solo

LEAKY = "leaky_secrets"  # a scenario whose answer repeats the keys (served by name)
ANSWER_BOUND_S = 10.0
TICKET_PATTERN = r"ACME-\d{6}"
MODES: dict[str, list[dict[str, Any]]] = {
    "no_policy": [],
    "redact": [{"policy": "redact", "patterns": {"ticket": TICKET_PATTERN}}],
    "record_only": [{"policy": "redact", "patterns": {"ticket": TICKET_PATTERN}, "mode": "record_only"}],
}


def fresh_secrets() -> dict[str, str]:
    return {
        "openai_key": "sk-proj-" + secrets.token_hex(20),
        "aws_access_key_id": "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
        "ticket": f"ACME-{secrets.randbelow(900_000) + 100_000}",
    }


def prompt(values: dict[str, str], stream: bool) -> str:
    return (
        f"[[mock:{LEAKY}]] stream={stream}: deploy with {values['openai_key']} and "
        f"{values['aws_access_key_id']}, see {values['ticket']}"
    )


def call(clients: ClientFactory, dialect: str, stream: bool, text: str) -> str:
    """One SDK call; returns the text the client got."""
    messages: Any = [{"role": "user", "content": text}]
    if dialect == "openai":
        openai = clients.openai()
        if stream:
            pieces = openai.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
        return openai.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content or ""
    anthropic = clients.anthropic()
    if stream:
        with anthropic.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=messages) as events:
            content: list[Any] = events.get_final_message().content
    else:
        content = anthropic.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=messages).content
    return "".join(block.text for block in content if block.type == "text")


def stage_text(db: CallsDB, call_id: str, stage: str) -> str:
    (row,) = db.rows("select body_json, raw from stages where call_id = ? and stage = ?", (call_id, stage))
    return (row["body_json"] or "") + (row["raw"] or b"").decode("utf-8", "replace")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_secrets_in_prompts_and_answers_never_reach_the_database(
    start_proxy: ProxyLauncher,
    make_clients: Any,
    mock_provider: MockProvider,
    api_key: str,
    mode: str,
) -> None:
    values = fresh_secrets()
    key = values["openai_key"]  # streamed in two pieces, as a model would
    SCENARIOS[LEAKY] = Scenario(text=["Noted: ", key[:12], f"{key[12:]} and {values['aws_access_key_id']}", " ok"])
    proxy = start_proxy(config={"policies": MODES[mode]})
    clients = make_clients(proxy)
    paced = PacedStream(clients)
    paced.start()
    upstream_bodies, slowest = [], 0.0
    cases = [(dialect, stream) for dialect in ("openai", "anthropic") for stream in (False, True)]
    try:
        for dialect, stream in cases:
            before = len(mock_provider.exchanges)
            started = time.monotonic()
            answer = call(clients, dialect, stream, prompt(values, stream))
            slowest = max(slowest, time.monotonic() - started)
            assert values["openai_key"] in answer  # the client gets the answer as sent
            sent = [e for e in mock_provider.exchanges[before:] if LEAKY.encode() in e.body]
            upstream_bodies.append(sent[0].body.decode())
    finally:
        paced.finish()
    paced.assert_paced()
    assert slowest < ANSWER_BOUND_S

    # (1) what went upstream: scrubbed only by `redact` in its default mode
    for body in upstream_bodies:
        for kind, value in values.items():
            assert (value in body) is (mode != "redact"), (kind, body)
            assert (f"[REDACTED:{kind}]" in body) is (mode == "redact")

    totals = assert_accounted(proxy, len(cases) + paced.calls)  # stops the proxy: every record written
    db_path = proxy.db_path
    assert db_path is not None
    db = CallsDB(db_path)
    leaky = [r["call_id"] for r in db.rows("select call_id from calls where prompt_text like ?", (f"%{LEAKY}%",))]
    # (2) the stages show where each secret was; the custom pattern only where configured
    recorded_kinds = [kind for kind in values if kind != "ticket" or mode != "no_policy"]
    for call_id in leaky:
        original = stage_text(db, call_id, "request_original")
        final = stage_text(db, call_id, "request_final")
        for kind in recorded_kinds:
            assert f"<redacted:{kind}>" in original
            assert (f"[REDACTED:{kind}]" if mode == "redact" else f"<redacted:{kind}>") in final
        streamed = db.rows("select stream from calls where call_id = ?", (call_id,))[0]["stream"]
        for stage in ("response_original", "response_final"):
            assert "<redacted:openai_key> and <redacted:aws_access_key_id>" in stage_text(db, call_id, stage)
            if streamed:  # the key's pieces were in the raw stream: it is not kept
                (row,) = db.rows("select raw, note from stages where call_id = ? and stage = ?", (call_id, stage))
                assert row["raw"] is None
                assert row["note"] == "raw stream not kept: its message held aws_access_key_id, openai_key"
    if mode == "no_policy":  # not a secret to anyone: recorded as sent
        assert values["ticket"] in stage_text(db, leaky[0], "request_original")
    # (3) full-text search finds the marker, not the secret
    token = values["openai_key"].split("-")[-1]
    assert len(db.rows("select rowid from calls_fts where calls_fts match ?", (f'"{token}"',))) == 0
    found = db.rows("select rowid from calls_fts where calls_fts match ?", ('"redacted openai_key"',))
    assert len(found) >= len(cases)

    assert len(leaky) == len(cases)
    hidden = [api_key, key, key[12:], values["aws_access_key_id"], token.lower()]
    assert_no_secret(db_path, *hidden, *([values["ticket"]] if mode != "no_policy" else []))
    report(
        f"secrets in prompt and answer ({mode})",
        "no secret in the database; upstream " + ("scrubbed" if mode == "redact" else "unchanged"),
        answer_s=round(slowest, 3),
        records=totals.written,
        calls=len(cases) + paced.calls,
        dropped=totals.dropped,
        paced_max_gap_s=round(paced.max_gap, 3),
    )


WIDE = {"COLUMNS": "500", "LINES": "50"}  # the dumper shows the whole URL


def send_with_query_key(proxy: ProxyProcess, clients: ClientFactory, key: str) -> list[int]:
    """A matched call and an unmatched request, both with the key in the query."""
    client = clients.raw()
    matched = client.post(
        f"https://api.openai.com/v1/chat/completions?alt=sse&key={key}",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {clients.api_key}"},
    )
    unmatched = client.get(f"https://api.openai.com/v1/files/f1?key={key}&api_key={key}&x=1")
    assert "x-interlock-call-id" in matched.headers and "x-interlock-call-id" not in unmatched.headers
    return [matched.status_code, unmatched.status_code]


def test_query_key_never_shows_in_mitmdumps_flow_line(
    start_proxy: ProxyLauncher, make_clients: Any, mock_provider: MockProvider, api_key: str
) -> None:
    key = "AIzaSy" + secrets.token_urlsafe(26)
    proxy = start_proxy(env=WIDE)
    clients = make_clients(proxy)
    paced = PacedStream(clients)
    paced.start()
    started = time.monotonic()
    try:
        statuses = send_with_query_key(proxy, clients, key)
    finally:
        paced.finish()
    answer_s = time.monotonic() - started
    paced.assert_paced()
    assert statuses == [200, 404]
    # upstream still gets the key
    assert any(e.path.endswith(f"&key={key}") for e in mock_provider.exchanges)
    assert any(e.path == f"/v1/files/f1?key={key}&api_key={key}&x=1" for e in mock_provider.exchanges)
    totals = assert_accounted(proxy, 1 + paced.calls)
    output = proxy.output()
    assert key not in output and key[6:16] not in output, output
    # the rest of each line is there (the URL map_remote sent it to)
    assert re.search(r"POST http://\S+/v1/chat/completions\?alt=sse&key=<redacted>\n", output), output
    assert re.search(r"GET http://\S+/v1/files/f1\?key=<redacted>&api_key=<redacted>&x=1\n", output), output
    assert "<< 200 OK" in output and "<< 404 Not Found" in output
    assert_no_secret(proxy.db_path, key, api_key)
    assert proxy.addon_errors() == []
    report(
        "?key= in the URL, mitmdump flow line (COLUMNS=500)",
        "key not in the output, the rest of the line is",
        answer_s=round(answer_s, 3),
        records=totals.written,
        calls=1 + paced.calls,
        dropped=totals.dropped,
        paced_max_gap_s=round(paced.max_gap, 3),
    )


def test_query_key_never_shows_when_the_upstream_fails(
    start_proxy: ProxyLauncher, make_clients: Any, api_key: str
) -> None:
    """An upstream that refuses the connection: mitmdump's error line and log lines."""
    key = "AIzaSy" + secrets.token_urlsafe(26)
    proxy = start_proxy(
        env=WIDE, extra_args=["--map-remote", r"|^http://127\.0\.0\.1:\d+/v1/files/f2|http://127.0.0.1:9/v1/files/f2"]
    )
    clients = make_clients(proxy)
    started = time.monotonic()
    response = clients.raw().get(f"https://api.openai.com/v1/files/f2?key={key}")
    answer_s = time.monotonic() - started
    assert response.status_code == 502
    totals = assert_accounted(proxy, 0)
    output = proxy.output()
    assert key not in output and key[6:16] not in output, output
    assert re.search(r"GET http://127.0.0.1:9/v1/files/f2\?key=<redacted>\n", output), output
    report(
        "?key= in the URL, upstream refuses the connection",
        "502; key not in the output",
        answer_s=round(answer_s, 3),
        records=totals.written,
        calls=0,
        dropped=totals.dropped,
    )
