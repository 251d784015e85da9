"""The OTLP export's mapping of a call record to GenAI spans and metrics, per dialect,
through the real SDK with its in-memory span exporter and metric reader."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from wire_scenarios import SCENARIOS, anthropic_json, openai_chat_json, openai_responses_json

from addons.otel_pipeline import OtlpPipeline
from addons.otel_spans import DURATION_BUCKETS, TOKEN_BUCKETS
from interlock.config import OtelConfig
from interlock.dialects import DIALECTS
from interlock.policy.records import JudgeRecord, PolicyEventRecord
from recorder.models import CallRecord, StageRecord

T0 = 1_767_225_600.0
TOOLS_CHAT = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {}}}]
CHAT_REQUEST = {
    "model": "gpt-4o-mini",
    "stream": True,
    "max_completion_tokens": 300,
    "temperature": 0.2,
    "top_p": 0.9,
    "stop": "END",
    "seed": 7,
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}],
    "tools": TOOLS_CHAT,
}
ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "top_k": 5,
    "stop_sequences": ["\n\nHuman:"],
    "system": "You are terse.",
    "messages": [{"role": "user", "content": "Hi"}],
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],
}
RESPONSES_REQUEST = {"model": "gpt-5", "max_output_tokens": 64, "input": "Hi", "tools": []}
GEMINI_REQUEST = {
    "model": "gemini-2.5-flash",
    "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
    "generationConfig": {"maxOutputTokens": 128, "topK": 40, "candidateCount": 2},
}
GEMINI_RESPONSE = {
    "responseId": "resp-gemini-1",
    "modelVersion": "gemini-2.5-flash-001",
    "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello"}]}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3, "thoughtsTokenCount": 4},
}


def make_record(dialect: str, request: dict[str, Any], response: dict[str, Any], **fields: Any) -> CallRecord:
    d = DIALECTS[dialect]
    defaults: dict[str, Any] = {
        "call_id": "0190abcdef0123456789abcdef01",
        "started_at": T0,
        "first_byte_at": T0 + 0.25,
        "ended_at": T0 + 1.5,
        "provider": "openai",
        "dialect": dialect,
        "host": "api.example.com",
        "path": "/v1/x",
        "session_id": "session-1",
        "model": d.request_model(request),
        "response_model": d.response_model(response),
        "stream": bool(request.get("stream")),
        "status": 200,
        "usage": d.usage(response),
        "stages": [
            StageRecord(stage="request_original", body=request),
            StageRecord(stage="response_original", body=response),
        ],
    }
    return CallRecord(**{**defaults, **fields})


def export(record: CallRecord, provider: str = "openai", **config: Any) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    pipeline = OtlpPipeline(OtelConfig(metrics=False, **config), None, span_exporter=exporter)
    pipeline.export(record, provider)
    counts = pipeline.shutdown()
    assert counts.exported == counts.ended and counts.dropped == 0
    return list(exporter.get_finished_spans())


def call_span(spans: list[ReadableSpan]) -> ReadableSpan:
    (span,) = [s for s in spans if s.kind is SpanKind.CLIENT]
    return span


def test_openai_chat_call_span() -> None:
    response = openai_chat_json(SCENARIOS["tool"], "gpt-4o-mini-2024-07-18")
    span = call_span(export(make_record("openai-chat", CHAT_REQUEST, response, user="alice", project="atlas")))
    a = dict(span.attributes or {})
    assert span.name == "chat gpt-4o-mini"
    assert a["user.id"] == a["interlock.user"] == "alice" and a["interlock.project"] == "atlas"
    assert span.start_time == int(T0 * 1e9) and span.end_time == int((T0 + 1.5) * 1e9)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.request.max_tokens"] == 300
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.stop_sequences"] == ("END",) and a["gen_ai.request.seed"] == 7
    assert a["gen_ai.response.id"] == response["id"]
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert a["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.25)
    usage = response["usage"]
    assert a["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]  # cached tokens included, as reported
    assert a["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert a["gen_ai.conversation.id"] == "session-1"
    assert a["server.address"] == "api.example.com"
    assert a["interlock.call_id"] == "0190abcdef0123456789abcdef01"
    assert "error.type" not in a and span.status.status_code is StatusCode.UNSET
    assert not any(key.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system")) for key in a)


def test_anthropic_usage_counts_cache_reads_and_writes_in_the_input() -> None:
    response = anthropic_json(SCENARIOS["cache"], "claude-sonnet-4-5-20250929")
    span = call_span(export(make_record("anthropic-messages", ANTHROPIC_REQUEST, response), "anthropic"))
    a = dict(span.attributes or {})
    assert span.name == "chat claude-sonnet-4-5"
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.usage.input_tokens"] == 5 + 2048 + 512
    assert a["gen_ai.usage.cache_read.input_tokens"] == 2048
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 512
    assert a["gen_ai.usage.output_tokens"] == 7
    assert a["gen_ai.request.max_tokens"] == 1024 and a["gen_ai.request.top_k"] == 5.0
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert "gen_ai.request.stream" not in a and "gen_ai.response.time_to_first_chunk" not in a


def test_responses_and_gemini_operation_names_and_reasoning_tokens() -> None:
    response = openai_responses_json(SCENARIOS["text"], "gpt-5-2025-08-07")
    a = dict(call_span(export(make_record("openai-responses", RESPONSES_REQUEST, response))).attributes or {})
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.max_tokens"] == 64
    span = call_span(export(make_record("gemini", GEMINI_REQUEST, GEMINI_RESPONSE), "gcp.gemini"))
    a = dict(span.attributes or {})
    assert span.name == "generate_content gemini-2.5-flash"
    assert a["gen_ai.provider.name"] == "gcp.gemini"
    assert a["gen_ai.response.id"] == "resp-gemini-1"
    assert a["gen_ai.usage.reasoning.output_tokens"] == 4
    assert a["gen_ai.usage.output_tokens"] == 3 + 4
    assert a["gen_ai.request.top_k"] == 40.0 and a["gen_ai.request.choice.count"] == 2


def test_content_only_when_switched_on_in_the_conventions_shapes() -> None:
    response = openai_chat_json(SCENARIOS["tool"], "gpt-4o-mini")
    record = make_record("openai-chat", CHAT_REQUEST, response)
    assert "gen_ai.input.messages" not in (call_span(export(record)).attributes or {})
    a = dict(call_span(export(record, capture_content=True)).attributes or {})
    inputs = json.loads(str(a["gen_ai.input.messages"]))
    assert inputs[-1] == {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
    (output,) = json.loads(str(a["gen_ai.output.messages"]))
    assert output["role"] == "assistant" and output["finish_reason"] == "tool_calls"
    call = next(p for p in output["parts"] if p["type"] == "tool_call")
    assert call["name"] == "get_weather" and isinstance(call["arguments"], dict)
    assert json.loads(str(a["gen_ai.tool.definitions"])) == [
        {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {}}
    ]
    anthropic = make_record("anthropic-messages", ANTHROPIC_REQUEST, anthropic_json(SCENARIOS["text"], "claude"))
    a = dict(call_span(export(anthropic, capture_content=True)).attributes or {})
    assert json.loads(str(a["gen_ai.system_instructions"])) == [{"type": "text", "content": "You are terse."}]


def test_policy_decisions_are_guardrail_spans_under_the_call() -> None:
    response = openai_chat_json(SCENARIOS["tool"], "gpt-4o-mini")
    events = [
        PolicyEventRecord(
            policy="deny_tools",
            action="blocked",
            reason="tool get_weather is denied",
            details={"tool_call_id": "call_1", "tool_name": "get_weather", "arguments": {}},
            at=T0 + 1.0,
        ),
        PolicyEventRecord(
            policy="judge",
            action="allowed",
            reason="risk 0.10 < 0.5",
            details={"tool_call_id": "call_2", "tool_name": "read_file", "probability": 0.1, "judge_model": "m"},
            at=T0 + 1.2,
        ),
        PolicyEventRecord(
            policy="rewrite", action="modified", reason="model a -> b", details={"side": "request"}, at=T0
        ),
    ]
    judged = JudgeRecord(
        tool_call_id="call_2",
        tool_name="read_file",
        arguments={},
        judge_model="m",
        prompt=[],
        probability=0.1,
        decision="allowed",
        latency_ms=400.0,
        at=T0 + 1.2,
    )
    record = make_record("openai-chat", CHAT_REQUEST, response, events=events, judgements=[judged], verdict="blocked")
    spans = export(record)
    parent = call_span(spans)
    guards = {s.name: s for s in spans if s.kind is SpanKind.INTERNAL}
    assert set(guards) == {"apply_guardrail deny_tools", "apply_guardrail judge", "apply_guardrail rewrite"}
    for span in guards.values():
        assert span.parent is not None and span.parent.span_id == parent.context.span_id
        assert (span.attributes or {})["gen_ai.operation.name"] == "apply_guardrail"
    deny = dict(guards["apply_guardrail deny_tools"].attributes or {})
    assert deny["gen_ai.guardrail.source"] == "tool_input"
    assert deny["gen_ai.guardrail.result.type"] == "action" and deny["gen_ai.guardrail.result.value"] == "blocked"
    assert deny["gen_ai.guardrail.policy.id"] == "deny_tools" and deny["gen_ai.tool.name"] == "get_weather"
    judge_span = guards["apply_guardrail judge"]
    judge = dict(judge_span.attributes or {})
    assert judge["gen_ai.guardrail.risk.score"] == 0.1 and judge["interlock.judge.latency_ms"] == 400.0
    assert (judge_span.end_time or 0) - (judge_span.start_time or 0) == pytest.approx(0.4e9, rel=1e-3)
    assert (guards["apply_guardrail rewrite"].attributes or {})["gen_ai.guardrail.source"] == "request"
    assert (parent.attributes or {})["interlock.verdict"] == "blocked"


def test_an_http_error_sets_error_type_and_status() -> None:
    error = {"error": {"message": "Rate limited", "type": "rate_limit_error"}}
    record = make_record("openai-chat", CHAT_REQUEST, error, status=429, error="HTTP 429", usage={})
    span = call_span(export(record))
    assert (span.attributes or {})["error.type"] == "429"
    assert span.status.status_code is StatusCode.ERROR


def _points(reader: InMemoryMetricReader) -> dict[str, list[HistogramDataPoint]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[HistogramDataPoint]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)]
    return found


def test_metrics_with_the_conventions_buckets() -> None:
    reader = InMemoryMetricReader()
    pipeline = OtlpPipeline(OtelConfig(), None, span_exporter=InMemorySpanExporter(), metric_reader=reader)
    response = anthropic_json(SCENARIOS["cache"], "claude-sonnet-4-5")
    pipeline.export(make_record("anthropic-messages", {**ANTHROPIC_REQUEST, "stream": True}, response), "anthropic")
    points = _points(reader)
    (duration,) = points["gen_ai.client.operation.duration"]
    assert tuple(duration.explicit_bounds) == DURATION_BUCKETS and duration.sum == pytest.approx(1.5)
    assert dict(duration.attributes or {})["gen_ai.provider.name"] == "anthropic"
    assert dict(duration.attributes or {})["gen_ai.operation.name"] == "chat"
    tokens = {dict(p.attributes or {})["gen_ai.token.type"]: p for p in points["gen_ai.client.token.usage"]}
    assert tokens["input"].sum == 5 + 2048 + 512 and tokens["output"].sum == 7
    assert tuple(tokens["input"].explicit_bounds) == TOKEN_BUCKETS
    (first,) = points["gen_ai.client.operation.time_to_first_chunk"]
    assert first.sum == pytest.approx(0.25)
    started = time.monotonic()
    pipeline.shutdown()
    assert time.monotonic() - started < 10  # a no-hang bound
