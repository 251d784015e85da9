"""OutputRedaction in-process: mitmproxy's dumper lines and log records lose credential
query values; the flow itself is untouched; `done` takes everything away again."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from mitmproxy.addons.dumper import Dumper
from mitmproxy.test import taddons, tflow

from addons.output_redaction import OutputRedaction, RedactingStream, Redactor

KEY = "AIzaSyD-4f9aZq81LmXv0TqW7yBc2dEe5Rr3xYz"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def test_flow_lines_and_logs_are_redacted_and_done_undoes_it(lines: Lines) -> None:
    out = io.StringIO()
    dumper = Dumper(out)
    redaction = OutputRedaction()
    with taddons.context(dumper, redaction) as tctx:
        tctx.configure(dumper, flow_detail=3, showhost=True)
        assert isinstance(dumper.outfp, RedactingStream)
        flow = tflow.tflow(resp=True)
        flow.request.path = f"/v1beta/models/m:streamGenerateContent?alt=sse&key={KEY}"
        flow.request.content = b""
        redaction.requestheaders(flow)
        dumper.response(flow)
        logging.getLogger("some.addon").warning("fetching %s", flow.request.url)
        logging.getLogger("some.addon").warning("the key again: %s", KEY)
        assert flow.request.path.endswith(f"key={KEY}")  # the flow (what goes upstream) is untouched
        redaction.done()
        assert dumper.outfp is out
        assert redaction._filter not in lines.filters
        logging.getLogger("some.addon").warning("after done: %s", KEY)
    printed = out.getvalue()
    assert "?alt=sse&key=<redacted>" in printed
    assert "key: <redacted>" in printed  # flow_detail 3: the query, one parameter per line
    assert KEY not in printed
    assert lines.lines[:2] == [
        "fetching http://address:22/v1beta/models/m:streamGenerateContent?alt=sse&key=<redacted>",
        "the key again: <redacted>",
    ]
    assert lines.lines[2] == f"after done: {KEY}"


def test_a_traceback_with_a_key_is_redacted(lines: Lines) -> None:
    redaction = OutputRedaction()
    with taddons.context(redaction):
        try:
            raise ValueError(f"bad url https://h/p?token={KEY}")
        except ValueError:
            logging.getLogger("some.addon").exception("request failed")
        redaction.done()
    [line] = lines.lines
    assert line.startswith("request failed\nTraceback")
    assert "ValueError: bad url https://h/p?token=<redacted>" in line
    assert KEY not in line


def test_the_stream_passes_everything_else_through() -> None:
    out = io.StringIO()
    stream = RedactingStream(out, Redactor())
    assert stream.write("GET https://h/p?alt=sse\n") == len("GET https://h/p?alt=sse\n")
    stream.flush()
    assert out.getvalue() == "GET https://h/p?alt=sse\n"
    assert stream.getvalue() == out.getvalue()  # any other attribute is the stream's


def test_known_values_are_bounded() -> None:
    redact = Redactor(limit=2)
    redact.note("/p?key=first-secret-value&api_key=short")  # too short to scrub anywhere
    redact.note("/p?key=first-secret-value")  # known already
    assert redact.known == ("first-secret-value",)
    redact.note("/p?key=second-secret&token=third-secret")
    assert redact.known == ("second-secret", "third-secret")
    assert redact("first-secret-value second-secret") == "first-secret-value <redacted>"
