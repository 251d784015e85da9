"""How many tool calls a backtest would send to a judge, and about what that costs.

Counted from the recorded answers' tool calls (`tool_calls`, stage `response_original`)
of the selected calls, once per judge policy in the chain. Each is priced from
litellm's model cost map (`recorder.cost`) for the judge's model: the prompt the judge
would get (its instructions and context, built as the policy builds it) at about four
characters a token, and the judge's whole `max_tokens` as its answer, so the estimate
errs high. A model the cost map does not price gives an unknown cost, never $0.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from backtest.recorded import Filter, recorded_request
from interlock.dialects import DIALECTS
from interlock.neutral import ToolCall, Usage
from interlock.policy.chain import PolicyChain
from policies.builtin.judge_prompt import build_messages
from policies.builtin.tool_call_judge import ToolCallJudgePolicy
from recorder.cost import price

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # per chat message: its role and separators


def judges(chain: PolicyChain) -> list[ToolCallJudgePolicy]:
    """The chain's judge policies: each makes one model call per tool call it sees."""
    return [entry.policy for entry in chain.entries if isinstance(entry.policy, ToolCallJudgePolicy)]


@dataclass(frozen=True, slots=True)
class Estimate:
    judge_calls: int
    cost_usd: float | None  # None: some judge model has no known price
    models: tuple[str, ...]

    def describe(self) -> str:
        if self.judge_calls == 0:
            return "0 tool calls would be judged."
        cost = "unknown (the judge model is not priced in litellm's cost map)"
        if self.cost_usd is not None:
            cost = f"about ${self.cost_usd:.4f}"
        return f"{self.judge_calls} tool calls would be judged by {', '.join(self.models)}: estimated cost {cost}."


def _model_price(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """A litellm model string (`provider/model`) priced for one call."""
    provider, _, name = model.rpartition("/")
    cost, _ = price(name, provider, Usage(input_tokens=input_tokens, output_tokens=output_tokens))
    return cost


def estimate(conn: sqlite3.Connection, chain: PolicyChain, selected: Filter) -> Estimate:
    found = judges(chain)
    if not found:
        return Estimate(0, 0.0, ())
    rows = conn.execute(
        f"""select t.call_id, t.tool_call_id, t.name, t.arguments_json from tool_calls t
        where t.stage = 'response_original' and t.call_id in (select c.call_id from calls c where {selected.where})
        order by t.call_id, t.position""",
        selected.params,
    ).fetchall()
    count, total, unknown = 0, 0.0, False
    requests: dict[str, tuple[str, Any]] = {}
    for call_id, tool_call_id, name, arguments_json in rows:
        if call_id not in requests:
            requests[call_id] = recorded_request(conn, call_id)
        dialect_name, request = requests[call_id]
        dialect = DIALECTS.get(dialect_name)
        if dialect is None:
            continue
        call = ToolCall(tool_call_id, name, json.loads(arguments_json) if arguments_json is not None else {})
        for judge in found:
            options = judge.options
            messages = build_messages(call, dialect, request, options.context, options.instructions)
            chars = sum(len(m["content"]) for m in messages)
            tokens = math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * len(messages)
            cost = _model_price(options.model, tokens, options.max_tokens)
            count += 1
            if cost is None:
                unknown = True
            else:
                total += cost
    models = tuple(dict.fromkeys(judge.options.model for judge in found))
    return Estimate(count, None if unknown else total, models)
