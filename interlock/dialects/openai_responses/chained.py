"""Keeps chained conversations valid after Interlock removed a tool call.

The Responses API stores what it generated: a request chained on a response with
`previous_response_id` must answer every call of that response with a
`function_call_output` (or `custom_tool_call_output`), or it is refused with `400 No
tool output found for function call call_...`. A call a policy removed never reached
the client, which cannot answer it; so the rewriters remember it here, by response id,
and the next request chained on that response gets the missing output (saying the call
was blocked, and why) before it goes upstream. The memory is per process and bounded:
the oldest responses are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interlock.dialects.openai_responses.request import OUTPUT_ITEMS, input_items

if TYPE_CHECKING:
    from interlock.policy.base import PolicyContext

MAX_RESPONSES = 4096


@dataclass(frozen=True, slots=True)
class RemovedCall:
    call_id: str
    item_type: str  # function_call or custom_tool_call
    name: str
    policy: str
    reason: str

    def output_item(self) -> dict[str, Any]:
        text = f"Interlock blocked this call to {self.name} (policy '{self.policy}'): {self.reason}. It was not run."
        return {"type": OUTPUT_ITEMS[self.item_type], "call_id": self.call_id, "output": text}


class RemovedCalls:
    def __init__(self, limit: int = MAX_RESPONSES) -> None:
        self._limit = limit
        self._by_response: OrderedDict[str, list[RemovedCall]] = OrderedDict()

    def remember(self, response_id: str, call: RemovedCall) -> None:
        """Once per call: a response may be policed again (a replay, a retried stream)."""
        removed = self._by_response.setdefault(response_id, [])
        if all(known.call_id != call.call_id for known in removed):
            removed.append(call)
        self._by_response.move_to_end(response_id)
        while len(self._by_response) > self._limit:
            self._by_response.popitem(last=False)

    def missing(self, request: dict[str, Any]) -> list[RemovedCall]:
        """Removed calls of the response this request chains on that it does not answer."""
        previous = request.get("previous_response_id")
        removed = self._by_response.get(previous) if isinstance(previous, str) else None
        if not removed:
            return []
        answered = {item.get("call_id") for item in input_items(request) if item.get("type") in OUTPUT_ITEMS.values()}
        return [call for call in removed if call.call_id not in answered]


REMOVED = RemovedCalls()


def remember(response_id: str, item: dict[str, Any], name: str, policy: str, reason: str) -> None:
    """A call item of `response_id` that the client never got."""
    call_id = item.get("call_id")
    if isinstance(call_id, str) and item.get("type") in OUTPUT_ITEMS:
        REMOVED.remember(response_id, RemovedCall(call_id, str(item["type"]), name, policy, reason))


def blocking_policy(ctx: PolicyContext, call_id: str | None) -> str:
    """The policy that recorded blocking this call (else the last one that blocked)."""
    blocked = [e for e in ctx.events if e.action == "blocked"]
    named = [e.policy for e in blocked if e.details.get("tool_call_id") == call_id]
    return (named or [e.policy for e in blocked] or ["interlock"])[-1]


def continue_request(ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
    """The request with the outputs of removed calls it chains on, each recorded as a
    change by the policy that removed the call."""
    missing = REMOVED.missing(request)
    for call in missing:
        ctx.record(call.policy, "supplied_tool_output", call.reason, tool_call_id=call.call_id, tool_name=call.name)
    return supply_outputs(request, missing) if missing else request


def supply_outputs(request: dict[str, Any], missing: list[RemovedCall]) -> dict[str, Any]:
    """The request with an output item for each removed call, before its own input."""
    found = request.get("input")
    own = [{"role": "user", "content": found}] if isinstance(found, str) else list(found or [])
    return {**request, "input": [call.output_item() for call in missing] + own}
