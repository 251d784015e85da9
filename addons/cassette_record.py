"""Records every matched call to a cassette as it ends (`interlock_cassette`).

`just record FILE` sets the option. Each ended call (an HTTP call or a WebSocket turn)
becomes one cassette line (`interlock.cassette`), built from its secret-free record
(`recorder.cassette_export.entry_from_record`), appended in the order calls end, in a
writer thread (`interlock.cassette.CassetteAppender`): a flow never waits on the disk. A call
a cassette cannot hold (no answer, or a stream whose raw bytes were withheld because
they held a secret) is logged with its id and the reason, and not written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http

from interlock import cassette
from recorder.cassette_export import NotReplayable, entry_from_record
from recorder.models import CallRecord

logger = logging.getLogger(__name__)


class CassetteRecording:
    def __init__(self) -> None:
        self.appender: cassette.CassetteAppender | None = None

    def load(self, loader: Any) -> None:
        loader.add_option(
            "interlock_cassette", str, "", "Cassette (JSON lines) to append every matched call to as it ends."
        )

    def configure(self, updated: set[str]) -> None:
        if "interlock_cassette" not in updated:
            return
        name = ctx.options.interlock_cassette
        path = Path(name) if name else None
        if path is not None and not path.parent.is_dir():
            raise exceptions.OptionsError(f"interlock_cassette: {path.parent} is not a directory")
        if self.appender is not None and self.appender.path != path:
            self.appender.close()
            self.appender = None
        if path is not None and self.appender is None:
            self.appender = cassette.CassetteAppender(path)
            logger.info("Interlock cassette: appending every call to %s", path)

    def done(self) -> None:
        if self.appender is not None:
            self.appender.close()  # what is queued is written before mitmdump exits

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        if self.appender is None:
            return
        try:
            entry = entry_from_record(record)
        except NotReplayable as why:
            logger.warning("Interlock cassette: call %s not written to %s: %s", record.call_id, self.appender.path, why)
            return
        self.appender.add(entry)
