"""Datasette UI page times on a generated 100k-call recorder database.

Generates the database once (migrated with the recorder's schema, then rows inserted in
bulk: agent sessions of both dialects with growing histories, streamed responses with
their SSE bytes, modified and blocked calls with policy events and judge decisions),
then times the calls list, diff pages and a session page through Datasette's in-process
client: median of several requests after a warm-up. Target: < 150 ms each.

    uv run python benchmarks/bench_ui.py [--calls 100000] [--db PATH] [--fresh] [--repeat 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datasette.app import Datasette
from datasette.utils import tilde_encode
from sqlite_utils import Database

from datasette_plugins.ui.serve import datasette_kwargs
from recorder.models import SAME_AS
from recorder.rows import CALL_COLUMNS, EVENT_COLUMNS, JUDGE_COLUMNS, STAGE_COLUMNS
from recorder.schema import migrate

log = logging.getLogger("bench_ui")

TARGET_MS = 150.0
# The columns the generator fills, in its order; the others (tags, arrivals) stay NULL, as
# in a database recorded before they existed. Named, so a new column cannot shift them.
GENERATED_CALL_COLUMNS = tuple(column for column in CALL_COLUMNS if column not in ("user", "project"))
GENERATED_STAGE_COLUMNS = tuple(column for column in STAGE_COLUMNS if column != "arrivals_json")
END = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
SPAN_S = 60 * 86_400  # calls spread over 60 days
BATCH = 2_000
LONG_CALL_MESSAGES = 400  # a Claude Code-sized session: histories grow to about 1 MB
LONG_SESSION_CALLS = 40
WORDS = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "that",
    "is",
    "for",
    "it",
    "with",
    "as",
    "on",
    "be",
    "this",
    "by",
    "are",
    "from",
    "at",
    "or",
    "an",
    "not",
    "file",
    "line",
    "function",
    "test",
    "error",
    "value",
    "return",
    "import",
    "class",
    "def",
    "self",
    "data",
    "user",
    "model",
    "request",
    "response",
    "tool",
    "call",
    "result",
    "path",
    "config",
    "string",
    "list",
    "dict",
    "update",
    "check",
    "build",
    "run",
    "query",
    "table",
    "index",
    "session",
    "token",
    "cost",
    "policy",
    "judge",
    "stream",
    "event",
    "message",
    "content",
    "block",
    "text",
    "thinking",
    "diff",
]
RARE_WORD, RARE_RATE = "kubernetes", 0.02  # in the first prompt of 2% of sessions: a search that finds a few
TOOLS = ["Bash", "Read", "Edit", "Grep", "Glob", "Write", "WebFetch", "TodoWrite"]
ANTHROPIC_MODELS = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"]
OPENAI_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini"]
PRICES = {"claude-sonnet-4-5": 3e-6, "claude-haiku-4-5": 1e-6, "claude-opus-4-1": 15e-6, "gpt-4o-mini": 0.15e-6,
          "gpt-4o": 2.5e-6, "gpt-4.1-mini": 0.4e-6}  # fmt: skip


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Rows:
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    stages: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    judges: list[tuple[Any, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.calls)


class Generator:
    """Deterministic agent sessions, as the recorder would have written them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.system = self.text(140)
        self.tool_defs = [
            {"name": name, "description": self.text(40), "input_schema": {"type": "object", "properties": {
                "path": {"type": "string"}, "command": {"type": "string"}}}}
            for name in TOOLS
        ]  # fmt: skip

    def text(self, words: int) -> str:
        return " ".join(self.rng.choices(WORDS, k=words))

    def session(self, start: float, calls: int, anthropic: bool, rows: Rows) -> None:
        model = self.rng.choice(ANTHROPIC_MODELS if anthropic else OPENAI_MODELS)
        session_id = (
            f"cc-{uuid.UUID(int=self.rng.getrandbits(128))}" if anthropic else f"fp-{self.rng.getrandbits(64):016x}"
        )
        prompt = self.text(self.rng.randint(10, 60))
        if self.rng.random() < RARE_RATE:
            prompt += " " + RARE_WORD
        history: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        if not anthropic:
            history.insert(0, {"role": "system", "content": self.system})
        at = start
        for turn in range(calls):
            last = turn == calls - 1
            tool = None if last else self.rng.choice(TOOLS)
            tool_id = f"toolu_{self.rng.getrandbits(64):016x}" if anthropic else f"call_{self.rng.getrandbits(64):016x}"
            args = {"path": f"src/{self.rng.choice(WORDS)}.py", "command": self.text(self.rng.randint(3, 12))}
            reply = self.text(self.rng.randint(8, 60))
            verdict = self.rng.choices(["pass", "modified", "blocked", "error"], [88, 6, 3, 3])[0]
            if verdict == "blocked" and tool is None:  # only tool calls get blocked
                verdict = "pass"
            call_id = f"{int(at * 1000):012x}{self.rng.getrandbits(80):020x}"
            self.call(rows, call_id, at, session_id, model, anthropic, history, reply, tool, tool_id, args, verdict)
            if anthropic:
                content: list[dict[str, Any]] = [{"type": "text", "text": reply}]
                if tool:
                    content.append({"type": "tool_use", "id": tool_id, "name": tool, "input": args})
                history.append({"role": "assistant", "content": content})
                if tool:
                    result = {
                        "type": "tool_result",
                        "tool_use_id": tool_id,
                        "content": self.text(self.rng.randint(20, 80)),
                    }
                    history.append({"role": "user", "content": [result]})
            else:
                message: dict[str, Any] = {"role": "assistant", "content": reply}
                if tool:
                    message["tool_calls"] = [
                        {"id": tool_id, "type": "function", "function": {"name": tool, "arguments": dumps(args)}}
                    ]
                history.append(message)
                if tool:
                    history.append(
                        {"role": "tool", "tool_call_id": tool_id, "content": self.text(self.rng.randint(20, 80))}
                    )
            at += self.rng.uniform(2, 40)

    def long_session(self, rows: Rows, at: float) -> None:
        """A Claude Code-sized session: LONG_SESSION_CALLS calls whose histories grow to
        LONG_CALL_MESSAGES messages (about 1 MB); its last call is modified."""
        history: list[dict[str, Any]] = [{"role": "user", "content": self.text(80)}]
        step = LONG_CALL_MESSAGES // LONG_SESSION_CALLS
        for n in range(LONG_SESSION_CALLS):
            while len(history) < (n + 1) * step:
                tool_id = f"toolu_{self.rng.getrandbits(64):016x}"
                use = {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": self.rng.choice(TOOLS),
                    "input": {"command": self.text(20)},
                }
                history.append({"role": "assistant", "content": [{"type": "text", "text": self.text(30)}, use]})
                result = {
                    "type": "tool_result",
                    "tool_use_id": tool_id,
                    "content": self.text(self.rng.randint(200, 500)),
                }
                history.append({"role": "user", "content": [result]})
            verdict = "modified" if n == LONG_SESSION_CALLS - 1 else "pass"
            call_id = f"{int(at * 1000):012x}{n:0>20}"
            args = {"command": self.text(10)}
            tool_id = f"toolu_{self.rng.getrandbits(64):016x}"
            self.call(
                rows,
                call_id,
                at,
                "cc-long",
                "claude-sonnet-4-5",
                True,
                list(history),
                self.text(40),
                "Bash",
                tool_id,
                args,
                verdict,
            )
            at += 30

    def call(
        self, rows: Rows, call_id: str, at: float, session_id: str, model: str, anthropic: bool,
        history: list[dict[str, Any]], reply: str, tool: str | None, tool_id: str, args: dict[str, Any], verdict: str,
    ) -> None:  # fmt: skip
        stream = self.rng.random() < 0.6
        if anthropic:
            request: dict[str, Any] = {"model": model, "max_tokens": 8192, "stream": stream, "system": self.system,
                                       "tools": self.tool_defs, "metadata": {"user_id": session_id}, "messages": history}  # fmt: skip
        else:
            tools = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                      "parameters": t["input_schema"]}} for t in self.tool_defs]  # fmt: skip
            request = {"model": model, "stream": stream, "tools": tools, "messages": history}
        original = dumps(request)
        final = original
        if verdict == "modified":
            request = {
                **request,
                "messages": [*history[:-1], {**history[-1], "content": "[REDACTED] " + self.text(10)}],
            }
            final = dumps(request)
        response = self.response(anthropic, model, reply, tool, tool_id, args)
        response_final = response
        if verdict == "blocked" and tool:
            response_final = self.response(
                anthropic, model, reply + f"\n\nInterlock blocked a call to {tool}.", None, "", {}
            )
            details = dumps({"tool_call_id": tool_id, "tool_name": tool})
            rows.events.append((call_id, "tool-judge", "blocked", "Destructive command", details, iso(at + 1)))
            rows.judges.append(self.judge(call_id, tool_id, tool, args, "blocked", at))
        elif verdict == "modified":
            rows.events.append((call_id, "redact-pii", "redacted", "PII in the prompt", "{}", iso(at)))
        elif tool and self.rng.random() < 0.2:
            rows.judges.append(self.judge(call_id, tool_id, tool, args, "allowed", at))
        input_tokens = len(original) // 4
        output_tokens = len(reply) // 4 + 20
        price = PRICES.get(model)
        cost = None if price is None else (input_tokens + 4 * output_tokens) * price
        duration = self.rng.lognormvariate(7.3, 0.6)
        headers = dumps({"content-type": "application/json", "x-api-key": "[REDACTED]"})
        prompt = history[-1]["content"] if isinstance(history[-1]["content"], str) else None
        rows.calls.append((
            call_id, iso(at), iso(at + duration / 1000), duration * 0.2, duration * 0.3 if stream else None, duration,
            "anthropic" if anthropic else "openai", "anthropic-messages" if anthropic else "openai-chat",
            "api.anthropic.com" if anthropic else "api.openai.com", "/v1/messages" if anthropic else "/v1/chat/completions",
            "claude-cli/2.0.14" if anthropic else "openai-python/2.3.0", session_id, model, model, model, int(stream),
            200, None, verdict if verdict != "error" else "error", input_tokens, output_tokens, 0, 0, cost,
            model if price else None, prompt, prompt, reply,  # prompt_text (typed words), user_text (all of it)
        ))  # fmt: skip
        kept: dict[str, tuple[str, bytes | None]] = {}
        for stage, body in (("request_original", original), ("request_final", final),
                            ("response_original", response), ("response_final", response_final)):  # fmt: skip
            raw = self.sse(body, anthropic) if stream and stage.startswith("response") else None
            size = len(raw) if raw is not None else len(body.encode())
            same_as = SAME_AS.get(stage)
            if same_as is not None and kept[same_as] == (body, raw):  # stored once, as the recorder does
                rows.stages.append((call_id, stage, headers, None, None, None, size, same_as))
            else:
                kept[stage] = (body, raw)
                rows.stages.append((call_id, stage, headers, body, raw, None, size, None))

    def response(
        self, anthropic: bool, model: str, reply: str, tool: str | None, tool_id: str, args: dict[str, Any]
    ) -> str:
        usage_in, usage_out = self.rng.randint(500, 9000), self.rng.randint(20, 400)
        if anthropic:
            content: list[dict[str, Any]] = [{"type": "text", "text": reply}]
            if tool:
                content.append({"type": "tool_use", "id": tool_id, "name": tool, "input": args})
            return dumps({"id": f"msg_{self.rng.getrandbits(64):016x}", "type": "message", "role": "assistant", "model": model,
                          "content": content, "stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None,
                          "usage": {"input_tokens": usage_in, "output_tokens": usage_out}})  # fmt: skip
        message: dict[str, Any] = {"role": "assistant", "content": reply, "refusal": None}
        if tool:
            message["tool_calls"] = [
                {"id": tool_id, "type": "function", "function": {"name": tool, "arguments": dumps(args)}}
            ]
        return dumps({"id": f"chatcmpl-{self.rng.getrandbits(64):016x}", "object": "chat.completion", "model": model,
                      "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}],
                      "usage": {"prompt_tokens": usage_in, "completion_tokens": usage_out}})  # fmt: skip

    def sse(self, body: str, anthropic: bool) -> bytes:
        """SSE bytes about the size of a real stream of `body` (a delta per few words)."""
        parsed = json.loads(body)
        text = parsed["content"][0]["text"] if anthropic else parsed["choices"][0]["message"]["content"]
        pieces = [text[i : i + 24] for i in range(0, len(text), 24)]
        if anthropic:
            events = [
                f"event: message_start\ndata: {dumps({'type': 'message_start', 'message': {**parsed, 'content': []}})}\n\n"
            ]
            events += [f"event: content_block_delta\ndata: {dumps({'type': 'content_block_delta', 'index': 0, 'delta': {'type': 'text_delta', 'text': p}})}\n\n" for p in pieces]  # fmt: skip
            events.append('event: message_stop\ndata: {"type":"message_stop"}\n\n')
        else:
            events = [f"data: {dumps({'id': parsed['id'], 'object': 'chat.completion.chunk', 'choices': [{'index': 0, 'delta': {'content': p}}]})}\n\n" for p in pieces]  # fmt: skip
            events.append("data: [DONE]\n\n")
        return "".join(events).encode()

    def judge(
        self, call_id: str, tool_id: str, tool: str, args: dict[str, Any], decision: str, at: float
    ) -> tuple[Any, ...]:
        probability = self.rng.uniform(0.8, 1.0) if decision == "blocked" else self.rng.uniform(0, 0.3)
        prompt = dumps([{"role": "system", "content": self.text(60)}, {"role": "user", "content": dumps(args)}])
        return (call_id, tool_id, tool, dumps(args), "gpt-4o-mini", prompt, dumps({"probability": probability}),
                probability, self.text(12), decision, self.rng.uniform(150, 900), 300, 30, 0.0001, None, iso(at + 1))  # fmt: skip


