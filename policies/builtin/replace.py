"""`replace`: literal and regex find/replace in request and/or response text.

In streams, a match may span deltas: each rule holds back only a tail that could still
be the start of a match. The tail is at most as long as the longest possible match needs
(the pattern's maximum width minus one, plus what a trailing assertion such as `\\b`,
`$` or `(?=...)` reads after it), and within that window it starts at the first position
where the `regex` package's partial matching says a match could still begin once more
text comes; text that cannot be part of a match is forwarded at once, so a pattern that
does not occur holds nothing back. Every match is found however the stream is split. The few characters
before the held text are kept as context, so `\\b` and lookbehinds see what really
preceded them. The result is what the rules give applied to the whole text at once.
"""

from __future__ import annotations

import re
import re._constants as sre  # the stdlib's own regex parser and its opcodes
import re._parser as sre_parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import regex
from pydantic import Field, model_validator
from regex import Pattern as PartialPattern

from interlock.policy.base import Policy, PolicyContext, PolicyOptions

_UNBOUNDED = 65535  # widths from this size up count as unbounded


def _subpatterns(value: Any) -> Iterator[sre_parse.SubPattern]:
    if isinstance(value, sre_parse.SubPattern):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _subpatterns(item)


def _reach(pattern: sre_parse.SubPattern) -> tuple[int, int]:
    """(characters before, characters after) a match that its assertions may read."""
    before = after = 0
    for op, value in pattern:
        if op is sre.AT:  # \b, \B, ^, $, \A, \Z: one character each side, two for `$`
            before, after = max(before, 1), max(after, 2)
            continue
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            direction, inner = value
            width = inner.getwidth()[1]
            inner_before, inner_after = _reach(inner)
            if direction > 0:  # lookahead
                before, after = max(before, inner_before), max(after, width + inner_after)
            else:  # lookbehind
                before, after = max(before, width + inner_before), max(after, inner_after)
            continue
        for inner in _subpatterns(value):
            inner_before, inner_after = _reach(inner)
            before, after = max(before, inner_before), max(after, inner_after)
    return before, after


class Rule(PolicyOptions):
    find: str = Field(min_length=1)
    replace: str = ""
    regex: bool = False
    ignore_case: bool = False
    max_match_length: int | None = Field(default=None, ge=1)

    def compile(self) -> re.Pattern[str]:
        return re.compile(self._source(), re.IGNORECASE if self.ignore_case else 0)

    def compile_partial(self) -> PartialPattern[str]:
        """The same pattern for the `regex` package, whose matching can be partial."""
        return regex.compile(self._source(), regex.IGNORECASE if self.ignore_case else 0)

    def _source(self) -> str:
        return self.find if self.regex else re.escape(self.find)

    @model_validator(mode="after")
    def _check(self) -> Rule:
        try:
            pattern = self.compile()
        except re.error as error:
            raise ValueError(f"find is not a valid regular expression: {error}") from None
        if sre_parse.parse(pattern.pattern).getwidth()[0] == 0:
            raise ValueError("find must not match the empty string")
        if self.window() is None:
            raise ValueError("find can match (or look at) text of unbounded length: set max_match_length")
        return self

    def window(self) -> tuple[int, int, int] | None:
        """(longest match, characters read before it, characters read after it), or
        None when unbounded. `max_match_length` bounds all three when set."""
        if self.max_match_length is not None:
            return self.max_match_length, self.max_match_length, self.max_match_length
        if not self.regex:
            return len(self.find), 0, 0
        parsed = sre_parse.parse(self.compile().pattern)
        widest = parsed.getwidth()[1]
        before, after = _reach(parsed)
        if max(widest, before, after) >= _UNBOUNDED:
            return None
        return int(widest), before, after


class ReplaceOptions(PolicyOptions):
    rules: list[Rule] = Field(min_length=1)
    apply_to: Literal["request", "response", "both"] = "response"


