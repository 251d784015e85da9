"""Claude Code itself through Interlock: the real CLI, a real mitmdump with the bundle and
`deny_tools`, the scripted loopback Anthropic API (`agent_mock`).

Claude Code (`harness_claude`, installed from npm on first use) runs `-p` with
stream-json output in a temporary working directory, with Bash allowed. The mock plays
the model: it proposes Bash commands, reads the tool results Claude Code sends back and
answers with text quoting them. `deny_tools` blocks `rm -rf`. The tests check what
really happened (files on disk), what Claude Code printed (stream-json), every request
the mock got (checked against the API's rules, and structurally by the tests), and what
the proxy recorded (`calls`, `policy_events`, the streams of both sides).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_mock import AgentMock, Exchange, Reply, bash, request_violations, signature
from harness import MitmCA, ProxyLauncher, ProxyProcess
from harness_claude import ClaudeCode, ClaudeRun, install_claude_code
from harness_db import CallsDB, RecordedCall
from policy_fixtures import anthropic_sdk_message, stream_violations

API_KEY = "sk-ant-api03-claude-code-e2e-" + "0" * 16
DIALECT = "anthropic-messages"
RM_REASON = "recursive force delete"
CONFIG = {
    "policies": [{"policy": "deny_tools", "rules": [{"tool": "Bash", "pattern": r"\brm\s+-rf\b", "reason": RM_REASON}]}]
}
NOTICE = "Interlock blocked the tool call `Bash`"
ALLOW_BASH = ("--allowedTools", "Bash")  # so a command Interlock let through would really run
PARTIAL = "--include-partial-messages"  # stream-json then also shows every API event Claude Code got
WAIT_S = 10.0
THINKING = "The user wants the directory gone; a recursive delete does it."


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def claude_binary() -> Path:
    return install_claude_code()


@pytest.fixture(scope="module")
def agent_mock() -> Iterator[AgentMock]:
    with AgentMock(API_KEY) as mock:
        yield mock


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, mitm_ca: MitmCA, agent_mock: AgentMock) -> Iterator[ProxyProcess]:
    launcher = ProxyLauncher(tmp_path_factory.mktemp("claude-proxy"), mitm_ca, agent_mock.url)
    started = launcher(config=CONFIG)
    yield started
    launcher.stop_all()
    assert started.addon_errors() == []


@pytest.fixture
def claude(claude_binary: Path, proxy: ProxyProcess, mitm_ca: MitmCA, tmp_path: Path) -> ClaudeCode:
    return ClaudeCode(claude_binary, tmp_path / "home", proxy.url, mitm_ca.cert, API_KEY)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def db(proxy: ProxyProcess) -> CallsDB:
    assert proxy.db_path is not None
    return CallsDB(proxy.db_path)


# --- helpers ----------------------------------------------------------------------------


def token() -> str:
    return f"marker-{secrets.token_hex(4)}"


def assert_success(run: ClaudeRun, result_text: str | None = None) -> None:
    """Exit code 0 and a `success` result that is not an error."""
    assert run.returncode == 0, run.describe()
    result = run.result
    assert (result["subtype"], result["is_error"], result.get("api_error_status")) == ("success", False, None), (
        run.describe()
    )
    if result_text is not None:
        assert result["result"] == result_text, run.describe()


def tool_uses(run: ClaudeRun) -> list[dict[str, Any]]:
    return [block for block in run.blocks("assistant") if block.get("type") == "tool_use"]


def tool_results(run: ClaudeRun) -> list[dict[str, Any]]:
    return [block for block in run.blocks("user") if block.get("type") == "tool_result"]


def texts(run: ClaudeRun) -> list[str]:
    return [block["text"] for block in run.blocks("assistant") if block.get("type") == "text"]


def model_calls(mock: AgentMock, marker: str) -> list[Exchange]:
    """The conversation's requests to /v1/messages, in order."""
    return [e for e in mock.exchanges(marker) if e.route == "/v1/messages"]


def session_of(exchange: Exchange) -> str | None:
    user_id = exchange.json().get("metadata", {}).get("user_id")
    try:
        parsed = json.loads(user_id)
    except (TypeError, ValueError):
        return None
    return parsed.get("session_id") if isinstance(parsed, dict) else None


def recorded_session(db: CallsDB, mock: AgentMock, session_id: str) -> list[RecordedCall]:
    """The proxy's records of every /v1/messages request of this Claude Code session (the
    mock says how many there were), once they are fully written."""
    expected = [e for e in mock.exchanges() if e.route == "/v1/messages" and session_of(e) == session_id]
    assert expected, f"the mock saw no request of session {session_id}"
    deadline = time.monotonic() + WAIT_S
    while True:
        rows = db.rows("select call_id from calls where session_id = ? order by started_at", (f"cc-{session_id}",))
        if len(rows) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(rows) == len(expected), f"{len(expected)} requests in session {session_id}, {len(rows)} recorded"
    return [db.wait_call(row["call_id"]) for row in rows]


