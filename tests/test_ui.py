"""The Datasette UI in process: every page renders and shows the right content.

The database comes from `ui_database` (written by the real RecorderWriter, see
`ui_fixtures.py`); a fixture that records through the proxy can replace it as long as
it yields a path and matching `UIExpectations`.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from datasette.app import Datasette
from datasette.utils import tilde_encode
from ui_fixtures import UIExpectations, write_ui_database

from datasette_plugins.ui import meta, schema, serve

DB = "interlock"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ui_database(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, UIExpectations]:
    path = tmp_path_factory.mktemp("ui") / f"{DB}.db"
    return path, asyncio.run(write_ui_database(path))


@pytest.fixture
def expect(ui_database: tuple[Path, UIExpectations]) -> UIExpectations:
    return ui_database[1]


@pytest.fixture
def ds(ui_database: tuple[Path, UIExpectations]) -> Iterator[Datasette]:
    yield Datasette([str(ui_database[0])], **serve.datasette_kwargs())


def call_path(call_id: str) -> str:
    return f"/-/interlock/{DB}/calls/{tilde_encode(call_id)}"


def session_path(session_id: str) -> str:
    return f"/-/interlock/{DB}/sessions/{tilde_encode(session_id)}"


async def page(ds: Datasette, path: str, status: int = 200) -> str:
    response = await ds.client.get(path)
    assert response.status_code == status, f"{path}: {response.status_code}\n{response.text[:2000]}"
    return response.text


def text_of(markup: str) -> str:
    """The page's text without tags, entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


async def test_every_page_renders(ds: Datasette, expect: UIExpectations) -> None:
    tables = ["calls", "stages", "policy_events", "judge_decisions"]
    views = ["blocked_calls", "modified_calls", "cost_by_day_model", "slowest_calls"]
    queries = list(meta.metadata_for([DB])["databases"][DB]["queries"])
    paths = ["/", f"/{DB}"] + [f"/{DB}/{name}" for name in tables + views + queries]
    paths += [call_path(call_id) for call_id in expect.all_calls] + [session_path(expect.session_id)]
    for path in paths:
        await page(ds, path)


async def test_canned_queries_answer(ds: Datasette, expect: UIExpectations) -> None:
    async def rows(query: str, **params: str) -> list[dict[str, object]]:
        response = await ds.client.get(f"/{DB}/{query}.json", params={"_shape": "array", **params})
        assert response.status_code == 200, response.text
        found: list[dict[str, object]] = response.json()
        return found

    tools = {r["tool"]: r for r in await rows("most_used_tools")}
    assert tools[expect.blocked_tool]["judged_blocked"] == 1
    assert {"list_files", "read_file", "grep", "get_weather"} <= set(tools)
    judged = {(r["tool_name"], r["decision"]) for r in await rows("judge_decisions_by_tool")}
    assert judged == {(expect.blocked_tool, "blocked"), ("grep", "allowed")}
    sessions = await rows("sessions", client="")
    assert [(s["session_id"], s["calls"]) for s in sessions] == [(expect.session_id, expect.session_turns)]
    assert await rows("sessions", client="ui-fixture") == sessions
    assert await rows("sessions", client="curl") == []


async def test_views_answer(ds: Datasette, expect: UIExpectations) -> None:
    async def rows(view: str) -> list[dict[str, object]]:
        response = await ds.client.get(f"/{DB}/{view}.json", params={"_shape": "array", "_size": "max"})
        assert response.status_code == 200, response.text
        found: list[dict[str, object]] = response.json()
        return found

    modified = await rows("modified_calls")
    assert [r["call_id"] for r in modified] == [expect.blocked_call, expect.modified_call]  # newest first
    assert [r["call_id"] for r in await rows("blocked_calls")] == [expect.blocked_call]
    slowest = await rows("slowest_calls")
    durations = [r["duration_ms"] for r in slowest]
    assert durations and durations == sorted(durations, reverse=True)  # type: ignore[type-var]
    assert {"ttft_ms", "output_tokens_per_s"} <= set(slowest[0])
    assert sum(r["calls"] for r in await rows("cost_by_day_model")) == len(expect.all_calls)  # type: ignore[misc]


