"""The Interlock mitmproxy addon: matches LLM calls, runs the policy chain, records them.

Non-LLM flows are dismissed in `requestheaders` with one dictionary look-up and never
touched again. Matched flows get a call_id (flow comment, response header
`x-interlock-call-id`, record, terminal line); their requests go through the policy
chain; their responses stream through the chain live (or pass through untouched when no
policy looks at responses) and are recorded when they end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http

from addons import stream_wait
from addons.call_state import CallState, CallStates, new_call_id
from addons.live_config import LiveConfig
from addons.record_builder import build_record, parse_json_body, response_body_bytes
from addons.terminal import CallLinePrinter
from interlock.codecs import codec_for
from interlock.config import ConfigError
from interlock.engine import responses
from interlock.engine.anthropic_stream import AnthropicStreamRewriter
from interlock.engine.openai_stream import OpenAIChatStreamRewriter
from interlock.engine.stream import PolicyStream, StreamRewriter, rewrite_body
from interlock.secrets import redact_headers, secret_values
from interlock.sessions import session_id_for
from policies.base import PolicyContext
from policies.chain import PolicyFailed
from recorder import cost
from recorder.rows import record_price
from recorder.writer import RecorderWriter

logger = logging.getLogger(__name__)

CALL_ID_HEADER = "x-interlock-call-id"
DEFAULT_CONFIG = str(Path(__file__).resolve().parent.parent / "mitm_config.yaml")

_REWRITERS: dict[str, type[StreamRewriter]] = {
    "anthropic-messages": AnthropicStreamRewriter,
    "openai-chat": OpenAIChatStreamRewriter,
}
_RESPONSE_REWRITES = {
    "anthropic-messages": responses.rewrite_anthropic,
    "openai-chat": responses.rewrite_openai_chat,
}


def _is_sse(headers: http.Headers) -> bool:
    return headers.get("content-type", "").startswith("text/event-stream")


def _encoded(headers: http.Headers) -> bool:
    return headers.get("content-encoding", "identity").strip().lower() not in ("", "identity")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class Interceptor:
    def __init__(self) -> None:
        self.live: LiveConfig | None = None
        self.writer: RecorderWriter | None = None
        self.printer = CallLinePrinter()
        self.calls = CallStates()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.live_waits = False  # mid-stream waits available (see addons.stream_wait)

    # -- lifecycle -------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option("interlock_config", str, DEFAULT_CONFIG, "Path of Interlock's YAML configuration.")
        loader.add_option(
            "interlock_db",
            str,
            os.environ.get("INTERLOCK_DB", ""),
            "SQLite database to record calls in (default: $INTERLOCK_DB, else recorder.database of the config).",
        )
        self.live_waits = stream_wait.install()

    def configure(self, updated: set[str]) -> None:
        if "interlock_config" in updated:
            try:
                self.live = LiveConfig(ctx.options.interlock_config)
            except ConfigError as error:
                raise exceptions.OptionsError(f"interlock_config: {error}") from None
        if self.writer is None and self.live is not None and ({"interlock_db", "interlock_config"} & updated):
            recorder = self.live.current.config.recorder
            self.writer = RecorderWriter(
                ctx.options.interlock_db or recorder.database,
                queue_size=recorder.queue_size,
                batch_size=recorder.batch_size,
            )

    def running(self) -> None:
        if self.writer is not None:
            self._spawn(self.writer.start())
        if self.live is not None:
            self._spawn(self._watch_config(self.live))
        self._spawn(asyncio.to_thread(cost.load_cost_map))
        logger.info("Interlock ready: recording to %s", self.writer.db_path if self.writer else "-")

    async def _watch_config(self, live: LiveConfig) -> None:
        while True:
            await asyncio.sleep(1.0)
            # In a thread: a new policy may import a heavy library (the judge's litellm).
            await asyncio.to_thread(live.reload_if_changed)

    def done(self) -> asyncio.Task[None] | None:
        # Returning a task lets mitmproxy await the drain at shutdown, while a script
        # reload (which calls `done` synchronously) still works.
        for task in self._tasks:
            task.cancel()
        if self.writer is None:
            return None
        return asyncio.ensure_future(self.writer.stop())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- requests --------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if self.live is None:
            return
        request = flow.request
        loaded = self.live.current
        match = loaded.registry.match(request.method, request.pretty_host, request.path)
        if match is None:
            return
        state = CallState(
            call_id=new_call_id(),
            match=match,
            started_at=request.timestamp_start or time.time(),
            host=request.pretty_host,
            path=request.path.split("?", 1)[0],
            chain=loaded.chain,
        )
        headers = list(request.headers.items(multi=True))
        state.secrets = secret_values(headers, request.pretty_url)
        state.request_original_headers = redact_headers(headers)
        self.calls.attach(flow, state)
        flow.comment = f"interlock {state.call_id}"
        # Streams are parsed as they pass: ask upstream for an unencoded body.
        request.headers["accept-encoding"] = "identity"

    async def request(self, flow: http.HTTPFlow) -> None:
        state = self.calls.get(flow)
        if state is None:
            return
        parsed, note = parse_json_body(flow.request.get_content(strict=False))  # decoded if compressed
        state.request_original = state.request_final = parsed
        state.request_note = note
        if not isinstance(parsed, dict):
            return  # not JSON: forwarded as it came, recorded raw
        codec = codec_for(state.match.dialect)
        state.model = codec.request_model(parsed)
        state.stream_requested = codec.request_streams(parsed)
        chain = state.chain
        if chain is None:
            return
        state.policy = PolicyContext(
            call_id=state.call_id,
            dialect=state.match.dialect,
            codec=codec,
            model=state.model,
            request=parsed,
            streaming=state.stream_requested,
        )
        try:
            final = await chain.request(state.policy, parsed)
        except PolicyFailed as failed:
            self._answer_blocked(flow, state, failed)
            return
        if final is not parsed:
            state.request_final = final
            state.policy.request = final
            state.policy.model = codec.request_model(final)
            flow.request.content = _json_bytes(final)

    def _answer_blocked(self, flow: http.HTTPFlow, state: CallState, failed: PolicyFailed) -> None:
        """A failing request policy blocks: answer with a dialect-correct error, upstream
        is never contacted."""
        if state.policy is not None:
            state.policy.end_message(failed.policy, failed.reason)
        if state.match.dialect == "anthropic-messages":
            body = {"type": "error", "error": {"type": "permission_error", "message": failed.notice}}
        else:
            body = {"error": {"message": failed.notice, "type": "interlock_policy_error", "code": "policy_blocked"}}
        flow.response = http.Response.make(
            403, _json_bytes(body), {"content-type": "application/json", CALL_ID_HEADER: state.call_id}
        )

    # -- responses -------------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.calls.get(flow)
        if state is None or flow.response is None:
            return
        response = flow.response
        response.headers[CALL_ID_HEADER] = state.call_id
        if not _is_sse(response.headers) or flow.is_replay == "response":
            return  # replayed bodies arrive whole (server_replay): policed in `response`
        state.streamed = True
        chain, policy = state.chain, state.policy
        if chain is None or policy is None or not chain.touches_responses:
            response.stream = state.tap
        elif self.live_waits and not _encoded(response.headers):
            state.policy_stream = PolicyStream(_REWRITERS[state.match.dialect](chain, policy), observe=state.tap)
            response.stream = state.policy_stream
            response.headers.pop("content-length", None)  # the body length may change
        else:
            # No mid-stream waits, or upstream compressed the stream despite `identity`:
            # buffered, decoded and policed whole in `response`, never let through unpoliced.
            state.streamed = False

    async def interlock_stream_wait(self, flow: http.HTTPFlow) -> None:
        """A policy is waiting mid-stream (see `addons.stream_wait`); only this flow pauses."""
        state = self.calls.get(flow)
        if state is not None and state.policy_stream is not None:
            await state.policy_stream.wait()

    async def response(self, flow: http.HTTPFlow) -> None:
        state = self.calls.get(flow)
        if state is not None and flow.response is not None and not state.streamed:
            await self._police_whole_response(state, flow.response)
        self._finish(flow, None)

    async def _police_whole_response(self, state: CallState, response: http.Response) -> None:
        """Non-streamed (or replayed) responses go through the same chain at once."""
        chain, policy = state.chain, state.policy
        if chain is None or policy is None or not chain.touches_responses or response.status_code >= 400:
            return
        body = response_body_bytes(response)
        if not body:
            return
        if _is_sse(response.headers):
            stream = PolicyStream(_REWRITERS[state.match.dialect](chain, policy))
            final = await rewrite_body(stream, body)
            changed = final != body
        else:
            parsed, _ = parse_json_body(body)
            if not isinstance(parsed, dict):
                return
            rewritten = await _RESPONSE_REWRITES[state.match.dialect](chain, policy, parsed)
            changed = rewritten != parsed
            final = _json_bytes(rewritten) if changed else body
        if changed:
            state.response_original_body = body
            response.content = final

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow, flow.error.msg if flow.error else "flow error")

    def _finish(self, flow: http.HTTPFlow, error: str | None) -> None:
        state = self.calls.get(flow)
        if state is None or self.live is None:
            return
        try:
            session_id = session_id_for(
                state.match.dialect, state.request_original, flow.request.headers, self.live.current.config.sessions
            )
            record = build_record(state, flow, session_id, error)
        except Exception:  # a record we cannot build must not break the flow
            logger.exception("Interlock could not build the record of call %s", state.call_id)
            return
        finally:
            self.calls.detach(flow)
        if record.verdict != "pass":
            flow.marked = ":warning:" if record.verdict == "modified" else ":no_entry:"
            reasons = "; ".join(f"{e.policy}: {e.action} {e.reason}".strip() for e in record.events)
            flow.comment = f"interlock {state.call_id} {record.verdict}" + (f": {reasons}" if reasons else "")
        if self.writer is not None:
            self.writer.submit(record)
        cost_usd, _ = record_price(record)
        self.printer.print(record, cost_usd)
