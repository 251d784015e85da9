"""The start-up heap is frozen once the proxy runs (addons/heap.py), after every other
addon's `running`, and what the calls make afterwards is still collected."""

from __future__ import annotations

import gc
import weakref

from addons import bundle
from addons.heap import HeapFreeze


class Node:
    """An object in a reference cycle: only a collector pass frees it."""

    def __init__(self) -> None:
        self.me = self


def test_the_freeze_is_the_bundles_last_addon() -> None:
    assert isinstance(bundle.addons[-1], HeapFreeze)
    assert not any(isinstance(addon, HeapFreeze) for addon in bundle.addons[:-1])


def test_running_freezes_what_is_alive_and_later_garbage_is_still_collected() -> None:
    alive = Node()
    before = gc.get_freeze_count()
    try:
        HeapFreeze().running()
        assert gc.get_freeze_count() > before
        assert all(tracked is not alive for tracked in gc.get_objects())  # no pass scans it
        later = Node()
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
