"""An in-process OTLP/HTTP collector on 127.0.0.1 for the export tests: it decodes the
protobuf `ExportTraceServiceRequest`s posted to /v1/traces (and accepts /v1/metrics),
keeps every span and the raw bytes received, and can answer slowly (`delay_s`)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from loopback_server import LoopbackServer
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: int  # Span.SpanKind
    span_id: bytes
    parent_span_id: bytes
    trace_id: bytes
    start_ns: int
    end_ns: int
    status_code: int
    attributes: dict[str, Any]
    service_name: str | None


class OtlpReceiver(LoopbackServer):
    thread_name = "otlp-receiver"

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.spans: list[ReceivedSpan] = []
        self.metric_names: set[str] = set()
        self.raw: list[bytes] = []
        self._lock = threading.Lock()

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/metrics", self._metrics)
        return app

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(self.delay_s)
        message = ExportTraceServiceRequest.FromString(body)
        received = []
        for resource in message.resource_spans:
            resource_attrs = {a.key: _value(a.value) for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                for span in scope.spans:
                    received.append(
                        ReceivedSpan(
                            name=span.name,
                            kind=span.kind,
                            span_id=span.span_id,
                            parent_span_id=span.parent_span_id,
                            trace_id=span.trace_id,
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            status_code=span.status.code,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            service_name=resource_attrs.get("service.name"),
                        )
                    )
        with self._lock:
            self.raw.append(body)
            self.spans += received
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await request.read()
        message = ExportMetricsServiceRequest.FromString(body)
        with self._lock:
            self.raw.append(body)
            for resource in message.resource_metrics:
                for scope in resource.scope_metrics:
                    self.metric_names.update(metric.name for metric in scope.metrics)
        return web.Response(body=b"", content_type="application/x-protobuf")

    def client_spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self.spans if span.kind == Span.SPAN_KIND_CLIENT]

    def wait_for_spans(self, count: int, timeout_s: float = 30.0) -> list[ReceivedSpan]:
        """Wait until `count` CLIENT spans arrived (a no-hang bound); returns them."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(found := self.client_spans()) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{len(self.client_spans())} of {count} call spans arrived in {timeout_s:.0f} s")
