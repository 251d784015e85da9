"""`tool_call_judge`: asks a judge LLM (through litellm) whether each tool call is harmful.

The engine holds every streamed tool call until it is complete and starts this hook at
once, so several calls are judged concurrently while the text around them streams. A
call the judge rates at or above `threshold` is replaced by a readable notice (tool name,
pretty-printed arguments, probability, explanation); others are released unchanged.

A judge that is down, slow, rate-limited past its retries or answering garbage takes
`on_error` (allow or block) within `timeout_s` (retries included). The chain entry's
`on_error` and `timeout_s` are this policy's own (see `policies.registry`), and the
chain's generic bound is only a backstop set a little later. Every judged call
is recorded: a `JudgeRecord` (prompt, raw answer, tokens, cost, latency, error) and a
policy event ("blocked" or "allowed").

litellm is imported by the constructor, i.e. when a configuration using this policy is
loaded, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import os
import string
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from interlock.neutral import ToolCall
from interlock.policy.base import Keep, Policy, PolicyContext, PolicyOptions, ReplaceWithText, ToolDecision
from interlock.policy.records import JudgeRecord
from policies.builtin.judge_answer import JudgeAnswer, JudgeAnswerError, parse_answer
from policies.builtin.judge_client import JudgeClient, JudgeFailure, JudgeReply
from policies.builtin.judge_prompt import JudgeContext, build_messages
from policies.builtin.tool_text import pretty_arguments

TEMPLATE_FIELDS = frozenset({"tool_name", "arguments", "probability", "explanation"})
DEFAULT_BLOCK_MESSAGE = (
    "⛔ Interlock blocked the tool call `{tool_name}` (judged risk: {probability}).\n"
    "Reason: {explanation}\n"
    "Arguments:\n```json\n{arguments}\n```"
)


class ToolCallJudgeOptions(PolicyOptions):
    model: str  # any litellm model string, e.g. "anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"
    api_base: str | None = None  # for local or OpenAI-compatible servers
    api_key_env: str | None = None  # environment variable holding the judge's API key
    threshold: float = Field(default=0.5, ge=0, le=1)  # block when probability >= threshold
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=300, ge=16)
    instructions: str | None = None  # replaces the default system prompt
    context: JudgeContext = Field(default_factory=JudgeContext)
    timeout_s: float = Field(default=5.0, gt=0)  # the decision comes within this, retries included
    retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.25, ge=0)  # first pause before a retry; doubles each time
    on_error: Literal["allow", "block"] = "allow"
    block_message: str = DEFAULT_BLOCK_MESSAGE

    @field_validator("block_message")
    @classmethod
    def _known_fields(cls, template: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
            unknown = names - TEMPLATE_FIELDS
            if unknown:
                raise ValueError(f"unknown placeholders {sorted(unknown)}; use {sorted(TEMPLATE_FIELDS)}")
            template.format(**{name: "x" for name in TEMPLATE_FIELDS})
        except (ValueError, IndexError) as error:
            raise ValueError(f"not a usable template: {error}") from None
        return template


@dataclass(slots=True)
class _Judgement:
    """What came back from the judge for one tool call."""

    reply: JudgeReply | None = None
    answer: JudgeAnswer | None = None
    error: str | None = None  # the failure in detail, for the record
    why: str = ""  # the failure in a few words, for people

    def failed(self, error: str, why: str) -> None:
        self.answer, self.error, self.why = None, error, why


class ToolCallJudgePolicy(Policy):
    name = "tool_call_judge"
    Options = ToolCallJudgeOptions
    description = "Ask a judge LLM whether each tool call is harmful; replace the ones it blocks with a notice."
    options: ToolCallJudgeOptions

    def __init__(self, options: ToolCallJudgeOptions, instance_name: str) -> None:
        super().__init__(options, instance_name)
        api_key = None
        if options.api_key_env is not None:
            api_key = os.environ.get(options.api_key_env)
            if not api_key:
                raise ValueError(f"api_key_env: the environment variable {options.api_key_env} is not set")
        self.client = JudgeClient(
            options.model,
            api_base=options.api_base,
            api_key=api_key,
            temperature=options.temperature,
            max_tokens=options.max_tokens,
            retries=options.retries,
            backoff_s=options.backoff_s,
            timeout_s=options.timeout_s,
        )

    async def on_tool_call(self, ctx: PolicyContext, call: ToolCall) -> ToolDecision:
        options = self.options
        messages = build_messages(call, ctx.dialect, ctx.request, options.context, options.instructions)
        started = asyncio.get_running_loop().time()
        judgement = _Judgement()
        try:
            judgement.reply = await self.client.ask(messages, started + options.timeout_s)
            judgement.answer = parse_answer(judgement.reply.text)
        except JudgeFailure as failure:
            judgement.failed(failure.detail, f"the judge {failure.reason}")
        except JudgeAnswerError as bad:
            judgement.failed(f"unusable answer: {bad}", "the judge gave an unusable answer")
        except asyncio.CancelledError:  # the call went away: still say what was asked
            judgement.failed("cancelled", "")
            self._record(ctx, call, messages, judgement, options.on_error == "block", started)
            raise
        blocked, reason, probability, explanation = self._verdict(call, judgement)
        self._record(ctx, call, messages, judgement, blocked, started)
        ctx.record(
            self.instance_name,
            "blocked" if blocked else "allowed",
            reason,
            tool_call_id=call.id,
            tool_name=call.name,
            probability=judgement.answer.probability if judgement.answer else None,
            judge_model=options.model,
            error=judgement.error,
        )
        if not blocked:
            return Keep(call)
        text = options.block_message.format(
            tool_name=call.name,
            arguments=pretty_arguments(call.arguments),
            probability=probability,
            explanation=explanation,
        )
        return ReplaceWithText(text, reason)

    def _verdict(self, call: ToolCall, judgement: _Judgement) -> tuple[bool, str, str, str]:
        """(blocked, reason for the record, probability and explanation for the notice)."""
        options, answer = self.options, judgement.answer
        if answer is None:
            blocked = options.on_error == "block"
            verb = "blocked" if blocked else "allowed"
            why = judgement.why
            explanation = f"{why[0].upper()}{why[1:]}, and this policy blocks tool calls when the judge fails."
            return blocked, f"{why}; `{call.name}` {verb} (on_error={options.on_error})", "unknown", explanation
        blocked = answer.probability >= options.threshold
        reason = f"`{call.name}` risk {answer.probability:.2f} {'>=' if blocked else '<'} {options.threshold:g}"
        if answer.explanation:
            reason += f": {answer.explanation[:200]}"
        return blocked, reason, f"{answer.probability:.2f}", answer.explanation or "(no explanation given)"

    def _record(
        self,
        ctx: PolicyContext,
        call: ToolCall,
        messages: list[dict[str, str]],
        judgement: _Judgement,
        blocked: bool,
        started: float,
    ) -> None:
        reply, answer = judgement.reply, judgement.answer
        ctx.judgements.append(
            JudgeRecord(
                tool_call_id=call.id,
                tool_name=call.name,
                arguments=call.arguments,
                judge_model=self.options.model,
                prompt=messages,
                raw_answer=reply.text if reply else None,
                probability=answer.probability if answer else None,
                explanation=answer.explanation if answer else None,
                decision="blocked" if blocked else "allowed",
                latency_ms=round((asyncio.get_running_loop().time() - started) * 1000, 1),
                input_tokens=reply.input_tokens if reply else None,
                output_tokens=reply.output_tokens if reply else None,
                cost_usd=reply.cost_usd if reply else None,
                error=judgement.error,
                at=time.time(),
            )
        )
