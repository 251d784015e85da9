"""Which recorded call answers a request in replay: semantic matching of cassette entries.

A request matches an entry when what changes the answer is the same: the transport, the
dialect, the method, the URL (host and path; cassettes keep no query string) and the
JSON body, compared as values (key order never matters), less the ignored body paths
(`IgnoredPaths`: ids and markers that change from run to run). Headers are never
compared. Several entries with the same key answer in recorded order, then the last one
answers again. A request nothing matches gets a `Miss` naming the closest entry and the
paths where it differs (`messages[2].content`), for the dialect's error message.
Pure code: no mitmproxy, no I/O (docs/replay.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from interlock.cassette import CassetteEntry

# What clients change between two runs of the same conversation (see docs/replay.md).
DEFAULT_IGNORED_PATHS: tuple[str, ...] = (
    "metadata.user_id",  # Claude Code: device, account and session ids
    "**.cache_control",  # Anthropic prompt-caching markers, wherever they sit
    "prompt_cache_key",  # Codex: a per-session cache key
    "client_metadata",  # Codex: installation and turn metadata
    "user_prompt_id",  # Gemini CLI (Code Assist): an id per prompt
    "session_id",  # an agent session's id, at the top level
    "request.session_id",  # Gemini CLI (Code Assist): inside the wrapped request
)
MAX_SHOWN_PATHS = 6  # differing paths a miss's message lists before "and N more"

_SEGMENT = re.compile(r"\*\*|\*|[^.\[\]]+|\[(?:\d+|\*)\]")
PathPart = str | int


class PathPatternError(ValueError):
    """An ignored path that is not `key.key[0].*.**` syntax."""


@dataclass(frozen=True, slots=True)
class PathPattern:
    """A JSON path pattern: `.`-separated keys, `[n]` list indices, `*` any one key or
    index (`[*]` any index), `**` any number of levels (zero included)."""

    text: str
    parts: tuple[PathPart, ...]

    @classmethod
    def parse(cls, text: str) -> PathPattern:
        parts: list[PathPart] = []
        at = 0
        while at < len(text):
            if parts and text[at] == ".":
                at += 1
            found = _SEGMENT.match(text, at)
            if found is None:
                raise PathPatternError(f"not a JSON path pattern: {text!r} (at character {at + 1})")
            token = found.group()
            if token.startswith("["):
                inner = token[1:-1]
                parts.append("[*]" if inner == "*" else int(inner))
            else:
                parts.append(token)
            at = found.end()
        if not parts:
            raise PathPatternError("an empty JSON path pattern")
        return cls(text, tuple(parts))


def _takes(part: PathPart, key: PathPart) -> bool:
    """Whether one pattern part matches one path segment (a dict key or a list index)."""
    if part == "*":
        return True
    if part == "[*]":
        return isinstance(key, int)
    return type(part) is type(key) and part == key


def _step(states: frozenset[int], pattern: PathPattern, key: PathPart) -> frozenset[int]:
    """The positions in `pattern` reached after one more path segment `key`."""
    reached: set[int] = set()
    pending = list(states)
    while pending:
        at = pending.pop()
        if at >= len(pattern.parts):
            continue
        part = pattern.parts[at]
        if part == "**":
            reached.add(at)  # `**` takes this segment and stays
            pending.append(at + 1)  # or takes none
        elif _takes(part, key):
            reached.add(at + 1)
    return frozenset(reached)


def _done(states: frozenset[int], pattern: PathPattern) -> bool:
    return any(at == len(pattern.parts) or all(p == "**" for p in pattern.parts[at:]) for at in states)


IGNORED = "<ignored>"  # stands in for an ignored list element, so later indices stay put


class IgnoredPaths:
    """The body paths left out of matching."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(PathPattern.parse(text) for text in patterns)

    def strip(self, value: Any) -> Any:
        """`value` without the ignored paths (a new value; `value` is not changed)."""
        if not self.patterns:
            return value
        return self._strip(value, tuple(frozenset({0}) for _ in self.patterns))

    def _strip(self, value: Any, states: tuple[frozenset[int], ...]) -> Any:
        if isinstance(value, dict):
            items: Iterator[tuple[PathPart, Any]] = iter(value.items())
        elif isinstance(value, list):
            items = iter(enumerate(value))
        else:
            return value
        kept: dict[Any, Any] = {}
        for key, item in items:
            after = tuple(_step(s, p, key) for s, p in zip(states, self.patterns, strict=True))
            if any(_done(s, p) for s, p in zip(after, self.patterns, strict=True)):
                if isinstance(value, list):
                    kept[key] = IGNORED
                continue
            kept[key] = self._strip(item, after) if any(after) else item
        return list(kept.values()) if isinstance(value, list) else kept


