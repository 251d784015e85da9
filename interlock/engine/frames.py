"""The same stream machinery over WebSocket text frames, each the JSON of one event.

A dialect whose provider also speaks a WebSocket (Codex's Responses WebSocket) sends,
in each server text frame, the JSON its SSE stream carries in one event's `data:`. A
frame becomes a `FrameEvent`: the SSE event it stands for (what the reassemblers, the
rewriters and the record's raw copy read), keeping the frame as it came. `FrameStream`
is a `PolicyStream` fed frame by frame: an event the rewriter forwards goes out as its
original frame, untouched; an event it built goes out as a new frame of its JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlock.engine.stream import PolicyStream
from interlock.sse import SSEEvent, parse_all


@dataclass(slots=True)
class FrameEvent(SSEEvent):
    frame: bytes = b""  # the text frame's payload, as it came


def frame_event(frame: bytes) -> FrameEvent:
    """A text frame as the SSE event carrying its JSON (`data:` lines, a blank line)."""
    lines = frame.splitlines() or [b""]
    raw = b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"
    return FrameEvent(raw=raw, data=frame.decode("utf-8", errors="replace"), frame=frame)


class FrameStream(PolicyStream):
    """A policed WebSocket turn: `push` each server frame, `end` when the turn ends;
    both (and `resume`) return the frames to send to the client now."""

    def push(self, event: FrameEvent) -> list[bytes]:
        self.tap.take(event)
        self._queue.append(event)
        return self._pump()

    def end(self) -> list[bytes]:
        if not self.ended and None not in self._queue:
            self._queue.append(None)
        return self._pump()

    def _take(self) -> list[bytes]:
        if not self.rewriter.out:
            return []
        pieces, self.rewriter.out = self.rewriter.out, []
        if self._abandoned:
            return []
        frames: list[bytes] = []
        for piece in pieces:
            if isinstance(piece, FrameEvent):
                frames.append(piece.frame)
                self.final += piece.raw
                continue
            data = piece.raw if isinstance(piece, SSEEvent) else piece
            self.final += data
            for event in parse_all(data):
                if event.data is not None:
                    frames.append(event.data.encode())
        return frames
