"""OpenAI Responses (`POST /v1/responses`), as the `openai` SDK's `client.responses`,
the `llm` CLI's newer models and Codex (over HTTP+SSE, and over its WebSocket) speak it."""

from __future__ import annotations

from typing import ClassVar

from interlock.dialects import common
from interlock.dialects.base import DefaultProvider, Dialect, WebSocketFrames
from interlock.dialects.openai_responses import chained, request, response, view, wire
from interlock.dialects.openai_responses.body import rewrite_body
from interlock.dialects.openai_responses.reassemble import ResponsesReassembler
from interlock.dialects.openai_responses.stream import ResponsesStreamRewriter
from interlock.dialects.openai_responses.websocket import ResponsesWebSocket


class OpenAIResponses(Dialect):
    name: ClassVar[str] = request.NAME
    messages_path: ClassVar[str] = request.MESSAGES_PATH
    operation_name: ClassVar[str] = "chat"
    chain_path: ClassVar[str | None] = request.CHAIN_PATH
    default_providers: ClassVar[tuple[DefaultProvider, ...]] = (
        DefaultProvider("openai", ("api.openai.com",), ("/v1/responses",)),
        DefaultProvider(
            "azure-openai", ("*.openai.azure.com",), ("/openai/v1/responses", "/openai/responses"), "azure.ai.openai"
        ),
    )
    websocket: ClassVar[WebSocketFrames | None] = ResponsesWebSocket()

    last_user_text = staticmethod(request.last_user_text)
    typed_text = staticmethod(request.typed_text)
    map_request_text = staticmethod(request.map_request_text)
    add_system_text = staticmethod(request.add_system_text)
    blocked_request = staticmethod(request.blocked_request)
    continue_request = staticmethod(chained.continue_request)
    timeout_error = staticmethod(wire.timeout_error)
    no_match_error = staticmethod(wire.no_match_error)
    limit_error = staticmethod(common.openai_limit_error)
    stream_error = staticmethod(wire.stream_error)
    keepalive = staticmethod(wire.keepalive)
    response_text = staticmethod(response.response_text)
    usage = staticmethod(response.usage)
    request_settings = staticmethod(request.request_settings)
    tool_definitions = staticmethod(request.tool_definitions)
    reasoning_tokens = staticmethod(response.reasoning_tokens)
    stop_reason = staticmethod(response.stop_reason)
    tool_calls = staticmethod(response.tool_calls)
    reassembler = staticmethod(ResponsesReassembler)
    stream_rewriter = staticmethod(ResponsesStreamRewriter)
    rewrite_body = staticmethod(rewrite_body)
    tool_definition = staticmethod(request.tool_definition)
    recent_tool_calls = staticmethod(request.recent_tool_calls)
    session_key = staticmethod(request.session_key)
    session_header_key = staticmethod(request.session_header_key)
    chained_on = staticmethod(request.chained_on)
    response_id = staticmethod(response.response_id)
    request_view = staticmethod(view.request_view)
    response_view = staticmethod(view.response_view)
    messages_view = staticmethod(view.messages_view)
