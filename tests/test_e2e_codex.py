"""The Codex CLI itself through Interlock: the real `codex exec`, a real mitmdump with the
bundle, the scripted loopback Responses API (`agent_mock`), a loopback judge.

Codex (`harness_codex`, installed from npm on first use) runs non-interactively in a
temporary working directory, its shell commands unsandboxed. The mock plays the model:
it asks for `exec_command` calls, reads the `function_call_output` items Codex sends
back and answers with text quoting them. The proxy polices with `deny_tools` (no
`rm -rf`), then the judge (which blocks `find victim -delete`, allows the rest). The tests
check what really happened (files on disk), what Codex printed, every request the mock
got (which enforces the API's tool-output rule), and what the proxy recorded.

Transport: HTTP + SSE through a custom provider with `supports_websockets=false`.
Codex then sends the whole history every request (`store: false`, no
`previous_response_id`), so the next turn after a block is checked for a history the
API takes: no trace of the call Codex never saw, the notice in its place.
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
from agent_mock import AgentMock, Exchange, Reply, exec_command
from harness import MitmCA, ProxyLauncher, ProxyProcess
from harness_codex import MODEL, Codex, CodexRun, install_codex
from harness_db import CallsDB, RecordedCall
from judge_mock import JudgeMock, block
from policy_fixtures import stream_violations

API_KEY = "sk-proj-codex-e2e-" + "0" * 24
DIALECT = "openai-responses"
RM_REASON = "recursive force delete"
DENY = {"policy": "deny_tools", "rules": [{"tool": "exec_command", "pattern": r"\brm\s+-rf\b", "reason": RM_REASON}]}
JUDGED_COMMAND = "find victim -delete"  # deny_tools lets it through, the judge blocks it
JUDGE_KEY_ENV = "INTERLOCK_TEST_JUDGE_KEY"
JUDGE_EXPLANATION = "Deletes a directory tree."
DENY_NOTICE = "Interlock blocked the tool call `exec_command`: " + RM_REASON
JUDGE_NOTICE = "Interlock blocked the tool call `exec_command` (judged risk: 0.97)"
WAIT_S = 10.0


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def codex_binary() -> Path:
    return install_codex()


@pytest.fixture(scope="module")
def agent_mock() -> Iterator[AgentMock]:
    with AgentMock(API_KEY) as mock:
        yield mock


@pytest.fixture(scope="module")
def judge() -> Iterator[JudgeMock]:
    with JudgeMock() as mock:
        mock.when(JUDGED_COMMAND, block(JUDGE_EXPLANATION))
        yield mock


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, mitm_ca: MitmCA, agent_mock: AgentMock, judge: JudgeMock
) -> Iterator[ProxyProcess]:
    launcher = ProxyLauncher(tmp_path_factory.mktemp("codex-proxy"), mitm_ca, agent_mock.url)
    judge_policy = {
        "policy": "tool_call_judge",
        "model": "openai/judge-mock",
        "api_base": judge.url,
        "api_key_env": JUDGE_KEY_ENV,
        "on_error": "block",
        "timeout_s": 10.0,
    }
    started = launcher(config={"policies": [DENY, judge_policy]}, env={JUDGE_KEY_ENV: "sk-judge-codex-e2e"})
    yield started
    launcher.stop_all()
    assert started.addon_errors() == []


@pytest.fixture
def db(proxy: ProxyProcess) -> CallsDB:
    assert proxy.db_path is not None
    return CallsDB(proxy.db_path)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def codex(codex_binary: Path, proxy: ProxyProcess, mitm_ca: MitmCA, tmp_path: Path) -> Codex:
    return Codex(codex_binary, tmp_path / "home", proxy.url, mitm_ca.cert, API_KEY, http=True)


# --- helpers ----------------------------------------------------------------------------


def token() -> str:
    return f"marker-{secrets.token_hex(4)}"


def session_of(run: CodexRun) -> str:
    found = re.search(r"^session id: (\S+)$", run.stderr, re.MULTILINE)
    assert found, run.describe()
    return found.group(1)


def model_calls(mock: AgentMock, marker: str) -> list[Exchange]:
    return [e for e in mock.exchanges(marker) if e.route == "/v1/responses"]


def items_of(exchange: Exchange, kind: str) -> list[dict[str, Any]]:
    return [item for item in exchange.json()["input"] if item.get("type") == kind]


def sent_events(exchange: Exchange) -> list[dict[str, Any]]:
    """The SSE payloads the mock sent."""
    return [
        json.loads(line.removeprefix(b"data: "))
        for line in bytes(exchange.response_body).splitlines()
        if line.startswith(b"data: ")
    ]


def completed(exchange: Exchange) -> dict[str, Any]:
    [event] = [e for e in sent_events(exchange) if e["type"] == "response.completed"]
    response: dict[str, Any] = event["response"]
    return response


def recorded(db: CallsDB, requests: list[Exchange]) -> list[RecordedCall]:
    """The proxy's records of these requests (one Codex session), once fully written."""
    session = f"pck-{requests[0].json()['prompt_cache_key']}"
    deadline = time.monotonic() + WAIT_S
    while True:
        rows = db.rows("select call_id from calls where session_id = ? order by started_at", (session,))
        if len(rows) >= len(requests) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(rows) == len(requests), f"{len(requests)} requests in session {session}, {len(rows)} recorded"
    return [db.wait_call(row["call_id"]) for row in rows]