async def test_diff_page_shows_the_changed_lines(ds: Datasette, expect: UIExpectations) -> None:
    markup = await page(ds, call_path(expect.modified_call))
    removed = re.findall(r'<tr class="il-del">(.*?)</tr>', markup, re.DOTALL)
    added = re.findall(r'<tr class="il-add">(.*?)</tr>', markup, re.DOTALL)
    assert [text_of(row) for row in removed] == [f"1 − {expect.removed_line}"]  # old line number, sign
    assert [text_of(row) for row in added] == [f"1 + {expect.added_line}"]
    assert "<del>123-45-6789</del>" in markup and "<ins>[REDACTED]</ins>" in markup  # the words that changed
    requested, sent = expect.model_change
    text = text_of(markup)
    assert f"{requested} → {sent}" in text
    assert re.search(rf"model changed {requested} {sent}", text)
    assert "US SSN in the prompt" in text and "gpt-4o downgraded for cost" in text  # policy events beside
    assert "Then summarise the thread." in text  # context line kept
    assert "Message #1 unchanged" in text  # the unchanged system prompt is collapsed


async def test_blocked_tool_call_shows_the_policy_reason(ds: Datasette, expect: UIExpectations) -> None:
    markup = await page(ds, call_path(expect.blocked_call))
    blocked = re.findall(r'<div class="il-block il-block-tool_call il-blocked">(.*?)</pre>', markup, re.DOTALL)
    assert len(blocked) == 1
    card = text_of(blocked[0])
    assert f"tool call {expect.blocked_tool}" in card
    assert expect.blocked_reason in card and f"p={expect.judge_probability}" in card
    assert "rm -rf / --no-preserve-root" in card
    text = text_of(markup)
    assert "stop_reason changed tool_use end_turn" in text
    assert "1 tool call blocked" in text
    assert f"probability {expect.judge_probability}" in text  # the judge panel
    assert "thinking Disk is full. Remove everything." in text


async def test_raw_stages_are_one_click_away(ds: Datasette, expect: UIExpectations) -> None:
    markup = await page(ds, call_path(expect.blocked_call))
    base = call_path(expect.blocked_call)
    for link in ("response_original.raw", "response_final.raw", "request_original.json", "response_final.json"):
        assert f'href="{base}/{link}"' in markup
    sse = await ds.client.get(f"{base}/response_original.raw")
    assert sse.status_code == 200 and sse.headers["content-type"].startswith("text/plain")
    assert sse.text.startswith("event: message_start\n") and '"name":"bash"' in sse.text
    body = (await ds.client.get(f"{base}/response_final.json")).json()
    assert body["stop_reason"] == "end_turn"
    headers = (await ds.client.get(f"{base}/request_final.headers.json")).json()
    assert headers["x-api-key"] == "[REDACTED]"
    missing = await ds.client.get(f"{base}/request_final.raw")
    assert missing.status_code == 404 and "kept no raw bytes" in missing.text


async def test_session_page_links_tool_calls_to_their_results(ds: Datasette, expect: UIExpectations) -> None:
    markup = await page(ds, session_path(expect.session_id))
    assert re.search(rf'data-total="turns">{expect.session_turns}<', markup)
    assert len(re.findall(r'<li class="il-turn', markup)) == expect.session_turns
    for tool_id in expect.session_tool_calls:
        link = re.search(rf'href="#(result-(\d+)-{tool_id})"', markup)
        assert link, f"no link from {tool_id} to its result"
        assert f'id="{link.group(1)}"' in markup
        use = re.search(rf'id="(use-\d+-{tool_id})"', markup)
        assert use and f'href="#{use.group(1)}"' in markup  # and back from the result
    text = text_of(markup)
    assert re.search(r"allowed judge gpt-4o-mini p=0\.02 ?: Read-only search", text)
    for n in range(1, expect.session_turns + 1):
        assert call_path(f"ui-session-{n}") in markup


