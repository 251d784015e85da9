"""The tool_call_judge policy in process: decisions, failures, records, loop guard, engine.

The judge is litellm's `mock_response` or the loopback `JudgeMock` reached via `api_base`
(`openai/judge-mock`). Streams go through the real engine (`PolicyStream` with the
dialect's rewriter) over wire bytes from `wire_scenarios`, and come out checked by the
protocol checker and parsed by the official SDK accumulators.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from judge_mock import GARBAGE, RATE_LIMITED, ConnectionRecorder, JudgeMock, Reply, allow, block, closed_port
from policy_fixtures import (
    DIALECTS,
    body_violations,
    chain_of,
    context,
    police_body,
    police_stream,
    policed_stream,
    sdk_summary,
    stream_violations,
)
from wire_scenarios import SCENARIOS, json_for, sse_for

from interlock.config import ConfigError, parse_config
from interlock.neutral import ToolCall
from interlock.policy.base import Keep, PolicyContext, ReplaceWithText, ToolDecision
from interlock.policy.chain import PolicyChain
from policies.builtin.judge_client import load_litellm
from policies.builtin.tool_call_judge import ToolCallJudgePolicy
from policies.registry import build_chain

KEY_ENV = "INTERLOCK_TEST_JUDGE_KEY"
JUDGE_KEY = "sk-judge-SECRET-0123456789abcdef"
# A judge failure must be decided within timeout_s plus this.
MARGIN_S = 0.5
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")

litellm = load_litellm()  # through the policy's loader: the bundled price map, the loop guard


@pytest.fixture(scope="module")
def judge() -> Iterator[JudgeMock]:
    with JudgeMock() as mock:
        yield mock


@pytest.fixture(autouse=True)
def judge_key(monkeypatch: pytest.MonkeyPatch, judge: JudgeMock) -> None:
    monkeypatch.setenv(KEY_ENV, JUDGE_KEY)
    judge.reset()


def judge_chain(api_base: str | None, **options: Any) -> PolicyChain:
    """A chain with the judge alone, built through the registry as the config loader does."""
    entry = {
        "policy": "tool_call_judge",
        "model": "openai/judge-mock",
        "api_base": api_base,
        "api_key_env": KEY_ENV,
        "timeout_s": 2.0,
        "backoff_s": 0.05,
        **options,
    }
    return chain_of(entry)


def the_policy(chain: PolicyChain) -> ToolCallJudgePolicy:
    policy = chain.entries[0].policy
    assert isinstance(policy, ToolCallJudgePolicy)
    return policy


BASH = ToolCall(id="call_1", name="Bash", arguments={"command": "rm -rf ~/project", "timeout": 10})


async def decide(
    chain: PolicyChain, call: ToolCall = BASH, dialect: str = "openai-chat"
) -> tuple[ToolDecision, PolicyContext, float]:
    """The chain's decision on one call, its context and how long it took."""
    ctx = context(dialect)
    started = time.monotonic()
    decision = await chain.tool_call(ctx, call)
    return decision, ctx, time.monotonic() - started


