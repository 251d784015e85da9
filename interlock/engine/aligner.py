"""Lines up the text policies release with the upstream deltas it came from.

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

from interlock.sse import SSEEvent

# (the upstream event to forward as it came, or None for new text; the text)
TextPiece = tuple[SSEEvent | None, str]


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
