"""Freezes the heap the proxy starts with, so the collector's full passes stay short.

Every call allocates (flows, call states, records, parsed bodies). Python collects its
youngest objects every 700 net allocations and, every hundredth time, makes a full pass
over every object it tracks: after start-up about 120 000 (the modules, mitmproxy's and
Interlock's state), 480 000 with a judge configured (litellm). Measured through mitmdump
at 20 clients, a full pass held the event loop, and so every stream, for up to 99 ms
(249 ms with a judge) and the collector cost 0.27 ms a call (0.8 ms with a judge); with
the start-up heap frozen, 19 ms (24 ms) and 0.15 ms (0.4 ms).

`gc.freeze()` moves every object alive into a permanent generation that no pass scans. It
runs once, when the proxy runs: this addon is the bundle's last, so every other addon's
`running` (the recorder's writer, the budgets' and alert rules' state) came first, and a
configured judge was imported before the proxy listened. What is frozen is never freed:
it is the start-up's own, alive as long as the process, but for what a background reader
started just before (the alert rules' history, in its thread) holds at that instant, at
most a few milliseconds' work, which stays. A judge added by a live reload is not frozen
(its passes are longer until the next start).
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


class HeapFreeze:
    def running(self) -> None:
        gc.freeze()
        logger.debug("froze %d objects of the start-up heap", gc.get_freeze_count())
