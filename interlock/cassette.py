"""Cassettes: recorded calls as JSON lines, read by replay (see docs/replay.md).

One line per call (an HTTP call, or one turn of a WebSocket), each a `CassetteEntry`:
the request as it went upstream (its JSON body parsed, for matching), and the answer as
upstream sent it: status, headers, and either the whole body or, for a stream, every
chunk (an SSE stream's bytes as they arrived, or a WebSocket turn's server frames) with
its time since the request started. Secrets are redacted before a line is written, as
in the database. JSON lines rather than a mitmproxy flow file: a flow file keeps no
chunk timings and no per-turn WebSocket requests, and a line per call is what a person
reads, diffs and edits in review, from any language.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

logger = logging.getLogger(__name__)

FORMAT: Literal[1] = 1  # `cassette` of every line; a reader refuses other versions


class Chunk(BaseModel):
    """One chunk or frame as it arrived: `t` seconds after the request started; its
    bytes as UTF-8 `text`, or `b64` when they are not valid UTF-8 on their own."""

    t: float
    text: str | None = None
    b64: str | None = None

    @classmethod
    def of(cls, t: float, data: bytes) -> Chunk:
        try:
            return cls(t=t, text=data.decode("utf-8"))
        except UnicodeDecodeError:
            return cls(t=t, b64=base64.b64encode(data).decode("ascii"))

    @property
    def data(self) -> bytes:
        if self.b64 is not None:
            return base64.b64decode(self.b64)
        return (self.text or "").encode("utf-8")


class CassetteRequest(BaseModel):
    method: str = "POST"
    url: str  # scheme, host and path as the client asked (before any map_remote)
    headers: list[tuple[str, str]] = []  # redacted
    body: Any | None = None  # parsed JSON, as it went upstream (after request policies)
    body_text: str | None = None  # a body that is not JSON, as text


class CassetteResponse(BaseModel):
    status: int
    headers: list[tuple[str, str]] = []  # redacted; no content-length or content-encoding
    t: float = 0.0  # when the first byte (headers) arrived, seconds after the request started
    body: Chunk | None = None  # a whole body (`t` as above)
    chunks: list[Chunk] | None = None  # a stream, or a WebSocket turn's server frames


class CassetteEntry(BaseModel):
    cassette: Literal[1] = FORMAT
    call_id: str
    recorded_at: str  # ISO-8601 UTC, when the call started
    dialect: str
    provider: str
    transport: Literal["http", "websocket"] = "http"
    request: CassetteRequest
    response: CassetteResponse
    note: str | None = None  # what could not be kept as it came (e.g. a re-serialised body)

    def line(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), ensure_ascii=False, separators=(",", ":"))


class CassetteError(ValueError):
    """A cassette line that is not a valid entry: names the file and line."""


def read(path: Path) -> list[CassetteEntry]:
    return list(iter_entries(path))


def iter_entries(path: Path) -> Iterator[CassetteEntry]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield CassetteEntry.model_validate_json(line)
            except ValidationError as error:
                raise CassetteError(f"{path}:{number}: not a cassette entry: {error}") from None


def append(path: Path, entries: Iterable[CassetteEntry]) -> int:
    """Append entries (one line each) and flush them; the number written."""
    written = 0
    with path.open("a", encoding="utf-8") as out:
        for entry in entries:
            out.write(entry.line() + "\n")
            written += 1
    return written


class CassetteAppender:
    """Appends entries to one cassette off the caller's thread (the proxy's event loop
    never waits on the disk), in the order they were handed over. A write that fails is
    logged with the call id and counted in `failed`; `close` waits for what is queued."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failed = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="interlock-cassette")

    def add(self, entry: CassetteEntry) -> None:
        self._pool.submit(append, self.path, [entry]).add_done_callback(lambda done: self._written(entry, done))

    def _written(self, entry: CassetteEntry, done: Future[int]) -> None:
        error = done.exception()
        if error is not None:
            self.failed += 1
            logger.error("Interlock cassette: call %s not written to %s: %s", entry.call_id, self.path, error)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