def sessions(total: int, rng: random.Random) -> Iterator[tuple[float, int, bool]]:
    """(start time, calls, anthropic?) per session until `total` calls."""
    made = 0
    while made < total:
        calls = min(rng.randint(1, 40), total - made)
        yield END - SPAN_S + rng.uniform(0, SPAN_S - 3600), calls, rng.random() < 0.6
        made += calls


def insert(db: Database, rows: Rows) -> None:
    def sql(table: str, columns: tuple[str, ...]) -> str:
        return f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"

    with db.conn:
        db.conn.executemany(sql("calls", GENERATED_CALL_COLUMNS), rows.calls)
        db.conn.executemany(sql("stage_rows", GENERATED_STAGE_COLUMNS), rows.stages)
        db.conn.executemany(sql("policy_events", EVENT_COLUMNS), rows.events)
        db.conn.executemany(sql("judge_decisions", JUDGE_COLUMNS), rows.judges)


def build(path: Path, calls: int, seed: int = 7) -> None:
    """Create the database at `path` with `calls` calls."""
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    migrate(str(path))
    db = Database(path)
    db.execute("pragma synchronous = off")
    generator = Generator(seed)
    rows = Rows()
    written = 0
    started = time.perf_counter()
    for start, count, anthropic in sessions(calls, random.Random(seed)):
        generator.session(start, count, anthropic, rows)
        if len(rows) >= BATCH:
            insert(db, rows)
            written += len(rows)
            rows = Rows()
    generator.long_session(rows, END - 3 * 3600)
    insert(db, rows)
    written += len(rows)
    db.execute("analyze")
    db.conn.close()
    size = path.stat().st_size
    log.info("generated %s calls in %.1f s: %.2f GB", f"{written:,}", time.perf_counter() - started, size / 1e9)


