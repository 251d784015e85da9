"""One non-streamed call's path through Interlock, in process: its CPU per call, hook by hook.

`uv run python -m benchmarks.bench_call_path [--calls 3000] [--runs 5]` (`just bench call_path`):
the real `openai` SDK builds a chat completion request (caught by httpx's `MockTransport`,
never sent), the loopback mock's tool-call answer (`wire_scenarios.openai_chat_json`) is its
response, and the bundle's addons (`addons/bundle.py`, fresh for each configuration) get
`requestheaders`, `request`, `responseheaders` and `response` in the bundle's order, as
mitmproxy calls them; the `response` hooks build, scrub and announce the record. The
records then go to a `RecorderWriter` on a fresh SQLite file at 300 a second (about the
20-client rate through the proxy, so its batches are the size they are there): the
writer's CPU per record (rows, pricing, SQLite with its indexes and full-text triggers),
beyond the pacing loop's own.

Process CPU time, the median of `--runs`: the like-for-like figure for a change to the
per-call path (the side-by-side calls/s of `just bench` move by more between runs than
most such changes do). mitmproxy's own work per flow is not in it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import httpx2
import yaml
from mitmproxy import http
from mitmproxy.test import taddons, tflow
from openai import AsyncOpenAI
from wire_scenarios import SCENARIOS, openai_chat_json

from benchmarks.workload import API_KEY, MESSAGES, RULES
from recorder.models import CallRecord
from recorder.writer import RecorderWriter

HOOKS = ("requestheaders", "request", "responseheaders", "response")
MODEL = "gpt-4o-mini"
WRITER_RATE = 300  # records a second
CONFIGURATIONS: dict[str, list[dict[str, Any]]] = {"no policies": [], "rule policies": RULES}


SdkRequest = tuple[str, list[tuple[bytes, bytes]], bytes]


async def sdk_request() -> SdkRequest:
    """The URL, headers and body the `openai` SDK sends for the benchmark's call."""
    caught: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        caught.append(request)
        return httpx2.Response(200, json=openai_chat_json(SCENARIOS["tool"], MODEL))

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as http_client:
        client = AsyncOpenAI(api_key=API_KEY, base_url="https://api.openai.com/v1", http_client=http_client)
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    request = caught[0]
    return str(request.url), [(k.encode(), v.encode()) for k, v in request.headers.multi_items()], request.content


class CallPath:
    """A fresh bundle under `taddons`, fed one call's hooks at a time; made on the running
    event loop, and `close()`d on it (its log handler would outlive the loop)."""

    def __init__(self, root: Path, policies: list[dict[str, Any]], request: SdkRequest) -> None:
        self.bundle = importlib.reload(importlib.import_module("addons.bundle"))
        config = root / "config.yaml"
        config.write_text(yaml.safe_dump({"policies": policies}))
        self.records: list[CallRecord] = []
        self.context = taddons.context(*self.bundle.addons, self)
        tctx = self.context.__enter__()
        tctx.configure(self.bundle.config, interlock_config=str(config), interlock_db=str(root / "unused.db"))
        self.bundle.recording.writer = None  # the records are collected here and written apart
        self.url, self.headers, self.body = request
        self.answer = json.dumps(openai_chat_json(SCENARIOS["tool"], MODEL)).encode()

    async def close(self) -> None:
        await self.context.master.done()
        self.context.__exit__(None, None, None)

    def interlock_call_ended(self, flow: http.HTTPFlow, record: CallRecord) -> None:
        self.records.append(record)

    def flow(self) -> http.HTTPFlow:
        request = http.Request.make("POST", self.url, self.body, self.headers)
        flow = tflow.tflow(req=request)
        flow.response = None
        return flow

    async def call(self, flow: http.HTTPFlow, spent: dict[str, float]) -> None:
        for hook in HOOKS:
            if hook == "responseheaders":
                headers = {"content-type": "application/json", "content-length": str(len(self.answer))}
                flow.response = http.Response.make(200, self.answer, headers)
            started = time.process_time()
            for addon in self.bundle.addons:
                handler = getattr(addon, hook, None)
                if handler is not None and (result := handler(flow)) is not None:
                    await result
            spent[hook] += time.process_time() - started


