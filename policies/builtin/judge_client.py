"""Asks the judge model through litellm: within a deadline, with retries, never via a proxy.

`load_litellm()` imports litellm once. The import takes seconds and ~160 MB, so the
policy calls it from its constructor (proxy start-up or a config reload in a worker
thread), never on the event loop while traffic flows. It uses litellm's bundled price
map (no download at import) and turns the loop guard on: litellm's HTTP transport
ignores HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, so a judge call made from inside the proxy
goes straight to the judge instead of coming back through the proxy.

The constructor also warms litellm up for the judge's model (a mocked call, no network),
so that the first real call does not import modules on the event loop.

`JudgeClient.ask()` makes one judgement: attempts bounded by a deadline, retried after
rate limits, timeouts, connection failures and 5xx answers with exponential backoff
(never past the deadline; a `retry-after` longer than the time left ends it early).
Failures raise `JudgeFailure` with a short, secret-free reason for the client and a
detail for the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from interlock.secrets import Scrubber

logger = logging.getLogger(__name__)

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm")
MAX_DETAIL_CHARS = 300


@cache
def load_litellm() -> ModuleType:
    """litellm, imported once, with the bundled price map and the loop guard on."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # mitmproxy's root logger is at DEBUG: litellm would log every prompt (and its curl),
    # already while it is imported.
    for name in LITELLM_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    import litellm

    litellm.suppress_debug_info = True
    # The aiohttp transport (litellm's default for every provider) reads proxies from the
    # environment per request unless this is set.
    litellm.disable_aiohttp_trust_env = True
    litellm.aiohttp_trust_env = False
    return litellm


def check_loop_guard() -> None:
    """Refuse to run when a proxy is set but litellm uses its httpx fallback transport
    (chosen by DISABLE_AIOHTTP_TRANSPORT or LITELLM_HTTP2), which always honours it."""
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    proxies = [name for name in PROXY_VARIABLES if os.environ.get(name) or os.environ.get(name.lower())]
    if proxies and not AsyncHTTPHandler.should_use_aiohttp_transport():
        raise ValueError(
            f"{', '.join(proxies)} is set and litellm's aiohttp transport is disabled "
            "(DISABLE_AIOHTTP_TRANSPORT or LITELLM_HTTP2): the judge's calls would go through that proxy"
        )


def warm_up(litellm: ModuleType, model: str, api_base: str | None) -> None:
    """Do now what litellm would otherwise do on the event loop at the first judge call:
    import the provider's modules (a mocked call, no network) and load the tokenizer. This
    keeps that call from stalling every stream for tens of milliseconds."""
    try:
        litellm.completion(
            model=model, api_base=api_base, messages=[{"role": "user", "content": "warm-up"}], mock_response="{}"
        )
    except Exception as error:  # noqa: BLE001 - only a warm-up: the first real call does the same work
        logger.warning("judge %s: warm-up failed (%s); its first call may stall other streams", model, error)
    with contextlib.suppress(ImportError):  # an internal module: only a warm-up if it moves
        importlib.import_module("litellm.litellm_core_utils.default_encoding")


@dataclass(frozen=True, slots=True)
class JudgeReply:
    text: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None  # None when litellm does not know the price
    attempts: int


