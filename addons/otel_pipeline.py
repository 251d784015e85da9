"""The OpenTelemetry SDK set up for the OTLP export: a tracer provider whose batch
processor hands spans to the OTLP/HTTP exporter in its own thread, a meter provider
with a periodic reader, the GenAI conventions' histogram buckets, and counts of what
was exported, failed or dropped.

Imported by `addons.otel_export` only when the export is on. A flow only ever builds
spans and appends them to the batch processor's bounded queue: a slow or unreachable
collector delays the exporter's thread, never a flow; when the queue is full the SDK
drops the span, and `ExportCounts` tells how many.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import requests
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

from addons.otel_spans import DURATION_BUCKETS, TOKEN_BUCKETS, CallMetrics, emit_spans
from interlock.config import OtelConfig
from recorder.models import CallRecord

SCOPE = "interlock"


class CountingExporter(SpanExporter):
    """Wraps the OTLP exporter and counts the spans it was handed and those it failed
    to deliver (after the exporter's own retries)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.delivered = 0
        self.failed = 0
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.delivered += len(spans)
            else:
                self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


@dataclass(frozen=True)
class ExportCounts:
    ended: int  # spans the calls produced
    exported: int  # delivered to the collector
    failed: int  # the exporter gave up on them (collector unreachable or refusing)
    dropped: int  # neither: the queue was full, or still queued or in flight at shutdown

    def __str__(self) -> str:
        return (
            f"{self.ended} spans, {self.exported} exported, {self.failed} failed to export, "
            f"{self.dropped} dropped (queue full, or not sent by shutdown)"
        )


def _session() -> requests.Session:
    """The exporter's HTTP session ignores the proxy environment: mitmdump may itself run
    with HTTPS_PROXY pointing at this very proxy."""
    session = requests.Session()
    session.trust_env = False
    return session


def _url(base: str | None, signal: str) -> str | None:
    """The signal's URL under a base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT is read;
    None leaves the exporter to read its own environment variables."""
    return None if base is None else f"{base.rstrip('/')}/v1/{signal}"


class OtlpPipeline:
    """Spans and metrics of ended calls, exported in the background."""

    def __init__(
        self,
        config: OtelConfig,
        endpoint: str | None,
        span_exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
    ) -> None:
        """`endpoint`: the collector's base URL, or None for the SDK's OTEL_EXPORTER_OTLP_*
        variables; `span_exporter` / `metric_reader` replace the OTLP ones (tests)."""
        self.config = config
        headers = config.headers or None  # None: the exporter reads OTEL_EXPORTER_OTLP_HEADERS
        resource = Resource.create({SERVICE_NAME: config.service_name})
        self.exporter = CountingExporter(
            span_exporter or OTLPSpanExporter(endpoint=_url(endpoint, "traces"), headers=headers, session=_session())
        )
        self.processor = BatchSpanProcessor(
            self.exporter, max_queue_size=config.max_queue_size, max_export_batch_size=min(512, config.max_queue_size)
        )
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(self.processor)
        self.tracer = self.tracer_provider.get_tracer(SCOPE)
        self.meter_provider: MeterProvider | None = None
        self.metrics: CallMetrics | None = None
        if metric_reader is None and config.metrics:
            metric_reader = PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=_url(endpoint, "metrics"), headers=headers, session=_session()),
                export_interval_millis=config.metrics_interval_s * 1000,
            )
        if metric_reader is not None:
            self.meter_provider = MeterProvider(
                metric_readers=[metric_reader],
                resource=resource,
                views=[
                    View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(boundaries=list(buckets)))
                    for name, buckets in (
                        (gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION, DURATION_BUCKETS),
                        (gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, DURATION_BUCKETS),
                        (gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE, TOKEN_BUCKETS),
                    )
                ],
            )
            self.metrics = CallMetrics(self.meter_provider.get_meter(SCOPE))
        self.ended = 0

    def export(self, record: CallRecord, provider_name: str) -> None:
        """The call's spans onto the batch queue and its measurements into the metrics."""
        self.ended += emit_spans(self.tracer, record, provider_name, self.config.capture_content)
        if self.metrics is not None:
            self.metrics.record(record, provider_name)

    def counts(self) -> ExportCounts:
        delivered, failed = self.exporter.delivered, self.exporter.failed
        return ExportCounts(self.ended, delivered, failed, max(0, self.ended - delivered - failed))

    def shutdown(self) -> ExportCounts:
        """Flush what is queued, spans then metrics, within `shutdown_timeout_s` (the
        metrics get at least half a second), then stop."""
        timeout_s = self.config.shutdown_timeout_s
        deadline = time.monotonic() + timeout_s
        # The batch processor's shutdown takes no timeout (it waits up to 30 s for its
        # thread): run it in a daemon thread and stop waiting after ours.
        flushing = threading.Thread(target=self.processor.shutdown, name="interlock-otlp-shutdown", daemon=True)
        flushing.start()
        flushing.join(timeout_s)
        if self.meter_provider is not None:
            self.meter_provider.shutdown(timeout_millis=max(0.5, deadline - time.monotonic()) * 1000)
        return self.counts()