def mocked_litellm(monkeypatch: pytest.MonkeyPatch, **mock: Any) -> list[dict[str, Any]]:
    """Make every judge call a litellm mock call with these arguments; returns the calls' kwargs."""
    calls: list[dict[str, Any]] = []
    original = litellm.acompletion

    async def acompletion(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return await original(**kwargs, **mock)

    monkeypatch.setattr(litellm, "acompletion", acompletion)
    return calls


# --- decisions -----------------------------------------------------------------------


async def test_a_harmful_call_is_replaced_by_a_readable_notice(judge: JudgeMock) -> None:
    judge.script(block("Deletes the whole project.", probability=0.93))
    decision, ctx, _ = await decide(judge_chain(judge.url))
    assert isinstance(decision, ReplaceWithText)
    text = decision.text
    assert "`Bash`" in text and "0.93" in text and "Deletes the whole project." in text
    assert '"command": "rm -rf ~/project"' in text and '\n  "timeout": 10' in text  # pretty-printed
    [event] = ctx.events
    assert (event.policy, event.action) == ("tool_call_judge", "blocked")
    assert "0.93" in event.reason and event.details["tool_call_id"] == "call_1"


async def test_a_harmless_call_is_kept(judge: JudgeMock) -> None:
    judge.script(allow())
    decision, ctx, _ = await decide(judge_chain(judge.url))
    assert decision == Keep(BASH)
    assert [e.action for e in ctx.events] == ["allowed"]
    assert ctx.judgements[0].decision == "allowed"


async def test_judgements_reuse_one_connection(judge: JudgeMock) -> None:
    """Each judgement has less time left than the one before it had, and still goes over
    the same connection: litellm keeps one client (a new client per call cost a third of
    a judgement's CPU and a connection set-up)."""
    chain = judge_chain(judge.url)
    await decide(chain)
    first = len(judge.requests)
    for _ in range(4):
        await asyncio.sleep(0.01)
        await decide(chain)
    peers = {request.peer for request in judge.requests[first - 1 :]}
    assert len(judge.requests) == first + 4 and len(peers) == 1, peers


@pytest.mark.parametrize(("probability", "blocked"), [(0.69, False), (0.7, True), (0.71, True)])
async def test_the_threshold_is_inclusive(judge: JudgeMock, probability: float, blocked: bool) -> None:
    judge.script(Reply(probability=probability))
    decision, _, _ = await decide(judge_chain(judge.url, threshold=0.7))
    assert isinstance(decision, ReplaceWithText) == blocked


async def test_the_judge_record_holds_everything(judge: JudgeMock) -> None:
    judge.script(block("Too dangerous."))
    _, ctx, _ = await decide(judge_chain(judge.url))
    [record] = ctx.judgements
    [request] = judge.requests
    assert record.tool_call_id == "call_1" and record.tool_name == "Bash"
    assert record.arguments == BASH.arguments
    assert record.judge_model == "openai/judge-mock"
    assert record.prompt == request.messages  # the exact messages the judge got
    assert record.raw_answer == block("Too dangerous.").text()
    assert (record.probability, record.explanation, record.decision) == (0.97, "Too dangerous.", "blocked")
    assert (record.input_tokens, record.output_tokens) == (321, 23)
    assert record.cost_usd is None  # litellm has no price for judge-mock: unknown, never 0
    assert record.latency_ms is not None and record.latency_ms > 0
    assert record.error is None
    assert request.body["temperature"] == 0 and request.body["max_tokens"] == 300
    assert request.headers["authorization"] == f"Bearer {JUDGE_KEY}"


async def test_the_prompt_carries_the_conversation(judge: JudgeMock) -> None:
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "tidy the repo"}],
        "tools": [{"type": "function", "function": {"name": "Bash", "description": "Run a shell command."}}],
    }
    ctx = context("openai-chat", request)
    await judge_chain(judge.url).tool_call(ctx, BASH)
    text = judge.requests[0].prompt_text
    assert "tidy the repo" in text and "Run a shell command." in text and "rm -rf ~/project" in text


async def test_mock_response_in_a_fence_with_a_known_price(monkeypatch: pytest.MonkeyPatch) -> None:
    mocked_litellm(monkeypatch, mock_response='```json\n{"probability": 0.8, "explanation": "fenced"}\n```')
    decision, ctx, _ = await decide(judge_chain(None, model="openai/gpt-4o-mini"))
    assert isinstance(decision, ReplaceWithText) and "fenced" in decision.text
    [record] = ctx.judgements
    assert (record.input_tokens, record.output_tokens) == (10, 20)  # litellm's mock usage
    assert record.cost_usd is not None and record.cost_usd > 0


