"""The cassette file format (`interlock.cassette`): entries round-trip through a file, a
chunk that is not UTF-8 survives as base64, and a bad line is refused by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interlock.cassette import (
    CassetteAppender,
    CassetteEntry,
    CassetteError,
    CassetteRequest,
    CassetteResponse,
    Chunk,
    append,
    iter_entries,
    read,
)


def stream_entry(call_id: str) -> CassetteEntry:
    return CassetteEntry(
        call_id=call_id,
        recorded_at="2026-12-02T10:00:00.000Z",
        dialect="some-dialect",
        provider="some-provider",
        request=CassetteRequest(
            url="https://api.example.com/v1/chat",
            headers=[("authorization", "[REDACTED]"), ("content-type", "application/json")],
            body={"model": "m", "messages": [{"role": "user", "content": "héllo"}], "stream": True},
        ),
        response=CassetteResponse(
            status=200,
            headers=[("content-type", "text/event-stream")],
            t=0.012,
            chunks=[
                Chunk.of(0.012, b'data: {"x":"\xc3\xa9"}\n\n'),
                Chunk.of(0.06, b"\xc3"),
                Chunk.of(0.07, b"\xa9\n\n"),
            ],
        ),
    )


def test_entries_round_trip_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    entries = [stream_entry("a"), stream_entry("b").model_copy(update={"transport": "websocket", "note": "n"})]
    assert append(path, entries[:1]) == 1
    assert append(path, entries[1:]) == 1  # appends, never truncates
    assert read(path) == entries
    assert [line for line in path.read_text(encoding="utf-8").splitlines()] == [entry.line() for entry in entries]
    chunks = read(path)[0].response.chunks or []
    assert b"".join(chunk.data for chunk in chunks) == 'data: {"x":"é"}\n\n'.encode() + "é\n\n".encode()


def test_a_chunk_that_is_not_utf8_on_its_own_is_kept_as_base64() -> None:
    cut = Chunk.of(0.0, b"\xc3")
    assert cut.text is None and cut.b64 == "ww==" and cut.data == b"\xc3"
    whole = Chunk.of(0.0, "é".encode())
    assert whole.text == "é" and whole.b64 is None
    assert Chunk(t=0.0).data == b""


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("\n" + stream_entry("a").line() + "\n\n", encoding="utf-8")
    assert [entry.call_id for entry in iter_entries(path)] == ["a"]


@pytest.mark.parametrize(
    "bad",
    [
        "not json at all",
        json.dumps({"cassette": 1, "call_id": "x"}),  # no request, response, ...
        json.dumps({**json.loads(stream_entry("x").line()), "cassette": 2}),  # a later format
        json.dumps({**json.loads(stream_entry("x").line()), "transport": "carrier-pigeon"}),
    ],
)
def test_a_bad_line_is_refused_naming_the_file_and_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(stream_entry("a").line() + "\n" + bad + "\n", encoding="utf-8")
    entries = iter_entries(path)
    assert next(entries).call_id == "a"  # the good line before it is read
    with pytest.raises(CassetteError, match=rf"^{path}:2: not a cassette entry"):
        next(entries)
    with pytest.raises(CassetteError, match=rf"{path}:2"):
        read(path)


def test_the_appender_writes_in_order_off_the_caller_and_counts_failures(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    appender = CassetteAppender(path)
    entries = [stream_entry(f"c{n}") for n in range(50)]
    for entry in entries:
        appender.add(entry)
    appender.close()
    assert [entry.call_id for entry in read(path)] == [entry.call_id for entry in entries]
    assert appender.failed == 0

    broken = CassetteAppender(tmp_path / "missing-dir" / "calls.jsonl")
    broken.add(entries[0])
    broken.close()
    assert broken.failed == 1
