"""Gemini CLI itself through Interlock: the real CLI, a real mitmdump with the bundle,
`deny_tools` and the judge, the scripted loopback Gemini API (`agent_mock`).

Gemini CLI (`harness_gemini_cli`, installed from npm on first use) runs `-p` with
stream-json output and `--yolo` in a temporary working directory, with GEMINI_API_KEY.
Each prompt costs it a routing call first (`generateContent` with a JSON schema, answered
from the schema), then one streamed call (`streamGenerateContent?alt=sse`) per step.
The mock plays the model: it proposes `run_shell_command` calls, reads the function
responses Gemini CLI sends back and answers with text quoting them. `deny_tools` blocks
`rm -rf`; the judge (`judge_mock`) blocks `shred` and allows the rest. The tests check
what really happened (files on disk), what Gemini CLI printed (stream-json), every
request the mock got (checked against the API's rules, thought signatures included) and
what the proxy recorded. One proxy serves the module.
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
from agent_mock import AgentMock, Exchange, Reply, shell
from harness import MitmCA, ProxyLauncher, ProxyProcess
from harness_db import CallsDB, RecordedCall
from harness_gemini_cli import YOLO, GeminiCli, GeminiRun, install_gemini_cli
from judge_mock import JudgeMock, block
from policy_fixtures import body_violations, stream_violations

API_KEY = "AIzaSy" + "GeminiCliE2e" + "0" * 21  # the shape of a Google API key
JUDGE_KEY_ENV = "INTERLOCK_TEST_JUDGE_KEY"
DIALECT = "gemini"
SHELL = "run_shell_command"
RM_REASON = "recursive force delete"
DENY = {"policy": "deny_tools", "rules": [{"tool": SHELL, "pattern": r"\brm\s+-rf\b", "reason": RM_REASON}]}
JUDGE = {"policy": "tool_call_judge", "model": "openai/judge-mock", "api_key_env": JUDGE_KEY_ENV, "retries": 1}
NOTICE = f"Interlock blocked the tool call `{SHELL}`"
STREAM = ":streamGenerateContent"
WAIT_S = 10.0
THINKING = "The user wants the directory gone; a recursive delete does it."


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gemini_entry() -> Path:
    return install_gemini_cli()


@pytest.fixture(scope="module")
def agent_mock() -> Iterator[AgentMock]:
    with AgentMock(API_KEY) as mock:
        yield mock


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, mitm_ca: MitmCA, agent_mock: AgentMock, judge: JudgeMock
) -> Iterator[ProxyProcess]:
    launcher = ProxyLauncher(tmp_path_factory.mktemp("gemini-cli-proxy"), mitm_ca, agent_mock.url)
    config = {"policies": [DENY, {**JUDGE, "api_base": judge.url}]}
    started = launcher(config=config, env={JUDGE_KEY_ENV: "sk-judge-gemini-cli"})
    yield started
    launcher.stop_all()
    assert started.addon_errors() == []


@pytest.fixture
def gemini(gemini_entry: Path, proxy: ProxyProcess, mitm_ca: MitmCA, tmp_path: Path, judge: JudgeMock) -> GeminiCli:
    judge.reset()
    return GeminiCli(gemini_entry, tmp_path / "home", proxy.url, mitm_ca.cert, API_KEY)


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


def assert_success(run: GeminiRun) -> None:
    """Exit code 0, a `success` result, no error event."""
    assert run.returncode == 0, run.describe()
    assert run.result["status"] == "success", run.describe()
    assert run.of_type("error") == [], run.describe()


def turns(mock: AgentMock, marker: str) -> list[Exchange]:
    """The conversation's streamed turns (not its routing calls), in order."""
    return [e for e in mock.exchanges(marker) if e.route.endswith(STREAM)]


def signature_sent(exchange: Exchange) -> str:
    """The one thought signature the mock sent in this answer."""
    [found] = re.findall(rb'"thoughtSignature": "([^"]+)"', bytes(exchange.response_body))
    return found.decode()


def model_contents(exchange: Exchange) -> list[dict[str, Any]]:
    return [c for c in exchange.json()["contents"] if c["role"] == "model"]


def recorded(db: CallsDB, mock: AgentMock, marker: str) -> list[RecordedCall]:
    """The proxy's records of this conversation's model calls (routing and turns), in
    order, each with the mock's exact answer as its original response."""
    sent = mock.exchanges(marker)
    deadline = time.monotonic() + WAIT_S
    while True:
        calls = [db.wait_call(row["call_id"]) for row in db.rows("select call_id from calls order by started_at")]
        ours = [c for c in calls if marker in (c.stages["request_original"]["body_json"] or "")]
        if len(ours) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(ours) == len(sent), f"{len(sent)} model calls in the conversation, {len(ours)} recorded"
    assert [response(c, "response_original") for c in ours] == [as_sent(e) for e in sent]
    return ours


def as_sent(exchange: Exchange) -> Any:
    """What the mock answered: a stream's bytes, a whole body's JSON."""
    body = bytes(exchange.response_body)
    return body if exchange.route.endswith(STREAM) else json.loads(body)


