"""The Interlock bundle with a timer around each of its addons' per-flow hooks.

`mitmdump -s benchmarks/timed_bundle.py` runs `addons/bundle.py`'s addons, each
`requestheaders`, `request`, `responseheaders` and `response` hook timed inside mitmdump,
and prints one `hook time` line per hook and addon at shutdown: the median wall time
over the flows and the mean CPU time (the event loop's thread's), in microseconds. What
Interlock adds before a streamed call's first byte is its `requestheaders`, `request`
and `responseheaders` time; under load, the CPU is what its hooks cost the event loop.
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
times: defaultdict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)  # (wall, CPU) per flow


def timed(key: tuple[str, str], hook: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(hook):

        async def timed_async(flow: Any) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            result = await hook(flow)
            times[key].append((time.perf_counter() - started, time.thread_time() - cpu))
            return result

        return timed_async

    def timed_sync(flow: Any) -> Any:
        started, cpu = time.perf_counter(), time.thread_time()
        result = hook(flow)
        times[key].append((time.perf_counter() - started, time.thread_time() - cpu))
        return result

    return timed_sync


for addon in bundle.addons:
    for name in HOOKS:
        if hasattr(addon, name):
            setattr(addon, name, timed((name, type(addon).__name__), getattr(addon, name)))


class HookTimes:
    def done(self) -> None:
        for (name, addon), spent in times.items():
            wall = statistics.median(w for w, _ in spent) * 1e6
            cpu = statistics.fmean(c for _, c in spent) * 1e6
            print(f"hook time {name} {addon} {wall:.0f} {cpu:.0f} {len(spent)}", flush=True)


addons = [*bundle.addons, HookTimes()]
