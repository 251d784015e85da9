"""What the UI relies on in a recorder database: the documented values of its columns.

The UI reads the database only, never the recorder's code: these are the values the
schema documents (README, "Database schema") for `stages.stage` and `calls.verdict`.
Values the UI does not know are still shown, only without special meaning. `tests/test_ui_units.py` checks these against
what the recorder and the policies write.
"""

from __future__ import annotations

# stages.stage: the four versions of a call, in the order the pages show them.
STAGES = ("request_original", "request_final", "response_original", "response_final")

# calls.verdict: what the policy chain did to the call as a whole.
VERDICTS = ("pass", "modified", "blocked", "error")
