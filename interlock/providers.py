"""Provider registry: decides from host and path alone whether a request is an LLM call.

This runs in `requestheaders` for every flow through the proxy, so exact hosts and
paths are dictionary look-ups and only `*` patterns fall back to `fnmatch`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from interlock.config import Provider


@dataclass(frozen=True, slots=True)
class Match:
    """The provider and dialect of a matched LLM call."""

    provider: str
    dialect: str


class ProviderRegistry:
    def __init__(self, providers: list[Provider]) -> None:
        self._exact: dict[tuple[str, str], Match] = {}
        self._patterns: list[tuple[str, str, Match]] = []
        for provider in providers:
            for host in provider.hosts:
                for route in provider.routes:
                    match = Match(provider.name, route.dialect)
                    host_key, path_key = host.lower(), route.path
                    if "*" in host_key or "*" in path_key:
                        self._patterns.append((host_key, path_key, match))
                    else:
                        self._exact.setdefault((host_key, path_key), match)

    def match(self, method: str, host: str, path: str) -> Match | None:
        """The match for a request, or None. `path` may carry a query string."""
        if method != "POST":
            return None
        return self.match_route(host, path)

    def match_route(self, host: str, path: str) -> Match | None:
        """The match for a route whatever the method (a WebSocket upgrade is a GET)."""
        path = path.split("?", 1)[0]
        host = host.lower()
        found = self._exact.get((host, path))
        if found is not None:
            return found
        for host_pattern, path_pattern, match in self._patterns:
            if fnmatchcase(host, host_pattern) and fnmatchcase(path, path_pattern):
                return match
        return None