def check_records(calls: list[RecordedCall], requests: list[Exchange], verdicts: list[str]) -> None:
    """Each record is one Codex request: its dialect, model, usage and verdict; the mock's
    exact bytes as the original response; a pass reaches Codex unchanged, and every
    stream Codex got keeps the protocol."""
    assert [(c["dialect"], c["path"], c["status"], c["model"], c["verdict"]) for c in calls] == [
        (DIALECT, "/v1/responses", 200, MODEL, verdict) for verdict in verdicts
    ]
    for call, request in zip(calls, requests, strict=True):
        original, final = call.stages["response_original"]["raw"], call.stages["response_final"]["raw"]
        assert original == bytes(request.response_body)
        assert stream_violations(DIALECT, final) == []
        usage = completed(request)["usage"]
        assert (call["input_tokens"], call["output_tokens"]) == (usage["input_tokens"], usage["output_tokens"])
        if call["verdict"] == "pass":
            assert final == original


def policy_events(db: CallsDB, call: RecordedCall) -> list[tuple[str, str, str, Any]]:
    rows = db.rows(
        "select policy, action, reason, details_json from policy_events where call_id = ? order by id",
        (call["call_id"],),
    )
    return [(r["policy"], r["action"], r["reason"], json.loads(r["details_json"])) for r in rows]


# --- a text answer ------------------------------------------------------------------------


def test_text_answer_is_recorded(codex: Codex, agent_mock: AgentMock, db: CallsDB, tmp_path: Path) -> None:
    answer = f"Hello from the scripted model, {token()}."
    marker = agent_mock.script([Reply(answer)])
    run = codex.exec(f"{marker} say hello", cwd=tmp_path)

    assert run.returncode == 0, run.describe()
    assert run.stdout.strip() == answer, run.describe()
    [request] = model_calls(agent_mock, marker)
    assert (request.status, request.violations, request.json()["stream"]) == (200, [], True)
    assert request.json()["model"] == MODEL
    [call] = recorded(db, [request])
    check_records([call], [request], ["pass"])
    assert call["response_text"] == answer
    # Codex's key was redacted before anything was written.
    assert API_KEY.encode() not in db.file_bytes()


# --- an allowed command runs ----------------------------------------------------------------


