"""Incremental, byte-faithful Server-Sent Events parser.

`SSEParser.feed()` takes chunks exactly as they arrive from the network and returns the
complete events found so far. Each `SSEEvent` keeps its exact raw bytes (including the
blank line that ends it), so concatenating the `raw` of every event, plus whatever
`finish()` returns, gives back the input byte for byte. However the byte stream is split
into chunks, the same events come out: the parser splits on bytes first and decodes
UTF-8 only for a complete event, so a character split across chunks is never broken.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# An event ends at the first empty line: a line terminator (CRLF, LF or CR) directly
# followed by another one. A CR is a terminator on its own only when no LF follows it,
# so one CRLF is never read as CR + LF (an empty line that is not there).
_EOL = rb"(?:\r\n|\n|\r(?!\n))"
_EVENT_END = re.compile(_EOL + _EOL)
_ENDS_WITH_EVENT_END = re.compile(_EOL + _EOL + rb"\Z")
_LINE_SPLIT = re.compile(r"\r\n|\n|\r")


@dataclass(slots=True)
class SSEEvent:
    """One SSE event: its exact bytes on the wire and its parsed fields."""

    raw: bytes
    event: str | None = None
    data: str | None = None
    id: str | None = None
    comments: list[str] = field(default_factory=list)
    complete: bool = True  # False for trailing bytes that never got their blank line
    _json: Any = field(default=None, repr=False, compare=False)
    _decoded: bool = field(default=False, repr=False, compare=False)

    @property
    def is_comment_only(self) -> bool:
        return self.data is None and self.event is None and self.id is None

    def json(self) -> Any | None:
        """The data field parsed as JSON, or None when it is absent or not JSON. Parsed
        once: the rewriter and the reassembler both read it (treat it as read-only)."""
        if not self._decoded:
            self._decoded = True
            if self.data is not None:
                try:
                    self._json = json.loads(self.data)
                except ValueError:
                    self._json = None
        return self._json


def parse_event_block(raw: bytes, complete: bool = True) -> SSEEvent:
    """Parse the fields of one event's bytes (the blank line may be included)."""
    text = raw.decode("utf-8", errors="replace")
    event = SSEEvent(raw=raw, complete=complete)
    data_lines: list[str] = []
    for line in _LINE_SPLIT.split(text):
        if not line:
            continue
        if line.startswith(":"):
            event.comments.append(line[1:].lstrip(" "))
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data_lines.append(value)
        elif name == "event":
            event.event = value
        elif name == "id":
            event.id = value
    if data_lines:
        event.data = "\n".join(data_lines)
    return event


class SSEParser:
    """Turns a chunked byte stream into `SSEEvent`s, keeping every byte."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if not self._buffer:
            # The common case: a chunk that holds exactly one whole event.
            match = _EVENT_END.search(chunk)
            if match is not None and match.end() == len(chunk) and chunk[-1:] != b"\r":
                return [parse_event_block(chunk)]
        scan_from = max(0, len(self._buffer) - 3)
        self._buffer += chunk
        events: list[SSEEvent] = []
        start = 0
        while True:
            match = _EVENT_END.search(self._buffer, max(start, scan_from))
            if match is None:
                break
            end = match.end()
            # A lone "\r" at the very end may be the first half of "\r\n": wait for more.
            if self._buffer[end - 1 : end] == b"\r" and end == len(self._buffer):
                break
            events.append(parse_event_block(bytes(self._buffer[start:end])))
            start = end
            scan_from = end
        if start:
            del self._buffer[:start]
        return events

    def finish(self) -> list[SSEEvent]:
        """Flush what is left at the end of the stream (an event with no final blank line)."""
        if not self._buffer:
            return []
        rest = bytes(self._buffer)
        self._buffer.clear()
        # `feed` holds back an event ending in a lone "\r" in case "\n" follows; at the
        # end of the stream that "\r" is its line end, so such an event is complete.
        complete = _ENDS_WITH_EVENT_END.search(rest) is not None
        return [parse_event_block(rest, complete=complete)]


def comment(text: str) -> bytes:
    """One comment-only event (`: text` and the blank line): every SSE client skips it."""
    return f": {text}\n\n".encode()


def ends_event(data: bytes | bytearray) -> bool:
    """True if `data` is empty or ends with an event's blank line (new bytes may follow)."""
    return not data or _ENDS_WITH_EVENT_END.search(data, max(len(data) - 4, 0)) is not None


def parse_all(body: bytes) -> list[SSEEvent]:
    """Parse a whole SSE body at once."""
    parser = SSEParser()
    return parser.feed(body) + parser.finish()
