"""`just merge`: two machines' databases, recorded through two real proxies, in one.

Every call arrives whole (its calls row and every child row the same as in its source),
with the backtest runs; search finds the calls of both; merging again adds nothing; a
call id that names a different row is refused, naming it, and that input adds nothing;
an input at an older schema is migrated first.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from harness import REPO, MitmCA, ProxyLauncher
from harness_clients import ClientFactory
from harness_db import CallsDB
from sqlite_utils import Database
from test_retention import call_ids, children, fts_consistent, rows, searched

from recorder import merge
from recorder.schema import MIGRATIONS


@pytest.fixture(scope="module")
def machines(start_module_proxy: ProxyLauncher, mitm_ca: MitmCA) -> tuple[Path, Path]:
    """Two databases, each recorded by its own proxy (stopped, so everything is flushed)."""
    paths = []
    for machine, word in (("laptop-a", "aardvark"), ("laptop-b", "bumblebee")):
        proxy = start_module_proxy()
        factory = ClientFactory(proxy.url, mitm_ca, "sk-test-merge")
        try:
            client = factory.openai()
            for n in range(2):
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"{word} {n}"}],
                    extra_headers={"x-interlock-project": machine},
                )
                assert proxy.db_path is not None
                CallsDB(proxy.db_path).wait_call(raw.headers["x-interlock-call-id"])
            factory.anthropic().messages.create(
                model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": f"{word} claude"}]
            )
        finally:
            factory.close()
        proxy.stop()
        assert proxy.db_path is not None
        paths.append(proxy.db_path)
    assert len(call_ids(paths[0])) == len(call_ids(paths[1])) == 3
    return paths[0], paths[1]


@pytest.fixture
def inputs(machines: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the two machines' databases, the second with a backtest run over its calls."""
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    shutil.copy(machines[0], a)
    shutil.copy(machines[1], b)
    with sqlite3.connect(b) as conn:
        first = conn.execute("select call_id from calls order by call_id limit 1").fetchone()[0]
        conn.execute(
            "insert into backtest_runs (run_id, created_at, policies_json, filter, calls) "
            "values ('run-b', '2026-01-01T00:00:00.000Z', '[]', '1', 1)"
        )
        conn.execute(
            "insert into backtest_results (run_id, call_id, verdict, changed) values ('run-b', ?, 'pass', 0)", (first,)
        )
    conn.close()
    return a, b


def test_two_machines_merge_into_one_view(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = inputs
    team = tmp_path / "team.db"
    assert merge.main([str(a), str(b), "-o", str(team)]) == 0
    out = capsys.readouterr().out
    assert f"{a}: 3 calls added, 0 already there, 0 backtest runs" in out
    assert f"{b}: 3 calls added, 0 already there, 1 backtest runs" in out

    assert call_ids(team) == call_ids(a) | call_ids(b)
    for source in (a, b):
        for call_id in call_ids(source):
            assert rows(team, "select * from calls where call_id = ?", (call_id,)) == rows(
                source, "select * from calls where call_id = ?", (call_id,)
            )
            assert children(team, call_id) == children(source, call_id)
    projects = rows(team, "select coalesce(project, '-'), count(*) from calls group by project order by 1")
    assert projects == [("-", 2), ("laptop-a", 2), ("laptop-b", 2)]
    assert len(searched(team, "aardvark")) == 3 and len(searched(team, "bumblebee")) == 3
    fts_consistent(team)
    assert rows(team, "select run_id, calls from backtest_runs") == [("run-b", 1)]
    assert team.stat().st_mode & 0o777 == 0o600

    # Again: everything is there already, nothing doubles.
    assert merge.main([str(a), str(b), "-o", str(team)]) == 0
    assert f"{b}: 0 calls added, 3 already there, 0 backtest runs" in capsys.readouterr().out
    assert rows(team, "select count(*) from calls") == [(6,)]
    for table in ("stage_rows", "policy_events", "tool_calls", "backtest_results"):
        [(merged,)], [(in_a,)], [(in_b,)] = (rows(db, f"select count(*) from {table}") for db in (team, a, b))
        assert merged == in_a + in_b, table
    fts_consistent(team)


def test_a_call_id_naming_a_different_call_is_refused(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = inputs
    clash = tmp_path / "clash.db"
    shutil.copy(a, clash)
    with sqlite3.connect(clash) as conn:
        victim = conn.execute("select call_id from calls order by call_id limit 1").fetchone()[0]
        conn.execute("update calls set model = 'something-else' where call_id = ?", (victim,))
        conn.execute("delete from calls where call_id != ?", (victim,))
    conn.close()
    team = tmp_path / "team.db"
    assert merge.main([str(a), str(clash), str(b), "-o", str(team)]) == 2
    captured = capsys.readouterr()
    assert f"{clash}: 1 calls rows have the id of a different row already merged (call_id {victim})" in captured.err
    assert f"{a}: 3 calls added" in captured.out
    assert call_ids(team) == call_ids(a)  # the clashing input added nothing, and the merge stopped there
    assert rows(team, "select model from calls where call_id = ?", (victim,)) != [("something-else",)]


def test_bad_inputs_are_refused(inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = inputs
    assert merge.main([str(tmp_path / "missing.db"), "-o", str(tmp_path / "team.db")]) == 2
    assert "no database there" in capsys.readouterr().err
    assert merge.main([str(a), "-o", str(a)]) == 2
    assert "the output cannot also be an input" in capsys.readouterr().err
    assert not (tmp_path / "team.db").exists()


def test_an_older_schema_is_migrated_first(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = inputs
    old = tmp_path / "old.db"
    MIGRATIONS.apply(Database(old), stop_before="m014_call_tags")
    Database(old).table("calls").insert(
        {"call_id": "0000000000aa" + "0" * 20, "started_at": "2025-01-01T00:00:00.000Z", "provider": "openai",
         "dialect": "openai-chat", "host": "api.openai.com", "path": "/v1/chat/completions", "verdict": "pass",
         "prompt_text": "quokka"}
    )  # fmt: skip
    team = tmp_path / "team.db"
    assert merge.main([str(old), str(a), "-o", str(team)]) == 0
    assert "user" in {r[1] for r in rows(old, "pragma table_info(calls)")}
    assert rows(team, "select user, project from calls where prompt_text = 'quokka'") == [(None, None)]
    assert len(searched(team, "quokka")) == 1
    fts_consistent(team)


def test_just_merge_through_just(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = inputs
    team = tmp_path / "team.db"
    done = subprocess.run(
        ["just", "merge", str(a), str(b), "-o", str(team)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(call_ids(team)) == 6
