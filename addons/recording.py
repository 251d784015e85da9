"""Records every matched call when it ends, and announces it (`interlock_call_ended`).

Options: `interlock_db` (default `$INTERLOCK_DB`, else the config's
`recorder.database`); retention from the config's `recorder.retention_days`, read at
start-up. The writer runs in the background: `submit` never waits for the disk. The record is built and scrubbed of secrets at `response` or `error`; other addons (the terminal line,
mitmweb's marks) react to the `interlock_call_ended` hook.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from mitmproxy import ctx, http

from addons.call_state import CallState, CallStates, announce_call_ended
from addons.config_watch import ConfigWatch
from addons.record_builder import RecordScrubber, build_record
from recorder import cost
from recorder.retention import Retention
from recorder.side_writer import SideWriter
from recorder.writer import RecorderWriter

logger = logging.getLogger(__name__)


class Recording:
    def __init__(self, config: ConfigWatch, calls: CallStates) -> None:
        self.config = config
        self.calls = calls
        self.writer: RecorderWriter | None = None
        self._side_writer: SideWriter | None = None
        self._writer_start: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def load(self, loader: Any) -> None:
        loader.add_option(
            "interlock_db",
            str,
            os.environ.get("INTERLOCK_DB", ""),
            "SQLite database to record calls in (default: $INTERLOCK_DB, else recorder.database of the config).",
        )

    def configure(self, updated: set[str]) -> None:
        loaded = self.config.current
        if self.writer is None and loaded is not None and ({"interlock_db", "interlock_config"} & updated):
            recorder = loaded.config.recorder
            self.writer = RecorderWriter(
                ctx.options.interlock_db or recorder.database,
                queue_size=recorder.queue_size,
                batch_size=recorder.batch_size,
                retention=Retention(days=recorder.retention_days, archive=recorder.retention_archive)
                if recorder.retention_days is not None
                else None,
                retention_interval_s=recorder.retention_interval_s,
            )

    def running(self) -> None:
        if self.writer is not None:
            # Not in `_tasks`: `done` must not cancel it (stop() waits for the opening).
            self._writer_start = asyncio.ensure_future(self.writer.start())
        self._spawn(asyncio.to_thread(cost.load_cost_map))
        logger.info("Interlock ready: recording to %s", self.writer.db_path if self.writer else "-")

    def side_writer(self) -> SideWriter | None:
        """The writer of the small tables beside the calls (budget use, alerts), started
        at its first use; None when nothing is recorded."""
        if self._side_writer is None and self.writer is not None:
            self._side_writer = SideWriter(self.writer.db_path)
        return self._side_writer

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def done(self) -> asyncio.Task[None] | None:
        # Returning a task lets mitmproxy await the drain at shutdown, while a script
        # reload (which calls `done` synchronously) still works.
        for task in self._tasks:
            task.cancel()
        if self._side_writer is not None:  # after the addons that feed it (bundle order)
            self._side_writer.close()
            self._side_writer = None
        if self.writer is None:
            return None
        return asyncio.ensure_future(self.writer.stop())

    async def response(self, flow: http.HTTPFlow) -> None:
        await self._finish(flow, None)

    async def error(self, flow: http.HTTPFlow) -> None:
        await self._finish(flow, flow.error.msg if flow.error else "flow error")

    async def _finish(self, flow: http.HTTPFlow, error: str | None) -> None:
        state = self.calls.get(flow)
        if state is None:
            return
        try:
            await self.record(state, flow, error)
        finally:
            self.calls.detach(flow)

    async def record(self, state: CallState, flow: http.HTTPFlow, error: str | None) -> None:
        """Record one call of `flow` (an HTTP call, or one turn of a WebSocket)."""
        loaded = self.config.current
        if loaded is None:
            return
        try:
            session_id = self.calls.session_id(state, flow.request.headers)
            # Scrubbed here, on the event loop: searching a 100 KB prompt takes about 1.5 ms
            # (4 ms when it holds a secret). A worker thread holds the GIL all the same and
            # the hop cost each streamed call ~30 ms through mitmdump (measured A/B).
            record = RecordScrubber(state)(build_record(state, flow, session_id, error))
            final = next((stage.body for stage in record.stages if stage.stage == "response_final"), None)
            self.calls.chains.remember(state.dialect, final, session_id)
        except Exception:  # a record we cannot build must not break the flow
            logger.exception("Interlock could not build the record of call %s", state.call_id)
            return
        if self.writer is not None:
            self.writer.submit(record)
        await announce_call_ended(ctx.master, flow, record)
