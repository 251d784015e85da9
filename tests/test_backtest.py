"""`just backtest` over a database recorded through the real proxy, and its UI pages.

The database is recorded once per module: the real mitmdump with no policies in front
of the loopback mock, the real `openai` and `anthropic` SDKs, streamed and not, some
calls answered with `get_weather` tool calls and others with text or another tool.
A `deny_tools` backtest must then list exactly the calls that used `get_weather`
(blocked, the would-be response without the call, a would-be stream the protocol
checker accepts) and no others; the Datasette pages (in process) show them, alone and
compared with another run. A judge backtest against the loopback judge prints its
estimate, honours `--max-judge-calls` and waits for a yes; a bad config exits non-zero
naming the key; nothing calls the provider.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from datasette.app import Datasette
from harness import REPO, MitmCA, ProxyLauncher
from harness_clients import ClientFactory
from harness_db import CallsDB
from judge_mock import JudgeMock, allow
from mock_provider import MockProvider
from openai.lib.streaming.chat import ChatCompletionStreamState
from policy_fixtures import stream_violations

from backtest.cli import main
from datasette_plugins.ui import serve
from interlock.dialects import DIALECTS

CALL_ID = "x-interlock-call-id"
WEATHER_OPENAI: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {}}}},
}
WEATHER_ANTHROPIC: Any = {"name": "get_weather", "input_schema": {"type": "object"}}
DENY_WEATHER = {"policies": [{"policy": "deny_tools", "deny": ["get_weather"]}]}
DENY_BASH = {"policies": [{"policy": "deny_tools", "deny": ["Bash"]}]}


def openai_call(clients: ClientFactory, prompt: str, stream: bool) -> str:
    chat = clients.openai().chat.completions.with_raw_response
    arguments: Any = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
    arguments["tools"] = [WEATHER_OPENAI]
    if not stream:
        raw = chat.create(**arguments)
        raw.parse()
        return str(raw.headers[CALL_ID])
    raw_stream = chat.create(**arguments, stream=True, stream_options={"include_usage": True})
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in raw_stream.parse():
        state.handle_chunk(chunk)
    state.get_final_completion()
    return str(raw_stream.headers[CALL_ID])


def anthropic_call(clients: ClientFactory, prompt: str, stream: bool) -> str:
    sdk = clients.anthropic()
    arguments: Any = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": prompt}],
        "tools": [WEATHER_ANTHROPIC],
    }
    if stream:
        with sdk.messages.stream(**arguments) as message_stream:
            message_stream.get_final_message()
            return str(message_stream.response.headers[CALL_ID])
    raw = sdk.messages.with_raw_response.create(**arguments)
    raw.parse()
    return str(raw.headers[CALL_ID])


@dataclass(frozen=True)
class Recorded:
    path: Path
    weather: set[str]  # the calls whose recorded answer asked for get_weather
    bash: set[str]  # the call answered with a Bash tool call
    text: set[str]  # the calls answered with text only
    tool_calls: int  # tool calls in all recorded answers

    @property
    def all(self) -> set[str]:
        return self.weather | self.bash | self.text


@pytest.fixture(scope="module")
def recorded(start_module_proxy: ProxyLauncher, mitm_ca: MitmCA) -> Iterator[Recorded]:
    proxy = start_module_proxy(config={"policies": []})
    clients = ClientFactory(proxy.url, mitm_ca, "sk-test-backtest-key")
    try:
        weather = {
            openai_call(clients, "weather in Paris? [[mock:tool]]", stream=True),
            openai_call(clients, "weather in Paris? [[mock:tool]]", stream=False),
            anthropic_call(clients, "weather in both? [[mock:tools2]]", stream=True),
            anthropic_call(clients, "weather in Paris? [[mock:tool]]", stream=False),
        }
        bash = {anthropic_call(clients, "list files [[mock:long_args]]", stream=True)}
        text = {
            openai_call(clients, "hello", stream=True),
            openai_call(clients, "hello", stream=False),
            anthropic_call(clients, "hello", stream=True),
        }
    finally:
        clients.close()
    assert proxy.db_path is not None
    db = CallsDB(proxy.db_path)
    for call_id in weather | bash | text:
        db.wait_call(call_id)
    yield Recorded(proxy.db_path, weather, bash, text, tool_calls=1 + 1 + 2 + 1 + 1)
    # the proxy keeps running (and may write) while the backtests write to its database


def config_file(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def backtest(
    capsys: pytest.CaptureFixture[str], db: Path, config: Path, *args: str, answer: str | None = None
) -> tuple[int, str]:
    if answer is not None:
        sys.stdin = io.StringIO(answer)
    try:
        status = main(["--config", str(config), "--db", str(db), *args])
    finally:
        sys.stdin = sys.__stdin__
    return status, capsys.readouterr().out


def run_id_of(output: str) -> str:
    found = re.search(r"\bRun ([0-9a-f]+):", output)
    assert found, output
    return found.group(1)


def results(db: Path, run_id: str) -> dict[str, dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("select * from backtest_results where run_id = ?", (run_id,)).fetchall()
        return {row["call_id"]: dict(row) for row in rows}
    finally:
        conn.close()


def run_row(db: Path, run_id: str) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("select * from backtest_runs where run_id = ?", (run_id,)).fetchone())
    finally:
        conn.close()


def dialect_of(db: Path, call_id: str) -> str:
    return str(CallsDB(db).call(call_id)["dialect"])  # type: ignore[index]


@pytest.fixture(scope="module")
def deny_runs(recorded: Recorded, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two runs: get_weather denied, and Bash denied."""
    runs = {}
    for name, config in (("weather", DENY_WEATHER), ("bash", DENY_BASH)):
        path = tmp_path_factory.mktemp(name) / "candidate.yaml"
        path.write_text(yaml.safe_dump(config))
        completed = subprocess.run(
            [sys.executable, "-m", "backtest", "--config", str(path), "--db", str(recorded.path)],
            check=False,
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stderr
        assert "0 tool calls would be judged." in completed.stdout
        runs[name] = run_id_of(completed.stdout)
    return runs


def test_deny_tools_backtest_blocks_exactly_the_calls_that_used_the_tool(
    recorded: Recorded, deny_runs: dict[str, str], mock_provider: MockProvider
) -> None:
    exchanges = len(mock_provider.exchanges)
    found = results(recorded.path, deny_runs["weather"])
    assert set(found) >= recorded.all  # the run covers every recorded call
    blocked = {call_id for call_id, row in found.items() if row["verdict"] == "blocked"}
    assert blocked == recorded.weather
    for call_id in recorded.weather:
        row = found[call_id]
        dialect = DIALECTS[dialect_of(recorded.path, call_id)]
        response = json.loads(row["response_json"])
        assert [c.name for c in dialect.tool_calls(response)] == []  # the would-be answer lost the tool call
        assert "Interlock blocked the tool call `get_weather`" in dialect.response_text(response)
        events = json.loads(row["events_json"])
        assert {(e["policy"], e["action"], e["details"]["tool_name"]) for e in events} == {
            ("deny_tools", "blocked", "get_weather")
        }
        assert row["changed"] == 1 and row["request_json"] is None  # the request would go up as recorded
        if row["response_raw"] is not None:  # a stream: still valid for the SDKs
            request = CallsDB(recorded.path).wait_call(call_id).stage_body("request_original")
            assert stream_violations(dialect.name, row["response_raw"], request) == []
    streamed = [found[c] for c in recorded.weather if found[c]["response_raw"] is not None]
    assert len(streamed) == 2  # one stream per dialect
    for call_id in recorded.bash | recorded.text:
        row = found[call_id]
        assert (row["verdict"], row["changed"], row["response_json"], row["events_json"]) == ("pass", 0, None, "[]")
    run = run_row(recorded.path, deny_runs["weather"])
    assert (run["blocked"], run["changed"], run["errors"], run["skipped"]) == (4, 4, 0, 0)
    assert run["calls"] == len(found) and run["filter"] == "all calls" and run["finished_at"] is not None
    assert json.loads(run["policies_json"])[0]["deny"] == ["get_weather"]
    assert len(mock_provider.exchanges) == exchanges  # no provider call


def test_filters_select_the_calls(recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, DENY_WEATHER)
    some = sorted(recorded.weather)[:2]
    where = f"c.call_id in ({', '.join(repr(c) for c in some)})"
    status, output = backtest(capsys, recorded.path, config, "--where", where)
    assert status == 0
    assert set(results(recorded.path, run_id_of(output))) == set(some)
    status, output = backtest(capsys, recorded.path, config, "--since", "2999-01-01")
    assert status == 0 and "over 0 recorded calls (since 2999-01-01)" in output


async def test_the_ui_shows_the_run_and_the_comparisons(recorded: Recorded, deny_runs: dict[str, str]) -> None:
    ds = Datasette([str(recorded.path)], **serve.datasette_kwargs())
    await ds.invoke_startup()
    name = recorded.path.stem
    base = f"/-/interlock/{name}/backtests"
    weather, bash = deny_runs["weather"], deny_runs["bash"]

    async def page(path: str) -> str:
        response = await ds.client.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:1000]}"
        return response.text

    def rows(html: str, category: str) -> set[str]:
        section = html.split(f'data-category="{category}"', 1)[1].split("</section>", 1)[0]
        return set(re.findall(r'<tr data-call-id="([0-9a-f]+)"', section))

    home = await page("/")
    assert f'href="{base}"' in home
    listing = await page(base)
    assert f'data-run-id="{weather}"' in listing and f'data-run-id="{bash}"' in listing

    run_page = await page(f"{base}/{weather}")
    assert rows(run_page, "newly blocked") == recorded.weather
    assert rows(run_page, "no longer blocked") == rows(run_page, "changed differently") == set()
    for call_id in recorded.weather:
        assert f'href="/-/interlock/{name}/calls/{call_id}"' in run_page
    assert not any(call_id in run_page for call_id in recorded.bash | recorded.text)

    one = min(recorded.weather)
    diff = await page(f"{base}/{weather}/calls/{one}")
    assert "Would-be final" in diff and "deny_tools" in diff
    assert "il-block il-block-tool_call il-blocked" in diff  # the recorded tool call, blocked in the would-be

    against_recorded = await page(f"{base}/compare?old=recorded&new={bash}")
    assert rows(against_recorded, "newly blocked") == recorded.bash
    two_runs = await page(f"{base}/compare?old={weather}&new={bash}")
    assert rows(two_runs, "newly blocked") == recorded.bash
    assert rows(two_runs, "no longer blocked") == recorded.weather
    assert rows(two_runs, "changed differently") == set()
    assert (await ds.client.get(f"{base}/nosuchrun")).status_code == 404


