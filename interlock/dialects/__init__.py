"""The dialect registry: every wire format Interlock speaks, by name.

Adding a dialect is one package under `interlock/dialects/`, one line here and its tests
(docs/dialects.md has the recipe). This is the only module outside the dialect packages
that names a dialect.
"""

from __future__ import annotations

from interlock.dialects.anthropic_messages import AnthropicMessages
from interlock.dialects.base import Dialect
from interlock.dialects.gemini import Gemini
from interlock.dialects.openai_chat import OpenAIChat
from interlock.dialects.openai_responses import OpenAIResponses

DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect for dialect in (OpenAIChat(), AnthropicMessages(), OpenAIResponses(), Gemini())
}


def dialect_for(name: str) -> Dialect:
    """The dialect called `name`; KeyError for an unknown name (config validation
    rejects those before a flow ever asks)."""
    return DIALECTS[name]