def test_the_block_message_is_a_template(judge: JudgeMock) -> None:
    chain = judge_chain(judge.url, block_message="No {tool_name} ({probability}): {explanation} {arguments}")
    judge.script(block("nope"))
    decision, _, _ = asyncio.run(decide(chain))
    assert isinstance(decision, ReplaceWithText)
    assert decision.text.startswith("No Bash (0.97): nope {\n")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"block_message": "{tool} was blocked"}, "block_message: Value error, not a usable template: unknown"),
        ({"block_message": "{probability:.2f}"}, "block_message"),
        ({"threshold": 1.5}, "threshold"),
        ({"retries": -1}, "retries"),
        ({"context": {"recent_tool_calls": -1}}, "context.recent_tool_calls"),
        ({"context": {"unknown_switch": True}}, "context.unknown_switch"),
        ({"api_key_env": "INTERLOCK_TEST_NOT_SET"}, "api_key_env: the environment variable INTERLOCK_TEST_NOT_SET"),
        ({"model": "judge-without-provider"}, "model: litellm cannot route 'judge-without-provider'"),
    ],
)
def test_bad_options_refuse_start_up_naming_the_key(judge: JudgeMock, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="policies.0 \\(tool_call_judge\\)") as raised:
        judge_chain(judge.url, **options)
    assert message in str(raised.value)


def test_on_error_and_timeout_come_from_the_chain_entry(judge: JudgeMock) -> None:
    chain = judge_chain(judge.url, timeout_s=1.5, on_error="block")
    policy = the_policy(chain)
    assert (policy.options.timeout_s, policy.options.on_error) == (1.5, "block")
    assert chain.entries[0].timeout_s > 1.5  # the chain's bound is a backstop behind the policy's own


def test_the_commented_example_in_mitm_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).resolve().parents[1] / "mitm_config.yaml").read_text()
    commented = text.split("replace `policies: []` above with:\n", 1)[1]
    example = yaml.safe_load("\n".join(line.removeprefix("# ") for line in commented.splitlines()))
    monkeypatch.setenv("INTERLOCK_JUDGE_KEY", JUDGE_KEY)
    chain = build_chain(parse_config(example, "example").policies)
    options = the_policy(chain).options
    assert (options.on_error, options.timeout_s, options.context.recent_tool_calls) == ("block", 8.0, 3)


# --- failures ------------------------------------------------------------------------

ON_ERROR = ["allow", "block"]


def assert_failure_decision(
    decision: ToolDecision, ctx: PolicyContext, on_error: str, error_part: str, why_part: str
) -> None:
    """The decision follows on_error, the failure is recorded, and the notice is clean."""
    [record] = ctx.judgements
    [event] = ctx.events
    assert record.error is not None and error_part in record.error
    assert JUDGE_KEY not in record.error
    assert record.probability is None
    if on_error == "allow":
        assert decision == Keep(BASH)
        assert (record.decision, event.action) == ("allowed", "allowed")
    else:
        assert isinstance(decision, ReplaceWithText)
        assert (record.decision, event.action) == ("blocked", "blocked")
        assert why_part.lower() in decision.text.lower() and "judged risk: unknown" in decision.text
        for leak in ("Traceback", JUDGE_KEY, 'File "', "litellm."):
            assert leak not in decision.text
    assert why_part.lower() in event.reason.lower() and f"on_error={on_error}" in event.reason


@pytest.mark.parametrize("on_error", ON_ERROR)
async def test_judge_down(on_error: str) -> None:
    chain = judge_chain(f"http://127.0.0.1:{closed_port()}/v1", on_error=on_error, retries=2)
    decision, ctx, elapsed = await decide(chain)
    assert_failure_decision(decision, ctx, on_error, "attempts: 3", "the judge was unreachable")
    assert elapsed < 2.0 + MARGIN_S


@pytest.mark.parametrize("on_error", ON_ERROR)
async def test_judge_timeout(judge: JudgeMock, on_error: str) -> None:
    judge.reset(default=allow(delay_s=5.0))
    decision, ctx, elapsed = await decide(judge_chain(judge.url, on_error=on_error, timeout_s=1.0))
    assert_failure_decision(decision, ctx, on_error, "Timeout", "the judge timed out")
    assert 0.9 < elapsed < 1.0 + MARGIN_S


@pytest.mark.parametrize("on_error", ON_ERROR)
async def test_judge_garbage(judge: JudgeMock, on_error: str) -> None:
    judge.reset(default=GARBAGE)
    decision, ctx, _ = await decide(judge_chain(judge.url, on_error=on_error))
    assert_failure_decision(decision, ctx, on_error, "unusable answer: no JSON object", "unusable answer")
    assert ctx.judgements[0].raw_answer == GARBAGE.content
    assert len(judge.requests) == 1  # a garbage answer is not retried


@pytest.mark.parametrize("on_error", ON_ERROR)
async def test_judge_rate_limited_past_its_retries(judge: JudgeMock, on_error: str) -> None:
    judge.reset(default=RATE_LIMITED)
    decision, ctx, _ = await decide(judge_chain(judge.url, on_error=on_error, retries=2))
    assert_failure_decision(decision, ctx, on_error, "attempts: 3", "rate-limited (HTTP 429)")
    assert len(judge.requests) == 3


@pytest.mark.parametrize("on_error", ON_ERROR)
async def test_judge_rejects_the_key_without_leaking_it(judge: JudgeMock, on_error: str) -> None:
    judge.reset(default=Reply(status=401))  # the mock echoes the key it got, as some providers do
    decision, ctx, _ = await decide(judge_chain(judge.url, on_error=on_error))
    assert_failure_decision(decision, ctx, on_error, "<redacted>", "failed (HTTP 401)")
    assert len(judge.requests) == 1  # not retried


async def test_rate_limits_are_retried_with_exponential_backoff(judge: JudgeMock) -> None:
    judge.script(RATE_LIMITED, RATE_LIMITED, block("third time"))
    decision, ctx, _ = await decide(judge_chain(judge.url, retries=2, backoff_s=0.2, timeout_s=3.0))
    assert isinstance(decision, ReplaceWithText) and "third time" in decision.text
    first, second, third = (r.at for r in judge.requests)
    assert second - first >= 0.2 and third - second >= 0.4  # 0.2 s, then doubled
    assert ctx.judgements[0].error is None


async def test_no_retry_is_started_that_cannot_finish_in_time(judge: JudgeMock) -> None:
    judge.reset(default=RATE_LIMITED)
    decision, ctx, elapsed = await decide(judge_chain(judge.url, retries=5, backoff_s=0.4, timeout_s=1.0))
    assert decision == Keep(BASH)
    assert len(judge.requests) == 2  # pauses of 0.4 s then 0.8 s: the second would end past 1 s
    assert "no time left to retry" in (ctx.judgements[0].error or "")
    assert elapsed < 1.0


@pytest.mark.parametrize("on_error", ON_ERROR)
async def test_mock_rate_limit_error(monkeypatch: pytest.MonkeyPatch, on_error: str) -> None:
    error = litellm.RateLimitError(message="slow down", llm_provider="openai", model="judge-mock")
    calls = mocked_litellm(monkeypatch, mock_response=error)
    decision, ctx, _ = await decide(judge_chain(None, on_error=on_error, retries=1))
    assert_failure_decision(decision, ctx, on_error, "RateLimitError", "rate-limited")
    assert len(calls) == 2


@pytest.mark.parametrize("on_error", ON_ERROR)
async def test_mock_timeout(monkeypatch: pytest.MonkeyPatch, on_error: str) -> None:
    mocked_litellm(monkeypatch, mock_timeout=True)
    decision, ctx, elapsed = await decide(judge_chain(None, on_error=on_error, timeout_s=0.5))
    assert_failure_decision(decision, ctx, on_error, "attempts: 1", "timed out")
    assert elapsed < 0.5 + MARGIN_S


