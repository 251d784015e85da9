"""Lines up the text policies release with the upstream deltas it came from (and keeps
the events that arrived behind held text in their place).

Text policies may hold text back (`replace` keeps the tail that could start a match) and
release it later, so their output is not cut where upstream cut it. `TextAligner` keeps
the upstream text events a block has not yet accounted for; as soon as the released text
starts with an event's whole text, that event can go out as its original bytes. When the
released text departs from upstream (a policy changed it), everything released so far is
sent as new text. Policies that change nothing therefore leave a stream byte-identical,
at the cost of sending an event only once all of its text is released.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from interlock.sse import SSEEvent

# (the upstream event to forward as it came, or None for new text; the text)
TextPiece = tuple[SSEEvent | None, str]


def send_aligned(
    pieces: Sequence[TextPiece | SSEEvent], emit_raw: Callable[[SSEEvent], None], emit_text: Callable[[str], None]
) -> bool:
    """Send what an aligner gave: upstream events whose text came out unchanged (and the
    events that waited behind held text) as their original bytes, new text built by
    `emit_text`. True if a forwarded upstream event carried text."""
    forwarded_text = False
    for piece in pieces:
        if isinstance(piece, SSEEvent):  # an event that waited behind held text
            emit_raw(piece)
            continue
        event, text = piece
        if event is None:
            emit_text(text)
        else:
            emit_raw(event)
            forwarded_text = forwarded_text or bool(text)
    return forwarded_text


class TextAligner:
    def __init__(self) -> None:
        self._pending: deque[tuple[SSEEvent | None, str]] = deque()
        self._released = ""

    def add(self, event: SSEEvent | None, text: str, released: str) -> list[TextPiece]:
        """An upstream delta (`event` None when it cannot be forwarded as it came) with
        its `text`, and what the policies released for it; returns what to send now."""
        self._pending.append((event, text))
        self._released += released
        return self._drain(final=False)

    def flush(self, released: str) -> list[TextPiece]:
        """The block ends: what the policies released last; everything goes out."""
        self._released += released
        return self._drain(final=True)

    def abandon(self) -> str:
        """Forget pending upstream events; return the released text not yet sent."""
        released, self._released = self._released, ""
        self._pending.clear()
        return released

    def _drain(self, final: bool) -> list[TextPiece]:
        pieces: list[TextPiece] = []
        while self._pending:
            event, text = self._pending[0]
            if self._released.startswith(text):
                pieces.append((event, text))
                self._released = self._released[len(text) :]
                self._pending.popleft()
            elif text.startswith(self._released) and not final:
                return pieces  # what is released so far may still become this event's text
            else:
                break  # a policy changed the text: send it as new text
        if self._released:
            pieces.append((None, self.abandon()))
        elif final:
            self._pending.clear()
        return pieces


class EventsBehindText:
    """Upstream text deltas the text policies still hold, each with the events that came
    after it (pings, keep-alive comments): those go out right behind it, so an unchanged
    stream keeps its order. Used beside a `TextAligner` by the dialects' rewriters."""

    def __init__(self) -> None:
        self._entries: deque[tuple[SSEEvent | None, str, list[SSEEvent]]] = deque()

    def add(self, event: SSEEvent | None, text: str) -> None:
        """A text delta handed to the aligner."""
        self._entries.append((event, text, []))

    def wait(self, event: SSEEvent) -> bool:
        """Queue `event` behind the held text; False if no text is held."""
        if not self._entries:
            return False
        self._entries[-1][2].append(event)
        return True

    def release(self, pieces: list[TextPiece], final: bool) -> list[TextPiece | SSEEvent]:
        """What the aligner released, each piece followed by the events that waited behind
        it. A piece that is not the oldest held delta as it came means the aligner gave up
        on the held deltas: everything behind them follows it."""
        out: list[TextPiece | SSEEvent] = []
        for event, text in pieces:
            out.append((event, text))
            if self._entries and self._entries[0][0] is event and self._entries[0][1] == text:
                out.extend(self._entries.popleft()[2])
            else:
                out.extend(self.abandon())
        if final:
            out.extend(self.abandon())
        return out

    def abandon(self) -> list[SSEEvent]:
        """The aligner forgot the held deltas: the events behind them, in order."""
        out = [event for _, _, behind in self._entries for event in behind]
        self._entries.clear()
        return out