def test_a_judge_backtest_estimates_asks_and_honours_the_bound(
    recorded: Recorded,
    judge: JudgeMock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    judge.reset(allow())
    monkeypatch.setenv("BACKTEST_JUDGE_KEY", "sk-judge-test")
    entry = {"policy": "tool_call_judge", "model": "openai/judge-mock", "api_base": judge.url}
    config = config_file(tmp_path, {"policies": [{**entry, "api_key_env": "BACKTEST_JUDGE_KEY"}]})
    status, output = backtest(capsys, recorded.path, config, answer="n\n")
    assert status == 1 and "Not run." in output
    assert f"{recorded.tool_calls} tool calls would be judged by openai/judge-mock: estimated cost unknown" in output
    assert judge.requests == []

    status, output = backtest(capsys, recorded.path, config, "--max-judge-calls", "2", answer="y\n")
    assert status == 0, output
    assert "At most 2 will be (--max-judge-calls)" in output
    run_id = run_id_of(output)
    assert len(judge.requests) == 2
    found = results(recorded.path, run_id)
    judgements = [j for row in found.values() for j in json.loads(row["judgements_json"])]
    assert [(j["decision"], j["error"]) for j in judgements] == [("allowed", None)] * 2
    judged = len(judgements)
    not_run = {c for c, row in found.items() if row["verdict"] is None}
    assert not_run and not_run <= recorded.weather | recorded.bash
    assert all(found[c]["note"] == "not run: --max-judge-calls 2 reached" for c in not_run)
    assert {c for c in recorded.text if found[c]["verdict"] == "pass"} == recorded.text  # no tool calls: still run
    run = run_row(recorded.path, run_id)
    assert (run["judge_calls"], run["skipped"], run["judge_estimate_calls"]) == (
        judged,
        len(not_run),
        recorded.tool_calls,
    )


def test_the_estimate_prices_a_known_judge_model(recorded: Recorded) -> None:
    from backtest.estimate import estimate
    from backtest.recorded import Filter
    from interlock.config import PolicyEntry
    from policies.registry import build_chain

    chain = build_chain([PolicyEntry.model_validate({"policy": "tool_call_judge", "model": "openai/gpt-4o-mini"})])
    conn = sqlite3.connect(recorded.path)
    try:
        found = estimate(conn, chain, Filter())
    finally:
        conn.close()
    assert found.judge_calls == recorded.tool_calls
    assert found.cost_usd is not None and 0 < found.cost_usd < 0.01


def test_a_bad_config_or_filter_exits_naming_the_problem(recorded: Recorded, tmp_path: Path) -> None:
    bad = config_file(tmp_path, {"policies": [{"policy": "deny_tools", "denny": ["get_weather"]}]})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "backtest", "--db", str(recorded.path), *args]
        return subprocess.run(command, check=False, capture_output=True, text=True, cwd=REPO, timeout=120)

    completed = run("--config", str(bad))
    assert completed.returncode == 2
    assert "policies.0 (deny_tools).denny" in completed.stderr
    good = config_file(tmp_path, DENY_WEATHER)
    completed = run("--config", str(good), "--where", "no_such_column = 1")
    assert completed.returncode == 2 and "no such column: no_such_column" in completed.stderr
    completed = run("--config", str(good), "--since", "yesterday")
    assert completed.returncode == 2 and "--since: not an ISO date" in completed.stderr
