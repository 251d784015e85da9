"""OpenAI Chat Completions (`/v1/chat/completions`), on OpenAI and the hosts that speak
the same format (OpenRouter, Groq, Mistral, DeepSeek, xAI, Together, Fireworks, Azure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from interlock.dialects.base import DefaultProvider, Dialect, Reassembler, SystemPosition, TextEdit
from interlock.dialects.common import last_user_text, typed_text
from interlock.dialects.openai_chat import request, response, view
from interlock.dialects.openai_chat.body import rewrite_body
from interlock.dialects.openai_chat.reassemble import ChatReassembler
from interlock.dialects.openai_chat.stream import ChatStreamRewriter
from interlock.neutral import Message, PastCall, RequestView, ResponseView, ToolCall, Usage

if TYPE_CHECKING:
    from interlock.engine.stream import StreamRewriter
    from interlock.policy.base import PolicyContext
    from interlock.policy.chain import PolicyChain


class OpenAIChat(Dialect):
    name: ClassVar[str] = request.NAME
    messages_path: ClassVar[str] = request.MESSAGES_PATH
    default_providers: ClassVar[tuple[DefaultProvider, ...]] = (
        DefaultProvider("openai", ("api.openai.com",), ("/v1/chat/completions",)),
        DefaultProvider("openrouter", ("openrouter.ai",), ("/api/v1/chat/completions",)),
        DefaultProvider("groq", ("api.groq.com",), ("/openai/v1/chat/completions",)),
        DefaultProvider("mistral", ("api.mistral.ai",), ("/v1/chat/completions",)),
        DefaultProvider("deepseek", ("api.deepseek.com",), ("/chat/completions", "/v1/chat/completions")),
        DefaultProvider("xai", ("api.x.ai",), ("/v1/chat/completions",)),
        DefaultProvider("together", ("api.together.xyz",), ("/v1/chat/completions",)),
        DefaultProvider("fireworks", ("api.fireworks.ai",), ("/inference/v1/chat/completions",)),
        DefaultProvider("azure-openai", ("*.openai.azure.com",), ("/openai/deployments/*/chat/completions",)),
    )

    def last_user_text(self, request: dict[str, Any]) -> str:
        return last_user_text(request)

    def typed_text(self, request: dict[str, Any]) -> str:
        return typed_text(request)

    def map_request_text(self, body: dict[str, Any], edit: TextEdit) -> dict[str, Any]:
        return request.map_request_text(body, edit)

    def add_system_text(self, body: dict[str, Any], text: str, position: SystemPosition) -> dict[str, Any]:
        return request.add_system_text(body, text, position)

    def blocked_request(self, notice: str) -> dict[str, Any]:
        return request.blocked_request(notice)

    def response_text(self, body: dict[str, Any]) -> str:
        return response.response_text(body)

    def usage(self, body: dict[str, Any]) -> Usage:
        return response.usage(body)

    def stop_reason(self, body: dict[str, Any]) -> str | None:
        return response.stop_reason(body)

    def tool_calls(self, body: dict[str, Any]) -> list[ToolCall]:
        return response.tool_calls(body)

    def reassembler(self) -> Reassembler:
        return ChatReassembler()

    def stream_rewriter(self, chain: PolicyChain, ctx: PolicyContext) -> StreamRewriter:
        return ChatStreamRewriter(chain, ctx)

    async def rewrite_body(self, chain: PolicyChain, ctx: PolicyContext, body: dict[str, Any]) -> dict[str, Any]:
        return await rewrite_body(chain, ctx, body)

    def tool_definition(self, body: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        return request.tool_definition(body, name)

    def recent_tool_calls(self, body: dict[str, Any] | None, count: int) -> list[PastCall]:
        return request.recent_tool_calls(body, count)

    def session_key(self, body: dict[str, Any]) -> str | None:
        return request.session_key(body)

    def request_view(self, body: dict[str, Any]) -> RequestView | None:
        return view.request_view(body) if isinstance(body.get("messages", []), list) else None

    def response_view(self, body: dict[str, Any]) -> ResponseView | None:
        return view.response_view(body) if "choices" in body else None

    def messages_view(self, messages: list[Any]) -> list[Message]:
        return [view.message_view(m) for m in messages]
