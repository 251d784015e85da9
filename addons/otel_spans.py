"""A call's record as OpenTelemetry GenAI telemetry: one CLIENT span, a child span per
policy decision, and the client metrics (docs/opentelemetry.md).

Imported only when the OTLP export is on (`addons.otel_export`): this module imports
the OpenTelemetry SDK. Everything is read from the record `interlock_call_ended` hands
over, already scrubbed of secrets as in the database. Names follow the GenAI semantic
conventions (development status); the `opentelemetry-semantic-conventions` package's
constants are used where it has them (it marks its `gen_ai.*` names as moved to the
GenAI conventions' own repository, which publishes no Python package), string literals
for the guardrail attributes it lacks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as genai
from opentelemetry.semconv._incubating.attributes.user_attributes import USER_ID
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from interlock.dialects import dialect_for
from interlock.dialects.base import Dialect
from interlock.neutral import Block, Message
from interlock.policy.records import JudgeRecord, PolicyEventRecord
from recorder.models import CallRecord, Stage

# The guardrail conventions (gen-ai-guardrails.md), not in the semconv package yet.
APPLY_GUARDRAIL = "apply_guardrail"
GUARDRAIL_COMPONENT = "gen_ai.guardrail.component.name"
GUARDRAIL_POLICY_ID = "gen_ai.guardrail.policy.id"
GUARDRAIL_SOURCE = "gen_ai.guardrail.source"
GUARDRAIL_RESULT_TYPE = "gen_ai.guardrail.result.type"
GUARDRAIL_RESULT_VALUE = "gen_ai.guardrail.result.value"
GUARDRAIL_RESULT_REASON = "gen_ai.guardrail.result.reason"
GUARDRAIL_RISK_SCORE = "gen_ai.guardrail.risk.score"
# Interlock's own attributes.
CALL_ID = "interlock.call_id"
VERDICT = "interlock.verdict"
PROVIDER = "interlock.provider"  # the config's provider name
DIALECT = "interlock.dialect"
USER = "interlock.user"
PROJECT = "interlock.project"
JUDGE_MODEL = "interlock.judge.model"
JUDGE_LATENCY_MS = "interlock.judge.latency_ms"

# Bucket boundaries the GenAI metrics conventions ask for.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = tuple(4.0**power for power in range(14))  # 1, 4, 16, ... 67108864

NS = 1_000_000_000


def _ns(unix_s: float) -> int:
    return int(unix_s * NS)


def _stage_body(record: CallRecord, *stages: Stage) -> dict[str, Any] | None:
    """The parsed body of the first of `stages` the record has as a JSON object."""
    bodies = {stage.stage: stage.body for stage in record.stages}
    for stage in stages:
        body = bodies.get(stage)
        if isinstance(body, dict):
            return body
    return None


def _drop_none(attributes: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {key: value for key, value in attributes.items() if value is not None and value != ()}


def error_type(record: CallRecord) -> str | None:
    """`error.type`: the HTTP status of a call answered with an error, else `_OTHER` for
    a call that failed without one (the connection failed, Interlock gave up upstream)."""
    if record.status is not None and record.status >= 400:
        return str(record.status)
    return "_OTHER" if record.error else None


def call_attributes(record: CallRecord, dialect: Dialect, provider_name: str) -> dict[str, AttributeValue]:
    """The inference span's attributes (no message content)."""
    request = _stage_body(record, "request_final", "request_original") or {}
    response = _stage_body(record, "response_final", "response_original") or {}
    settings = dialect.request_settings(request)
    usage = record.usage
    cached = (usage.cache_read_tokens or 0) + (usage.cache_write_tokens or 0)
    stop = dialect.stop_reason(response) if response else None
    first_chunk = (
        record.first_byte_at - record.started_at if record.stream and record.first_byte_at is not None else None
    )
    return _drop_none(
        {
            genai.GEN_AI_OPERATION_NAME: dialect.operation_name,
            genai.GEN_AI_PROVIDER_NAME: provider_name,
            genai.GEN_AI_REQUEST_MODEL: record.model_final or record.model,
            SERVER_ADDRESS: record.host,
            genai.GEN_AI_REQUEST_STREAM: True if record.stream else None,
            genai.GEN_AI_REQUEST_MAX_TOKENS: settings.max_tokens,
            genai.GEN_AI_REQUEST_TEMPERATURE: settings.temperature,
            genai.GEN_AI_REQUEST_TOP_P: settings.top_p,
            genai.GEN_AI_REQUEST_TOP_K: settings.top_k,
            genai.GEN_AI_REQUEST_STOP_SEQUENCES: settings.stop_sequences,
            genai.GEN_AI_REQUEST_SEED: settings.seed,
            genai.GEN_AI_REQUEST_FREQUENCY_PENALTY: settings.frequency_penalty,
            genai.GEN_AI_REQUEST_PRESENCE_PENALTY: settings.presence_penalty,
            genai.GEN_AI_REQUEST_CHOICE_COUNT: settings.choice_count if settings.choice_count != 1 else None,
            genai.GEN_AI_RESPONSE_ID: dialect.generation_id(response) if response else None,
            genai.GEN_AI_RESPONSE_MODEL: record.response_model,
            genai.GEN_AI_RESPONSE_FINISH_REASONS: (stop,) if stop else None,
            genai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: first_chunk,
            # The conventions count cache reads and writes in the input; Interlock's usage keeps them apart.
            genai.GEN_AI_USAGE_INPUT_TOKENS: None if usage.input_tokens is None else usage.input_tokens + cached,
            genai.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
            genai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: usage.cache_read_tokens,
            genai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: usage.cache_write_tokens,
            genai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: dialect.reasoning_tokens(response) if response else None,
            genai.GEN_AI_CONVERSATION_ID: record.session_id,
            ERROR_TYPE: error_type(record),
            CALL_ID: record.call_id,
            VERDICT: record.verdict,
            PROVIDER: record.provider,
            DIALECT: record.dialect,
            USER_ID: record.user,
            USER: record.user,
            PROJECT: record.project,
        }
    )


