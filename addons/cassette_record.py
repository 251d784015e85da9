"""Records every matched call to a cassette as it ends (`interlock_cassette`).

`just record FILE` sets the option. Each ended call (an HTTP call or a WebSocket turn)
becomes one cassette line (`interlock.cassette`), built from its secret-free record
(`recorder.cassette_export.entry_from_record`), appended in the order calls end. A call
a cassette cannot hold (no answer, or a stream whose raw bytes were withheld because
they held a secret) is logged with its id and the reason, and not written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mitmproxy import ctx, http

from interlock import cassette
from recorder.cassette_export import NotReplayable, entry_from_record
from recorder.models import CallRecord

logger = logging.getLogger(__name__)


class CassetteRecording:
    def load(self, loader: Any) -> None:
        loader.add_option(
            "interlock_cassette", str, "", "Cassette (JSON lines) to append every matched call to as it ends."
        )

    def configure(self, updated: set[str]) -> None:
        if "interlock_cassette" in updated and ctx.options.interlock_cassette:
            logger.info("Interlock cassette: appending every call to %s", ctx.options.interlock_cassette)

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        name = ctx.options.interlock_cassette
        if not name:
            return
        try:
            entry = entry_from_record(record)
        except NotReplayable as why:
            logger.warning("Interlock cassette: call %s not written to %s: %s", record.call_id, name, why)
            return
        cassette.append(Path(name), [entry])
