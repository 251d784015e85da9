"""Incremental decoders for a compressed body (`content-encoding`), fed chunk by chunk.

Interlock asks upstream for `identity`, but servers and middleboxes may compress anyway.
`decoder_for(header)` returns a `Decoder` for gzip, deflate, br or zstd, None for
identity, and raises `UnsupportedEncoding` for anything else (an unknown name, or several
encodings stacked). The codecs are zlib's `decompressobj` and the brotli and zstd
libraries mitmproxy already depends on; a corrupt body raises `DecodeError`.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod

import brotli

try:
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Python < 3.14
    from backports import zstd  # type: ignore[no-redef,unused-ignore]


class UnsupportedEncoding(ValueError):
    """A content-encoding there is no incremental decoder for."""


class DecodeError(ValueError):
    """The body is not valid in its content-encoding."""


class Decoder(ABC):
    @abstractmethod
    def decode(self, chunk: bytes) -> bytes:
        """The decoded bytes `chunk` completes (possibly none)."""

    def finish(self) -> bytes:
        """The end of the body: whatever the codec still holds."""
        return b""


class _Zlib(Decoder):
    """gzip, or deflate as HTTP means it (zlib-wrapped) and as some servers send it (raw)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._codec = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._head: bytearray | None = bytearray()  # deflate: bytes before the zlib header was accepted

    def decode(self, chunk: bytes) -> bytes:
        try:
            out = self._codec.decompress(chunk)
        except zlib.error as error:
            if self._gzip or self._head is None:
                raise DecodeError(f"not valid {'gzip' if self._gzip else 'deflate'}: {error}") from None
            head, self._head = bytes(self._head) + chunk, None
            self._codec = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
            return self.decode(head)
        if self._head is not None and not self._gzip:
            self._head += chunk
            if len(self._head) >= 2:  # the zlib header is two bytes
                self._head = None
        return out

    def finish(self) -> bytes:
        return self._codec.flush()


class _Brotli(Decoder):
    def __init__(self) -> None:
        self._codec = brotli.Decompressor()

    def decode(self, chunk: bytes) -> bytes:
        try:
            return bytes(self._codec.process(chunk))
        except brotli.error as error:
            raise DecodeError(f"not valid br: {error}") from None


class _Zstd(Decoder):
    def __init__(self) -> None:
        self._codec = zstd.ZstdDecompressor()

    def decode(self, chunk: bytes) -> bytes:
        """Frames may follow one another (each is decoded by a fresh decompressor); an
        empty chunk, after the last frame too, decodes to nothing."""
        out = bytearray()
        try:
            while chunk:
                if self._codec.eof:
                    self._codec = zstd.ZstdDecompressor()
                out += self._codec.decompress(chunk)
                chunk = self._codec.unused_data if self._codec.eof else b""
        except (zstd.ZstdError, EOFError) as error:
            raise DecodeError(f"not valid zstd: {error}") from None
        return bytes(out)


def decoder_for(content_encoding: str | None) -> Decoder | None:
    name = (content_encoding or "").strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return _Zlib(gzip=True)
    if name == "deflate":
        return _Zlib(gzip=False)
    if name == "br":
        return _Brotli()
    if name == "zstd":
        return _Zstd()
    raise UnsupportedEncoding(f"no incremental decoder for content-encoding {content_encoding!r}")
