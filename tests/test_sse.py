"""The SSE parser gives the same events however a byte stream is split into chunks."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_scenarios import SCENARIOS, anthropic_sse, openai_chat_sse

from interlock.sse import SSEEvent, SSEParser, parse_all, parse_event_block

# Hand-written events that exercise the corners of the format.
EXTRA_EVENTS = [
    b": keep-alive comment\n\n",
    b":\n\n",
    b'event: ping\ndata: {"type": "ping"}\n\n',
    b"data: first line\ndata: second line\ndata:\n\n",
    b"id: 42\nevent: custom\ndata: caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89\n\n",
    b": comment with emoji \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd\ndata: x\n\n",
    b"data:no-space\nretry: 100\nunknown-field: y\n\n",
    b"data: [DONE]\n\n",
]


def scenario_streams() -> list[list[bytes]]:
    streams = []
    for scenario in SCENARIOS.values():
        streams.append(anthropic_sse(scenario, scenario.model))
        streams.append(openai_chat_sse(scenario, scenario.model, include_usage=True))
    return streams


STREAMS = scenario_streams()


def fields(events: list[SSEEvent]) -> list[tuple[Any, ...]]:
    return [(e.event, e.data, e.id, e.comments, e.complete) for e in events]


def parse_chunks(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.finish()


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


def with_line_ending(events: list[bytes], ending: bytes) -> bytes:
    return b"".join(events).replace(b"\n", ending)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    events = list(draw(st.sampled_from(STREAMS)))
    for extra in draw(st.lists(st.sampled_from(EXTRA_EVENTS), max_size=6)):
        events.insert(draw(st.integers(0, len(events))), extra)
    body = with_line_ending(events, draw(st.sampled_from([b"\n", b"\r\n", b"\r"])))
    if draw(st.booleans()):
        body += draw(st.sampled_from([b"data: trailing without blank line", b'data: {"a":', b"\r"]))
    return body


@st.composite
def bodies_and_cuts(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    body = draw(bodies())
    cuts = draw(st.lists(st.integers(0, len(body)), max_size=40))
    return body, cuts


@settings(max_examples=300)
@given(bodies_and_cuts())
def test_any_split_gives_the_events_of_the_whole_body(
    case: tuple[bytes, list[int]],
) -> None:
    body, cuts = case
    whole = parse_all(body)
    chunked = parse_chunks(split(body, cuts))
    assert fields(chunked) == fields(whole)
    assert b"".join(e.raw for e in chunked) == body


@settings(max_examples=60)
@given(bodies())
def test_one_byte_chunks_give_the_events_of_the_whole_body(body: bytes) -> None:
    chunked = parse_chunks([body[i : i + 1] for i in range(len(body))])
    assert fields(chunked) == fields(parse_all(body))
    assert b"".join(e.raw for e in chunked) == body


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_every_scenario_event_comes_back_as_sent(ending: bytes) -> None:
    for stream in STREAMS:
        events = parse_all(with_line_ending(stream, ending))
        assert [e.raw for e in events] == [event.replace(b"\n", ending) for event in stream]
        assert all(e.complete for e in events)
        assert [e.data for e in events] == [parse_event_block(event).data for event in stream]


def test_split_inside_crlf_waits_for_the_line_feed() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\n\r") == []
    [event] = parser.feed(b"\ndata: b\r\n\r\n")[:1]
    assert event.raw == b"data: a\r\n\r\n"
    assert event.data == "a"


def test_lone_cr_at_the_end_of_the_stream_completes_the_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\r") == []
    [event] = parser.finish()
    assert (event.data, event.complete, event.raw) == ("a", True, b"data: a\r\r")


def test_utf8_character_split_across_chunks() -> None:
    body = "data: 日本 🎉\n\n".encode()
    cut = body.index("本".encode()) + 1
    events = parse_chunks([body[:cut], body[cut:]])
    assert [e.data for e in events] == ["日本 🎉"]


def test_fields_comments_and_multiline_data() -> None:
    [event] = parse_all(b": hello\nevent: message_start\nid: 7\ndata: one\ndata:two\n\n")
    assert (event.event, event.id, event.data, event.comments) == (
        "message_start",
        "7",
        "one\ntwo",
        ["hello"],
    )
    assert not event.is_comment_only
    [comment] = parse_all(b": just a comment\n\n")
    assert comment.is_comment_only and comment.comments == ["just a comment"]


def test_trailing_bytes_are_an_incomplete_event() -> None:
    events = parse_all(b'data: 1\n\ndata: {"trunc')
    assert [(e.data, e.complete) for e in events] == [("1", True), ('{"trunc', False)]
    assert events[1].json() is None


def test_json_helper() -> None:
    [good, bad, empty] = parse_all(b'data: {"a": 1}\n\ndata: nope\n\n: c\n\n')
    assert good.json() == {"a": 1}
    assert bad.json() is None
    assert empty.json() is None


def test_empty_chunks_and_finish_without_data() -> None:
    parser = SSEParser()
    assert parser.feed(b"") == []
    assert parser.finish() == []
