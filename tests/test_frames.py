"""`interlock.engine.frames`: the stream machinery over WebSocket text frames, in process.

The frames of a policed Responses turn go through the same rewriter as its SSE stream:
the frames nobody changed come out as the very frames that went in, the rest as frames
of the JSON the rewriter built, and the turn the client gets is valid and ends with the
same events as the SSE path gives.
"""

from __future__ import annotations

import json
from typing import Any

from policy_fixtures import chain_of, context, police_stream
from protocol_check import check_openai_responses_stream
from wire_scenarios import RESPONSES_SCENARIOS, SCENARIOS, openai_responses_sse

from interlock.engine.frames import FrameStream, frame_event
from interlock.engine.stream import StreamTap
from interlock.sse import parse_all

DIALECT = "openai-responses"
DENY: dict[str, Any] = {
    "policy": "deny_tools",
    "rules": [{"tool": "*", "pattern": "rm -rf", "reason": "recursive delete"}],
}


def frames_of(events: list[bytes]) -> list[bytes]:
    return [(parse_all(event)[0].data or "").encode() for event in events]


async def run_frames(stream: FrameStream, frames: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for frame in [*frames, None]:
        out += stream.push(frame) if frame is not None else stream.end()
        while stream.waiting:
            await stream.wait()
            out += stream.resume()
    return out


def frame_stream(*chain_entries: dict[str, Any]) -> FrameStream:
    chain = chain_of(*chain_entries)
    ctx = context(DIALECT, {"model": "gpt-5-codex", "input": "hi"})
    wire = ctx.dialect
    return FrameStream(wire.stream_rewriter(chain, ctx), StreamTap(wire.reassembler()), wire.reassembler())


def test_a_frame_is_the_sse_event_of_its_json() -> None:
    event = frame_event(b'{"type":"response.created","sequence_number":0}')
    assert event.json() == {"type": "response.created", "sequence_number": 0}
    assert parse_all(event.raw)[0].data == event.data


async def test_frames_nobody_changed_are_the_frames_that_came() -> None:
    events = openai_responses_sse(SCENARIOS["tool"], "gpt-5-codex")
    frames = frames_of(events)
    stream = frame_stream(DENY)
    out = await run_frames(stream, frames)
    assert out == frames and all(a is b for a, b in zip(out, frames, strict=True))
    assert not stream.changed


async def test_a_blocked_call_gives_the_frames_of_the_sse_rewrite() -> None:
    events = openai_responses_sse(RESPONSES_SCENARIOS["shell"], "gpt-5-codex")
    stream = frame_stream(DENY)
    out = await run_frames(stream, frames_of(events))
    sse, _ = await police_stream(chain_of(DENY), DIALECT, events, context(DIALECT, {"model": "m", "input": "hi"}))
    assert out == [(e.data or "").encode() for e in parse_all(sse)]  # the same turn as over SSE
    typed = b"".join(b"event: %s\ndata: %s\n\n" % (json.loads(f)["type"].encode(), f) for f in out)
    assert check_openai_responses_stream(parse_all(typed)) == []
    assert stream.changed and stream.final_reassembly().message is not None
