"""The transport side of a stream: bytes in, bytes out, waits in between.

`StreamTap` watches upstream bytes as they pass: it decodes them when upstream
compressed the stream despite `identity` (see `interlock.content_encoding`), keeps them
(the recorder's raw copy, decoded, with each chunk's arrival time), parses them once into SSE events and feeds the
dialect's reassembler, noting when the first and the latest byte and the first generated
content arrived. A body that stops decoding is kept as far as it decoded, with a note.

`PolicyStream` is what the addon sets as `flow.response.stream` when policies look at
responses. It hands each parsed event to the dialect's rewriter (a step generator, see
`interlock.engine.driver`) and returns the bytes to send to the client. Events the
rewriter forwards unchanged go out as their original bytes; the record's final message
is upstream's when nothing changed, else reassembled once, at the end, from what was
sent (`final_reassembly`). When a
policy has to wait, `waiting` is true: the addon's stream-wait hook awaits `wait()`,
then calls `resume()`. With a `Keepalive`, `wait()` also returns once the client has had
nothing for its interval, and `resume()` then gives the dialect's keepalive event while
the policy still decides (one timer per wait, none when nothing is held); keepalives are
part of `final`, but not of its reassembly or of `changed`. A stream whose connection failed is `abandon()`ed: its policies
still decide, nothing more is sent. `rewrite_body()` runs the same machinery over a body that arrived
whole (replays, or mitmproxy versions where the mid-stream wait is not available).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from interlock.content_encoding import DecodeError, Decoder
from interlock.engine.driver import Driver, Step
from interlock.neutral import Reassembly
from interlock.sse import SSEEvent, SSEParser, ends_event, parse_all

if TYPE_CHECKING:
    from interlock.dialects.base import Reassembler
    from interlock.policy.base import PolicyContext
    from interlock.policy.chain import PolicyChain

# What a rewriter sends: an upstream event as it came, or bytes it built.
Piece = SSEEvent | bytes
# A timer may fire this much before its time (the loop's clock resolution).
_EARLY_S = 0.01


@dataclass(frozen=True, slots=True)
class Keepalive:
    """What a held stream sends the client (the dialect's `keepalive()`), and when: once
    the client has had no byte for `every_s` seconds."""

    data: bytes
    every_s: float


class StreamTap:
    """Upstream bytes as they arrive: kept, parsed once, reassembled, timed."""

    def __init__(self, reassembler: Reassembler, decoder: Decoder | None = None) -> None:
        self.reassembler = reassembler
        self.raw = bytearray()
        self.first_byte_at: float | None = None
        self.last_byte_at: float | None = None
        self.first_token_at: float | None = None
        self.decode_error: str | None = None
        # (arrival time, bytes of `raw` it added) per chunk or frame: the stream's pacing,
        # which a cassette replays (see `interlock.cassette`).
        self.arrivals: list[tuple[float, int]] = []
        self._decoder = decoder
        self._parser = SSEParser()

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """One upstream chunk (`b""` at the end); returns the events it completed."""
        now = time.time()
        if chunk:
            if self.first_byte_at is None:
                self.first_byte_at = now
            self.last_byte_at = now
            data = chunk if self._decoder is None else self._decode(chunk)
            self.raw += data
            self.arrivals.append((now, len(data)))
            events = self._parser.feed(data)
        else:
            tail = b"" if self._decoder is None else self._decode(b"")
            self.raw += tail
            if tail:
                self.arrivals.append((now, len(tail)))
            events = self._parser.feed(tail) + self._parser.finish()
        self._reassemble(events, now)
        return events

    def take(self, event: SSEEvent) -> None:
        """One event that arrived whole (a WebSocket frame, see `interlock.engine.frames`)."""
        now = time.time()
        if self.first_byte_at is None:
            self.first_byte_at = now
        self.last_byte_at = now
        self.raw += event.raw
        self.arrivals.append((now, len(event.raw)))
        self._reassemble([event], now)

    def _reassemble(self, events: list[SSEEvent], now: float) -> None:
        for event in events:
            if self.reassembler.feed(event) and self.first_token_at is None:
                self.first_token_at = now

    def _decode(self, chunk: bytes) -> bytes:
        """Decoded bytes (`b""` ends the body); nothing more once the body stopped decoding."""
        decoder = self._decoder
        if decoder is None or self.decode_error is not None:
            return b""
        try:
            return decoder.decode(chunk) if chunk else decoder.finish()
        except DecodeError as error:
            self.decode_error = str(error)
            return b""

    def passthrough(self, chunk: bytes) -> bytes:
        """The stream transformer when no policy looks at responses."""
        self.feed(chunk)
        return chunk


class StreamRewriter(ABC):
    """One dialect's policy logic over native SSE events."""

    def __init__(self, chain: PolicyChain, ctx: PolicyContext) -> None:
        self.chain = chain
        self.ctx = ctx
        self.out: list[Piece] = []

    def emit_raw(self, event: SSEEvent) -> None:
        """Forward an upstream event as its original bytes."""
        self.out.append(event)

    def emit_new(self, data: bytes) -> None:
        """Send bytes the rewriter built (one or more complete events)."""
        self.out.append(data)

    @abstractmethod
    def handle(self, event: SSEEvent) -> Step[None]:
        """Process one upstream event."""

    @abstractmethod
    def finish(self) -> Step[None]:
        """The upstream stream ended (cleanly or not)."""


class PolicyStream:
    """A stream transformer for mitmproxy that may pause for async policies."""

    def __init__(
        self, rewriter: StreamRewriter, tap: StreamTap, final: Reassembler, keepalive: Keepalive | None = None
    ) -> None:
        self.rewriter = rewriter
        self.tap = tap
        self.final = bytearray()  # bytes sent to the client, keepalives included
        self.keepalives: list[int] = []  # where in `final` each keepalive starts
        self._keepalive = keepalive
        self._sent_at = time.monotonic()  # the client's latest byte (the headers, at first)
        self._final_reassembler = final  # fed at the end, and only if the client got other bytes
        self._final_reassembly: Reassembly | None = None
        self._built = 0  # pieces the rewriter built rather than forwarded
        self._driver = Driver()
        self._queue: deque[SSEEvent | None] = deque()  # None marks the end of the stream
        self.ended = False
        self._abandoned = False  # the connection failed: nothing more is sent

    @property
    def waiting(self) -> bool:
        return self._driver.waiting

    @property
    def changed(self) -> bool:
        """The client got other bytes than upstream sent (keepalives aside)."""
        return self.sent_without_keepalives() != self.tap.raw

    def sent_without_keepalives(self) -> bytes | bytearray:
        if not self.keepalives or self._keepalive is None:
            return self.final
        size = len(self._keepalive.data)
        parts, start = [], 0
        for at in self.keepalives:
            parts.append(self.final[start:at])
            start = at + size
        parts.append(self.final[start:])
        return b"".join(parts)

    def final_reassembly(self) -> Reassembly:
        """The message the client received: upstream's when nothing changed, else read
        once from what was sent (not event by event as it went: most streams change
        nothing, and the record asks only at the end)."""
        if self._final_reassembly is None:
            if not self.changed:
                self._final_reassembly = self.tap.reassembler.result()
            else:
                for event in parse_all(bytes(self.sent_without_keepalives())):
                    self._final_reassembler.feed(event)
                self._final_reassembly = self._final_reassembler.result()
        return self._final_reassembly

    def __call__(self, chunk: bytes) -> list[bytes]:
        self._queue.extend(self.tap.feed(chunk))
        if not chunk:
            self._queue.append(None)
        return self._pump()

    async def wait(self) -> None:
        """Until the policy is ready, or (with keepalives) a keepalive is due."""
        due = None if self._keepalive is None else self._sent_at + self._keepalive.every_s - time.monotonic()
        await self._driver.wait(None if due is None else max(due, 0.0))

    def resume(self) -> list[bytes]:
        """What to send after `wait()`: the released bytes, or a keepalive while the
        policy still decides."""
        if not self._driver.ready:
            return self._keepalive_due()
        if self._driver.resume():
            return self._pump()
        return self._take()

    def _keepalive_due(self) -> list[bytes]:
        """The keepalive event, if one is due and fits here (between two events)."""
        keepalive = self._keepalive
        if keepalive is None or self._abandoned or not ends_event(self.final):
            return []
        now = time.monotonic()
        if now - self._sent_at < keepalive.every_s - _EARLY_S:
            return []
        self._sent_at = now
        self.keepalives.append(len(self.final))
        self.final += keepalive.data
        return [keepalive.data]

    async def abandon(self) -> None:
        """The connection failed mid-stream (the client left, or upstream was cut) and
        mitmproxy will not end the stream: end it here, so the policies decide what they
        hold and the record has their decisions, but send nothing more (`final` stays
        what the client was sent, and nothing held reaches anyone)."""
        self._abandoned = True
        if not self.ended and None not in self._queue:
            self._queue.append(None)
        if not self.waiting:
            self._pump()
        while self.waiting:
            await self.wait()
            self.resume()

    def _pump(self) -> list[bytes]:
        while self._queue and not self._driver.waiting:
            event = self._queue.popleft()
            self.rewriter.ctx.native_event = event
            if event is None:
                self.ended = True
                step = self.rewriter.finish()
            else:
                step = self.rewriter.handle(event)
            self._driver.start(step)
        return self._take()

    def _take(self) -> list[bytes]:
        """What to send now, as one piece: mitmproxy writes each piece to the client
        separately, and an upstream chunk often holds several events."""
        if not self.rewriter.out:
            return []
        pieces, self.rewriter.out = self.rewriter.out, []
        if self._abandoned:
            return []
        self._sent_at = time.monotonic()
        data = bytearray()
        for piece in pieces:
            data += piece.raw if isinstance(piece, SSEEvent) else piece
        self.final += data
        return [bytes(data)]


async def rewrite_body(stream: PolicyStream, body: bytes) -> bytes:
    """Run a whole SSE body through the stream, awaiting policies as needed."""
    out = bytearray()
    for piece in (body, b""):
        for chunk in stream(piece):
            out += chunk
        while stream.waiting:
            await stream.wait()
            for chunk in stream.resume():
                out += chunk
    return bytes(out)
