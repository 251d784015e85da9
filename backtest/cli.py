"""`just backtest --config other.yaml [--db DB] [--since DATE | --session ID | --where SQL]
[--max-judge-calls N] [--yes]`: what a policy chain would have done to recorded calls.

The config is loaded and validated as the proxy loads its own (`addons.live_config`):
a bad one exits with status 2 and a message naming the key. No provider is called; a
judge policy does call its judge, so the number of tool calls it would judge and an
estimate of their cost are printed first, and the run waits for a yes unless `--yes`.
`--max-judge-calls N` bounds the judge calls: calls are run in the order they started,
and once the next call's recorded tool calls would take the judge past N, that call and
every later one with tool calls are not run (their results say so); calls without tool
calls still run. The run and its results go into the database (docs/backtest.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from addons import live_config
from backtest import estimate, recorded, replay, store
from interlock.config import ConfigError
from interlock.policy.chain import PolicyChain, failure_reason

DB_ENV = "INTERLOCK_DB"
DEFAULT_DB = "interlock.db"
BATCH_SIZE = 100

logger = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="just backtest", description="Re-run a policy chain over recorded calls, with no upstream call."
    )
    parse.add_argument("--config", required=True, help="the config file whose policy chain to run")
    parse.add_argument("--db", help=f"the recorder database (default: ${DB_ENV}, else {DEFAULT_DB})")
    which = parse.add_mutually_exclusive_group()
    which.add_argument("--since", metavar="DATE", help="calls started at or after DATE (ISO, e.g. 2026-01-31)")
    which.add_argument("--session", metavar="ID", help="the calls of one session")
    which.add_argument("--where", metavar="SQL", help="calls a SQL condition over `calls c` selects")
    parse.add_argument("--max-judge-calls", type=int, metavar="N", help="make at most N judge calls")
    parse.add_argument("--yes", action="store_true", help="do not ask before making judge calls")
    return parse


def chosen_filter(args: argparse.Namespace) -> recorded.Filter:
    if args.since is not None:
        return recorded.Filter.since(args.since)
    if args.session is not None:
        return recorded.Filter.session(args.session)
    if args.where is not None:
        return recorded.Filter.sql(args.where)
    return recorded.Filter()


async def run_calls(
    conn: sqlite3.Connection,
    chain: PolicyChain,
    call_ids: Sequence[str],
    writer: store.RunWriter,
    max_judge_calls: int | None,
) -> None:
    """Every call through the chain in order, the judge bound honoured; results written in batches."""
    judges = len(estimate.judges(chain))
    used, exhausted = 0, False
    for call_id in call_ids:
        call = recorded.load(conn, call_id)
        if call is None:  # deleted since it was selected
            continue
        needs = 0 if call.request_blocked else call.tool_calls * judges
        if needs and max_judge_calls is not None and (exhausted or used + needs > max_judge_calls):
            exhausted = True
            outcome = replay.not_run(call_id, f"not run: --max-judge-calls {max_judge_calls} reached")
        else:
            try:
                outcome = await replay.replay(chain, call)
            except Exception as error:  # one call's failure must not end the run
                logger.exception("backtest of call %s failed", call_id)
                outcome = replay.Outcome(call_id, None, error=failure_reason(error))
            used += len(outcome.judgements)
        writer.add(outcome, BATCH_SIZE)
    writer.flush(finished=True)


def confirm(question: str, ask: Callable[[str], str] = input) -> bool:
    try:
        return ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.max_judge_calls is not None and args.max_judge_calls < 0:
        print("backtest: --max-judge-calls must be 0 or more", file=sys.stderr)
        return 2
    db_path = args.db or os.environ.get(DB_ENV) or DEFAULT_DB
    if not Path(db_path).is_file():
        print(f"backtest: no database at {db_path}: record calls first (`just proxy` or `just up`)", file=sys.stderr)
        return 2
    try:
        loaded = live_config.load(args.config)  # the proxy's own loader: the same validation
        selected = chosen_filter(args)
        conn = store.connect(db_path)
    except (ConfigError, recorded.FilterError, sqlite3.Error) as error:
        print(f"backtest: {error}", file=sys.stderr)
        return 2
    try:
        return _run(args, db_path, conn, loaded.chain, [e.model_dump() for e in loaded.config.policies], selected)
    except recorded.FilterError as error:
        print(f"backtest: {error}", file=sys.stderr)
        return 2
    finally:
        conn.close()


def _run(
    args: argparse.Namespace,
    db_path: str,
    conn: sqlite3.Connection,
    chain: PolicyChain,
    policies: list[dict[str, object]],
    selected: recorded.Filter,
) -> int:
    call_ids = selected.call_ids(conn)
    names = ", ".join(entry.name for entry in chain.entries) or "no policies"
    print(f"Backtest of {args.config} ({names}) over {len(call_ids)} recorded calls ({selected.description}).")
    judged = estimate.estimate(conn, chain, selected)
    print(judged.describe())
    will_judge = judged.judge_calls
    if args.max_judge_calls is not None and judged.judge_calls > args.max_judge_calls:
        will_judge = args.max_judge_calls
        print(
            f"At most {args.max_judge_calls} will be (--max-judge-calls): once the next call's tool calls would "
            "go past it, that call and every later one with tool calls are not run."
        )
    if will_judge and not args.yes and not confirm(f"Make up to {will_judge} judge calls?"):
        print("Not run.")
        return 1
    writer = store.RunWriter(
        conn,
        config_path=str(Path(args.config).resolve()),
        policies=policies,
        description=selected.description,
        max_judge_calls=args.max_judge_calls,
        estimate_calls=judged.judge_calls,
        estimate_usd=judged.cost_usd,
    )
    asyncio.run(run_calls(conn, chain, call_ids, writer, args.max_judge_calls))
    c = writer.counts
    cost = "" if c.judge_cost_usd is None else f", ${c.judge_cost_usd:.4f}"
    print(
        f"Run {writer.run_id}: {c.calls} calls, {c.changed} changed, {c.blocked} blocked, {c.errors} errors, "
        f"{c.skipped} not run; {c.judge_calls} judge calls{cost}."
    )
    print(f"See it with `just ui`: /-/interlock/{Path(db_path).stem}/backtests/{writer.run_id}")
    return 0
