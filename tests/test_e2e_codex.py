"""The Codex CLI itself through Interlock: the real `codex exec`, a real mitmdump with the
bundle, the scripted loopback Responses API (`agent_mock`), a loopback judge.

Codex (`harness_codex`, installed from npm on first use) runs non-interactively in a
temporary working directory, its shell commands unsandboxed. The mock plays the model:
it asks for `exec_command` calls, reads the `function_call_output` items Codex sends
back and answers with text quoting them. The proxy polices with `deny_tools` (no
`rm -rf`), then the judge (which blocks `find victim -delete`, allows the rest). The tests
check what really happened (files on disk), what Codex printed, every request the mock
got (which enforces the API's tool-output rule), and what the proxy recorded.

Each test runs on both of Codex's transports. `http`: HTTP + SSE through a custom
provider with `supports_websockets=false`; Codex sends the whole history every request
(`store: false`, no `previous_response_id`), so after a block the history must hold no
trace of the call Codex never saw, the notice in its place. `websocket`: Codex's
default, the Responses WebSocket (a pre-warm turn, then each turn chained on the last
response with `previous_response_id` and only the new items); after a block in an
answer whose other call ran, the next turn lacks the blocked call's output, which
Interlock must supply (the mock refuses the turn otherwise). A last test has the proxy
refuse the WebSocket (`responses_websocket: refuse`, HTTP 426): Codex goes on over HTTP.
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
from harness_reload import edit_config
from judge_mock import JudgeMock, block
from policy_fixtures import stream_violations

from interlock.dialects.openai_responses.chained import RemovedCall
from interlock.dialects.openai_responses.request import session_header_key

API_KEY = "sk-proj-codex-e2e-" + "0" * 24
DIALECT = "openai-responses"
RM_REASON = "recursive force delete"
DENY = {"policy": "deny_tools", "rules": [{"tool": "exec_command", "pattern": r"\brm\s+-rf\b", "reason": RM_REASON}]}
JUDGED_COMMAND = "find victim -delete"  # deny_tools lets it through, the judge blocks it
JUDGE_KEY_ENV = "INTERLOCK_TEST_JUDGE_KEY"
JUDGE_EXPLANATION = "Deletes a directory tree."
DENY_NOTICE = "Interlock blocked the tool call `exec_command`: " + RM_REASON
JUDGE_REASON = f"`exec_command` risk 0.97 >= 0.5: {JUDGE_EXPLANATION}"  # the judge's block, as recorded
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
def config(judge: JudgeMock) -> dict[str, Any]:
    """The proxy's: deny_tools, then the judge (failing closed)."""
    judge_policy = {
        "policy": "tool_call_judge",
        "model": "openai/judge-mock",
        "api_base": judge.url,
        "api_key_env": JUDGE_KEY_ENV,
        "on_error": "block",
        "timeout_s": 10.0,
    }
    return {"policies": [DENY, judge_policy]}


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, mitm_ca: MitmCA, agent_mock: AgentMock, config: dict[str, Any]
) -> Iterator[ProxyProcess]:
    launcher = ProxyLauncher(tmp_path_factory.mktemp("codex-proxy"), mitm_ca, agent_mock.url)
    started = launcher(config=config, env={JUDGE_KEY_ENV: "sk-judge-codex-e2e"})
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


@pytest.fixture(params=["http", "websocket"])
def codex(
    request: pytest.FixtureRequest, codex_binary: Path, proxy: ProxyProcess, mitm_ca: MitmCA, tmp_path: Path
) -> Codex:
    return Codex(codex_binary, tmp_path / "home", proxy.url, mitm_ca.cert, API_KEY, http=request.param == "http")


# --- helpers ----------------------------------------------------------------------------


def token() -> str:
    return f"marker-{secrets.token_hex(4)}"


def session_of(run: CodexRun) -> str:
    found = re.search(r"^session id: (\S+)$", run.stderr, re.MULTILINE)
    assert found, run.describe()
    return found.group(1)


def model_calls(mock: AgentMock, marker: str) -> list[Exchange]:
    """The conversation's turns (pre-warms carry no script)."""
    return [e for e in mock.exchanges(marker) if e.route == "/v1/responses"]


def transport_of(codex: Codex) -> str:
    return "POST" if codex.http else "WS"


def items_of(exchange: Exchange, kind: str) -> list[dict[str, Any]]:
    return [item for item in exchange.json()["input"] if item.get("type") == kind]


def sent_events(exchange: Exchange) -> list[dict[str, Any]]:
    """The event payloads the mock sent: SSE `data:` lines, or WebSocket frames."""
    if exchange.method == "WS":
        return [json.loads(frame) for frame in exchange.frames]
    return [
        json.loads(line.removeprefix(b"data: "))
        for line in bytes(exchange.response_body).splitlines()
        if line.startswith(b"data: ")
    ]


