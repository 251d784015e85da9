"""Anthropic Messages (`/v1/messages`), as the Anthropic SDKs and Claude Code speak it."""

from __future__ import annotations

from typing import ClassVar

from interlock.dialects import common
from interlock.dialects.anthropic_messages import request, response, view, wire
from interlock.dialects.anthropic_messages.body import rewrite_body
from interlock.dialects.anthropic_messages.reassemble import MessagesReassembler
from interlock.dialects.anthropic_messages.stream import MessagesStreamRewriter
from interlock.dialects.base import DefaultProvider, Dialect


class AnthropicMessages(Dialect):
    name: ClassVar[str] = request.NAME
    messages_path: ClassVar[str] = request.MESSAGES_PATH
    operation_name: ClassVar[str] = "chat"
    default_providers: ClassVar[tuple[DefaultProvider, ...]] = (
        DefaultProvider("anthropic", ("api.anthropic.com",), ("/v1/messages",)),
    )

    last_user_text = staticmethod(common.last_user_text)
    typed_text = staticmethod(common.typed_text)
    map_request_text = staticmethod(request.map_request_text)
    add_system_text = staticmethod(request.add_system_text)
    blocked_request = staticmethod(request.blocked_request)
    timeout_error = staticmethod(wire.timeout_error)
    no_match_error = staticmethod(wire.no_match_error)
    limit_error = staticmethod(wire.limit_error)
    stream_error = staticmethod(wire.stream_error)
    keepalive = staticmethod(wire.keepalive)
    response_text = staticmethod(response.response_text)
    usage = staticmethod(response.usage)
    request_settings = staticmethod(request.request_settings)
    tool_definitions = staticmethod(request.tool_definitions)
    stop_reason = staticmethod(response.stop_reason)
    tool_calls = staticmethod(response.tool_calls)
    reassembler = staticmethod(MessagesReassembler)
    stream_rewriter = staticmethod(MessagesStreamRewriter)
    rewrite_body = staticmethod(rewrite_body)
    tool_definition = staticmethod(request.tool_definition)
    recent_tool_calls = staticmethod(request.recent_tool_calls)
    session_key = staticmethod(request.session_key)
    request_view = staticmethod(view.request_view)
    response_view = staticmethod(view.response_view)
    messages_view = staticmethod(view.messages_view)
