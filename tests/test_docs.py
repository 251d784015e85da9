"""The README documents the database schema and the Quick start that CI runs."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from recorder.schema import migrate

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def schema_section() -> str:
    return README.split("## Database schema", 1)[1].split("\n## ", 1)[0]


def test_every_table_view_and_column_is_documented(tmp_path: Path) -> None:
    path = tmp_path / "schema.db"
    migrate(str(path))
    section = schema_section()
    conn = sqlite3.connect(path)
    try:
        objects = conn.execute(
            "select name, type from sqlite_master where type in ('table', 'view')"
            " and name not like '\\_%' escape '\\' and name not like 'calls_fts%' and name != 'sqlite_sequence'"
        ).fetchall()
        missing = []
        for name, _kind in objects:
            if f"`{name}`" not in section:
                missing.append(name)
            if name in ("blocked_calls", "modified_calls"):
                continue  # views over calls: their columns are the calls columns
            for column in conn.execute(f"pragma table_info({name})"):
                if f"`{column[1]}`" not in section:
                    missing.append(f"{name}.{column[1]}")
    finally:
        conn.close()
    assert missing == []


def test_ci_runs_the_quick_start_test_command() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(pip install .*?)\s+#", quick_start, flags=re.MULTILINE)
    assert len(commands) == 2
    test_command = next(c for c in commands if c.endswith("just test"))
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci
