"""`deny_tools`: block tool calls by name, by argument pattern, or allow only listed tools.

A blocked call is removed from the response and replaced by a readable notice naming
the tool, its pretty-printed arguments and the rule that matched.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase

from pydantic import Field, model_validator

from interlock.neutral import ToolCall
from interlock.policy.base import Keep, Policy, PolicyContext, PolicyOptions, ReplaceWithText, ToolDecision
from policies.builtin.tool_text import blocked_notice


class ArgumentRule(PolicyOptions):
    """Block `tool` (a glob) when its arguments, as JSON text, match `pattern`."""

    pattern: str
    tool: str = "*"
    reason: str | None = None

    @model_validator(mode="after")
    def _compiles(self) -> ArgumentRule:
        try:
            re.compile(self.pattern)
        except re.error as error:
            raise ValueError(f"pattern is not a valid regular expression: {error}") from None
        return self


class DenyToolsOptions(PolicyOptions):
    deny: list[str] = Field(default_factory=list)  # tool name globs
    allow_only: list[str] | None = None  # when set, every other tool is blocked
    rules: list[ArgumentRule] = Field(default_factory=list)


class DenyToolsPolicy(Policy):
    name = "deny_tools"
    Options = DenyToolsOptions
    description = "Block tool calls by name or argument pattern, or allow only listed tools."
    options: DenyToolsOptions

    def __init__(self, options: DenyToolsOptions, instance_name: str) -> None:
        super().__init__(options, instance_name)
        self.rules = [(rule, re.compile(rule.pattern)) for rule in options.rules]

    def verdict(self, call: ToolCall) -> str | None:
        """Why the call is blocked, or None."""
        for denied in self.options.deny:
            if fnmatchcase(call.name, denied):
                return f"tool `{call.name}` is denied (rule: deny {denied!r})"
        allowed = self.options.allow_only
        if allowed is not None and not any(fnmatchcase(call.name, p) for p in allowed):
            return f"tool `{call.name}` is not in allow_only {allowed}"
        text = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments, ensure_ascii=False)
        for rule, compiled in self.rules:
            if fnmatchcase(call.name, rule.tool) and compiled.search(text):
                return rule.reason or f"arguments match {rule.pattern!r}"
        return None

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        why = self.verdict(call)
        if why is None:
            return Keep(call)
        ctx.record(
            self.instance_name, "blocked", why, tool_call_id=call.id, tool_name=call.name, arguments=call.arguments
        )
        return ReplaceWithText(blocked_notice(call.name, call.arguments, why), why)