# -- message content (opt-in) -------------------------------------------------------------


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def part(block: Block) -> dict[str, Any]:
    """A neutral block as a part of the conventions' message JSON schemas."""
    if block.kind == "text":
        return {"type": "text", "content": block.text}
    if block.kind == "thinking":
        return {"type": "reasoning", "content": block.text}
    if block.kind == "tool_call":
        return {"type": "tool_call", "id": block.tool_id, "name": block.tool_name, "arguments": _arguments(block.text)}
    if block.kind == "tool_result":
        return {"type": "tool_call_response", "id": block.tool_id, "response": block.text}
    return {"type": block.label or block.kind, "content": block.text}  # a generic part


def messages_json(messages: Iterable[Message]) -> list[dict[str, Any]]:
    return [{"role": message.role, "parts": [part(block) for block in message.blocks]} for message in messages]


def content_attributes(record: CallRecord, dialect: Dialect) -> dict[str, AttributeValue]:
    """`gen_ai.input.messages`, `.output.messages`, `.system_instructions` and
    `.tool.definitions` as JSON strings, from the scrubbed request as it went upstream
    and the response as the client got it."""
    found: dict[str, AttributeValue] = {}
    request = _stage_body(record, "request_final", "request_original")
    if request is not None and (view := dialect.request_view(request)) is not None:
        found[genai.GEN_AI_INPUT_MESSAGES] = json.dumps(messages_json(view.messages), ensure_ascii=False)
        if view.system:
            found[genai.GEN_AI_SYSTEM_INSTRUCTIONS] = json.dumps([part(b) for b in view.system], ensure_ascii=False)
        tools = [
            {"type": tool.kind, "name": tool.name, "description": tool.description, "parameters": tool.parameters}
            for tool in dialect.tool_definitions(request)
        ]
        if tools:
            found[genai.GEN_AI_TOOL_DEFINITIONS] = json.dumps(tools, ensure_ascii=False)
    response = _stage_body(record, "response_final", "response_original")
    if response is not None and (answer := dialect.response_view(response)) is not None:
        (output,) = messages_json([answer.message])
        output["finish_reason"] = answer.stop_reason or ""
        found[genai.GEN_AI_OUTPUT_MESSAGES] = json.dumps([output], ensure_ascii=False)
    return found


# -- policy decisions -----------------------------------------------------------------------


_HOOK_SOURCES = {"on_request": "request", "on_tool_call": "tool_input"}


def guardrail_source(event: PolicyEventRecord) -> str | None:
    """What a decision looked at: the request, a tool call's input, or the model's response."""
    details = event.details
    if "tool_name" in details or "tool_call_id" in details:
        return "tool_input"
    side = details.get("side")
    if side in ("request", "response"):
        return "request" if side == "request" else "model_response"
    hook = details.get("hook")
    if isinstance(hook, str):
        return _HOOK_SOURCES.get(hook, "model_response")
    return None


def _judgement_for(event: PolicyEventRecord, judgements: Sequence[JudgeRecord]) -> JudgeRecord | None:
    if "judge_model" not in event.details:
        return None
    for judgement in judgements:
        same_call = judgement.tool_call_id == event.details.get("tool_call_id")
        if same_call and judgement.tool_name == event.details.get("tool_name"):
            return judgement
    return None


@dataclass(frozen=True)
class GuardrailSpan:
    name: str
    start_s: float
    end_s: float
    attributes: dict[str, AttributeValue]
    failed: bool


