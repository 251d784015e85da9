"""Cassettes from a recorder database (`recorder.cassette_export.entries_from_db` and
`just cassette`), recorded through the real proxy from the real SDKs.

The module records one database: an OpenAI chat stream and a whole answer (session
`s1`), an Anthropic stream (session `s2`), and a call whose provider never answered (the
client gave up: no response). A stream's entry holds the bytes upstream sent, cut where
and when they arrived; a whole body is its JSON again; the call without an answer is
reported, not written.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from harness import REPO, MitmCA, ProxyLauncher
from harness_clients import ClientFactory
from harness_db import CallsDB
from mock_provider import MockProvider

from interlock.cassette import CassetteEntry, read
from recorder.cassette_cli import main
from recorder.cassette_export import NotReplayable, entries_from_db

CALL_ID = "x-interlock-call-id"
SESSION = "x-interlock-session"
API_KEY = "sk-test-CASSETTE-SECRET-0123456789"
WAIT_S = 10.0


@dataclass(frozen=True)
class Recorded:
    db: Path
    ids: dict[str, str]  # what was asked -> its call id
    sent: dict[str, bytes]  # a stream -> the bytes the mock sent


def record_calls(clients: ClientFactory, mock: MockProvider) -> tuple[dict[str, str], dict[str, bytes]]:
    ids: dict[str, str] = {}
    sent: dict[str, bytes] = {}
    chat = clients.openai().chat.completions
    raw = chat.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Say hello. [[mock:text+slow]]"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={SESSION: "s1"},
    )
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    ids["openai_stream"] = raw.headers[CALL_ID]
    sent["openai_stream"] = mock.exchange(raw.headers["x-mock-request-id"]).sent

    whole = chat.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello."}], extra_headers={SESSION: "s1"}
    )
    assert whole.parse().choices[0].message.content
    ids["openai_whole"] = whole.headers[CALL_ID]

    with clients.anthropic().messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=256,
        messages=[{"role": "user", "content": "Say hello. [[mock:text+slow]]"}],
        extra_headers={SESSION: "s2"},
    ) as stream:
        assert stream.get_final_message().content
        ids["anthropic_stream"] = stream.response.headers[CALL_ID]
        sent["anthropic_stream"] = mock.exchange(stream.response.headers["x-mock-request-id"]).sent

    with pytest.raises(httpx2.TimeoutException):  # the provider never answers; the client gives up
        clients.raw().post(
            "https://api.openai.com/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello? [[mock:never]]"}]},
            headers={"authorization": f"Bearer {API_KEY}"},
            timeout=1.0,
        )
    return ids, sent


def wait_for_unanswered(db: CallsDB) -> str:
    deadline = time.monotonic() + WAIT_S
    while not (rows := db.rows("select call_id from calls where status is null")):
        assert time.monotonic() < deadline, "the unanswered call was not recorded"
        time.sleep(0.05)
    return str(rows[0]["call_id"])


@pytest.fixture(scope="module")
def recorded(start_module_proxy: ProxyLauncher, mitm_ca: MitmCA, mock_provider: MockProvider) -> Recorded:
    proxy = start_module_proxy()
    assert proxy.db_path is not None
    clients = ClientFactory(proxy.url, mitm_ca, API_KEY)
    try:
        ids, sent = record_calls(clients, mock_provider)
    finally:
        clients.close()
    db = CallsDB(proxy.db_path)
    for call_id in ids.values():
        db.wait_call(call_id)
    ids["unanswered"] = wait_for_unanswered(db)
    proxy.stop()
    return Recorded(proxy.db_path, ids, sent)


@pytest.fixture
def conn(recorded: Recorded) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(f"file:{recorded.db}?mode=ro", uri=True)
    yield connection
    connection.close()


def exported(conn: sqlite3.Connection, call_id: str) -> CassetteEntry | NotReplayable:
    [(found_id, found)] = list(entries_from_db(conn, "c.call_id = ?", (call_id,)))
    assert found_id == call_id
    return found


def stage(conn: sqlite3.Connection, call_id: str, name: str) -> sqlite3.Row:
    conn.row_factory = sqlite3.Row
    row: sqlite3.Row = conn.execute("select * from stages where call_id = ? and stage = ?", (call_id, name)).fetchone()
    return row


@pytest.mark.parametrize("asked", ["openai_stream", "anthropic_stream"])
def test_a_stream_exports_as_the_chunks_it_arrived_in(recorded: Recorded, conn: sqlite3.Connection, asked: str) -> None:
    call_id = recorded.ids[asked]
    entry = exported(conn, call_id)
    assert isinstance(entry, CassetteEntry)
    response = stage(conn, call_id, "response_original")
    chunks = entry.response.chunks or []
    assert entry.response.body is None and len(chunks) > 1
    assert b"".join(chunk.data for chunk in chunks) == response["raw"] == recorded.sent[asked]
    arrivals = json.loads(response["arrivals_json"])
    assert [(chunk.t, len(chunk.data)) for chunk in chunks] == [(t, size) for t, size in arrivals]
    times = [chunk.t for chunk in chunks]
    assert times == sorted(times) and times[-1] > times[0]  # `slow`: 50 ms between writes
    assert 0 < entry.response.t <= times[0]
    assert entry.response.status == 200 and ("content-type", "text/event-stream") in [
        (name.lower(), value.split(";")[0]) for name, value in entry.response.headers
    ]
    assert entry.request.body == json.loads(stage(conn, call_id, "request_final")["body_json"])
    assert entry.request.url.startswith("https://api.") and entry.transport == "http"
    assert "host" not in {name.lower() for name, _ in entry.request.headers}  # the URL names it, not the mock's


def test_a_whole_body_exports_as_json_that_parses_to_the_recorded_body(
    recorded: Recorded, conn: sqlite3.Connection
) -> None:
    call_id = recorded.ids["openai_whole"]
    entry = exported(conn, call_id)
    assert isinstance(entry, CassetteEntry)
    assert entry.response.chunks is None and entry.response.body is not None
    recorded_body = json.loads(stage(conn, call_id, "response_original")["body_json"])
    assert json.loads(entry.response.body.data) == recorded_body
    assert recorded_body["choices"][0]["message"]["content"]
    assert entry.note == "body re-serialised from its parsed JSON"  # the database keeps JSON, not bytes
    assert entry.request.url == "https://api.openai.com/v1/chat/completions"


def test_a_call_with_no_response_is_not_replayable(recorded: Recorded, conn: sqlite3.Connection) -> None:
    why = exported(conn, recorded.ids["unanswered"])
    assert isinstance(why, NotReplayable)
    assert f"call {recorded.ids['unanswered']} has no response" in str(why)


def export(recorded: Recorded, out: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main([str(recorded.db), "-o", str(out), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_exports_every_call_and_reports_the_unreplayable_one(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "all.jsonl"
    status, stdout, stderr = export(recorded, out, capsys)
    assert status == 0
    assert stdout == f"wrote 3 calls to {out}\n"
    assert stderr.splitlines() == [
        f"not replayable: call {recorded.ids['unanswered']} has no response (Client disconnected.)"
    ]
    ids = recorded.ids
    assert [entry.call_id for entry in read(out)] == [
        ids["openai_stream"],
        ids["openai_whole"],
        ids["anthropic_stream"],
    ]
    assert API_KEY not in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--call", "{anthropic_stream}", "--call", "{openai_whole}"], ["openai_whole", "anthropic_stream"]),
        (["--session", "s1"], ["openai_stream", "openai_whole"]),
        (
            ["--where", "c.model like 'claude%' or c.stream = 0 and c.status = 200"],
            ["openai_whole", "anthropic_stream"],
        ),
        # and-ed with the condition kept whole: not `session and stream or model`
        (["--session", "s1", "--where", "c.stream = 1 or c.model like 'claude%'"], ["openai_stream"]),
    ],
)
def test_cli_selects_by_call_session_and_where(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: list[str]
) -> None:
    out = tmp_path / "some.jsonl"
    status, _, stderr = export(recorded, out, capsys, *[arg.format(**recorded.ids) for arg in args])
    assert status == 0 and stderr == ""
    assert [entry.call_id for entry in read(out)] == [recorded.ids[name] for name in expected]


def test_cli_exits_non_zero_when_nothing_matched(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "none.jsonl"
    assert export(recorded, out, capsys, "--session", "no-such-session") == (1, "", "just cassette: no call matched\n")
    status, _, stderr = export(recorded, out, capsys, "--call", "no-such-call")
    assert status == 1 and f"call no-such-call: not in {recorded.db}" in stderr
    status, _, stderr = export(recorded, out, capsys, "--call", recorded.ids["unanswered"])
    assert status == 1 and "has no response" in stderr and "no call written" in stderr
    assert not out.exists()


def test_cli_refuses_a_bad_condition_or_database(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.jsonl"
    status, _, stderr = export(recorded, out, capsys, "--where", "c.no_such_column = 1")
    assert status == 2 and "no such column: c.no_such_column" in stderr
    assert main([str(tmp_path / "missing.db"), "-o", str(out)]) == 2
    assert f"no database at {tmp_path / 'missing.db'}" in capsys.readouterr().err
    assert not out.exists()


def test_just_cassette_reads_INTERLOCK_DB(recorded: Recorded, tmp_path: Path) -> None:
    out = tmp_path / "s2.jsonl"
    done = subprocess.run(
        ["just", "cassette", "-o", str(out), "--session", "s2"],
        cwd=REPO,
        env={**os.environ, "INTERLOCK_DB": str(recorded.db)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"wrote 1 call to {out}")
    assert [entry.call_id for entry in read(out)] == [recorded.ids["anthropic_stream"]]