def sent_raw(exchange: Exchange) -> bytes:
    """What the proxy records as the original response: the body, or the frames as SSE data."""
    if exchange.method == "WS":
        return b"".join(b"data: " + frame + b"\n\n" for frame in exchange.frames)
    return bytes(exchange.response_body)


def as_sse(raw: bytes) -> bytes:
    """Recorded WebSocket frames (`data:` only) as the SSE stream the checker reads."""
    payloads = [line.removeprefix(b"data: ") for line in raw.splitlines() if line.startswith(b"data: ")]
    return b"".join(b"event: %s\ndata: %s\n\n" % (json.loads(p)["type"].encode(), p) for p in payloads)


def completed(exchange: Exchange) -> dict[str, Any]:
    [event] = [e for e in sent_events(exchange) if e["type"] == "response.completed"]
    response: dict[str, Any] = event["response"]
    return response


def recorded(db: CallsDB, mock: AgentMock, requests: list[Exchange]) -> list[RecordedCall]:
    """The proxy's records of these requests, once fully written. Every request of their
    Codex session (pre-warms included) is recorded, in the mock's order."""
    key = requests[0].json()["prompt_cache_key"]
    session = [e for e in mock.exchanges() if e.route == "/v1/responses" and e.json().get("prompt_cache_key") == key]
    session_id = session_header_key(requests[0].headers)  # Codex's thread: its `thread-id` header
    assert session_id is not None, requests[0].headers
    deadline = time.monotonic() + WAIT_S
    while True:
        rows = db.rows("select call_id from calls where session_id = ? order by started_at", (session_id,))
        if len(rows) >= len(session) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(rows) == len(session), f"{len(session)} requests in session {key}, {len(rows)} recorded"
    by_index = {e.index: row["call_id"] for e, row in zip(session, rows, strict=True)}
    return [db.wait_call(by_index[request.index]) for request in requests]


def check_records(calls: list[RecordedCall], requests: list[Exchange], verdicts: list[str]) -> None:
    """Each record is one Codex request: its dialect, model, usage and verdict; the mock's
    exact bytes as the original response; a pass reaches Codex unchanged, and every
    stream Codex got keeps the protocol."""
    assert [(c["dialect"], c["path"], c["model"], c["verdict"]) for c in calls] == [
        (DIALECT, "/v1/responses", MODEL, verdict) for verdict in verdicts
    ]
    for call, request in zip(calls, requests, strict=True):
        original, final = call.stages["response_original"]["raw"], call.stages["response_final"]["raw"]
        assert original == sent_raw(request)
        assert stream_violations(DIALECT, as_sse(final) if request.method == "WS" else final) == []
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


def test_text_answer_is_recorded(
    codex: Codex, agent_mock: AgentMock, db: CallsDB, proxy: ProxyProcess, tmp_path: Path
) -> None:
    answer = f"Hello from the scripted model, {token()}."
    marker = agent_mock.script([Reply(answer)])
    run = codex.exec(f"{marker} say hello", cwd=tmp_path)

    assert run.returncode == 0, run.describe()
    assert run.stdout.strip() == answer, run.describe()
    [request] = model_calls(agent_mock, marker)
    assert (request.method, request.status, request.violations) == (transport_of(codex), 200, [])
    assert request.json()["stream"] is True
    assert request.json()["model"] == MODEL
    [call] = recorded(db, agent_mock, [request])
    check_records([call], [request], ["pass"])
    assert call["response_text"] == answer
    # Codex's key was redacted before anything was written.
    assert API_KEY.encode() not in db.file_bytes()
    # No host but the mapped ones was asked for through the proxy (the quiet switches work).
    assert re.findall(r"\b(?:GET|POST|PUT|DELETE) https?://(?!127\.0\.0\.1:)\S+", proxy.output()) == []


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
    assert [(e.method, e.status, e.turn, e.step, e.violations) for e in (first, second)] == [
        (transport_of(codex), 200, 0, 0, []),
        (transport_of(codex), 200, 0, 1, []),
    ]
    [call_item] = [i for i in completed(first)["output"] if i["type"] == "function_call"]
    [output] = items_of(second, "function_call_output")
    assert output["call_id"] == call_item["call_id"] and mark in json.dumps(output["output"])
    if codex.http:  # the whole history again, the call included
        [echoed] = items_of(second, "function_call")
        assert (echoed["call_id"], echoed["name"], json.loads(echoed["arguments"])) == (
            call_item["call_id"],
            "exec_command",
            {"cmd": command},
        )
    else:  # only the new items, chained on the response that asked for the call
        assert second.json()["previous_response_id"] == completed(first)["id"]
        assert items_of(second, "function_call") == []
    calls = recorded(db, agent_mock, [first, second])
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
    judged_before = len([r for r in judge.requests if command in r.prompt_text])
    run = codex.exec(f"{marker} clean up the victim directory", cwd=workdir)

    assert run.returncode == 0, run.describe()
    assert (workdir / "victim" / "keep.txt").read_text() == "still here\n"
    assert notice in run.stdout, run.describe()
    [blocked] = model_calls(agent_mock, marker)
    assert (blocked.status, blocked.violations) == (200, [])
    judged = [r for r in judge.requests if command in r.prompt_text]
    assert len(judged) - judged_before == (1 if policy == "tool_call_judge" else 0)

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
    # A new Codex process resends the history (over the WebSocket, in its pre-warm turn):
    # no trace of the call it never saw, the notice it did see in its place.
    history = requests[1].conversation
    assert all(item.get("call_id") != removed for item in history)
    shown = [i for i in history if i.get("type") == "message" and i.get("role") == "assistant"]
    assert any(notice in json.dumps(i["content"], ensure_ascii=False) for i in shown)

    calls = recorded(db, agent_mock, requests)
    check_records(calls, requests, ["blocked", "pass", "pass"])
    [(name, action, _, details)] = [e for e in policy_events(db, calls[0]) if e[1] == "blocked"]
    assert (name, action, details["tool_name"]) == (policy, "blocked", "exec_command")


