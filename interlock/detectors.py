"""Detectors of secrets and personal data in text: the one home of the patterns that the
`redact` policy scrubs from requests and the recorder scrubs from every record.

A `Detectors` set compiles named patterns once. Each built-in detector sits behind a
cheap pre-check (`HINTS`): the detectors start with `\\b`, which makes `re` try every
position of a text (about 12 ns a character each), while a hint starts with a literal
`re` can skip ahead to (about 0.3 ns a character). A text goes through only the
detectors whose hint finds something: usually none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

DETECTORS: dict[str, str] = {
    "private_key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    "anthropic_key": r"\bsk-ant-[A-Za-z0-9_-]{20,}",
    "openai_key": r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
    "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
    "slack_token": r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
    "google_api_key": r"\bAIza[0-9A-Za-z_-]{35}",
    "stripe_key": r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}",
    "aws_access_key_id": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "jwt": r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    "email": r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
}
HINTS: dict[str, str] = {
    "private_key": "-----BEGIN ",
    "anthropic_key": "sk-ant-",
    "openai_key": "sk-",
    "github_token": "gh[pousr]_|github_pat_",
    "slack_token": "xox[abposr]-",
    "google_api_key": "AIza",
    "stripe_key": "_(?:live|test)_",
    "aws_access_key_id": "A(?:KIA|SIA)",
    "jwt": "eyJ",
    "email": r"@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
}
# Literals at least one of which every match of a detector holds: `str in` finds a
# literal several times faster than `re` does, so a text holding none of a detector's
# literals (the usual text) never reaches its pre-check.
LITERALS: dict[str, tuple[str, ...]] = {
    "private_key": ("-----BEGIN ",),
    "anthropic_key": ("sk-ant-",),
    "openai_key": ("sk-",),
    "github_token": ("gh",),
    "slack_token": ("xox",),
    "google_api_key": ("AIza",),
    "stripe_key": ("_live_", "_test_"),
    "aws_access_key_id": ("AKIA", "ASIA"),
    "jwt": ("eyJ",),
    "email": ("@",),
}
# Credentials, as opposed to personal data (e-mail addresses): never recorded, whatever
# the configuration says.
KEY_DETECTORS: tuple[str, ...] = tuple(name for name in DETECTORS if name != "email")


def record_detectors(extra: Iterable[Mapping[str, str]]) -> Detectors:
    """The detectors scrubbed from a record: the key detectors, then `extra` (the
    patterns of the configured `redact` policies); a name taken by another pattern is
    prefixed with its position in `extra`."""
    named = {name: DETECTORS[name] for name in KEY_DETECTORS}
    for position, patterns in enumerate(extra):
        for name, pattern in patterns.items():
            if named.setdefault(name, pattern) != pattern:
                named[f"{position}.{name}"] = pattern
    return Detectors(named)


def record_marker(name: str) -> str:
    """What a detected secret becomes in the record: its kind, nothing of the secret."""
    return f"<redacted:{name}>"


def check_pattern(pattern: str) -> str:
    """`pattern` if it is a usable detector; raises ValueError saying why not."""
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"is not a valid regular expression: {error}") from None
    if compiled.fullmatch(""):
        raise ValueError("matches the empty string (it would mark every position of a text)")
    return pattern


class Detectors:
    """Named patterns, compiled once; a custom pattern (one that is not a built-in
    detector's own) has no pre-check and always runs."""

    def __init__(self, named: Mapping[str, str]) -> None:
        self.names = list(named)
        self._patterns = list(named.values())
        built_in = [DETECTORS.get(name) == pattern for name, pattern in named.items()]
        self._hints = [
            re.compile(HINTS[name]) if own else re.compile(pattern)
            for own, (name, pattern) in zip(built_in, named.items(), strict=True)
        ]
        self._literals = [LITERALS[name] if own else () for own, name in zip(built_in, named, strict=True)]
        self._alternations: dict[tuple[int, ...], re.Pattern[str]] = {}

    def __bool__(self) -> bool:
        return bool(self.names)

    def active(self, text: str) -> tuple[int, ...]:
        """The detectors that may match in `text` (their pre-check finds something)."""
        return tuple(
            i
            for i, (hint, literals) in enumerate(zip(self._hints, self._literals, strict=True))
            if (not literals or any(literal in text for literal in literals)) and hint.search(text)
        )

    def sub(self, text: str, replace: Callable[[str], str], active: tuple[int, ...] | None = None) -> str:
        """`text` with each match replaced by `replace(detector name)`; where several
        detectors match at the same place, the first one listed wins. `active` narrows
        the detectors tried (from `active()` over a larger text holding this one)."""
        candidates = self.active(text) if active is None else tuple(i for i in active if self._hints[i].search(text))
        if not candidates:
            return text

        def replacement(match: re.Match[str]) -> str:
            return replace(next(self.names[i] for i in candidates if match.group(_group(i)) is not None))

        return self._alternation(candidates).sub(replacement, text)

    def hint_positions(self, index: int, text: str) -> list[int] | None:
        """Where detector `index`'s pre-check matches in `text`; None for a custom pattern
        (its matches may overlap, so positions would not say where all of them are)."""
        if DETECTORS.get(self.names[index]) != self._patterns[index]:
            return None
        return [match.start() for match in self._hints[index].finditer(text)]

    def kinds(self, text: str) -> set[str]:
        """The names of the detectors that match somewhere in `text`."""
        found: set[str] = set()

        def note(name: str) -> str:
            found.add(name)
            return name

        self.sub(text, note)
        return found

    def _alternation(self, active: tuple[int, ...]) -> re.Pattern[str]:
        if active not in self._alternations:
            self._alternations[active] = re.compile("|".join(f"(?P<{_group(i)}>{self._patterns[i]})" for i in active))
        return self._alternations[active]


def _group(index: int) -> str:
    """The alternation's group name for a detector (not a name a custom pattern would use)."""
    return f"interlock_detector_{index}"
