"""What the benchmarks send and how: the client's API key, the call's messages, the rule
policies, the `openai` SDK client (direct or through a proxy) and its non-streamed call,
and bare mitmdump's one addon.

Shared by the side-by-side benchmark, the call-path and instruction benchmarks and
`compare_checkouts`, so that each measures the same call under the same chain.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import httpx2
from harness import MitmCA, ProxyProcess
from openai import AsyncOpenAI

BARE_ARGS = ["-s", str(REPO / "benchmarks" / "bare_stream.py")]  # bare mitmdump: stream SSE, nothing else

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


def sdk_client(proxy: ProxyProcess | None, mock_url: str, ca: MitmCA, *, connections: int) -> AsyncOpenAI:
    """The `openai` SDK calling the mock directly (`proxy` None) or through `proxy`, with
    the mitmproxy CA trusted, keeping up to `connections` open; no retries, no proxy
    settings from the environment."""
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    if proxy is None:
        http = httpx2.AsyncClient(trust_env=False, timeout=60, limits=limits)
        return AsyncOpenAI(api_key=API_KEY, base_url=f"{mock_url}/v1", http_client=http, max_retries=0)
    http = httpx2.AsyncClient(proxy=proxy.url, verify=ca.ssl_context(), trust_env=False, timeout=60, limits=limits)
    return AsyncOpenAI(api_key=API_KEY, base_url="https://api.openai.com/v1", http_client=http, max_retries=0)


async def tool_call(client: AsyncOpenAI) -> None:
    """One non-streamed call answered with a tool call (the judge judges it)."""
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        extra_headers={"x-mock-scenario": "tool"},
    )
    assert completion.choices[0].message.tool_calls, completion
