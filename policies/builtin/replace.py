"""`replace`: literal and regex find/replace in request and/or response text.

In streams, a match may span deltas: each rule holds back only as many characters as
its longest possible match needs (the pattern's maximum width minus one), so text keeps
flowing and every match is found however the stream is split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from interlock.codecs.edits import map_request_text
from policies.base import Policy, PolicyContext, PolicyOptions

_UNBOUNDED = 65535  # re's MAXREPEAT shows up as a width of this size or more


class Rule(PolicyOptions):
    find: str = Field(min_length=1)
    replace: str = ""
    regex: bool = False
    ignore_case: bool = False
    max_match_length: int | None = Field(default=None, ge=1)

    def compile(self) -> re.Pattern[str]:
        pattern = self.find if self.regex else re.escape(self.find)
        return re.compile(pattern, re.IGNORECASE if self.ignore_case else 0)

    @model_validator(mode="after")
    def _check(self) -> Rule:
        try:
            pattern = self.compile()
        except re.error as error:
            raise ValueError(f"find is not a valid regular expression: {error}") from None
        if pattern.match(""):
            raise ValueError("find must not match the empty string")
        if self.width() is None:
            raise ValueError("find can match text of unbounded length: set max_match_length")
        return self

    def width(self) -> int | None:
        """The longest text a match can span."""
        if self.max_match_length is not None:
            return self.max_match_length
        if not self.regex:
            return len(self.find)
        import re._parser as sre_parse  # the stdlib's own regex parser

        _, widest = sre_parse.parse(self.compile().pattern).getwidth()
        return None if widest >= _UNBOUNDED else int(widest)


class ReplaceOptions(PolicyOptions):
    rules: list[Rule] = Field(min_length=1)
    apply_to: Literal["request", "response", "both"] = "response"


@dataclass(slots=True)
class _Compiled:
    pattern: re.Pattern[str]
    replacement: str
    hold: int  # characters that may still be the start of a match


class ReplacePolicy(Policy):
    name = "replace"
    Options = ReplaceOptions
    description = "Find and replace text (literal or regex) in requests, responses or both."
    options: ReplaceOptions

    def __init__(self, options: ReplaceOptions, instance_name: str) -> None:
        super().__init__(options, instance_name)
        self.rules = [
            _Compiled(rule.compile(), rule.replace, (rule.width() or 1) - 1) for rule in options.rules
        ]

    def _sub(self, rule: _Compiled, text: str) -> tuple[str, int]:
        if rule.pattern.groups or "\\" in rule.replacement:
            return rule.pattern.subn(rule.replacement, text)
        return rule.pattern.subn(lambda _m: rule.replacement, text)

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        if self.options.apply_to == "response":
            return request
        count = 0

        def edit(text: str) -> str:
            nonlocal count
            for rule in self.rules:
                text, n = self._sub(rule, text)
                count += n
            return text

        edited = map_request_text(ctx.dialect, request, edit)
        if count:
            ctx.record(self.instance_name, "modified", f"{count} replacement(s) in the request", side="request", replacements=count)
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
        count = scratch.pop("count", 0)
        if count:
            ctx.record(self.instance_name, "modified", f"{count} replacement(s) in the response", side="response", replacements=count)
        return out

    def _stream(self, ctx: PolicyContext, text: str, final: bool) -> str:
        """Feed text through every rule in turn; each rule keeps its own held tail."""
        scratch = ctx.scratch(self)
        held: list[str] = scratch.setdefault("held", [""] * len(self.rules))
        for position, rule in enumerate(self.rules):
            buffer = held[position] + text
            if final:
                text, n = self._sub(rule, buffer)
                held[position] = ""
            else:
                text, held[position], n = self._commit(rule, buffer)
            scratch["count"] = scratch.get("count", 0) + n
        return text

    def _commit(self, rule: _Compiled, buffer: str) -> tuple[str, str, int]:
        """(text safe to emit, text to hold, replacements made). A match starting at or
        after `safe` could still grow or appear with more text; everything before it
        is final."""
        safe = max(0, len(buffer) - rule.hold)
        out: list[str] = []
        pos = count = 0
        for match in rule.pattern.finditer(buffer):
            if match.start() >= safe:
                break
            out.append(buffer[pos : match.start()])
            out.append(match.expand(rule.replacement) if rule.pattern.groups or "\\" in rule.replacement else rule.replacement)
            pos = match.end()
            count += 1
        cut = max(pos, safe)
        out.append(buffer[pos:cut])
        return "".join(out), buffer[cut:], count