def response(call: RecordedCall, stage: str) -> Any:
    """A recorded response stage: a stream's raw bytes, a whole body's JSON."""
    return call.stages[stage]["raw"] if call["stream"] else call.stage_body(stage)


def check_records(calls: list[RecordedCall], verdicts: list[str]) -> None:
    """Each record has the dialect and verdict it should; an untouched call reached Gemini
    CLI byte for byte, a policed stream still keeps the protocol."""
    assert [(c["dialect"], c["status"], c["verdict"]) for c in calls] == [(DIALECT, 200, v) for v in verdicts]
    for call in calls:
        if call["verdict"] == "pass":
            assert response(call, "response_final") == response(call, "response_original")
        if call["stream"]:
            assert stream_violations(DIALECT, call.stages["response_final"]["raw"]) == []
        else:
            assert body_violations(DIALECT, call.stage_body("response_final")) == []


def policy_events(db: CallsDB, call: RecordedCall) -> list[tuple[str, str, Any]]:
    rows = db.rows("select policy, action, details_json from policy_events where call_id = ?", (call["call_id"],))
    return [(r["policy"], r["action"], json.loads(r["details_json"])) for r in rows]


def judged(db: CallsDB, call: RecordedCall) -> list[tuple[str, str, str]]:
    """(decision, tool, command) of each judge decision on the call."""
    rows = db.rows(
        "select decision, tool_name, arguments_json from judge_decisions where call_id = ? order by id",
        (call["call_id"],),
    )
    return [(r["decision"], r["tool_name"], json.loads(r["arguments_json"])["command"]) for r in rows]


def assert_nothing_leaked(proxy: ProxyProcess, db: CallsDB) -> None:
    """The key reached neither the database nor the proxy's output, and no host but the
    mapped ones was asked for (telemetry, update checks: all off)."""
    assert API_KEY.encode() not in db.file_bytes()
    assert API_KEY not in proxy.output()
    assert re.findall(r"\b(?:GET|POST|PUT|DELETE) https?://(?!127\.0\.0\.1:)\S+", proxy.output()) == []


# --- text -------------------------------------------------------------------------------


def test_text_answer_and_routing_call(
    gemini: GeminiCli, agent_mock: AgentMock, workdir: Path, db: CallsDB, proxy: ProxyProcess
) -> None:
    said = f"Hello from the mock, {token()}."
    marker = agent_mock.script([Reply(said)])
    run = gemini.run(f"{marker} say hello", cwd=workdir)

    assert_success(run)
    assert run.text() == said, run.describe()
    routing, turn = agent_mock.exchanges(marker)
    # The routing call: non-streaming, asks for a JSON complexity score (the mock's answer
    # sends it to a flash model); the turn streams with `alt=sse`.
    assert re.fullmatch(r"/v1beta/models/[\w.-]+:generateContent", routing.path), routing.path
    assert "complexity_score" in json.dumps(routing.json()["generationConfig"])
    assert re.fullmatch(r"/v1beta/models/[\w.-]*flash[\w.-]*:streamGenerateContent\?alt=sse", turn.path), turn.path
    assert [(e.status, e.violations, e.headers["x-goog-api-key"]) for e in (routing, turn)] == [
        (200, [], API_KEY),
        (200, [], API_KEY),
    ]
    assert turn.json()["contents"][-1]["parts"][-1] == {"text": f"{marker} say hello"}
    assert SHELL not in json.dumps(turn.json()["tools"])  # without --yolo no shell tool is offered

    calls = recorded(db, agent_mock, marker)
    check_records(calls, ["pass", "pass"])
    assert [c["stream"] for c in calls] == [0, 1]
    assert_nothing_leaked(proxy, db)


# --- an allowed shell call runs -----------------------------------------------------------


def test_allowed_shell_call_runs_and_session_ends(
    gemini: GeminiCli, agent_mock: AgentMock, workdir: Path, db: CallsDB, judge: JudgeMock
) -> None:
    mark = token()
    command = f"echo {mark} > made.txt && cat made.txt"
    marker = agent_mock.script(
        [Reply("I will write the marker.", (shell(command),)), Reply("The command printed: {results}")]
    )
    run = gemini.run(f"{marker} write the marker file", YOLO, cwd=workdir)

    assert_success(run)
    assert (workdir / "made.txt").read_text() == f"{mark}\n"
    [use] = run.of_type("tool_use")
    assert (use["tool_name"], use["parameters"]["command"]) == (SHELL, command)
    [result] = run.of_type("tool_result")
    assert (result["tool_id"], result["status"], result["output"]) == (use["tool_id"], "success", mark)
    assert run.text().startswith("I will write the marker.The command printed: ") and mark in run.text()

    first, second = turns(agent_mock, marker)
    assert [(e.status, e.turn, e.step, e.violations) for e in (first, second)] == [(200, 0, 0, []), (200, 0, 1, [])]
    assert SHELL in json.dumps(first.json()["tools"])
    # The function call went back exactly as the model sent it, signature included, and
    # its response follows it.
    [*_, (call_part,)] = [c["parts"][-1:] for c in model_contents(second)]
    sent = {"name": SHELL, "args": {"command": command, "description": "Run a shell command"}}
    assert call_part["thoughtSignature"] == signature_sent(first)
    assert {k: v for k, v in call_part["functionCall"].items() if k != "id"} == sent
    [answer] = second.json()["contents"][-1]["parts"]
    assert answer["functionResponse"]["name"] == SHELL and mark in json.dumps(answer)
    # The judge was asked about the command and allowed it.
    assert [command in r.prompt_text for r in judge.requests] == [True]

    routing, asked, answered = recorded(db, agent_mock, marker)  # no routing call for the step after the tool
    check_records([routing, asked, answered], ["pass", "pass", "pass"])
    assert [[e[:2] for e in policy_events(db, call)] for call in (routing, asked, answered)] == [
        [],
        [("tool_call_judge", "allowed")],
        [],
    ]
    assert judged(db, asked) == [("allowed", SHELL, command)]