async def test_session_tails_are_cut_where_each_dialect_keeps_its_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session query asks the registry where a request keeps its conversation
    (`Dialect.messages_path`); it assumes no path of its own."""
    from ui_fixtures import write_records

    from datasette_plugins.ui import store
    from interlock.dialects import DIALECTS
    from recorder.models import CallRecord, StageRecord

    monkeypatch.setitem(DIALECTS, "contents-dialect", SimpleNamespace(messages_path="$.contents", chain_path=None))
    conversation = [{"role": "user" if n % 2 == 0 else "model", "n": n} for n in range(20)]
    body = {"messages": [{"role": "user", "n": "not the conversation"}], "contents": conversation}

    def record(call_id: str, dialect: str, at: float) -> CallRecord:
        return CallRecord(
            call_id=call_id, started_at=at, provider="p", dialect=dialect, host="h", path="/", session_id="s",
            stages=[StageRecord(stage="request_final", body=body)],
        )  # fmt: skip

    await write_records(tmp_path / "d.db", [record("known", "contents-dialect", 1.0), record("gone", "gone", 2.0)])
    ds = Datasette([str(tmp_path / "d.db")], **serve.datasette_kwargs())
    (known, gone), totals = await store.load_session(ds.get_database("d"), "s")
    assert totals.calls == 2
    assert known.request_messages == 20
    assert known.tail == conversation[-store.TAIL_MESSAGES :]
    assert json.loads(known.first_message or "") == conversation[0]
    assert (gone.request_messages, gone.first_message, gone.tail) == (None, None, [])  # not guessed


async def test_blocked_call_is_an_intervention_in_its_session(tmp_path: Path) -> None:
    from ui_fixtures import ui_records, write_records

    records = [r.model_copy(update={"session_id": "s-1"}) for r in ui_records()[:2]]
    await write_records(tmp_path / "s.db", records)
    ds = Datasette([str(tmp_path / "s.db")], **serve.datasette_kwargs())
    markup = (await ds.client.get("/-/interlock/s/sessions/s-1")).text
    assert markup.count("il-intervention") == 2
    assert re.search(r'data-total="blocked">1<', markup)
    blocked = re.findall(r'<div class="il-tooluse il-tooluse-blocked"(.*?)</pre>', markup, re.DOTALL)
    assert len(blocked) == 1 and "Deletes the whole filesystem" in text_of(blocked[0])


async def test_every_policy_action_is_shown_as_itself(tmp_path: Path) -> None:
    """A call with one event of each action the policies record: each has its badge and
    its card on the call page, and the turn is an intervention on the session page."""
    from ui_fixtures import ui_records, write_records

    from recorder.models import PolicyEventRecord

    events = [PolicyEventRecord(policy=f"p-{action}", action=action, reason=f"why {action}", at=0)
              for action in schema.ACTIONS]  # fmt: skip
    record = ui_records()[0].model_copy(update={"events": events, "session_id": "s-actions"})
    await write_records(tmp_path / "a.db", [record])
    ds = Datasette([str(tmp_path / "a.db")], **serve.datasette_kwargs())
    markup = await page(ds, f"/-/interlock/a/calls/{record.call_id}")
    cards = re.findall(r'<div class="il-event il-event-(\w+)">', markup)
    assert cards == list(schema.ACTIONS)
    for action in schema.ACTIONS:
        assert f'<span class="il-badge il-{action}">{action}</span> <strong>p-{action}</strong>' in markup
    session = await page(ds, "/-/interlock/a/sessions/s-actions")
    assert session.count("il-intervention") == 1
    assert re.findall(r'<li><span class="il-badge il-(\w+)">', session) == list(schema.ACTIONS)
    table = await page(ds, "/a/policy_events")
    assert all(f'<span class="il-badge il-{action}">{action}</span>' in table for action in schema.ACTIONS)


async def test_call_page_places_the_call_in_its_session(ds: Datasette, expect: UIExpectations) -> None:
    text = text_of(await page(ds, call_path("ui-session-2")))
    assert f"turn 2 of {expect.session_turns}" in text
    markup = await page(ds, call_path("ui-session-2"))
    assert f'href="{call_path("ui-session-1")}" rel="prev"' in markup
    assert f'href="{call_path("ui-session-3")}" rel="next"' in markup


async def test_bad_input_still_renders_and_says_what_is_missing(ds: Datasette, expect: UIExpectations) -> None:
    unparsable = text_of(await page(ds, call_path(expect.unparsable_call)))
    assert "request original: body is not JSON" in unparsable
    assert '{"model": "gpt-4o", "messages": [truncated' in unparsable  # the raw bytes, previewed
    assert "<html><body>502 Bad Gateway</body></html>" in unparsable

    missing = text_of(await page(ds, call_path(expect.missing_response_call)))
    assert "Response not recorded" in missing
    assert "response original: not recorded (upstream connection reset)" in missing

    huge = await page(ds, call_path(expect.huge_call))
    assert len(huge) < 200_000  # the 2 MB response is cut, not inlined
    assert "more characters" in huge and "line 0: the quick brown fox" in huge
    await page(ds, call_path("no-such-call"), status=404)
    await page(ds, session_path("no-such-session"), status=404)


async def test_calls_table_shows_human_columns_and_links(ds: Datasette, expect: UIExpectations) -> None:
    markup = await page(ds, f"/{DB}/calls")
    headers = re.findall(r'<th [^>]*data-column="([^"]+)"', markup)
    assert headers[:5] == ["started_at", "call_id", "provider", "model", "verdict"]
    assert "response_text" not in headers and "host" not in headers
    assert f'href="{call_path(expect.blocked_call)}"' in markup
    assert '<span class="il-badge il-blocked">blocked</span>' in markup
    assert f'href="{session_path(expect.session_id)}"' in markup
    for facet in ("provider", "model", "verdict"):
        assert f'data-column="{facet}"' in markup and f'class="facet-info facet-{DB}-calls-{facet}"' in markup
    everything = re.findall(r'<th [^>]*data-column="([^"]+)"', await page(ds, f"/{DB}/calls?_all_columns=1"))
    assert "response_text" in everything and "host" in everything


async def test_full_text_search(ds: Datasette, expect: UIExpectations) -> None:
    response = await ds.client.get(f"/{DB}/calls.json?_search=REDACTED&_shape=array")
    assert [row["call_id"] for row in response.json()] == [expect.modified_call]
    response = await ds.client.get(f"/{DB}/calls.json?_search=TODOs&_shape=array")
    assert {row["call_id"] for row in response.json()} == {f"ui-session-{n}" for n in (1, 2, 3)}


async def test_search_covers_the_whole_user_message_and_the_list_shows_the_typed_words(tmp_path: Path) -> None:
    from ui_fixtures import ui_records, write_records

    typed = "Summarise the thread"
    whole = f"<system-reminder>\nThe project codeword is ocarina.\n</system-reminder>\n{typed}"
    record = ui_records()[0].model_copy(update={"prompt_text": typed, "user_text": whole})
    await write_records(tmp_path / "f.db", [record])
    ds = Datasette([str(tmp_path / "f.db")], **serve.datasette_kwargs())
    found = (await ds.client.get("/f/calls.json", params={"_search": "ocarina", "_shape": "array"})).json()
    assert [row["call_id"] for row in found] == [record.call_id]
    listed = await page(ds, "/f/calls")
    assert typed in listed and "ocarina" not in listed


async def test_cells_render_json_and_judge_columns(ds: Datasette, expect: UIExpectations) -> None:
    judges = await page(ds, f"/{DB}/judge_decisions")
    assert '<span class="il-badge il-allowed">allowed</span>' in judges
    assert f'href="{call_path(expect.blocked_call)}"' in judges
    assert '<pre class="il-json">{\n  &#34;command&#34;: &#34;rm -rf / --no-preserve-root&#34;\n}</pre>' in judges
    stages = await page(ds, f"/{DB}/stages?call_id={expect.huge_call}")
    assert "whole JSON" in stages and f"{call_path(expect.huge_call)}/response_final.json" in stages


async def test_index_page_has_the_cost_chart(ds: Datasette) -> None:
    markup = await page(ds, "/")
    svg = re.search(r'<svg class="il-chart".*?</svg>', markup, re.DOTALL)
    assert svg and svg.group(0).count("<rect") == 1  # every fixture call is on one day
    assert "Most-used tools" in markup and f'href="/{DB}/sessions"' in markup
    assert '<svg class="il-chart"' in await page(ds, f"/{DB}")


async def test_titles_and_descriptions_explain_each_table(ds: Datasette) -> None:
    described = meta.metadata_for([DB])["databases"][DB]
    for table in ("calls", "stages", "policy_events", "judge_decisions", "blocked_calls", "modified_calls",
                  "cost_by_day_model", "slowest_calls"):  # fmt: skip
        info = described["tables"][table]
        markup = await page(ds, f"/{DB}/{table}")
        assert f"<h1>{info['title']}</h1>" in markup or info["title"] in markup
        assert info["description_html"].split()[0] in markup
    for name, query in described["queries"].items():
        assert query["title"] in await page(ds, f"/{DB}/{name}")


async def test_metadata_applies_to_any_database_name(tmp_path: Path) -> None:
    from ui_fixtures import ui_records, write_records

    await write_records(tmp_path / "other-name.db", ui_records()[:1])
    ds = Datasette([str(tmp_path / "other-name.db")], **serve.datasette_kwargs())
    response = await ds.client.get("/other-name/calls.json?_facet=verdict&_shape=objects")
    assert response.status_code == 200
    markup = await page(ds, "/other-name")
    assert "Most-used tools" in markup  # the canned queries


async def test_the_ui_is_read_only(ds: Datasette) -> None:
    queries = meta.metadata_for([DB])["databases"][DB]["queries"]
    assert not any(query.get("write") for query in queries.values())
    response = await ds.client.get(f"/{DB}.json", params={"sql": "delete from calls"})
    assert response.status_code == 400
    rows = await ds.client.get(f"/{DB}/calls.json?_shape=array")
    assert len(rows.json()) > 0
    # Datasette opens the file through read-only connections.
    db = ds.get_database(DB)
    with pytest.raises(Exception, match="readonly"):
        await db.execute_fn(lambda conn: conn.execute("delete from calls"))


def test_serve_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(serve.DB_ENV, raising=False)
    assert serve.split_argv([]) == ("interlock.db", [])
    assert serve.split_argv(["x.db", "--port", "9000"]) == ("x.db", ["--port", "9000"])
    monkeypatch.setenv(serve.DB_ENV, "env.db")
    assert serve.split_argv(["--port", "9000"]) == ("env.db", ["--port", "9000"])
    with pytest.raises(SystemExit, match="127.0.0.1"):
        serve.split_argv(["--host", "0.0.0.0"])
    args = serve.serve_args("x.db", ["--port", "9000"])
    assert args[:4] == ["serve", "x.db", "--host", "127.0.0.1"] and args[-2:] == ["--port", "9000"]
    assert json.dumps(args).count("--setting") == len(serve.SETTINGS)


def run_ui(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m datasette_plugins.ui.serve ARGS` as `just ui` runs it, without INTERLOCK_DB."""
    base = {k: v for k, v in os.environ.items() if k != serve.DB_ENV}
    return subprocess.run(
        [sys.executable, "-m", "datasette_plugins.ui.serve", *args],
        check=False,
        cwd=REPO,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def created_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_ui_refuses_a_missing_database_and_creates_nothing(tmp_path: Path, how: str) -> None:
    missing = tmp_path / "never-recorded.db"
    if how == "argument":
        result = run_ui([str(missing), "--port", "0"])
    else:
        result = run_ui(["--port", "0"], env={serve.DB_ENV: str(missing)})
    assert result.returncode == 1, result
    assert str(missing) in result.stderr
    assert "`just proxy`" in result.stderr and "`just up`" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert created_files(tmp_path) == []  # no database, no -wal or -shm file


def test_ui_refuses_a_directory(tmp_path: Path) -> None:
    result = run_ui([str(tmp_path)])
    assert result.returncode == 1 and f"{tmp_path} is not a database file" in result.stderr
    assert created_files(tmp_path) == []


def test_just_ui_on_a_missing_database_fails(tmp_path: Path) -> None:
    just = shutil.which("just")
    if just is None:
        pytest.skip("rust-just is not installed")
    missing = tmp_path / "missing.db"
    base = {k: v for k, v in os.environ.items() if k != serve.DB_ENV}
    result = subprocess.run(
        [just, "ui", str(missing)], check=False, cwd=REPO, env=base, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert f"no database at {missing}" in result.stderr and "`just proxy`" in result.stderr
    assert created_files(tmp_path) == []


def _normal_sql(sql: str) -> str:
    """SQL compared as text: lower case, one space, no trailing `;` or LIMIT."""
    text = re.sub(r"\s+", " ", sql).strip().rstrip(";").strip().lower()
    return re.sub(r" limit \d+$", "", text)


def twins(db_path: Path, queries: Mapping[str, Mapping[str, Any]], described: Mapping[str, Any]) -> list[str]:
    """Canned queries that duplicate a view of the schema (or a table): the same name, the
    same title, the same SQL, a view re-exposed without parameters, or the same calls."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        objects = dict(conn.execute("select name, type from sqlite_master where type in ('table', 'view')"))
        views = {  # the views that answer a question (`stages` is the stored stages, whole)
            name: _normal_sql(re.sub(r"(?is)^create view .*? as ", "", sql))
            for name, sql in conn.execute("select name, sql from sqlite_master where type = 'view'")
            if name != "stages"
        }

        def call_ids(sql: str) -> set[str] | None:
            cursor = conn.execute(sql)
            columns = [d[0] for d in cursor.description]
            return {row[columns.index("call_id")] for row in cursor} if "call_id" in columns else None

        view_calls = {name: call_ids(f"select * from [{name}]") for name in views}
        found = []
        for name, query in queries.items():
            sql = query["sql"]
            if name in objects:
                found.append(f"{name}: also a {objects[name]}")
            title = str(query.get("title", "")).lower()
            for table, info in described.items():
                if title and str(info.get("title", "")).lower() == title:
                    found.append(f"{name}: the title of {table}")
            for view, view_sql in views.items():
                if _normal_sql(sql) == view_sql:
                    found.append(f"{name}: the SQL of view {view}")
            if re.search(r"(?<!:):\w+", sql):
                continue  # takes parameters: not something a view can be
            read = set(re.findall(r"(?i)\b(?:from|join)\s+\[?(\w+)", sql))
            found += [f"{name}: view {view} again" for view in sorted(read & set(views))]
            calls = call_ids(sql)
            found += [
                f"{name}: the calls of view {view}" for view, listed in view_calls.items() if calls and calls == listed
            ]
        return found
    finally:
        conn.close()


def test_no_canned_query_duplicates_a_view(ui_database: tuple[Path, UIExpectations]) -> None:
    """Each question has one answer: a view when it is a plain relation (sqlite3 users
    have it too), a canned query only when it takes parameters or is not in the schema."""
    described = meta.metadata_for([DB])["databases"][DB]
    assert twins(ui_database[0], described["queries"], described["tables"]) == []


def test_the_twin_check_finds_twins(ui_database: tuple[Path, UIExpectations]) -> None:
    """The canned queries that used to shadow the schema's views are each found."""
    described = meta.metadata_for([DB])["databases"][DB]
    old: dict[str, dict[str, str]] = {
        "slowest_calls": {"sql": "select count(*) as calls from calls"},
        "cost_by_day_and_model": {
            "title": "Cost by day and model",
            "sql": "select day, model, calls, cost_usd from cost_by_day_model limit 1000",
        },
        "blocked_and_modified_calls": {
            "sql": "select c.call_id, c.verdict from calls c where c.verdict in ('modified', 'blocked')"
            " order by c.started_at desc limit 1000"
        },
        "slowest_100_calls": {
            "sql": "select call_id, duration_ms from calls where duration_ms is not null"
            " order by duration_ms desc limit 100"
        },
    }
    with sqlite3.connect(f"file:{ui_database[0]}?mode=ro", uri=True) as conn:
        (view_sql,) = conn.execute("select sql from sqlite_master where name = 'cost_by_day_model'").fetchone()
    copied = re.split(r"(?i) as ", view_sql, maxsplit=1)[1].upper().replace("\n", "\n   ") + "\nLIMIT 10;"
    old["copy"] = {"sql": copied}
    found = twins(ui_database[0], old, described["tables"])
    assert found == [
        "slowest_calls: also a view",
        "cost_by_day_and_model: the title of cost_by_day_model",
        "cost_by_day_and_model: view cost_by_day_model again",
        "blocked_and_modified_calls: the calls of view modified_calls",
        "slowest_100_calls: the calls of view slowest_calls",
        "copy: the SQL of view cost_by_day_model",
    ]
