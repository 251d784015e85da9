"""The UI over a database the real proxy recorded: modified, blocked and judged calls
and an agent session, all made by real SDK clients through mitmdump."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from datasette.app import Datasette
from datasette.utils import tilde_encode
from harness import ProxyLauncher, ProxyProcess
from harness_clients import ClientFactory
from harness_db import CallsDB
from judge_mock import JudgeMock, block

from datasette_plugins.ui import serve

SESSION = "ui-proxy-session"
CALL_ID = "x-interlock-call-id"
WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather.",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string"}}},
}
POLICIES: list[dict[str, Any]] = [
    {"policy": "model_rewrite", "map": {"gpt-4o": "gpt-4o-mini"}},
    {"policy": "system_prompt", "text": "Answer briefly.", "position": "append"},
    {"policy": "tool_call_judge", "model": "openai/judge-mock", "api_key_env": "UI_JUDGE_KEY", "timeout_s": 5,
     "on_error": "allow", "retries": 0},
]  # fmt: skip


@pytest.fixture(scope="module")
def recorded(
    start_module_proxy: ProxyLauncher, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, str]]]:
    """Run the calls through a real proxy; yield its database and the call ids by role."""
    with JudgeMock() as judge:
        judge.when("Tokyo, Japan", block("Tokyo is off limits today.", probability=0.91))
        policies = [dict(p, api_base=judge.url) if p["policy"] == "tool_call_judge" else p for p in POLICIES]
        proxy: ProxyProcess = start_module_proxy(config={"policies": policies}, env={"UI_JUDGE_KEY": "sk-judge-ui"})
        clients = ClientFactory(proxy.url, start_module_proxy.ca, "sk-test-ui-proxy")
        try:
            ids = make_calls(clients)
        finally:
            clients.close()
        assert proxy.db_path is not None
        db = CallsDB(proxy.db_path)
        for call_id in ids.values():
            db.wait_call(call_id)
        proxy.stop()
        yield proxy.db_path, ids


def make_calls(clients: ClientFactory) -> dict[str, str]:
    anthropic = clients.anthropic()
    headers = {"x-interlock-session": SESSION}
    history: Any = [{"role": "user", "content": "Weather in Paris and Tokyo? [[mock:tools2]]"}]
    with anthropic.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=200,
        tools=[WEATHER],
        messages=history,
        extra_headers=headers,
    ) as stream:
        first = stream.get_final_message()
        judged = stream.response.headers[CALL_ID]
    tool_uses = [block for block in first.content if block.type == "tool_use"]
    assert [t.input["location"] for t in tool_uses] == ["Paris, France"]
    history += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_uses[0].id, "content": "18C, sunny"}]},
    ]
    second = anthropic.messages.with_raw_response.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        tools=[WEATHER],
        messages=history,
        extra_headers=headers,
    )
    history += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in second.parse().content]},
        {"role": "user", "content": "Thanks, and tomorrow?"},
    ]
    third = anthropic.messages.with_raw_response.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        messages=history,
        extra_headers=headers,
    )
    rewritten = clients.openai().chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}]
    )
    return {
        "judged": judged,
        "second": second.headers[CALL_ID],
        "third": third.headers[CALL_ID],
        "rewritten": rewritten.headers[CALL_ID],
    }


@pytest.fixture
def ds(recorded: tuple[Path, dict[str, str]]) -> Datasette:
    return Datasette([str(recorded[0])], **serve.datasette_kwargs())


def database_name(path: Path) -> str:
    return path.stem


async def page(ds: Datasette, path: str) -> str:
    response = await ds.client.get(path)
    assert response.status_code == 200, f"{path}: {response.status_code}\n{response.text[:2000]}"
    return response.text


def text_of(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


def test_pages_show_what_the_policies_did(ds: Datasette, recorded: tuple[Path, dict[str, str]]) -> None:
    path, ids = recorded
    db = database_name(path)

    async def check() -> None:
        for call_id in ids.values():
            await page(ds, f"/-/interlock/{db}/calls/{tilde_encode(call_id)}")
        for table in ("calls", "stages", "policy_events", "judge_decisions", "blocked_calls", "modified_calls"):
            await page(ds, f"/{db}/{table}")

        judged = text_of(await page(ds, f"/-/interlock/{db}/calls/{tilde_encode(ids['judged'])}"))
        assert "1 tool call blocked" in judged
        assert "Tokyo is off limits today." in judged
        assert "probability 0.91" in judged
        assert "Tokyo, Japan" in judged

        rewritten = text_of(await page(ds, f"/-/interlock/{db}/calls/{tilde_encode(ids['rewritten'])}"))
        assert "gpt-4o → gpt-4o-mini" in rewritten
        assert "Answer briefly." in rewritten  # the system prompt line the policy added

        session = await page(ds, f"/-/interlock/{db}/sessions/{tilde_encode(SESSION)}")
        assert re.search(r'data-total="turns">3<', session)
        assert 'data-total="blocked">1<' in session or "1 blocked" in text_of(session)

    asyncio.run(check())
