"""Real SDK clients and a raw HTTP client that reach the providers through a test proxy.

Every client talks to the real base URLs (https://api.openai.com/v1,
https://api.anthropic.com, https://generativelanguage.googleapis.com) through `proxy_url`, trusts the mitmproxy CA through the
combined bundle, ignores the environment (`trust_env=False`) and never retries, so
each SDK call is exactly one request. `ClientFactory.close()` closes the sync clients
it made; use the async ones with `async with`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2
from anthropic import Anthropic, AsyncAnthropic
from harness import MitmCA
from openai import AsyncOpenAI, OpenAI

if TYPE_CHECKING:
    from google import genai

OPENAI_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Arrival:
    """A piece of a response body and when the client got it (time.monotonic())."""

    at: float
    data: bytes


@dataclass
class ClientFactory:
    """Clients for one proxy and one API key."""

    proxy_url: str
    ca: MitmCA
    api_key: str
    _made: list[Any] = field(default_factory=list)

    def _http(self) -> httpx2.Client:
        return httpx2.Client(
            proxy=self.proxy_url,
            verify=self.ca.ssl_context(),
            trust_env=False,
            timeout=TIMEOUT_S,
        )

    def _async_http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            proxy=self.proxy_url,
            verify=self.ca.ssl_context(),
            trust_env=False,
            timeout=TIMEOUT_S,
        )

    def _keep[C](self, client: C) -> C:
        self._made.append(client)
        return client

    def openai(self) -> OpenAI:
        return self._keep(
            OpenAI(
                api_key=self.api_key,
                base_url=OPENAI_BASE_URL,
                http_client=self._http(),
                max_retries=0,
            )
        )

    def async_openai(self) -> AsyncOpenAI:
        return AsyncOpenAI(
            api_key=self.api_key,
            base_url=OPENAI_BASE_URL,
            http_client=self._async_http(),
            max_retries=0,
        )

    def anthropic(self) -> Anthropic:
        return self._keep(
            Anthropic(
                api_key=self.api_key,
                base_url=ANTHROPIC_BASE_URL,
                http_client=self._http(),
                max_retries=0,
            )
        )

    def async_anthropic(self) -> AsyncAnthropic:
        return AsyncAnthropic(
            api_key=self.api_key,
            base_url=ANTHROPIC_BASE_URL,
            http_client=self._async_http(),
            max_retries=0,
        )

    def gemini(self, **options: Any) -> genai.Client:
        """The `google-genai` client for generativelanguage.googleapis.com (the key goes
        as `x-goog-api-key`), one attempt per call; `options` go to `genai.Client`
        (`vertexai=True, project=..., location=..., credentials=...` for Vertex AI)."""
        from google import genai  # imported when a test asks: it takes a while

        http_options = genai.types.HttpOptions(
            httpx_client=self._keep(self._http()), retry_options=genai.types.HttpRetryOptions(attempts=1)
        )
        if not options.get("vertexai"):
            options["api_key"] = self.api_key
        return genai.Client(http_options=http_options, **options)

    def raw(self) -> httpx2.Client:
        """A plain client asking for `identity`, so `response.content` is the exact body."""
        client = self._http()
        client.headers["accept-encoding"] = "identity"
        return self._keep(client)

    def close(self) -> None:
        for client in self._made:
            client.close()
        self._made.clear()


def timed_chunks(response: httpx2.Response) -> Iterator[Arrival]:
    """The raw body of a streamed response, chunk by chunk, with arrival times."""
    for data in response.iter_raw():
        yield Arrival(time.monotonic(), data)


def llm_request(dialect: str, model: str, messages: list[dict[str, Any]], stream: bool, **extra: Any) -> dict[str, Any]:
    """A Chat Completions, Responses or Messages request body as the SDKs send it
    (`dialect` may be `openai`/`openai-chat`, `openai-responses`, or
    `anthropic`/`anthropic-messages`)."""
    if dialect == "openai-responses":
        return {"model": model, "input": messages, **extra, **({"stream": True} if stream else {})}
    body: dict[str, Any] = {"model": model, "messages": messages, **extra}
    openai = dialect.startswith("openai")
    if not openai:
        body["max_tokens"] = 256
    if stream:
        body["stream"] = True
        if openai:
            body["stream_options"] = {"include_usage": True}
    return body


def auth_headers(dialect: str, api_key: str) -> dict[str, str]:
    """The API key the way each provider's SDK sends it."""
    if dialect.startswith("openai"):
        return {"authorization": f"Bearer {api_key}"}
    return {"x-api-key": api_key, "anthropic-version": "2023-06-01"}