def check_records(calls: list[RecordedCall], mock: AgentMock, verdicts: list[str]) -> None:
    """Each record is one Claude Code request: the dialect and verdict it should have,
    the mock's exact bytes as the original response; an untouched call passes them to the
    client unchanged, a blocked one sends a stream that still keeps the protocol."""
    assert [(c["dialect"], c["path"], c["status"], c["verdict"]) for c in calls] == [
        (DIALECT, "/v1/messages", 200, verdict) for verdict in verdicts
    ]
    sent = [bytes(e.response_body) for e in mock.exchanges() if e.route == "/v1/messages"]
    for call in calls:
        original, final = call.stages["response_original"]["raw"], call.stages["response_final"]["raw"]
        assert original in sent
        assert stream_violations(DIALECT, final) == []
        if call["verdict"] == "pass":
            assert final == original


def blocked_events(db: CallsDB, call: RecordedCall) -> list[tuple[str, str, str, Any]]:
    rows = db.rows(
        "select policy, action, reason, details_json from policy_events where call_id = ?", (call["call_id"],)
    )
    return [(r["policy"], r["action"], r["reason"], json.loads(r["details_json"])) for r in rows]


def non_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("role") != "system"]


def content(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message["content"]
    return [{"type": "text", "text": blocks}] if isinstance(blocks, str) else list(blocks)


def check_history(body: dict[str, Any]) -> None:
    """What a follow-up request must look like for the real API to take it, checked here
    directly (the mock also answers a 400 when its own validator disagrees)."""
    assert request_violations(body) == []
    turns = non_system(body["messages"])
    roles = [m["role"] for m in turns]
    assert roles == ["user", "assistant"] * (len(roles) // 2) + ["user"], roles
    for position, message in enumerate(turns):
        blocks = content(message)
        assert blocks and all(b.get("text") != "" for b in blocks if b["type"] == "text")
        if message["role"] != "assistant":
            continue
        kinds = [b["type"] for b in blocks]
        if "tool_use" in kinds:
            assert "text" not in kinds[kinds.index("tool_use") :], f"text after a tool_use: {kinds}"
        ids = [b["id"] for b in blocks if b["type"] == "tool_use"]
        answered = [b["tool_use_id"] for b in content(turns[position + 1]) if b["type"] == "tool_result"]
        assert sorted(ids) == sorted(answered), f"assistant turn {position}: tool_use {ids}, tool_result {answered}"


def received(run: ClaudeRun) -> list[list[dict[str, Any]]]:
    """The API events Claude Code got (`--include-partial-messages`), one list per response."""
    responses: list[list[dict[str, Any]]] = []
    for event in run.of_type("stream_event"):
        if event["event"]["type"] == "message_start":
            responses.append([])
        responses[-1].append(event["event"])
    return responses


def started_blocks(events: list[dict[str, Any]]) -> list[tuple[int, str, str | None]]:
    """(index, type, tool id) of each content block a response opened."""
    return [
        (e["index"], e["content_block"]["type"], e["content_block"].get("id"))
        for e in events
        if e["type"] == "content_block_start"
    ]


def stop_reason(events: list[dict[str, Any]]) -> str | None:
    return next((e["delta"]["stop_reason"] for e in events if e["type"] == "message_delta"), None)


def assistant_blocks_in(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [content(m) for m in body["messages"] if m["role"] == "assistant"]


# --- (a) an allowed Bash call runs ------------------------------------------------------


def test_allowed_bash_runs_and_session_ends(
    claude: ClaudeCode, agent_mock: AgentMock, workdir: Path, db: CallsDB, proxy: ProxyProcess
) -> None:
    mark = token()
    command = f"echo {mark} > made.txt && cat made.txt"
    marker = agent_mock.script(
        [Reply("I will write the marker.", (bash(command),)), Reply("The command printed: {results}")]
    )
    run = claude.run(f"{marker} write the marker file", *ALLOW_BASH, cwd=workdir)

    assert_success(run, f"The command printed: {mark}")
    assert (workdir / "made.txt").read_text() == f"{mark}\n"
    [use] = tool_uses(run)
    assert (use["name"], use["input"]["command"]) == ("Bash", command)
    [result] = tool_results(run)
    assert (result["tool_use_id"], result["content"], result["is_error"]) == (use["id"], mark, False)

    first, second = model_calls(agent_mock, marker)
    assert [(e.status, e.turn, e.step, e.violations) for e in (first, second)] == [(200, 0, 0, []), (200, 0, 1, [])]
    assert first.json()["stream"] is True and any(t["name"] == "Bash" for t in first.json()["tools"])
    check_history(second.json())
    assert assistant_blocks_in(second.json())[-1][-1] == {
        "type": "tool_use",
        "id": use["id"],
        "name": "Bash",
        "input": {"command": command, "description": "Run a shell command"},
    }

    calls = recorded_session(db, agent_mock, run.session_id)
    check_records(calls, agent_mock, ["pass", "pass"])
    assert all(blocked_events(db, call) == [] for call in calls)
    # Claude Code's other requests to api.anthropic.com reached the mock and were not taken for LLM calls.
    others = [e for e in agent_mock.exchanges() if e.route != "/v1/messages"]
    assert ("GET", "/api/claude_code/settings") in {(e.method, e.route) for e in others}
    assert all(e.route.startswith("/api/") for e in others), [e.path for e in others]
    # Interlock asks for identity on the LLM calls only; the others keep Claude Code's own headers.
    assert {e.headers.get("accept-encoding") for e in (first, second)} == {"identity"}
    assert all("gzip" in e.headers.get("accept-encoding", "") for e in others)
    recorded_paths = {row["path"] for row in db.rows("select distinct path from calls")}
    assert recorded_paths == {"/v1/messages"}
    # Claude Code's x-api-key was redacted before anything was written.
    assert API_KEY.encode() not in db.file_bytes()
    # No host but the mapped ones was asked for through the proxy.
    assert re.findall(r"\b(?:GET|POST|PUT|DELETE) https?://(?!127\.0\.0\.1:)\S+", proxy.output()) == []


# --- (b) a blocked Bash call never runs --------------------------------------------------


def blocked_first_turn(
    claude: ClaudeCode, mock: AgentMock, workdir: Path, *later: list[Reply]
) -> tuple[ClaudeRun, str]:
    """Turn 1: the model wants `rm -rf victim`, which deny_tools blocks."""
    (workdir / "victim").mkdir()
    (workdir / "victim" / "keep.txt").write_text("still here\n")
    first = Reply("Cleaning up.", (bash("rm -rf victim"),), thinking=THINKING)
    marker = mock.script([first, Reply("(unexpected) {results}")], *later)
    return claude.run(f"{marker} clean up the victim directory", *ALLOW_BASH, PARTIAL, cwd=workdir), marker


def test_blocked_bash_never_runs_and_session_ends(
    claude: ClaudeCode, agent_mock: AgentMock, workdir: Path, db: CallsDB
) -> None:
    run, marker = blocked_first_turn(claude, agent_mock, workdir)

    assert_success(run)
    assert (workdir / "victim" / "keep.txt").read_text() == "still here\n"
    assert tool_uses(run) == [] and tool_results(run) == []
    shown = "\n".join(texts(run))
    assert "Cleaning up." in shown
    assert NOTICE in shown and RM_REASON in shown and '"command": "rm -rf victim"' in shown, run.describe()
    assert run.result["stop_reason"] == "end_turn"
    # On the wire to Claude Code: thinking, then text only, indices from 0, and end_turn.
    [events] = received(run)
    indices, kinds, _ = zip(*started_blocks(events), strict=True)
    assert indices == tuple(range(len(indices))) and kinds[0] == "thinking" and set(kinds[1:]) == {"text"}
    assert stop_reason(events) == "end_turn"
    # The turn ended with the notice: Claude Code had nothing to run and asked nothing more.
    [request] = model_calls(agent_mock, marker)
    assert (request.status, request.violations) == (200, [])

    [call] = recorded_session(db, agent_mock, run.session_id)
    check_records([call], agent_mock, ["blocked"])
    [(policy, action, reason, details)] = blocked_events(db, call)
    assert (policy, action, reason, details["tool_name"]) == ("deny_tools", "blocked", RM_REASON, "Bash")
    assert details["arguments"]["command"] == "rm -rf victim"
    # What the client got: the thinking block untouched (signature included), then text only.
    final = anthropic_sdk_message(call.stages["response_final"]["raw"])
    original = anthropic_sdk_message(call.stages["response_original"]["raw"])
    assert final.stop_reason == "end_turn"
    assert final.content[0] == original.content[0] and final.content[0].type == "thinking"
    assert {block.type for block in final.content[1:]} == {"text"}
    assert [b.get("signature") for b in run.blocks("assistant") if b["type"] == "thinking"] == [signature(THINKING)]


# --- (d) one allowed and one blocked call in the same answer ------------------------------


@pytest.mark.parametrize(
    ("blocked_first", "gzip"),
    [(False, False), (True, False), (True, True)],
    ids=["allowed-first", "blocked-first", "blocked-first-gzip"],
)
def test_mixed_answer_runs_only_the_allowed_call(
    claude: ClaudeCode, agent_mock: AgentMock, workdir: Path, db: CallsDB, blocked_first: bool, gzip: bool
) -> None:
    """One answer, two Bash calls, one blocked; `gzip`: the server encodes its stream
    although Interlock asked for identity, as some servers and middleboxes do."""
    (workdir / "victim").mkdir()
    mark = token()
    allowed, denied = bash(f"echo {mark} | tee made.txt"), bash("rm -rf victim")
    calls_in_answer = (denied, allowed) if blocked_first else (allowed, denied)
    marker = agent_mock.script(
        [Reply("Two commands.", calls_in_answer, thinking=THINKING), Reply("Done: {results}")], gzip=gzip
    )
    run = claude.run(f"{marker} do both", *ALLOW_BASH, PARTIAL, cwd=workdir)

    assert_success(run, f"Done: {mark}")
    assert (workdir / "made.txt").read_text() == f"{mark}\n" and (workdir / "victim").is_dir()
    [use] = tool_uses(run)
    assert use["input"]["command"] == allowed.input["command"]
    assert [r["tool_use_id"] for r in tool_results(run)] == [use["id"]]
    assert any(NOTICE in text for text in texts(run))
    # The blocked call never reached Claude Code, not even its first event.
    answer_events = received(run)[0]
    indices, kinds, ids = zip(*started_blocks(answer_events), strict=True)
    assert indices == tuple(range(len(indices))), indices
    assert (kinds[-1], ids[-1]) == ("tool_use", use["id"]) and kinds.count("tool_use") == 1
    assert stop_reason(answer_events) == "tool_use"

    first, second = model_calls(agent_mock, marker)
    assert [(e.status, e.violations, e.gzip) for e in (first, second)] == [(200, [], gzip), (200, [], gzip)]
    check_history(second.json())
    thought, *said, called = assistant_blocks_in(second.json())[-1]
    assert thought == {"type": "thinking", "thinking": THINKING, "signature": signature(THINKING)}
    assert {b["type"] for b in said} == {"text"} and any(NOTICE in b["text"] for b in said)
    assert called["type"] == "tool_use" and called["id"] == use["id"]

    calls = recorded_session(db, agent_mock, run.session_id)
    check_records(calls, agent_mock, ["blocked", "pass"])
    assert [e[:2] for e in blocked_events(db, calls[0])] == [("deny_tools", "blocked")]


# --- (c) the next turn after a block ------------------------------------------------------


@pytest.mark.parametrize("continue_with", ["resume", "continue"])
def test_next_turn_after_block_is_accepted(
    claude: ClaudeCode, agent_mock: AgentMock, workdir: Path, db: CallsDB, continue_with: str
) -> None:
    mark = token()
    command = f"echo {mark} | tee after.txt"
    second_turn = [Reply("Let me try something safe.", (bash(command),)), Reply("Second turn: {results}")]
    first, marker = blocked_first_turn(claude, agent_mock, workdir, second_turn)
    assert_success(first)
    resume = ("--resume", first.session_id) if continue_with == "resume" else ("--continue",)
    run = claude.run("so what now?", *resume, *ALLOW_BASH, cwd=workdir)

    assert_success(run, f"Second turn: {mark}")
    assert run.session_id == first.session_id
    assert (workdir / "after.txt").read_text() == f"{mark}\n"
    assert (workdir / "victim" / "keep.txt").exists()

    requests = model_calls(agent_mock, marker)
    assert [(e.status, e.turn, e.step, e.violations) for e in requests] == [
        (200, 0, 0, []),
        (200, 1, 0, []),
        (200, 1, 1, []),
    ]
    for request in requests[1:]:
        check_history(request.json())
        # The blocked turn is in the history as Claude Code saw it: text only, the notice in it.
        blocked_turn = assistant_blocks_in(request.json())[0]
        assert {b["type"] for b in blocked_turn} <= {"thinking", "text"}
        assert any(NOTICE in b.get("text", "") for b in blocked_turn)
    last_user = content(non_system(requests[2].json()["messages"])[-1])
    [use] = tool_uses(run)
    assert [(b["type"], b["tool_use_id"], b["content"]) for b in last_user] == [("tool_result", use["id"], mark)]

    calls = recorded_session(db, agent_mock, run.session_id)
    check_records(calls, agent_mock, ["blocked", "pass", "pass"])
    assert {call["session_id"] for call in calls} == {f"cc-{first.session_id}"}


# --- the install --------------------------------------------------------------------------


def test_install_without_node_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node, no npm
    with pytest.raises(RuntimeError, match=r"node \(not found\) and npm \(not found\) must be on PATH"):
        install_claude_code(root=tmp_path / "npm")