def format_path(path: Sequence[PathPart]) -> str:
    """`messages[2].content` for ("messages", 2, "content"); `(the body)` for ()."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(the body)"


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def differences(recorded: Any, live: Any, path: tuple[PathPart, ...] = ()) -> Iterator[tuple[PathPart, ...]]:
    """The paths where two JSON values differ, depth first; a key or list item only one
    side has is a difference at its own path."""
    if isinstance(recorded, dict) and isinstance(live, dict):
        for key in {**recorded, **live}:
            if key not in recorded or key not in live:
                yield (*path, key)
            else:
                yield from differences(recorded[key], live[key], (*path, key))
    elif isinstance(recorded, list) and isinstance(live, list):
        for index in range(max(len(recorded), len(live))):
            if index >= len(recorded) or index >= len(live):
                yield (*path, index)
            else:
                yield from differences(recorded[index], live[index], (*path, index))
    elif not _same(recorded, live):
        yield path


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """A live request as matching sees it: secrets scrubbed, as a cassette holds them."""

    transport: str
    dialect: str
    method: str
    url: str  # scheme://host/path, as `CassetteRequest.url`
    body: Any | None = None
    body_text: str | None = None


def _canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class _Candidate:
    entry: CassetteEntry
    request: ReplayRequest
    body: Any  # without the ignored paths


@dataclass(frozen=True, slots=True)
class Miss:
    """No entry matches: the closest one (None in an empty cassette) and what differs."""

    closest: CassetteEntry | None
    parts: tuple[str, ...]  # differing parts of the request other than the body: "url", "method", ...
    paths: tuple[str, ...]  # differing body paths
    more: int = 0  # differing body paths not listed

    def message(self, cassette: str) -> str:
        if self.closest is None:
            return f"Interlock replay: no recorded call matches this request ({cassette} holds no call it could match)."
        entry = self.closest
        shown = [f"its {part} ({_part(entry, part)})" for part in self.parts] + list(self.paths)
        if self.more:
            shown.append(f"and {self.more} more")
        return (
            f"Interlock replay: no recorded call in {cassette} matches this request; the closest is call "
            f"{entry.call_id} (recorded at {entry.recorded_at}), which differs at: {', '.join(shown)}."
        )


def _part(entry: CassetteEntry, part: str) -> str:
    if part == "method":
        return entry.request.method
    if part == "url":
        return entry.request.url
    if part == "dialect":
        return entry.dialect
    return entry.transport


@dataclass
class ReplayIndex:
    """The entries of a cassette by match key, each key's entries in recorded order."""

    ignored: IgnoredPaths
    _by_key: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    _served: dict[tuple[str, ...], int] = field(default_factory=dict)
    _candidates: list[_Candidate] = field(default_factory=list)

    @classmethod
    def of(cls, entries: Iterable[CassetteEntry], ignored: IgnoredPaths) -> ReplayIndex:
        index = cls(ignored)
        for entry in entries:
            index.add(entry)
        return index

    def __len__(self) -> int:
        return len(self._candidates)

    def entry(self, number: int) -> CassetteEntry:
        return self._candidates[number].entry

    def add(self, entry: CassetteEntry) -> int:
        """Add an entry (after those with its key); its number for `entry`."""
        request = ReplayRequest(
            entry.transport,
            entry.dialect,
            entry.request.method,
            entry.request.url,
            entry.request.body,
            entry.request.body_text,
        )
        body = self.ignored.strip(request.body)
        self._candidates.append(_Candidate(entry, request, body))
        number = len(self._candidates) - 1
        self._by_key.setdefault(self._key(request, body), []).append(number)
        return number

    def _key(self, request: ReplayRequest, body: Any) -> tuple[str, ...]:
        text = _canonical(body) if request.body is not None else f"text:{request.body_text or ''}"
        return (request.transport, request.dialect, request.method.upper(), request.url, text)

    def take(self, request: ReplayRequest) -> int | Miss:
        """The number of the entry answering `request` (the next of its key in recorded
        order, then the last again), or why none does."""
        body = self.ignored.strip(request.body)
        key = self._key(request, body)
        numbers = self._by_key.get(key)
        if not numbers:
            return self._closest(request, body)
        served = self._served.get(key, 0)
        self._served[key] = served + 1
        return numbers[min(served, len(numbers) - 1)]

    def _closest(self, request: ReplayRequest, body: Any) -> Miss:
        best: tuple[tuple[int, int], Miss] | None = None
        for candidate in self._candidates:
            recorded = candidate.request
            parts = tuple(
                name
                for name, same in (
                    ("transport", recorded.transport == request.transport),
                    ("dialect", recorded.dialect == request.dialect),
                    ("method", recorded.method.upper() == request.method.upper()),
                    ("url", recorded.url == request.url),
                )
                if not same
            )
            if recorded.body is None or request.body is None:
                same_text = recorded.body is None and request.body is None and recorded.body_text == request.body_text
                paths = [] if same_text else ["(the body)"]
            else:
                paths = [format_path(p) for p in differences(candidate.body, body)]
            score = (len(parts), len(paths))
            if best is None or score < best[0]:
                shown = tuple(paths[:MAX_SHOWN_PATHS])
                best = (score, Miss(candidate.entry, parts, shown, len(paths) - len(shown)))
        return best[1] if best is not None else Miss(None, (), ())
