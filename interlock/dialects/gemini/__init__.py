"""Google Gemini (`generateContent` / `streamGenerateContent`) as AI Studio
(generativelanguage.googleapis.com), Vertex AI and Code Assist (Gemini CLI with a
Google login) speak it, the `google-genai` SDK and Gemini CLI included."""

from __future__ import annotations

from typing import ClassVar

from interlock.dialects.base import DefaultProvider, Dialect
from interlock.dialects.gemini import request, response, view, wire
from interlock.dialects.gemini.body import rewrite_body
from interlock.dialects.gemini.reassemble import GeminiReassembler
from interlock.dialects.gemini.stream import GeminiStreamRewriter

_METHODS = (":generateContent", ":streamGenerateContent")
_VERTEX = "/projects/*/publishers/google/models/*"  # `*` spans slashes: any location


class Gemini(Dialect):
    name: ClassVar[str] = request.NAME
    messages_path: ClassVar[str] = request.MESSAGES_PATH
    operation_name: ClassVar[str] = "generate_content"
    default_providers: ClassVar[tuple[DefaultProvider, ...]] = (
        DefaultProvider(
            "gemini",
            ("generativelanguage.googleapis.com",),
            tuple(f"/v1*/models/*{method}" for method in _METHODS),
            "gcp.gemini",
        ),
        DefaultProvider(
            "vertex-ai",
            ("aiplatform.googleapis.com", "*-aiplatform.googleapis.com"),
            tuple(
                f"/v1*{prefix}{method}" for prefix in (_VERTEX, "/publishers/google/models/*") for method in _METHODS
            ),
            "gcp.vertex_ai",
        ),
        DefaultProvider(
            "code-assist", ("cloudcode-pa.googleapis.com",), tuple(f"/v1internal{m}" for m in _METHODS), "gcp.gen_ai"
        ),
    )

    read_request = staticmethod(request.read_request)
    write_request = staticmethod(request.write_request)
    request_streams = staticmethod(request.request_streams)
    last_user_text = staticmethod(request.last_user_text)
    typed_text = staticmethod(request.typed_text)
    map_request_text = staticmethod(request.map_request_text)
    add_system_text = staticmethod(request.add_system_text)
    blocked_request = staticmethod(request.blocked_request)
    timeout_error = staticmethod(wire.timeout_error)
    no_match_error = staticmethod(wire.no_match_error)
    limit_error = staticmethod(wire.limit_error)
    stream_error = staticmethod(wire.stream_error)
    keepalive = staticmethod(wire.keepalive)
    json_array_as_sse = staticmethod(wire.json_array_as_sse)
    response_text = staticmethod(response.response_text)
    response_model = staticmethod(response.response_model)
    usage = staticmethod(response.usage)
    request_settings = staticmethod(request.request_settings)
    tool_definitions = staticmethod(request.tool_definitions)
    reasoning_tokens = staticmethod(response.reasoning_tokens)
    generation_id = staticmethod(response.generation_id)
    stop_reason = staticmethod(response.stop_reason)
    tool_calls = staticmethod(response.tool_calls)
    reassembler = staticmethod(GeminiReassembler)
    stream_rewriter = staticmethod(GeminiStreamRewriter)
    rewrite_body = staticmethod(rewrite_body)
    tool_definition = staticmethod(request.tool_definition)
    recent_tool_calls = staticmethod(request.recent_tool_calls)
    session_key = staticmethod(request.session_key)
    request_view = staticmethod(view.request_view)
    response_view = staticmethod(view.response_view)
    messages_view = staticmethod(view.messages_view)