# --- a destructive call never runs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "policy", "why"),
    [("rm -rf victim", "deny_tools", RM_REASON), ("shred -u victim/keep.txt", "tool_call_judge", "judged risk: 0.97")],
    ids=["deny_tools", "judge"],
)
def test_blocked_shell_call_never_runs_and_session_ends(
    gemini: GeminiCli,
    agent_mock: AgentMock,
    workdir: Path,
    db: CallsDB,
    judge: JudgeMock,
    command: str,
    policy: str,
    why: str,
) -> None:
    judge.when("shred", block("Destroys the file for good."))
    (workdir / "victim").mkdir()
    (workdir / "victim" / "keep.txt").write_text("still here\n")
    marker = agent_mock.script(
        [Reply("Cleaning up.", (shell(command),), thinking=THINKING), Reply("(unexpected) {results}")]
    )
    run = gemini.run(f"{marker} clean up the victim directory", YOLO, cwd=workdir)

    assert_success(run)
    assert (workdir / "victim" / "keep.txt").read_text() == "still here\n"
    assert run.of_type("tool_use") == [] and run.of_type("tool_result") == []
    shown = run.text()
    assert shown.startswith("Cleaning up.") and NOTICE in shown and why in shown, run.describe()
    assert f'"command": "{command}"' in shown
    # The turn ended with the notice: Gemini CLI had nothing to run and asked nothing more.
    [request] = turns(agent_mock, marker)
    assert (request.status, request.violations) == (200, [])

    routing, turn = recorded(db, agent_mock, marker)
    check_records([routing, turn], ["pass", "blocked"])
    [(by, action, details)] = policy_events(db, turn)
    assert (by, action, details["tool_name"]) == (policy, "blocked", SHELL)
    # A call deny_tools removed never reaches the judge.
    assert judged(db, turn) == ([] if policy == "deny_tools" else [("blocked", SHELL, command)])
    assert [command in r.prompt_text for r in judge.requests] == ([] if policy == "deny_tools" else [True])


# --- one blocked and one allowed call in the same answer -------------------------------------


def test_mixed_answer_runs_only_the_allowed_call(
    gemini: GeminiCli, agent_mock: AgentMock, workdir: Path, db: CallsDB
) -> None:
    """The blocked call comes first, so the step's thought signature was on it: the
    call that remains must still go back signed, or Gemini 3 refuses the next step."""
    (workdir / "victim").mkdir()
    mark = token()
    allowed = shell(f"echo {mark} | tee made.txt")
    marker = agent_mock.script([Reply("Two commands.", (shell("rm -rf victim"), allowed)), Reply("Done: {results}")])
    run = gemini.run(f"{marker} do both", YOLO, cwd=workdir)

    assert_success(run)
    assert (workdir / "made.txt").read_text() == f"{mark}\n" and (workdir / "victim").is_dir()
    [use] = run.of_type("tool_use")
    assert use["parameters"]["command"] == allowed.input["command"]
    assert NOTICE in run.text() and f"Done: <untrusted_context>\nOutput: {mark}\n" in run.text(), run.describe()

    first, second = turns(agent_mock, marker)
    assert [(e.status, e.step, e.violations) for e in (first, second)] == [(200, 0, []), (200, 1, [])]
    [*_, step] = model_contents(second)
    calls = [p for p in step["parts"] if "functionCall" in p]
    assert [c["functionCall"]["args"]["command"] for c in calls] == [allowed.input["command"]]
    assert calls[0]["thoughtSignature"] == signature_sent(first)
    assert any(NOTICE in p.get("text", "") for p in step["parts"])

    routing, blocked, answered = recorded(db, agent_mock, marker)
    check_records([routing, blocked, answered], ["pass", "blocked", "pass"])
    assert [e[:2] for e in policy_events(db, blocked)] == [("deny_tools", "blocked"), ("tool_call_judge", "allowed")]
