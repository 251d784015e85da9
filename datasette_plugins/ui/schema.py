"""What the UI relies on in a recorder database: the documented values of its columns.

The UI reads the database only, never the recorder's code: these are the values the
schema documents (README, "Database schema") for `stages.stage`, `calls.verdict`,
`policy_events.action` and `judge_decisions.decision`. Values the UI does not know are
still shown, only without special meaning. `tests/test_ui_units.py` checks these against
what the recorder and the policies write.
"""

from __future__ import annotations

# stages.stage: the four versions of a call, in the order the pages show them.
STAGES = ("request_original", "request_final", "response_original", "response_final")

# calls.verdict: what the policy chain did to the call as a whole.
VERDICTS = ("pass", "modified", "blocked", "error")
POLICY_VERDICTS = frozenset({"modified", "blocked"})  # a policy changed or stopped the call

# policy_events.action: the decisions policies record, and nothing else.
ACTIONS = (
    "allowed",  # a judge let a tool call through
    "modified",  # a policy changed the request or the response
    "redacted",  # a policy scrubbed secrets or personal data from the request
    "blocked",  # a policy replaced a tool call by a notice
    "ended",  # a policy failed with on_error: block and ended the message: later content dropped
    "error",  # a policy failed (details: the hook and on_error, whether the call went on)
)
# What they make of the call's verdict (docs/policies.md): `blocked`, `modified`.
BLOCKING_ACTIONS = frozenset({"blocked", "ended"})
MODIFYING_ACTIONS = frozenset({"modified", "redacted"})
# Actions that make a session turn an intervention: all but a judge allowing a tool call.
INTERVENING_ACTIONS = frozenset(ACTIONS) - {"allowed"}

# judge_decisions.decision: what an LLM judge ruled on a tool call.
JUDGE_DECISIONS = ("allowed", "blocked")
# A note on a tool call (a policy event or a judge decision naming it) that stopped it.
TOOL_CALL_BLOCKS = frozenset({"blocked"})
