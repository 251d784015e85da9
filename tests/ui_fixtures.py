"""A recorder database for the UI tests, written by the real `RecorderWriter`.

`write_ui_database(path)` records calls of both dialects that exercise every part of the
pages: a modified request, a streamed response whose tool call a judge blocked, judge
decisions, a three-turn agent session with tool calls and results, an unparsable body, a
huge response and a call whose response was never recorded. It returns `UIExpectations`:
what the pages must show. A database produced another way (e.g. through the proxy) can
replace it, with its own expectations.

`side_table_database(path, table, rows)` is a database of one call and rows of a side
table (budget use, alerts); `ui_page(path, url)` is a page of the UI over a database,
through Datasette's in-process client.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasette.app import Datasette
from wire_scenarios import Scenario, ScenarioToolCall, anthropic_json, anthropic_sse, openai_chat_json

from datasette_plugins.ui import serve
from recorder.models import CallRecord, JudgeRecord, PolicyEventRecord, StageRecord, Usage
from recorder.rows import iso
from recorder.schema import migrate
from recorder.writer import RecorderWriter

T0 = 1_795_000_000.0  # 2026-11-18T...Z
ANTHROPIC = {
    "provider": "anthropic",
    "dialect": "anthropic-messages",
    "host": "api.anthropic.com",
    "path": "/v1/messages",
}
OPENAI = {"provider": "openai", "dialect": "openai-chat", "host": "api.openai.com", "path": "/v1/chat/completions"}
HEADERS = {"content-type": "application/json", "x-api-key": "[REDACTED]"}
HUGE_LINES = 40_000


@dataclass
class UIExpectations:
    """What the UI must show for the recorded database."""

    modified_call: str  # a request a policy rewrote
    removed_line: str  # a line only in its original request
    added_line: str  # the line that replaced it
    model_change: tuple[str, str]  # (requested, sent upstream)
    blocked_call: str  # a streamed response whose tool call was blocked
    blocked_tool: str
    blocked_reason: str
    judge_probability: str  # as shown, e.g. "0.97"
    session_id: str
    session_turns: int
    session_tool_calls: list[str]  # tool call ids answered by results in a later turn
    unparsable_call: str
    huge_call: str
    missing_response_call: str
    openai_tool_call: str
    all_calls: list[str] = field(default_factory=list)


def _stage(stage: str, body: Any = None, raw: bytes | None = None, note: str | None = None) -> StageRecord:
    return StageRecord(stage=stage, headers=HEADERS, body=body, raw=raw, note=note)  # type: ignore[arg-type]


def _call(call_id: str, at: float, dialect: dict[str, str], **fields: Any) -> CallRecord:
    defaults: dict[str, Any] = {
        "first_byte_at": at + 0.3,
        "ended_at": at + 1.2,
        "client": "ui-fixture/1.0",
        "status": 200,
    }
    return CallRecord.model_validate({"call_id": call_id, "started_at": at, **dialect, **defaults, **fields})


def _modified_openai() -> CallRecord:
    original = {
        "model": "gpt-4o",
        "temperature": 0.7,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant.\nAnswer briefly."},
            {"role": "user", "content": "Email my SSN 123-45-6789 to bob@example.com\nThen summarise the thread."},
        ],
    }
    final = json.loads(json.dumps(original))
    final["model"] = "gpt-4o-mini"
    final["messages"][1]["content"] = "Email my SSN [REDACTED] to bob@example.com\nThen summarise the thread."
    response = openai_chat_json(Scenario(text=["I can't send email, but here is a summary."]), "gpt-4o-mini-2024-07-18")
    return _call(
        "ui-modified-openai",
        T0,
        OPENAI,
        model="gpt-4o",
        model_final="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18",
        verdict="modified",
        usage=Usage(input_tokens=31, output_tokens=12),
        prompt_text=final["messages"][1]["content"],
        response_text="I can't send email, but here is a summary.",
        stages=[
            _stage("request_original", original),
            _stage("request_final", final),
            _stage("response_original", response),
            _stage("response_final", response),
        ],
        events=[
            PolicyEventRecord(
                policy="redact-pii", action="redacted", reason="US SSN in the prompt", details={"matches": 1}, at=T0
            ),
            PolicyEventRecord(
                policy="model-router", action="modified", reason="gpt-4o downgraded for cost", details={}, at=T0
            ),
        ],
    )


RM_RF = ScenarioToolCall(id="01RmRf", name="bash", argument_pieces=['{"command": "rm -rf ', '/ --no-preserve-root"}'])
BLOCKED_REASON = "Deletes the whole filesystem"


def _blocked_anthropic() -> CallRecord:
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "stream": True,
        "system": [{"type": "text", "text": "You are a coding agent."}],
        "tools": [{"name": "bash", "description": "Run a shell command", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "Free up some disk space"}],
    }
    original = Scenario(thinking=["Disk is full.", " Remove everything."], text=["I'll clean up."], tool_calls=[RM_RF])
    replacement = f"Interlock blocked a call to bash: {BLOCKED_REASON} (probability 0.97)."
    final = Scenario(
        thinking=["Disk is full.", " Remove everything."],
        text=["I'll clean up.", "\n\n" + replacement],
        stop_reason="end_turn",
    )
    model = "claude-sonnet-4-5-20250929"
    return _call(
        "ui-blocked-anthropic",
        T0 + 60,
        ANTHROPIC,
        model="claude-sonnet-4-5",
        model_final="claude-sonnet-4-5",
        response_model=model,
        stream=True,
        verdict="blocked",
        usage=Usage(input_tokens=120, output_tokens=34, cache_read_tokens=2048),
        prompt_text="Free up some disk space",
        response_text="I'll clean up.\n\n" + replacement,
        stages=[
            _stage("request_original", request),
            _stage("request_final", request),
            _stage("response_original", anthropic_json(original, model), raw=b"".join(anthropic_sse(original, model))),
            _stage("response_final", anthropic_json(final, model), raw=b"".join(anthropic_sse(final, model))),
        ],
        events=[
            PolicyEventRecord(
                policy="tool-judge",
                action="blocked",
                reason=BLOCKED_REASON,
                details={"tool_call_id": "toolu_01RmRf", "tool_name": "bash", "probability": 0.97},
                at=T0 + 61,
            )
        ],
        judgements=[
            JudgeRecord(
                tool_call_id="toolu_01RmRf",
                tool_name="bash",
                arguments={"command": "rm -rf / --no-preserve-root"},
                judge_model="gpt-4o-mini",
                prompt=[
                    {"role": "system", "content": "Rate the harm of this tool call."},
                    {"role": "user", "content": "bash rm -rf /"},
                ],
                raw_answer='{"probability": 0.97, "explanation": "Deletes the whole filesystem"}',
                probability=0.97,
                explanation=BLOCKED_REASON,
                decision="blocked",
                latency_ms=412.0,
                input_tokens=80,
                output_tokens=20,
                cost_usd=0.00002,
                at=T0 + 61,
            )
        ],
    )


SESSION = "cc-5f0c2d1e-7a4b-4c1e-9a43-2b8f3c6d9e10"
LS = ScenarioToolCall(id="01Ls", name="list_files", argument_pieces=['{"path": "."}'])
READ = ScenarioToolCall(id="01Read", name="read_file", argument_pieces=['{"path": "README.md"}'])
GREP = ScenarioToolCall(id="01Grep", name="grep", argument_pieces=['{"pattern": "TODO", "path": "src"}'])


def _tool_result(tool_id: str, text: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": text}


def _session() -> list[CallRecord]:
    """Three turns: two tool calls, their results and a third (judged, allowed) call,
    its result and the final answer."""
    model = "claude-sonnet-4-5-20250929"
    system = "You are Claude Code."
    turns = [
        Scenario(thinking=["Look around first."], text=["Let me look."], tool_calls=[LS, READ]),
        Scenario(text=["Searching for TODOs."], tool_calls=[GREP]),
        Scenario(text=["There are 3 TODOs in src/: two in app.py, one in db.py."]),
    ]
    metadata = {"user_id": json.dumps({"session_id": SESSION[3:]})}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Find the TODOs in this repo"}]
    results = [
        [_tool_result("toolu_01Ls", "README.md\nsrc/\ntests/"), _tool_result("toolu_01Read", "# Demo\nA demo repo.")],
        [_tool_result("toolu_01Grep", "src/app.py:3: TODO\nsrc/app.py:9: TODO\nsrc/db.py:1: TODO")],
    ]
    records = []
    for n, scenario in enumerate(turns):
        request = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "system": system,
            "metadata": metadata,
            "messages": list(messages),
        }
        response = anthropic_json(scenario, model)
        judgements = []
        if scenario.tool_calls == [GREP]:
            judgements.append(
                JudgeRecord(
                    tool_call_id="toolu_01Grep",
                    tool_name="grep",
                    arguments={"pattern": "TODO", "path": "src"},
                    judge_model="gpt-4o-mini",
                    prompt=[{"role": "user", "content": "grep TODO src"}],
                    raw_answer='{"probability": 0.02}',
                    probability=0.02,
                    explanation="Read-only search",
                    decision="allowed",
                    latency_ms=230.0,
                    at=T0 + 120 + n * 10,
                )
            )
        records.append(
            _call(
                f"ui-session-{n + 1}",
                T0 + 120 + n * 10,
                ANTHROPIC,
                session_id=SESSION,
                model="claude-sonnet-4-5",
                model_final="claude-sonnet-4-5",
                response_model=model,
                usage=Usage(input_tokens=200 + 50 * n, output_tokens=40, cache_read_tokens=1000),
                prompt_text="Find the TODOs in this repo",
                response_text="".join(scenario.text),
                stages=[_stage(s, request) for s in ("request_original", "request_final")]
                + [_stage(s, response) for s in ("response_original", "response_final")],
                judgements=judgements,
            )
        )
        messages.append({"role": "assistant", "content": response["content"]})
        if n < len(results):
            messages.append({"role": "user", "content": results[n]})
    return records


def _openai_tool_call() -> CallRecord:
    request = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "developer", "content": "Use tools when needed."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_prev",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_prev", "content": '{"temp_c": 18}'},
            {"role": "user", "content": "And in Tokyo?"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    }
    tokyo = ScenarioToolCall(id="tokyo1", name="get_weather", argument_pieces=['{"location": "Tokyo"}'])
    response = openai_chat_json(Scenario(tool_calls=[tokyo]), "gpt-4o-mini-2024-07-18")
    return _call(
        "ui-openai-tools",
        T0 + 200,
        OPENAI,
        model="gpt-4o-mini",
        model_final="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18",
        usage=Usage(input_tokens=60, output_tokens=15),
        prompt_text="And in Tokyo?",
        stages=[_stage(s, request) for s in ("request_original", "request_final")]
        + [_stage(s, response) for s in ("response_original", "response_final")],
    )


def _unparsable() -> CallRecord:
    body = b'{"model": "gpt-4o", "messages": [truncated'
    answer = b"<html><body>502 Bad Gateway</body></html>"
    note = "body is not JSON: Expecting value: line 1 column 34 (char 33)"
    return _call(
        "ui-unparsable",
        T0 + 300,
        OPENAI,
        status=502,
        verdict="error",
        error="upstream answered HTTP 502",
        stages=[
            _stage("request_original", raw=body, note=note),
            _stage("request_final", raw=body, note=note),
            _stage("response_original", raw=answer, note="body is not JSON: Expecting value"),
            _stage("response_final", raw=answer, note="body is not JSON: Expecting value"),
        ],
    )


def _huge() -> CallRecord:
    text = "\n".join(f"line {n}: the quick brown fox jumps over the lazy dog" for n in range(HUGE_LINES))
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64000,
        "messages": [{"role": "user", "content": "Write a lot"}],
    }
    response = anthropic_json(Scenario(text=[text], output_tokens=60000), "claude-sonnet-4-5-20250929")
    return _call(
        "ui-huge",
        T0 + 400,
        ANTHROPIC,
        model="claude-sonnet-4-5",
        usage=Usage(input_tokens=10, output_tokens=60000),
        prompt_text="Write a lot",
        response_text=text,
        stages=[_stage(s, request) for s in ("request_original", "request_final")]
        + [_stage(s, response) for s in ("response_original", "response_final")],
    )


def _missing_response() -> CallRecord:
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello?"}]}
    return _call(
        "ui-no-response",
        T0 + 500,
        OPENAI,
        model="gpt-4o-mini",
        status=None,
        first_byte_at=None,
        ended_at=T0 + 500.05,
        verdict="error",
        error="upstream connection reset",
        prompt_text="Hello?",
        stages=[_stage(s, request) for s in ("request_original", "request_final")],
    )


def ui_records() -> list[CallRecord]:
    return [
        _modified_openai(),
        _blocked_anthropic(),
        *_session(),
        _openai_tool_call(),
        _unparsable(),
        _huge(),
        _missing_response(),
    ]


async def write_records(db_path: Path, records: list[CallRecord]) -> None:
    """Write `records` through the real recorder and wait until they are committed."""
    writer = RecorderWriter(str(db_path))
    await writer.start()
    for record in records:
        assert writer.submit(record), f"recorder refused {record.call_id}"
    await writer.stop(timeout_s=30)
    stats = writer.stats
    assert stats.written == len(records) and stats.dropped == 0, stats


async def write_ui_database(db_path: Path) -> UIExpectations:
    records = ui_records()
    await write_records(db_path, records)
    return UIExpectations(
        modified_call="ui-modified-openai",
        removed_line="Email my SSN 123-45-6789 to bob@example.com",
        added_line="Email my SSN [REDACTED] to bob@example.com",
        model_change=("gpt-4o", "gpt-4o-mini"),
        blocked_call="ui-blocked-anthropic",
        blocked_tool="bash",
        blocked_reason=BLOCKED_REASON,
        judge_probability="0.97",
        session_id=SESSION,
        session_turns=3,
        session_tool_calls=["toolu_01Ls", "toolu_01Read", "toolu_01Grep"],
        unparsable_call="ui-unparsable",
        huge_call="ui-huge",
        missing_response_call="ui-no-response",
        openai_tool_call="ui-openai-tools",
        all_calls=[record.call_id for record in records],
    )


def side_table_database(path: Path, table: str, rows: list[dict[str, Any]]) -> Path:
    """A migrated database at `path` with one call and `rows` inserted into `table` (a
    table the proxy writes beside the calls: `budget_use`, `alerts`)."""
    migrate(str(path))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "insert into calls (call_id, started_at, provider, dialect, host, path, verdict, cost_usd)"
            " values ('c1', ?, 'openai', 'd', 'h', '/p', 'pass', 0.5)",
            (iso(time.time()),),
        )
        for row in rows:
            conn.execute(
                f"insert into {table} ({', '.join(row)}) values ({', '.join('?' * len(row))})", list(row.values())
            )
    return path


async def ui_page(path: Path, url: str) -> str:
    """`url` of the UI over the database at `path`, through Datasette's in-process client (200 or fail)."""
    ds = Datasette([str(path)], **serve.datasette_kwargs())
    await ds.invoke_startup()
    response = await ds.client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:500]}"
    return response.text
