"""What the benchmarks send: the client's API key, the call's messages and the rule policies.

Shared by the side-by-side benchmark, the call-path benchmark and `compare_checkouts`, so
that each measures the same call under the same chain.
"""

from __future__ import annotations

from typing import Any

API_KEY = "sk-bench-0123456789abcdefghij"
MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": "You are a careful assistant. Answer briefly."},
    {"role": "user", "content": "What is the weather in Paris? Use the tool."},
]
RULES: list[dict[str, Any]] = [
    {"policy": "redact"},
    {
        "policy": "replace",
        "apply_to": "both",
        "rules": [
            {"find": "internal-codename", "replace": "[codename]"},
            {"find": r"\bpassw(or)?d\s*[:=]\s*\S{1,40}", "regex": True, "replace": "***", "max_match_length": 60},
        ],
    },
    {"policy": "deny_tools", "deny": ["delete_everything"], "rules": [{"pattern": "rm -rf"}]},
]