# --- one call allowed, one blocked, in the same answer ----------------------------------------


@pytest.mark.parametrize(
    ("command", "policy", "reason"),
    [("rm -rf victim", "deny_tools", RM_REASON), (JUDGED_COMMAND, "tool_call_judge", JUDGE_REASON)],
    ids=["deny_tools", "judge"],
)
def test_mixed_answer_runs_only_the_allowed_call(
    codex: Codex, agent_mock: AgentMock, db: CallsDB, workdir: Path, command: str, policy: str, reason: str
) -> None:
    """Over the WebSocket the next turn answers only the call Codex ran; Interlock adds the
    output of the one it blocked, or the API would refuse the turn."""
    (workdir / "victim").mkdir()
    mark = token()
    allowed, denied = exec_command(f"echo {mark} | tee made.txt"), exec_command(command)
    marker = agent_mock.script([Reply("Two commands.", (denied, allowed)), Reply("Done: {results}")])
    run = codex.exec(f"{marker} do both", cwd=workdir)

    assert run.returncode == 0, run.describe()
    assert (workdir / "made.txt").read_text() == f"{mark}\n" and (workdir / "victim").is_dir()
    first, second = model_calls(agent_mock, marker)
    assert [(e.method, e.status, e.violations) for e in (first, second)] == [(transport_of(codex), 200, [])] * 2
    removed, ran = (i["call_id"] for i in completed(first)["output"] if i["type"] == "function_call")
    outputs = {item["call_id"]: item["output"] for item in items_of(second, "function_call_output")}
    assert mark in json.dumps(outputs[ran])
    supplied = RemovedCall(removed, "function_call", "exec_command", policy, reason).output_item()
    assert run.stdout.startswith("Done: ") and mark in run.stdout, run.describe()
    [call, after] = recorded(db, agent_mock, [first, second])
    check_records([call, after], [first, second], ["blocked", "pass" if codex.http else "modified"])
    if codex.http:  # Codex resent its history: the blocked call is not in it
        assert removed not in outputs and all(item.get("call_id") != removed for item in second.json()["input"])
        return
    # The chained turn as Codex sent it lacked the output; upstream it carried Interlock's.
    assert second.json()["previous_response_id"] == completed(first)["id"]
    assert outputs[removed] == supplied["output"] and supplied["output"] in run.stdout
    sent_by_codex = {i["call_id"] for i in after.stage_body("request_original")["input"] if "call_id" in i}
    assert sent_by_codex == {ran}
    assert [e[:2] for e in policy_events(db, after)] == [(policy, "supplied_tool_output")]


# --- the WebSocket refused: Codex goes on over HTTP ---------------------------------------------


def test_refused_websocket_falls_back_to_http(
    codex_binary: Path,
    proxy: ProxyProcess,
    config: dict[str, Any],
    agent_mock: AgentMock,
    db: CallsDB,
    mitm_ca: MitmCA,
    tmp_path: Path,
) -> None:
    """The module's proxy, reloaded with `responses_websocket: refuse` (and back after)."""
    edit_config(proxy, {**config, "responses_websocket": "refuse"})
    try:
        codex = Codex(codex_binary, tmp_path / "home", proxy.url, mitm_ca.cert, API_KEY, http=False)
        answer = f"Over HTTP after all, {token()}."
        marker = agent_mock.script([Reply(answer)])
        run = codex.exec(f"{marker} say hello", cwd=tmp_path)
    finally:
        edit_config(proxy, config)
    assert run.returncode == 0, run.describe()
    assert run.stdout.strip() == answer, run.describe()
    [request] = model_calls(agent_mock, marker)
    assert (request.method, request.status, request.violations) == ("POST", 200, [])
    key = request.json()["prompt_cache_key"]
    assert not [e for e in agent_mock.exchanges() if e.method == "WS" and e.json().get("prompt_cache_key") == key]
    [call] = recorded(db, agent_mock, [request])
    check_records([call], [request], ["pass"])
