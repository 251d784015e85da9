"""`system_prompt`: prepend or append an instruction to the system prompt."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from interlock.policy.base import Policy, PolicyContext, PolicyOptions


class SystemPromptOptions(PolicyOptions):
    text: str = Field(min_length=1)
    position: Literal["prepend", "append"] = "append"


class SystemPromptPolicy(Policy):
    name = "system_prompt"
    Options = SystemPromptOptions
    description = "Prepend or append an instruction to the system prompt."
    options: SystemPromptOptions

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        ctx.record(
            self.instance_name, "modified", f"system prompt: {self.options.position}ed an instruction", side="request"
        )
        return ctx.dialect.add_system_text(request, self.options.text, self.options.position)
