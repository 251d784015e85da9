"""Loads Interlock's configuration (`--set interlock_config=...`) and reloads it live.

A bad file refuses start-up with mitmproxy's own error, naming the key. While running,
the file is checked once a second; a change that does not validate keeps the previous
configuration (see `addons.live_config`). Providers and the policy chain reload live;
recorder settings are read once, at start-up. An `interlock_*` option given twice
refuses start-up too.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions

from addons.live_config import LiveConfig, Loaded
from interlock.config import ConfigError

PACKAGE = Path(__file__).resolve().parent


def default_config(package: Path = PACKAGE) -> str:
    """The checkout's `mitm_config.yaml`; an installed wheel has no checkout, and carries
    a copy beside this module (pyproject's force-include)."""
    checkout = package.parent / "mitm_config.yaml"
    packaged = package / "mitm_config.yaml"
    return str(packaged if packaged.exists() and not checkout.exists() else checkout)


DEFAULT_CONFIG = default_config()
CHECK_EVERY_S = 1.0
logger = logging.getLogger(__name__)


def refuse_repeated_options() -> None:
    """`--set interlock_x=a --set interlock_x=b` makes mitmproxy drop the whole bundle
    without a word (its error is raised in a task nobody awaits): name the option in an
    error instead, which makes mitmdump refuse to start."""
    for name, value in ctx.options.deferred.items():
        values = getattr(value, "val", None)
        if name.startswith("interlock_") and isinstance(values, list) and len(values) > 1:
            logger.error("%s: set more than once (%s); give it once", name, ", ".join(map(repr, values)))


class ConfigWatch:
    def __init__(self) -> None:
        self.live: LiveConfig | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> Loaded | None:
        return self.live.current if self.live is not None else None

    def load(self, loader: Any) -> None:
        refuse_repeated_options()
        loader.add_option("interlock_config", str, DEFAULT_CONFIG, "Path of Interlock's YAML configuration.")

    def configure(self, updated: set[str]) -> None:
        if "interlock_config" in updated:
            try:
                self.live = LiveConfig(ctx.options.interlock_config)
            except ConfigError as error:
                raise exceptions.OptionsError(f"interlock_config: {error}") from None

    def running(self) -> None:
        if self.live is not None and self._task is None:
            self._task = asyncio.ensure_future(self._watch(self.live))

    async def _watch(self, live: LiveConfig) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            # In a thread: a new policy may import a heavy library (the judge's litellm).
            await asyncio.to_thread(live.reload_if_changed)

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
