"""A test addon (`-s tests/otel_probe_addon.py` beside the bundle): after each ended call
it logs how many `opentelemetry` modules the proxy process has imported."""

from __future__ import annotations

import logging
import sys
from typing import Any

logger = logging.getLogger(__name__)


class OtelProbe:
    def interlock_call_ended(self, flow: Any, record: Any) -> None:
        loaded = [name for name in sys.modules if name == "opentelemetry" or name.startswith("opentelemetry.")]
        logger.warning("otel-probe: after call: opentelemetry modules: %d", len(loaded))


addons = [OtelProbe()]