def test_allowed_command_runs(codex: Codex, agent_mock: AgentMock, db: CallsDB, workdir: Path) -> None:
    mark = token()
    command = f"echo {mark} > made.txt && cat made.txt"
    marker = agent_mock.script(
        [Reply("I will write the marker.", (exec_command(command),)), Reply("Printed: {results}")]
    )
    run = codex.exec(f"{marker} write the marker", cwd=workdir)

    assert run.returncode == 0, run.describe()
    assert (workdir / "made.txt").read_text() == f"{mark}\n"
    assert "Printed:" in run.stdout and mark in run.stdout, run.describe()
    first, second = model_calls(agent_mock, marker)
    assert [(e.status, e.turn, e.step, e.violations) for e in (first, second)] == [(200, 0, 0, []), (200, 0, 1, [])]
    [call_item] = [i for i in completed(first)["output"] if i["type"] == "function_call"]
    [output] = items_of(second, "function_call_output")
    assert output["call_id"] == call_item["call_id"] and mark in json.dumps(output["output"])
    [echoed] = items_of(second, "function_call")
    assert (echoed["call_id"], echoed["name"], json.loads(echoed["arguments"])) == (
        call_item["call_id"],
        "exec_command",
        {"cmd": command},
    )
    calls = recorded(db, [first, second])
    check_records(calls, [first, second], ["pass", "pass"])


# --- a destructive command is blocked, and the next turn goes on ------------------------------


@pytest.mark.parametrize(
    ("command", "policy", "notice"),
    [
        ("rm -rf victim", "deny_tools", DENY_NOTICE),
        (JUDGED_COMMAND, "tool_call_judge", JUDGE_NOTICE),
    ],
    ids=["deny_tools", "judge"],
)
def test_destructive_command_blocked_then_next_turn(
    codex: Codex,
    agent_mock: AgentMock,
    judge: JudgeMock,
    db: CallsDB,
    workdir: Path,
    command: str,
    policy: str,
    notice: str,
) -> None:
    (workdir / "victim").mkdir()
    (workdir / "victim" / "keep.txt").write_text("still here\n")
    mark = token()
    safe = f"echo {mark} | tee after.txt"
    marker = agent_mock.script(
        [Reply("Cleaning up.", (exec_command(command),)), Reply("(unexpected) {results}")],
        [Reply("Let me try something safe.", (exec_command(safe),)), Reply("Second turn: {results}")],
    )
    run = codex.exec(f"{marker} clean up the victim directory", cwd=workdir)

    assert run.returncode == 0, run.describe()
    assert (workdir / "victim" / "keep.txt").read_text() == "still here\n"
    assert notice in run.stdout, run.describe()
    [blocked] = model_calls(agent_mock, marker)
    assert (blocked.status, blocked.violations) == (200, [])
    judged = [r for r in judge.requests if command in r.prompt_text]
    assert len(judged) == (1 if policy == "tool_call_judge" else 0)

    # The next turn: Codex resends its history, which the API must take.
    later = codex.exec(f"{marker} so what now?", cwd=workdir, resume=session_of(run))
    assert later.returncode == 0, later.describe()
    assert later.stdout.startswith("Second turn: ") and mark in later.stdout, later.describe()
    assert (workdir / "after.txt").read_text() == f"{mark}\n"
    assert (workdir / "victim" / "keep.txt").exists()
    requests = model_calls(agent_mock, marker)
    assert [(e.status, e.turn, e.step, e.violations) for e in requests] == [
        (200, 0, 0, []),
        (200, 1, 0, []),
        (200, 1, 1, []),
    ]
    [removed] = [i["call_id"] for i in completed(blocked)["output"] if i["type"] == "function_call"]
    for request in requests[1:]:
        history = request.json()["input"]
        assert all(item.get("call_id") != removed for item in history)
        shown = [i for i in history if i.get("type") == "message" and i.get("role") == "assistant"]
        assert any(notice in json.dumps(i["content"], ensure_ascii=False) for i in shown)

    calls = recorded(db, requests)
    check_records(calls, requests, ["blocked", "pass", "pass"])
    [(name, action, _, details)] = [e for e in policy_events(db, calls[0]) if e[1] == "blocked"]
    assert (name, action, details["tool_name"]) == (policy, "blocked", "exec_command")
