"""The transport side of a policed stream: bytes in, bytes out, waits in between.

`PolicyStream` is what the addon sets as `flow.response.stream`. It parses the upstream
bytes into SSE events, hands each event to the dialect's rewriter (a step generator,
see `interlock.engine.driver`) and returns the bytes to send to the client. Events the
rewriter forwards unchanged go out as their original bytes. When a policy has to wait,
`waiting` is true: the addon's stream-wait hook awaits `wait()`, then calls `resume()`.
`rewrite_body()` runs the same machinery over a body that arrived whole (replays, or
mitmproxy versions where the mid-stream wait is not available).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable

from interlock.engine.driver import Driver, Step
from interlock.sse import SSEEvent, SSEParser
from policies.base import PolicyContext
from policies.chain import PolicyChain


class StreamRewriter(ABC):
    """One dialect's policy logic over native SSE events."""

    def __init__(self, chain: PolicyChain, ctx: PolicyContext) -> None:
        self.chain = chain
        self.ctx = ctx
        self.out: list[bytes] = []

    def emit_raw(self, event: SSEEvent) -> None:
        """Forward an upstream event as its original bytes."""
        self.out.append(event.raw)

    def emit_new(self, data: bytes) -> None:
        """Send bytes the rewriter built."""
        self.out.append(data)

    @abstractmethod
    def handle(self, event: SSEEvent) -> Step[None]:
        """Process one upstream event."""

    @abstractmethod
    def finish(self) -> Step[None]:
        """The upstream stream ended (cleanly or not)."""


class PolicyStream:
    """A stream transformer for mitmproxy that may pause for async policies."""

    def __init__(self, rewriter: StreamRewriter, observe: Callable[[bytes], object] | None = None) -> None:
        self.rewriter = rewriter
        self.observe = observe  # sees every upstream chunk first (the recorder's tap)
        self.final = bytearray()  # bytes sent to the client
        self._parser = SSEParser()
        self._driver = Driver()
        self._queue: deque[SSEEvent | None] = deque()  # None marks the end of the stream
        self.ended = False

    @property
    def waiting(self) -> bool:
        return self._driver.waiting

    def __call__(self, chunk: bytes) -> list[bytes]:
        if chunk:
            if self.observe is not None:
                self.observe(chunk)
            self._queue.extend(self._parser.feed(chunk))
        else:
            self._queue.extend(self._parser.finish())
            self._queue.append(None)
        return self._pump()

    async def wait(self) -> None:
        await self._driver.wait()

    def resume(self) -> list[bytes]:
        if self._driver.resume():
            return self._pump()
        return self._take()

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
        data = b"".join(self.rewriter.out)
        self.rewriter.out = []
        self.final += data
        return [data]


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
