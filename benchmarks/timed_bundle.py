"""The Interlock bundle with a timer around each of its addons' per-flow hooks.

`mitmdump -s benchmarks/timed_bundle.py` runs `addons/bundle.py`'s addons, each
`requestheaders`, `request`, `responseheaders` and `response` hook timed (wall time,
inside mitmdump), and prints one `hook time` line per hook and addon at shutdown: the
median over the flows, in microseconds. What Interlock adds before a streamed call's
first byte is its `requestheaders`, `request` and `responseheaders` time.
"""

from __future__ import annotations

import inspect
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from addons import bundle

HOOKS = ("requestheaders", "request", "responseheaders", "response")
times: defaultdict[tuple[str, str], list[float]] = defaultdict(list)


def timed(key: tuple[str, str], hook: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(hook):

        async def timed_async(flow: Any) -> Any:
            started = time.perf_counter()
            result = await hook(flow)
            times[key].append(time.perf_counter() - started)
            return result

        return timed_async

    def timed_sync(flow: Any) -> Any:
        started = time.perf_counter()
        result = hook(flow)
        times[key].append(time.perf_counter() - started)
        return result

    return timed_sync


for addon in bundle.addons:
    for name in HOOKS:
        if hasattr(addon, name):
            setattr(addon, name, timed((name, type(addon).__name__), getattr(addon, name)))


class HookTimes:
    def done(self) -> None:
        for (name, addon), spent in times.items():
            print(f"hook time {name} {addon} {statistics.median(spent) * 1e6:.0f} us over {len(spent)}", flush=True)


addons = [*bundle.addons, HookTimes()]
