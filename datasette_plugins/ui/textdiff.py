"""Line diffs with word-level marks, built on difflib, sized for a web page.

`diff_text(old, new)` aligns lines, keeps `context` unchanged lines around each change
and replaces longer unchanged runs by a gap; lines replaced one for one get their
changed words marked. Texts too large to diff quickly are not diffed: the result says so.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

LineOp = Literal["same", "del", "add", "gap"]

MAX_DIFF_CHARS = 400_000  # beyond this (old + new), say "too large" instead of diffing
MAX_DIFF_LINES = 8_000
MAX_WORD_DIFF_CHARS = 4_000  # longer replaced lines are marked changed as a whole
_TOKENS = re.compile(r"\w+|\s+|[^\w\s]")


@dataclass(frozen=True)
class Segment:
    text: str
    changed: bool = False


@dataclass(frozen=True)
class DiffLine:
    """A line of a unified diff; for a gap, `skipped` is the number of unchanged lines."""

    op: LineOp
    segments: tuple[Segment, ...] = ()
    old_no: int | None = None
    new_no: int | None = None
    skipped: int = 0


@dataclass(frozen=True)
class TextDiff:
    lines: tuple[DiffLine, ...]
    changed: bool
    too_large: bool = False
    added: int = 0
    removed: int = 0


def _word_marks(old: str, new: str) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """The two lines as segments, with the words that differ marked changed."""
    if len(old) + len(new) > MAX_WORD_DIFF_CHARS:
        return (Segment(old, True),), (Segment(new, True),)
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    old_segments: list[Segment] = []
    new_segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        changed = tag != "equal"
        if i2 > i1:
            old_segments.append(Segment("".join(a[i1:i2]), changed))
        if j2 > j1:
            new_segments.append(Segment("".join(b[j1:j2]), changed))
    return tuple(old_segments), tuple(new_segments)


def _replaced(a: list[str], b: list[str], i1: int, i2: int, j1: int, j2: int) -> list[DiffLine]:
    """Removed then added lines; lines paired one for one get word marks."""
    removed = [DiffLine("del", (Segment(a[i], True),), old_no=i + 1) for i in range(i1, i2)]
    added = [DiffLine("add", (Segment(b[j], True),), new_no=j + 1) for j in range(j1, j2)]
    for k in range(min(i2 - i1, j2 - j1)):
        old_segments, new_segments = _word_marks(a[i1 + k], b[j1 + k])
        removed[k] = DiffLine("del", old_segments, old_no=i1 + k + 1)
        added[k] = DiffLine("add", new_segments, new_no=j1 + k + 1)
    return removed + added


def diff_text(old: str, new: str, context: int = 3) -> TextDiff:
    """The diff of two texts, line by line, unchanged runs beyond `context` lines elided."""
    if old == new:
        return TextDiff((), changed=False)
    a, b = old.split("\n"), new.split("\n")  # not splitlines(): a trailing newline is a change too
    if len(old) + len(new) > MAX_DIFF_CHARS or len(a) + len(b) > MAX_DIFF_LINES:
        return TextDiff((), changed=True, too_large=True)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    lines: list[DiffLine] = []
    added = removed = 0
    shown_until = 0  # old lines before this index are shown or counted in a gap
    for group in matcher.get_grouped_opcodes(context):
        first_old = group[0][1]
        if first_old > shown_until:
            lines.append(DiffLine("gap", skipped=first_old - shown_until))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [DiffLine("same", (Segment(a[i]),), i + 1, j1 + i - i1 + 1) for i in range(i1, i2)]
            else:
                lines += _replaced(a, b, i1, i2, j1, j2)
                removed += i2 - i1
                added += j2 - j1
        shown_until = group[-1][2]
    if shown_until < len(a):
        lines.append(DiffLine("gap", skipped=len(a) - shown_until))
    return TextDiff(tuple(lines), changed=True, added=added, removed=removed)
