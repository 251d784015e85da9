"""The configuration in force: loaded and validated at start-up, reloaded when the file changes.

A reload that fails validation keeps the previous configuration and logs why. Flows
take the configuration in force when they start, so a swap never affects a call in flight.
Each callback of `before_swap` gets each valid new configuration before it is swapped in
(in the reload's thread): the budgets restore the totals of limits it adds, the alerts
the tallies of rules it adds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from interlock.config import ConfigError, InterlockConfig, load_config
from interlock.policy.chain import PolicyChain
from interlock.providers import ProviderRegistry
from policies.registry import build_chain

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Loaded:
    config: InterlockConfig
    registry: ProviderRegistry
    chain: PolicyChain


def load(path: str) -> Loaded:
    """Load and validate everything the file configures; raises `ConfigError`."""
    config = load_config(path)
    return Loaded(config, ProviderRegistry(config.all_providers()), build_chain(config.policies))


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


class LiveConfig:
    def __init__(self, path: str) -> None:
        self.path = path
        self.current = load(path)
        self._seen = _mtime(path)
        self.before_swap: list[Callable[[Loaded], None]] = []

    def reload_if_changed(self) -> bool:
        """Swap in the file's new contents if it changed and is valid."""
        mtime = _mtime(self.path)
        if mtime is None or mtime == self._seen:
            return False
        self._seen = mtime
        try:
            loaded = load(self.path)
            for prepare in self.before_swap:
                prepare(loaded)
            self.current = loaded
        except ConfigError as error:
            logger.error("Interlock: config change ignored, keeping the previous one: %s", error)
            return False
        except Exception:  # a policy's constructor may fail in any way: keep watching
            logger.exception("Interlock: config change ignored, keeping the previous one")
            return False
        logger.info("Interlock: reloaded %s (%d policies)", self.path, len(self.current.chain.entries))
        return True