async def hook_cpu_us(path: CallPath, calls: int) -> dict[str, float]:
    """Microseconds of CPU per call in each hook over `calls` calls (after a warm-up)."""
    spent = dict.fromkeys(HOOKS, 0.0)
    for flow in [path.flow() for _ in range(200)]:
        await path.call(flow, spent)
    spent = dict.fromkeys(HOOKS, 0.0)
    for flow in [path.flow() for _ in range(calls)]:
        await path.call(flow, spent)
    return {hook: value * 1e6 / calls for hook, value in spent.items()}


async def _paced(submit: Any, records: list[CallRecord]) -> None:
    started = time.perf_counter()
    for number, record in enumerate(records):
        submit(record)
        await asyncio.sleep(max(0.0, started + (number + 1) / WRITER_RATE - time.perf_counter()))


async def writer_cpu_us(db: Path, records: list[CallRecord]) -> float:
    """Microseconds of CPU per record the writer adds, records arriving at WRITER_RATE."""
    fresh = [record.model_copy(update={"call_id": f"{record.call_id}-{db.stem}"}) for record in records]
    writer = RecorderWriter(str(db))
    await writer.start()
    before = time.process_time()
    await _paced(writer.submit, fresh)
    await writer.stop()
    with_writer = time.process_time() - before
    before = time.process_time()
    await _paced(lambda record: None, fresh)
    pacing = time.process_time() - before
    assert writer.stats.written == len(records), writer.stats
    return (with_writer - pacing) * 1e6 / len(records)


async def _configuration(
    root: Path, policies: list[dict[str, Any]], calls: int, runs: int, written: int
) -> dict[str, list[float]]:
    path = CallPath(root, policies, await sdk_request())
    try:
        measured = [await hook_cpu_us(path, calls) for _ in range(runs)]
        records = path.records[-written:]
        writer = [await writer_cpu_us(root / f"calls{run}.db", records) for run in range(3)]
    finally:
        await path.close()
    return {hook: [run[hook] for run in measured] for hook in HOOKS} | {"writer": writer}


def measure(calls: int = 3000, runs: int = 5, written: int = 1500) -> dict[str, dict[str, list[float]]]:
    """Per configuration: each hook's microseconds of CPU per call, one value per run,
    and the writer's per record (under "writer", three runs of the last `written` records)."""
    figures: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, policies in CONFIGURATIONS.items():
            root = Path(tmp) / name.replace(" ", "-")
            root.mkdir()
            figures[name] = asyncio.run(_configuration(root, policies, calls, runs, written))
    return figures


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def report(figures: dict[str, dict[str, list[float]]]) -> list[str]:
    names = list(figures)
    lines = [
        "### Interlock's CPU per call, hook by hook",
        "",
        (
            "One non-streamed call's hooks in process (`just bench call_path`: the `openai` SDK's request, the "
            "mock's tool-call answer, the bundle's addons in its order; microseconds of CPU per call, median of the "
            "runs (min-max)); the writer's per record at 300 records a second, beyond its pacing loop. All of the "
            "hooks' time is on the event loop; the writer's is in its threads (the rows' Python holds the "
            "interpreter, SQLite's C does not)."
        ),
        "",
        "| | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for hook in (*HOOKS, "writer"):
        label = "writer, per record" if hook == "writer" else f"`{hook}`"
        lines.append(f"| {label} | " + " | ".join(_cell(figures[name][hook]) for name in names) + " |")
    totals = [sum(statistics.median(figures[name][hook]) for hook in HOOKS) for name in names]
    lines.append("| hooks in all | " + " | ".join(f"{total:.0f}" for total in totals) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("\n".join(report(measure(args.calls, args.runs))))


if __name__ == "__main__":
    main()
