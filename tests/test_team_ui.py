"""The UI of a shared host: `just ui --team USERS` signs people in before showing anything;
the calls list shows and filters the team tags.

`--team` is tested as `just ui` runs it (a real Datasette process on a loopback port):
without a session every data page, JSON endpoint and Interlock page is refused; after
signing in at `/-/login` (datasette-auth-passwords) they are served. The open UI (no
`--team`) still needs no sign-in and has no "Log in" menu.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from datasette.app import Datasette
from datasette_auth_passwords.utils import hash_password
from harness import REPO
from test_recorder import make_record
from ui_fixtures import write_records

from datasette_plugins.ui import serve

PASSWORD = "team-ui-PASSWORD-5b1e"
START_TIMEOUT_S = 30
CALL = "team-call-1"
PROTECTED = (
    "/",
    "/interlock",
    "/interlock/calls",
    "/interlock/calls.json",
    "/interlock.json?sql=select+call_id+from+calls",
    "/interlock/stages.json",
    f"/-/interlock/interlock/calls/{CALL}",
    f"/-/interlock/interlock/calls/{CALL}/request_original.json",
    "/-/interlock/interlock/sessions/s1",
    "/-/interlock/interlock/backtests",
    "/-/interlock/interlock/budgets",
    "/-/interlock/interlock/alerts",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def team_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("team-ui") / "interlock.db"
    records = [
        make_record(CALL, user="alice", project="apollo"),
        make_record("team-call-2", user="bob", project="apollo"),
        make_record("team-call-3", user="alice", project="zephyr"),
    ]
    asyncio.run(write_records(db, records))
    return db


def start_ui(args: list[str], workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = workdir / f"datasette-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "datasette_plugins.ui.serve", *args, "--port", str(port)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"datasette did not start: {log.read_text()}") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def team_ui(team_db: Path) -> Iterator[str]:
    users = team_db.parent / "ui-users"
    users.write_text(f"# the team\nalice:{hash_password(PASSWORD)}\n")
    process, url = start_ui(["--team", str(users), str(team_db)], team_db.parent)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def sign_in(client: httpx2.Client, user: str, password: str) -> httpx2.Response:
    form = client.get("/-/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', form.text)
    assert token is not None, form.text
    return client.post("/-/login", data={"username": user, "password": password, "csrftoken": token.group(1)})


def test_nothing_is_shown_without_a_session(team_ui: str) -> None:
    with httpx2.Client(base_url=team_ui, trust_env=False) as client:
        for path in PROTECTED:
            assert client.get(path).status_code == 403, path
        assert client.get("/-/login").status_code == 200  # where one signs in
        assert sign_in(client, "alice", "wrong").status_code == 200  # the form again, with its error
        assert client.get("/interlock/calls.json").status_code == 403
        assert PASSWORD not in client.get("/-/metadata.json").text


def test_a_signed_in_user_sees_everything(team_ui: str) -> None:
    with httpx2.Client(base_url=team_ui, trust_env=False) as client:
        assert sign_in(client, "alice", PASSWORD).status_code == 302
        assert "ds_actor" in client.cookies
        for path in PROTECTED:
            assert client.get(path).status_code == 200, path
        assert {row["call_id"] for row in client.get("/interlock/calls.json?_shape=array").json()} == {
            CALL, "team-call-2", "team-call-3"
        }  # fmt: skip


def test_the_open_ui_needs_no_sign_in(team_db: Path) -> None:
    process, url = start_ui([str(team_db)], team_db.parent)
    try:
        with httpx2.Client(base_url=url, trust_env=False) as client:
            for path in PROTECTED:
                assert client.get(path).status_code == 200, path
            assert "/-/login" not in client.get("/interlock/calls").text
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_team_accounts_file_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "users"
    bad.write_text("alice:plain-text-password\n")
    with pytest.raises(SystemExit, match="line 1: expected name:hash"):
        serve.team_metadata(str(bad))
    bad.write_text("# nobody\n")
    with pytest.raises(SystemExit, match="has no account"):
        serve.team_metadata(str(bad))
    with pytest.raises(SystemExit, match="cannot read the accounts file"):
        serve.team_metadata(str(tmp_path / "missing"))
    with pytest.raises(SystemExit, match="needs the accounts file"):
        serve.team_option(["--team"])
    with pytest.raises(SystemExit, match="drop --metadata"):
        serve.team_option(["--team", "u", "--metadata", "m.json"])
    assert serve.team_option(["--team=u", "x.db", "--host", "0.0.0.0"]) == ("u", ["x.db", "--host", "0.0.0.0"])
    assert serve.split_argv(["x.db", "--host", "0.0.0.0"], team=True) == ("x.db", ["--host", "0.0.0.0"])
    with pytest.raises(SystemExit, match="--team USERS"):
        serve.split_argv(["x.db", "--host", "0.0.0.0"])


# --- tags in the calls list ---------------------------------------------------------------


async def test_calls_list_shows_and_filters_the_tags(team_db: Path, tmp_path: Path) -> None:
    ds = Datasette([str(team_db)], **serve.datasette_kwargs())
    await ds.invoke_startup()
    page = await ds.client.get("/interlock/calls")
    assert page.status_code == 200
    header = re.findall(r'<th [^>]*data-column="([a-z_]+)"', page.text)
    assert header.index("session_id") < header.index("user") < header.index("project") < header.index("prompt_text")
    facets = re.search(r'<a class="il-tag-facets" href="([^"]+)"', page.text)
    assert facets is not None
    faceted = await ds.client.get(facets.group(1).replace("&amp;", "&"))
    assert 'id="facet-user"' in faceted.text and 'id="facet-project"' in faceted.text
    assert re.search(r'<a href="[^"]*user=alice[^"]*">alice</a> 2', faceted.text)
    filtered = await ds.client.get("/interlock/calls.json?_shape=array&user=alice&project=apollo")
    assert [row["call_id"] for row in filtered.json()] == [CALL]
    call = await ds.client.get(f"/-/interlock/interlock/calls/{CALL}")
    assert '<dt>User</dt><dd><a href="/interlock/calls?user=alice">alice</a>' in call.text
    assert '<dt>Project</dt><dd><a href="/interlock/calls?project=apollo">apollo</a>' in call.text

    untagged = tmp_path / "solo.db"
    await write_records(untagged, [make_record("solo-call")])
    solo = Datasette([str(untagged)], **serve.datasette_kwargs())
    await solo.invoke_startup()
    plain = await solo.client.get("/solo/calls")
    assert 'data-column="user"' not in plain.text and "il-tag-facets" not in plain.text  # nothing empty for one person
