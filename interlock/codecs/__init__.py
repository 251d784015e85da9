"""Dialect codecs, looked up by dialect name."""

from __future__ import annotations

from interlock.codecs.anthropic_messages import AnthropicMessagesCodec
from interlock.codecs.base import Codec
from interlock.codecs.openai_chat import OpenAIChatCodec

CODECS: dict[str, Codec] = {codec.dialect: codec for codec in (OpenAIChatCodec(), AnthropicMessagesCodec())}


def codec_for(dialect: str) -> Codec:
    return CODECS[dialect]
