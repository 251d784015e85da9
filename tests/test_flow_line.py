"""FlowLineRedaction in process: mitmdump's dumper prints flows whose URL carries a
credential query value with the value redacted, every other flow as it is; the flow
keeps its URL; `done` gives the dumper its own method back."""

from __future__ import annotations

import io

from mitmproxy.addons.dumper import Dumper
from mitmproxy.test import taddons, tflow

from addons.flow_line import FlowLineRedaction

KEY = "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"


def printed(path: str, headers: dict[str, str] | None = None) -> tuple[str, str]:
    """(what the dumper printed for a flow with this path, the flow's path afterwards)."""
    out = io.StringIO()
    dumper, redaction = Dumper(out), FlowLineRedaction()
    with taddons.context(dumper, redaction) as tctx:
        tctx.configure(dumper, flow_detail=2)  # the URL, and the headers
        redaction.running()
        flow = tflow.tflow(resp=True)
        flow.request.path = path
        flow.request.headers.update(headers or {})
        redaction.requestheaders(flow)
        dumper.response(flow)
        redaction.done()
        assert "echo_flow" not in vars(dumper) and "_echo_headers" not in vars(dumper)
    return out.getvalue(), flow.request.path


def test_a_credential_query_value_is_redacted_in_the_flow_line_only() -> None:
    text, path = printed(f"/v1beta/models/m:streamGenerateContent?alt=sse&key={KEY}&api_key={KEY}")
    assert KEY not in text
    assert "/v1beta/models/m:streamGenerateContent?alt=sse&key=<redacted>&api_key=<redacted>" in text
    assert "<< 200 OK" in text
    assert path.endswith(f"?alt=sse&key={KEY}&api_key={KEY}")  # the flow is untouched


def test_other_flows_are_printed_as_the_dumper_prints_them() -> None:
    for path in ("/v1/chat/completions", "/search?q=sk-proj-not-a-param&page=2"):
        text, after = printed(path)
        assert f"{path}\n" in text and "<redacted>" not in text and after == path


def test_credential_headers_are_redacted_in_the_header_lines() -> None:
    text, _ = printed(
        "/v1/chat/completions", {"authorization": f"Bearer {KEY}", "x-goog-api-key": KEY, "accept": "*/*"}
    )
    assert KEY not in text
    assert "authorization: Bearer <redacted" in text and "x-goog-api-key: <redacted" in text
    assert "accept: */*" in text  # the other headers as they are
