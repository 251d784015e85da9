"""Exports every ended call to an OTLP collector as OpenTelemetry GenAI spans and
metrics, when switched on (docs/opentelemetry.md).

On when the `interlock_otlp_endpoint` option, the config's `otel.endpoint`, or one of
the standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
variables names a collector; the option wins, then the config, then the variables (read
by the SDK itself). Read once, at start-up. Off, the OpenTelemetry SDK is never
imported and the `interlock_call_ended` hook returns at once. On, the spans are built
from the secret-free record and exported in the SDK's background thread; at shutdown
what is queued is flushed within `otel.shutdown_timeout_s` and the counts (exported,
failed, dropped) are logged.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from mitmproxy import ctx, exceptions, http

from addons.config_watch import ConfigWatch
from recorder.models import CallRecord

if TYPE_CHECKING:
    from addons.otel_pipeline import OtlpPipeline

logger = logging.getLogger(__name__)
ENV_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class OtelExport:
    def __init__(self, config: ConfigWatch) -> None:
        self.config = config
        self.pipeline: OtlpPipeline | None = None
        self.provider_names: dict[str, str] = {}

    def load(self, loader: Any) -> None:
        loader.add_option(
            "interlock_otlp_endpoint",
            str,
            "",
            "OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318) to export calls to as OpenTelemetry "
            "GenAI spans and metrics; default: the config's otel.endpoint, else OTEL_EXPORTER_OTLP_ENDPOINT.",
        )

    def configure(self, updated: set[str]) -> None:
        loaded = self.config.current
        if (
            self.pipeline is not None
            or loaded is None
            or not ({"interlock_otlp_endpoint", "interlock_config"} & updated)
        ):
            return
        otel = loaded.config.otel
        endpoint = ctx.options.interlock_otlp_endpoint or otel.endpoint
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise exceptions.OptionsError(f"interlock_otlp_endpoint: not an http(s) URL: {endpoint!r}")
        from_env = next((name for name in ENV_ENDPOINTS if os.environ.get(name)), None)
        if not endpoint and from_env is None:
            return
        from addons.otel_pipeline import OtlpPipeline  # the SDK: only when the export is on

        self.pipeline = OtlpPipeline(otel, endpoint or None)
        self.provider_names = {p.name: p.otel_name or p.name for p in loaded.config.all_providers()}
        content = "with message content" if otel.capture_content else "without message content"
        logger.info("Interlock OTLP export to %s (%s)", endpoint or f"${from_env}", content)

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        if self.pipeline is None:
            return
        self.pipeline.export(record, self.provider_names.get(record.provider, record.provider))

    def done(self) -> None:
        if self.pipeline is not None:
            counts = self.pipeline.shutdown()
            self.pipeline = None
            log = logger.warning if counts.failed or counts.dropped else logger.info
            log("Interlock OTLP export: %s", counts)