@dataclass(frozen=True)
class Subjects:
    """What to request: ids picked from the generated data by what they show."""

    diff_modified: str
    diff_blocked: str
    diff_long: str
    session: str
    session_calls: int


def pick(path: Path) -> Subjects:
    db = Database(path)
    modified = db.execute(
        "select c.call_id from calls c join stages s on s.call_id = c.call_id and s.stage = 'request_original' "
        "where c.verdict = 'modified' and c.session_id != 'cc-long' order by s.size_bytes desc limit 1"
    ).fetchone()[0]
    blocked = db.execute(
        "select c.call_id from calls c join stages s on s.call_id = c.call_id and s.stage = 'response_original' "
        "where c.verdict = 'blocked' and c.stream = 1 and s.raw is not null order by c.started_at desc limit 1"
    ).fetchone()[0]
    long = db.execute("select call_id from calls where session_id = 'cc-long' order by started_at desc").fetchone()[0]
    session, count = db.execute(
        "select session_id, count(*) as n from calls where session_id != 'cc-long' "
        "group by session_id order by n desc, session_id limit 1"
    ).fetchone()
    db.conn.close()
    return Subjects(modified, blocked, long, session, count)


async def time_pages(path: Path, repeat: int) -> list[tuple[str, float, float, float]]:
    """(page, median ms, min ms, max ms) per page."""
    subjects = pick(path)
    name = path.stem
    ds = Datasette([str(path)], **datasette_kwargs())
    pages = {
        "calls list (sorted, 3 facets)": f"/{name}/calls",
        "calls list, verdict=blocked": f"/{name}/calls?verdict=blocked",
        f"calls list, search {RARE_WORD!r}": f"/{name}/calls?_search={RARE_WORD}",
        "calls list, search a word in most calls": f"/{name}/calls?_search=session",
        "diff page, modified call": f"/-/interlock/{name}/calls/{subjects.diff_modified}",
        "diff page, blocked streamed call": f"/-/interlock/{name}/calls/{subjects.diff_blocked}",
        f"diff page, modified, {LONG_CALL_MESSAGES} messages (1 MB)": f"/-/interlock/{name}/calls/{subjects.diff_long}",
        f"session page ({subjects.session_calls} calls)": f"/-/interlock/{name}/sessions/{tilde_encode(subjects.session)}",
        f"session page ({LONG_SESSION_CALLS} calls, up to 1 MB each)": f"/-/interlock/{name}/sessions/cc-long",
        "index page (cost chart)": "/",
        "sessions (canned query)": f"/{name}/sessions",
    }
    results = []
    for label, url in pages.items():
        for _ in range(2):  # warm-up: startup, caches
            response = await ds.client.get(url)
            assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:500]}"
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = await ds.client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        results.append((label, statistics.median(times), min(times), max(times)))
    return results


