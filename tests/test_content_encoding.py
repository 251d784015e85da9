"""Incremental decoding of compressed bodies: any split of the bytes gives the same
output, corrupt input is a clear error, and a tap fed a compressed stream reads the
same events as one fed the plain stream."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mock_provider import ENCODINGS, Compressor
from wire_scenarios import SCENARIOS, anthropic_sse

from interlock.content_encoding import DecodeError, UnsupportedEncoding, decoder_for
from interlock.dialects import dialect_for
from interlock.engine.stream import StreamTap

EVENTS = anthropic_sse(SCENARIOS["unicode"], "claude-sonnet-4-6")
PLAIN = b"".join(EVENTS)


def compressed(encoding: str) -> bytes:
    """The stream as a server that compresses and flushes each event sends it."""
    compressor = Compressor(encoding)
    return b"".join(compressor.piece(event) for event in EVENTS) + compressor.end()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("encoding", ENCODINGS)
@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=12))
@example(cuts=[-1])  # a cut at the very end: an empty piece after the last byte
def test_any_split_decodes_to_the_same_bytes(encoding: str, cuts: list[int]) -> None:
    decoder = decoder_for(encoding)
    assert decoder is not None
    out = b"".join(decoder.decode(piece) for piece in split(compressed(encoding), cuts))
    assert out + decoder.finish() == PLAIN


def test_zstd_frames_back_to_back_decode_as_one_body() -> None:
    """RFC 8878 allows several frames in one body; one piece may end a frame and begin the next."""
    first, second = Compressor("zstd"), Compressor("zstd")
    data = first.piece(PLAIN[:500]) + first.end() + second.piece(PLAIN[500:]) + second.end()
    decoder = decoder_for("zstd")
    assert decoder is not None
    assert b"".join(decoder.decode(piece) for piece in split(data, [7, 300, len(data) // 2])) == PLAIN


def test_identity_needs_no_decoder_and_unknown_encodings_are_refused() -> None:
    assert decoder_for(None) is None and decoder_for("identity") is None and decoder_for(" ") is None
    assert decoder_for("GZIP") is not None
    for name in ("gzip, br", "compress", "lzma"):
        with pytest.raises(UnsupportedEncoding, match="content-encoding"):
            decoder_for(name)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_corrupt_input_is_a_decode_error(encoding: str) -> None:
    decoder = decoder_for(encoding)
    assert decoder is not None
    with pytest.raises(DecodeError, match=f"not valid {encoding}"):
        decoder.decode(b"\x00\xff" * 40 + b"definitely not compressed data" * 4)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_tap_reads_a_compressed_stream_as_the_plain_one(encoding: str) -> None:
    dialect = dialect_for("anthropic-messages")
    plain, packed = StreamTap(dialect.reassembler()), StreamTap(dialect.reassembler(), decoder_for(encoding))
    expected = [event.raw for event in plain.feed(PLAIN) + plain.feed(b"")]
    data = compressed(encoding)
    got = [event.raw for piece in split(data, list(range(0, len(data), 7))) for event in packed.feed(piece)]
    got += [event.raw for event in packed.feed(b"")]
    assert got == expected and bytes(packed.raw) == PLAIN
    assert packed.reassembler.result().message == plain.reassembler.result().message
    assert packed.passthrough(b"") == b"" and packed.decode_error is None


def test_a_tap_keeps_what_decoded_before_the_body_broke() -> None:
    dialect = dialect_for("anthropic-messages")
    tap = StreamTap(dialect.reassembler(), decoder_for("gzip"))
    good = compressed("gzip")[:-40]  # the stream without its end
    tap.feed(good)
    assert tap.feed(b"\x00garbage\xff" * 8) == [] and tap.decode_error is not None
    assert tap.feed(b"more") == []  # nothing after the break is read as events
    assert PLAIN.startswith(bytes(tap.raw)) and len(tap.raw) > len(PLAIN) // 2