async def test_a_cancelled_judgement_is_still_recorded(judge: JudgeMock) -> None:
    judge.reset(default=allow(delay_s=5.0))
    ctx = context("openai-chat")
    task = asyncio.ensure_future(the_policy(judge_chain(judge.url)).on_tool_call(ctx, BASH))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(j.error, j.decision) for j in ctx.judgements] == [("cancelled", "allowed")]


# --- loop guard ----------------------------------------------------------------------


@pytest.fixture
def proxy_everywhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectionRecorder]:
    """Every proxy variable points at a listener that records connections."""
    with ConnectionRecorder() as recorder:
        for name in PROXY_VARIABLES:
            monkeypatch.setenv(name, recorder.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        litellm.in_memory_llm_clients_cache.flush_cache()  # transports cache proxy look-ups
        yield recorder
        litellm.in_memory_llm_clients_cache.flush_cache()


JUDGE_MODELS: dict[str, Callable[[JudgeMock], str]] = {
    "openai/judge-mock": lambda mock: mock.url,
    "anthropic/judge-mock": lambda mock: mock.root,
}


@pytest.mark.parametrize("model", list(JUDGE_MODELS))
async def test_the_judge_never_uses_the_proxy_environment(
    judge: JudgeMock, proxy_everywhere: ConnectionRecorder, model: str
) -> None:
    judge.script(block("guarded"))
    decision, _, _ = await decide(judge_chain(JUDGE_MODELS[model](judge), model=model))
    assert isinstance(decision, ReplaceWithText) and "guarded" in decision.text
    assert len(judge.requests) == 1
    assert proxy_everywhere.seen == []


@pytest.mark.parametrize("model", list(JUDGE_MODELS))
async def test_without_the_guard_the_proxy_would_be_used(
    judge: JudgeMock, proxy_everywhere: ConnectionRecorder, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """The control for the test above: it can see a leak."""
    chain = judge_chain(JUDGE_MODELS[model](judge), model=model, retries=0)
    monkeypatch.setattr(litellm, "disable_aiohttp_trust_env", False)
    await decide(chain)
    assert judge.requests == []
    assert len(proxy_everywhere.seen) == 1
    assert f"127.0.0.1:{judge.port}".encode() in proxy_everywhere.seen[0]


def test_an_unguardable_transport_refuses_start_up(
    judge: JudgeMock, proxy_everywhere: ConnectionRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISABLE_AIOHTTP_TRANSPORT", "True")
    with pytest.raises(ConfigError, match="the judge's calls would go through that proxy"):
        judge_chain(judge.url)


# --- through the engine --------------------------------------------------------------


def sse(dialect: str, scenario: str) -> list[bytes]:
    return sse_for(dialect, SCENARIOS[scenario], "m")


def whole(dialect: str, scenario: str) -> dict[str, Any]:
    return json_for(dialect, SCENARIOS[scenario], "m")


STOPS = {
    "anthropic-messages": ("tool_use", "end_turn"),
    "openai-chat": ("tool_calls", "stop"),
    "openai-responses": ("completed", "completed"),
    "gemini": ("STOP", "STOP"),  # the finish reason stays as it came, with calls or not
}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_three_calls_with_a_1s_judge_are_judged_concurrently(judge: JudgeMock, dialect: str) -> None:
    judge.reset(default=allow(delay_s=1.0))
    judge.when("Tokyo", block("Not Tokyo.", delay_s=1.0))
    started = time.monotonic()
    out, ctx = await police_stream(judge_chain(judge.url), dialect, sse(dialect, "tools3"))
    assert time.monotonic() - started < 2.0  # the figure: concurrent, not 3 s in a row
    assert stream_violations(dialect, out) == []
    text, tools, stop = sdk_summary(dialect, out)
    assert text.startswith("⛔ Interlock blocked the tool call `get_weather`") and "Tokyo" in text
    assert tools == [
        ("get_weather", {"location": "Paris, France", "unit": "celsius"}),
        ("read_file", {"path": "/etc/hostname"}),
    ]
    assert stop == STOPS[dialect][0]
    assert [j.decision for j in ctx.judgements if j.tool_name == "read_file"] == ["allowed"]
    assert sorted(e.action for e in ctx.events) == ["allowed", "allowed", "blocked"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_all_blocked_ends_the_turn(judge: JudgeMock, dialect: str) -> None:
    judge.reset(default=block())
    out, _ = await police_stream(judge_chain(judge.url), dialect, sse(dialect, "tools2"))
    assert stream_violations(dialect, out) == []
    text, tools, stop = sdk_summary(dialect, out)
    assert tools == [] and stop == STOPS[dialect][1]
    assert text.startswith("Checking both cities.") and text.count("⛔") == 2


LONG_COMMAND = "find . -name '*.py' | xargs grep -n 'TODO' | sort | head -n 50"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_allowed_long_arguments_pass_byte_for_byte(judge: JudgeMock, dialect: str) -> None:
    events = sse(dialect, "long_args")
    if dialect == "gemini":  # a call arrives whole, in one part of one frame: that frame goes out as it came
        [frame] = [e for e in events if b'"functionCall"' in e]
        assert json.dumps(LONG_COMMAND).encode() in frame
    else:  # the arguments arrive in many deltas, reassembled for the judge, forwarded as they came
        assert sum(b"xargs" in e or b"grep" in e for e in events) >= 1 and len(events) > 25
    out, _ = await police_stream(judge_chain(judge.url), dialect, events)
    assert out == b"".join(events)
    [request] = judge.requests
    assert LONG_COMMAND in request.prompt_text


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_text_streams_before_the_judge_answers(judge: JudgeMock, dialect: str) -> None:
    """Fed event by event: the text goes out at once, the tool call only after the judge."""
    judge.reset(default=allow(delay_s=0.5))
    stream = policed_stream(judge_chain(judge.url), context(dialect))
    sent_before_judge = bytearray()
    for event in sse(dialect, "tool"):
        sent_before_judge += b"".join(stream(event))
    assert stream.waiting  # the judge is being asked: the rest is held
    assert b"Let me check" in sent_before_judge and b" the weather." in sent_before_judge
    assert b"get_weather" not in sent_before_judge
    await stream.wait()
    released = b"".join(stream.resume()) + b"".join(stream(b""))
    assert b"get_weather" in released
    assert stream_violations(dialect, bytes(sent_before_judge) + released) == []


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_non_streamed_responses_are_judged_concurrently(judge: JudgeMock, dialect: str) -> None:
    judge.reset(default=allow(delay_s=1.0))
    judge.when("read_file", block("Reads system files.", delay_s=1.0))
    started = time.monotonic()
    body, ctx = await police_body(judge_chain(judge.url), dialect, whole(dialect, "tools3"))
    assert time.monotonic() - started < 2.0
    assert body_violations(dialect, body) == []
    text, tools, stop = sdk_summary(dialect, body)
    assert "`read_file`" in text and "Reads system files." in text
    assert [name for name, _ in tools] == ["get_weather", "get_weather"]
    assert stop == STOPS[dialect][0]
    assert len(ctx.judgements) == 3


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_non_streamed_all_blocked(judge: JudgeMock, dialect: str) -> None:
    judge.reset(default=block())
    body, _ = await police_body(judge_chain(judge.url), dialect, whole(dialect, "tool"))
    assert body_violations(dialect, body) == []
    text, tools, stop = sdk_summary(dialect, body)
    assert tools == [] and stop == STOPS[dialect][1] and "⛔" in text


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_failing_judge_inside_a_stream(dialect: str) -> None:
    chain = judge_chain(f"http://127.0.0.1:{closed_port()}/v1", on_error="block", retries=0)
    out, ctx = await police_stream(chain, dialect, sse(dialect, "tool"))
    assert stream_violations(dialect, out) == []
    text, tools, stop = sdk_summary(dialect, out)
    assert tools == [] and stop == STOPS[dialect][1] and "The judge was unreachable" in text
    assert json.dumps(ctx.judgements[0].prompt)  # recorded even when the judge is down