def guardrail_spans(record: CallRecord) -> list[GuardrailSpan]:
    """One `apply_guardrail {policy}` span per policy decision; a judged tool call's span
    lasts the judge's latency and carries its verdict's probability."""
    spans = []
    for event in record.events:
        judgement = _judgement_for(event, record.judgements)
        probability = event.details.get("probability")
        start = event.at
        if judgement is not None and judgement.latency_ms is not None:
            start = judgement.at - judgement.latency_ms / 1000
        attributes = _drop_none(
            {
                genai.GEN_AI_OPERATION_NAME: APPLY_GUARDRAIL,
                GUARDRAIL_COMPONENT: event.policy,
                GUARDRAIL_POLICY_ID: event.policy,
                GUARDRAIL_SOURCE: guardrail_source(event),
                GUARDRAIL_RESULT_TYPE: "action",
                GUARDRAIL_RESULT_VALUE: event.action,
                GUARDRAIL_RESULT_REASON: event.reason or None,
                GUARDRAIL_RISK_SCORE: float(probability) if isinstance(probability, (int, float)) else None,
                genai.GEN_AI_TOOL_NAME: event.details.get("tool_name"),
                genai.GEN_AI_TOOL_CALL_ID: event.details.get("tool_call_id"),
                JUDGE_MODEL: judgement.judge_model if judgement else None,
                JUDGE_LATENCY_MS: judgement.latency_ms if judgement else None,
                CALL_ID: record.call_id,
            }
        )
        name = f"{APPLY_GUARDRAIL} {event.policy}"
        spans.append(GuardrailSpan(name, min(start, event.at), event.at, attributes, event.action == "error"))
    return spans


# -- spans and metrics --------------------------------------------------------------------


def span_name(attributes: Mapping[str, AttributeValue]) -> str:
    operation, model = attributes[genai.GEN_AI_OPERATION_NAME], attributes.get(genai.GEN_AI_REQUEST_MODEL)
    return f"{operation!s} {model!s}" if model else str(operation)


def emit_spans(tracer: Tracer, record: CallRecord, provider_name: str, capture_content: bool) -> int:
    """Start and end the call's spans with the record's times; returns how many."""
    dialect = dialect_for(record.dialect)
    attributes = call_attributes(record, dialect, provider_name)
    if capture_content:
        attributes.update(content_attributes(record, dialect))
    end = record.ended_at or record.started_at
    span = tracer.start_span(
        span_name(attributes), kind=SpanKind.CLIENT, start_time=_ns(record.started_at), attributes=attributes
    )
    if ERROR_TYPE in attributes:
        span.set_status(Status(StatusCode.ERROR, record.error or f"HTTP {record.status}"))
    parent = trace.set_span_in_context(span)
    guardrails = guardrail_spans(record)
    for guardrail in guardrails:
        child = tracer.start_span(
            guardrail.name,
            context=parent,
            kind=SpanKind.INTERNAL,
            start_time=_ns(guardrail.start_s),
            attributes=guardrail.attributes,
        )
        if guardrail.failed:
            child.set_status(Status(StatusCode.ERROR))
        child.end(end_time=_ns(guardrail.end_s))
    span.end(end_time=_ns(max(end, record.started_at)))
    return 1 + len(guardrails)


class CallMetrics:
    """The GenAI client metrics: operation duration, token usage, time to first chunk."""

    def __init__(self, meter: Meter) -> None:
        self.duration: Histogram = gen_ai_metrics.create_gen_ai_client_operation_duration(meter)
        self.tokens: Histogram = gen_ai_metrics.create_gen_ai_client_token_usage(meter)
        self.first_chunk: Histogram = gen_ai_metrics.create_gen_ai_client_operation_time_to_first_chunk(meter)

    def record(self, record: CallRecord, provider_name: str) -> None:
        span = call_attributes(record, dialect_for(record.dialect), provider_name)
        keys = (genai.GEN_AI_OPERATION_NAME, genai.GEN_AI_PROVIDER_NAME, genai.GEN_AI_REQUEST_MODEL, SERVER_ADDRESS)
        common = {key: span[key] for key in (*keys, genai.GEN_AI_RESPONSE_MODEL) if key in span}
        if record.ended_at is not None:
            errors = {ERROR_TYPE: span[ERROR_TYPE]} if ERROR_TYPE in span else {}
            self.duration.record(record.ended_at - record.started_at, {**common, **errors})
        for token_type, key in (
            ("input", genai.GEN_AI_USAGE_INPUT_TOKENS),
            ("output", genai.GEN_AI_USAGE_OUTPUT_TOKENS),
        ):
            count = span.get(key)
            if isinstance(count, int):
                self.tokens.record(count, {**common, genai.GEN_AI_TOKEN_TYPE: token_type})
        first_chunk = span.get(genai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        if isinstance(first_chunk, float):
            self.first_chunk.record(first_chunk, common)
