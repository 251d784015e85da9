"""The Datasette UI on OpenAI Responses calls, in process.

A Codex-like turn is recorded through the real `RecorderWriter`: its request carries
every kind of input item (a user message, a reasoning summary, a function call and its
output, a custom tool call and its output); its streamed response (reasoning, text, a
shell call and an `apply_patch` custom call) went through the real `deny_tools` stream
rewriter, which blocked the shell call. The call page must show both sides item by
item, the blocked call marked with its reason and the notice that replaced it; a turn
chained on it with `previous_response_id` sits in the same session.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from datasette.app import Datasette
from policy_fixtures import chain_of, context, police_stream
from test_ui import call_path, page, session_path, text_of
from ui_fixtures import HEADERS, write_records
from wire_scenarios import RESPONSES_SCENARIOS, ResponsesScenario, openai_responses_sse, openai_tool_id

from datasette_plugins.ui import serve
from interlock.dialects import dialect_for
from interlock.sse import parse_all
from recorder.models import CallRecord, StageRecord

DB = "interlock"
DIALECT = dialect_for("openai-responses")
ROUTE = {"provider": "openai", "dialect": "openai-responses", "host": "api.openai.com", "path": "/v1/responses"}
MODEL = "gpt-5-codex"
SESSION = "codex-thr-7f3a"
T0 = 1_795_100_000.0
SHELL = RESPONSES_SCENARIOS["shell"].tool_calls[0]  # exec_command rm -rf /tmp/precious
PATCH = RESPONSES_SCENARIOS["custom_tool"].custom_calls[0]  # apply_patch
TURN = ResponsesScenario(
    model=MODEL, thinking=["Old files", " first."], text=["Cleaning up now."], tool_calls=[SHELL], custom_calls=[PATCH]
)
REASON = "recursive delete"
REQUEST: dict[str, Any] = {
    "model": MODEL,
    "instructions": "You are Codex, a coding agent.",
    "stream": True,
    "prompt_cache_key": "thr-7f3a",
    "tools": [{"type": "function", "name": "exec_command"}, {"type": "custom", "name": "apply_patch"}],
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tidy the repo, please."}]},
        {"type": "reasoning", "id": "rs_0", "summary": [{"type": "summary_text", "text": "List the files."}]},
        {"type": "function_call", "call_id": "call_ls", "name": "exec_command", "arguments": '{"cmd":"ls -la"}'},
        {"type": "function_call_output", "call_id": "call_ls", "output": "notes.txt\nold.log"},
        {"type": "custom_tool_call", "call_id": "call_p0", "name": "apply_patch", "input": "*** Begin Patch\n+x"},
        {"type": "custom_tool_call_output", "call_id": "call_p0", "output": "Done!"},
    ],
}


STAGES = ("request_original", "request_final", "response_original", "response_final")


def _stage(stage: str, body: Any, raw: bytes | None = None) -> StageRecord:
    return StageRecord(stage=stage, headers=HEADERS, body=body, raw=raw)  # type: ignore[arg-type]


async def _records() -> list[CallRecord]:
    original = b"".join(openai_responses_sse(TURN, MODEL))
    chain = chain_of({"policy": "deny_tools", "rules": [{"tool": "*", "pattern": "rm -rf", "reason": REASON}]})
    final, ctx = await police_stream(chain, DIALECT.name, [original], context(DIALECT.name, REQUEST))
    original_body = DIALECT.reassemble(parse_all(original)).message
    final_body = DIALECT.reassemble(parse_all(final)).message
    assert isinstance(final_body, dict) and isinstance(original_body, dict)
    common: dict[str, Any] = {**ROUTE, "model": MODEL, "response_model": MODEL, "status": 200, "session_id": SESSION}
    blocked = CallRecord.model_validate(
        {
            **common,
            "call_id": "ui-responses-blocked",
            "started_at": T0,
            "ended_at": T0 + 2,
            "stream": True,
            "verdict": "blocked",
            "prompt_text": "Tidy the repo, please.",
            "response_text": DIALECT.response_text(final_body),
            "stages": [
                _stage("request_original", REQUEST),
                _stage("request_final", REQUEST),
                _stage("response_original", original_body, original),
                _stage("response_final", final_body, final),
            ],
            "events": ctx.events,
        }
    )
    patched = {"type": "custom_tool_call_output", "call_id": openai_tool_id(PATCH), "output": "Patched notes.txt"}
    chained_request = {
        "model": MODEL,
        "previous_response_id": original_body["id"],  # only the new items: the output, a prompt
        "input": [patched, {"role": "user", "content": "now say hello"}],
    }
    reply = {"id": "resp_next", "object": "response", "status": "completed", "model": MODEL, "output": []}
    chained = CallRecord.model_validate(
        {
            **common,
            "call_id": "ui-responses-chained",
            "started_at": T0 + 10,
            "ended_at": T0 + 11,
            "stages": [
                _stage("request_original", chained_request),
                _stage("request_final", chained_request),
                _stage("response_original", reply),
                _stage("response_final", reply),
            ],
        }
    )
    return [blocked, chained]


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Datasette:
    path = tmp_path_factory.mktemp("ui-responses") / f"{DB}.db"
    asyncio.run(write_records(path, asyncio.run(_records())))
    return Datasette([str(path)], **serve.datasette_kwargs())


async def test_the_call_page_shows_every_input_item(ds: Datasette) -> None:
    text = text_of(await page(ds, call_path("ui-responses-blocked")))
    for shown in (
        "You are Codex, a coding agent.",
        "Tidy the repo, please.",
        "List the files.",
        "exec_command",
        "ls -la",
        "notes.txt old.log",
        "apply_patch",
        "*** Begin Patch +x",
        "Done!",
    ):
        assert shown in text, shown


async def test_the_call_page_shows_the_output_items_and_the_block(ds: Datasette) -> None:
    markup = await page(ds, call_path("ui-responses-blocked"))
    text = text_of(markup)
    assert "Old files first." in text and "Cleaning up now." in text  # reasoning summary, message
    assert "*** Update File: notes.txt" in text  # the custom call that was allowed
    assert f"Interlock blocked the tool call `exec_command`: {REASON}" in text  # the notice the client got
    assert "1 tool call blocked" in text
    assert REASON in text and "deny_tools" in text
    cards = re.findall(r'<div class="il-block il-block-tool_call il-blocked">(.*?)</pre>', markup, re.DOTALL)
    blocked = [text_of(card) for card in cards]
    assert len(blocked) == 1 and "exec_command" in blocked[0] and "rm -rf /tmp/precious" in blocked[0]
    assert openai_tool_id(SHELL) in markup


async def test_a_chained_turn_continues_the_thread_and_carries_the_result(ds: Datasette) -> None:
    text = text_of(await page(ds, session_path(SESSION)))
    assert "2 turns" in text and "1 blocked" in text
    assert "side thread" not in text  # chained on turn 1's response: the same thread
    assert "now say hello" in text
    assert "result of apply_patch from turn 1 Patched notes.txt" in text  # the custom call's output, linked


async def test_a_string_input_is_one_user_message(tmp_path: Path) -> None:
    request = {"model": MODEL, "input": "just a question"}
    reply = {"id": "resp_q", "object": "response", "status": "completed", "model": MODEL, "output": []}
    record = CallRecord.model_validate(
        {
            **ROUTE,
            "call_id": "ui-responses-string",
            "started_at": T0,
            "session_id": "s-string",
            "status": 200,
            "stages": [_stage(s, b) for s, b in zip(STAGES, (request, request, reply, reply), strict=True)],
        }
    )
    path = tmp_path / f"{DB}.db"
    await write_records(path, [record])
    ds = Datasette([str(path)], **serve.datasette_kwargs())
    assert "1 message sent" in text_of(await page(ds, session_path("s-string")))
    assert "user just a question" in text_of(await page(ds, session_path("s-string")))
    assert "just a question" in text_of(await page(ds, call_path("ui-responses-string")))