@dataclass(slots=True)
class _Compiled:
    pattern: re.Pattern[str]
    partial: PartialPattern[str]  # tells whether a match could begin at a place given more text
    replacement: str
    template: bool  # regex rules expand `\1` and `\g<name>`; literal rules insert as is
    before: int  # characters of context kept for assertions that look back
    hold: int  # characters that may still be the start of a match

    def expand(self, match: re.Match[str]) -> str:
        return match.expand(self.replacement) if self.template else self.replacement

    def commit(self, context: str, text: str, final: bool) -> tuple[str, str, str, int]:
        """Replace in `text` (preceded by `context`, already emitted) what is decided:
        (text to emit, new context, text to hold back, replacements made). A match
        starting at or after `safe` could still change with more text; everything
        before it is final. With `final`, everything is."""
        whole = context + text
        start = len(context)
        safe = len(whole) if final else self._undecided(whole, max(start, len(whole) - self.hold))
        out: list[str] = []
        pos = start
        count = 0
        for match in self.pattern.finditer(whole, start):
            if match.start() >= safe:
                break
            out += (whole[pos : match.start()], self.expand(match))
            pos = match.end()
            count += 1
        cut = max(pos, safe)
        out.append(whole[pos:cut])
        return "".join(out), whole[max(0, cut - self.before) : cut], whole[cut:], count

    def _undecided(self, whole: str, first: int) -> int:
        """The first place from `first` on where a match could still begin (a whole one
        near the end may grow or be undone by an assertion), else the end of `whole`:
        one partial search, which tries each place in turn."""
        match = self.partial.search(whole, first, partial=True)
        return len(whole) if match is None else match.start()


class ReplacePolicy(Policy):
    name = "replace"
    Options = ReplaceOptions
    description = "Find and replace text (literal or regex) in requests, responses or both."
    options: ReplaceOptions

    def __init__(self, options: ReplaceOptions, instance_name: str) -> None:
        super().__init__(options, instance_name)
        self.rules: list[_Compiled] = []
        for rule in options.rules:
            window = rule.window()
            assert window is not None  # checked by the options
            widest, before, after = window
            self.rules.append(
                _Compiled(rule.compile(), rule.compile_partial(), rule.replace, rule.regex, before, widest - 1 + after)
            )

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        if self.options.apply_to == "response":
            return request
        count = 0

        def edit(text: str) -> str:
            nonlocal count
            for rule in self.rules:
                text, _, _, n = rule.commit("", text, final=True)
                count += n
            return text

        edited = ctx.dialect.map_request_text(request, edit)
        if count:
            ctx.record(
                self.instance_name,
                "modified",
                f"{count} replacement(s) in the request",
                side="request",
                replacements=count,
            )
            return edited
        return request

    async def on_text(self, ctx: PolicyContext, text: str) -> str:
        if self.options.apply_to == "request":
            return text
        return self._stream(ctx, text, final=False)

    async def on_text_end(self, ctx: PolicyContext) -> str:
        if self.options.apply_to == "request":
            return ""
        out = self._stream(ctx, "", final=True)
        scratch = ctx.scratch(self)
        scratch.pop("held", None)  # the next text block starts afresh
        count = scratch.pop("count", 0)
        if count:
            ctx.record(
                self.instance_name,
                "modified",
                f"{count} replacement(s) in the response",
                side="response",
                replacements=count,
            )
        return out

    def _stream(self, ctx: PolicyContext, text: str, final: bool) -> str:
        """Feed text through every rule in turn; each rule keeps its own context and held tail."""
        scratch = ctx.scratch(self)
        held: list[tuple[str, str]] = scratch.setdefault("held", [("", "")] * len(self.rules))
        for position, rule in enumerate(self.rules):
            context, tail = held[position]
            text, context, tail, n = rule.commit(context, tail + text, final)
            held[position] = (context, tail)
            scratch["count"] = scratch.get("count", 0) + n
        return text