class JudgeFailure(Exception):
    """No answer from the judge. `reason` is shown to clients; `detail` is recorded."""

    def __init__(self, reason: str, detail: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.attempts = attempts


def _status(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it was raised from (litellm wraps a refused connection in a 500)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _reason(error: BaseException) -> str:
    """A few safe words about a failed attempt."""
    status = _status(error)
    causes = list(_causes(error))
    if status == 408 or any(isinstance(cause, TimeoutError) for cause in causes):
        return "timed out"
    if status == 429:
        return "was rate-limited (HTTP 429)"
    if any(isinstance(cause, OSError) for cause in causes):
        return "was unreachable"
    if status is not None and status >= 500:
        return f"was unavailable (HTTP {status})"
    return f"failed (HTTP {status})" if status is not None else f"failed ({type(error).__name__})"


def _retryable(error: BaseException) -> bool:
    status = _status(error)
    return (
        status in (408, 409, 429)
        or (status or 0) >= 500
        or any(isinstance(cause, OSError) for cause in _causes(error))  # timeouts and connection errors
    )


def _retry_after(error: BaseException) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class JudgeClient:
    """One judge model with its connection settings."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None,
        api_key: str | None,
        temperature: float,
        max_tokens: int,
        retries: int,
        backoff_s: float,
        timeout_s: float,
    ) -> None:
        with warnings.catch_warnings():
            # litellm's lazily imported types make pydantic warn about `ReadOnly` fields.
            warnings.filterwarnings("ignore", message=".*`ReadOnly` qualifier", category=UserWarning)
            self.litellm = load_litellm()
            check_loop_guard()
            try:
                self.litellm.get_llm_provider(model=model, api_base=api_base)
            except Exception as error:  # noqa: BLE001 - litellm raises its own error types here
                reason = str(error).splitlines()[0][:200]
                raise ValueError(f"model: litellm cannot route {model!r}: {reason}") from None
            warm_up(self.litellm, model, api_base)
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.retries = retries
        self.backoff_s = backoff_s
        # litellm's own timeout, the same on every attempt: litellm caches its provider
        # client by its arguments, timeout included, so a per-attempt timeout (the time
        # left) built a new client and connection pool on each call, about a third of a
        # judgement's CPU. The deadline of each call is `ask`'s, on the loop's clock.
        self.timeout_s = timeout_s

    def _detail(self, error: BaseException, attempts: int) -> str:
        first_line = (str(error).splitlines() or [""])[0][:MAX_DETAIL_CHARS]
        text = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
        return f"{Scrubber([self.api_key] if self.api_key else [])(text)} (attempts: {attempts})"

    async def ask(self, messages: list[dict[str, str]], deadline: float) -> JudgeReply:
        """The judge's answer, or `JudgeFailure` by `deadline` (the loop's clock)."""
        loop = asyncio.get_running_loop()
        attempts = 0
        while True:
            attempts += 1
            try:
                if deadline <= loop.time():
                    raise TimeoutError
                async with asyncio.timeout_at(deadline):
                    response = await self._complete(messages)
                return self._reply(response, attempts)
            except Exception as error:  # noqa: BLE001 - every failure becomes a JudgeFailure
                reason = _reason(error)
                if loop.time() >= deadline:
                    raise JudgeFailure("timed out", self._detail(error, attempts), attempts) from None
                if not _retryable(error) or attempts > self.retries:
                    raise JudgeFailure(reason, self._detail(error, attempts), attempts) from None
                pause = max(self.backoff_s * 2 ** (attempts - 1), _retry_after(error) or 0.0)
                if loop.time() + pause >= deadline:
                    detail = f"{self._detail(error, attempts)}; no time left to retry"
                    raise JudgeFailure(reason, detail, attempts) from None
                logger.info("judge %s: attempt %d %s, retrying in %.2f s", self.model, attempts, reason, pause)
                await asyncio.sleep(pause)

    async def _complete(self, messages: list[dict[str, str]]) -> Any:
        return await self.litellm.acompletion(
            model=self.model,
            messages=messages,
            api_base=self.api_base,
            api_key=self.api_key,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            timeout=self.timeout_s,
            max_retries=0,  # the provider SDK must not retry on its own: retries are ours
            num_retries=0,
            drop_params=True,  # a judge model that rejects temperature still answers
        )

    @staticmethod
    def _reply(response: Any, attempts: int) -> JudgeReply:
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        content = getattr(message, "content", None)
        usage = getattr(response, "usage", None)
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost")
        return JudgeReply(
            text=content if isinstance(content, str) else None,
            input_tokens=getattr(usage, "prompt_tokens", None),
            output_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=float(cost) if isinstance(cost, int | float) and cost > 0 else None,
            attempts=attempts,
        )
