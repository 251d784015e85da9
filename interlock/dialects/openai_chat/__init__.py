"""OpenAI Chat Completions (`/v1/chat/completions`), on OpenAI and the hosts that speak
the same format (OpenRouter, Groq, Mistral, DeepSeek, xAI, Together, Fireworks, Azure)."""

from __future__ import annotations

from typing import ClassVar

from interlock.dialects import common
from interlock.dialects.base import DefaultProvider, Dialect
from interlock.dialects.openai_chat import request, response, view, wire
from interlock.dialects.openai_chat.body import rewrite_body
from interlock.dialects.openai_chat.reassemble import ChatReassembler
from interlock.dialects.openai_chat.stream import ChatStreamRewriter


class OpenAIChat(Dialect):
    name: ClassVar[str] = request.NAME
    messages_path: ClassVar[str] = request.MESSAGES_PATH
    operation_name: ClassVar[str] = "chat"
    default_providers: ClassVar[tuple[DefaultProvider, ...]] = (
        DefaultProvider("openai", ("api.openai.com",), ("/v1/chat/completions",)),
        DefaultProvider("openrouter", ("openrouter.ai",), ("/api/v1/chat/completions",)),
        DefaultProvider("groq", ("api.groq.com",), ("/openai/v1/chat/completions",)),
        DefaultProvider("mistral", ("api.mistral.ai",), ("/v1/chat/completions",), "mistral_ai"),
        DefaultProvider("deepseek", ("api.deepseek.com",), ("/chat/completions", "/v1/chat/completions")),
        DefaultProvider("xai", ("api.x.ai",), ("/v1/chat/completions",), "x_ai"),
        DefaultProvider("together", ("api.together.xyz",), ("/v1/chat/completions",)),
        DefaultProvider("fireworks", ("api.fireworks.ai",), ("/inference/v1/chat/completions",)),
        DefaultProvider(
            "azure-openai", ("*.openai.azure.com",), ("/openai/deployments/*/chat/completions",), "azure.ai.openai"
        ),
    )

    last_user_text = staticmethod(common.last_user_text)
    typed_text = staticmethod(common.typed_text)
    map_request_text = staticmethod(request.map_request_text)
    add_system_text = staticmethod(request.add_system_text)
    blocked_request = staticmethod(request.blocked_request)
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
    reassembler = staticmethod(ChatReassembler)
    stream_rewriter = staticmethod(ChatStreamRewriter)
    rewrite_body = staticmethod(rewrite_body)
    tool_definition = staticmethod(request.tool_definition)
    recent_tool_calls = staticmethod(request.recent_tool_calls)
    session_key = staticmethod(request.session_key)
    request_view = staticmethod(view.request_view)
    response_view = staticmethod(view.response_view)
    messages_view = staticmethod(view.messages_view)