def report(calls: int = 100_000, repeat: int = 15) -> list[str]:
    """The Datasette section of docs/BENCHMARKS.md (the database generated once, kept in the temp directory)."""
    path = Path(tempfile.gettempdir()) / f"interlock-bench-ui-{calls}.db"
    if not path.exists():
        build(path, calls)
    lines = [
        "## Datasette",
        "",
        (
            f"Page times on a generated {calls // 1000}k-call database through Datasette's in-process client, median "
            f"of {repeat} after a warm-up (min-max); target < {TARGET_MS:.0f} ms:"
        ),
        "",
        "| page | median ms | min-max | |",
        "|---|---|---|---|",
    ]
    for label, median, low, high in asyncio.run(time_pages(path, repeat)):
        lines.append(f"| {label} | {median:.1f} | {low:.1f}-{high:.1f} | {'ok' if median < TARGET_MS else 'SLOW'} |")
    return lines


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None, help="database to use (generated if missing)")
    parser.add_argument("--fresh", action="store_true", help="regenerate the database")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    path = args.db or Path(tempfile.gettempdir()) / f"interlock-bench-ui-{args.calls}.db"
    if args.fresh or not path.exists():
        build(path, args.calls)
    else:
        log.info("reusing %s (--fresh to regenerate)", path)
    for label, median, low, high in asyncio.run(time_pages(path, args.repeat)):
        verdict = "ok" if median < TARGET_MS else "SLOW"
        log.info("%-45s median %7.1f ms  (min %6.1f, max %6.1f)  %s", label, median, low, high, verdict)
    log.info("target: < %.0f ms per page, median of %d requests through Datasette's client", TARGET_MS, args.repeat)


if __name__ == "__main__":
    main()
