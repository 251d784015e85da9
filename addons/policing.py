"""Runs the policy chain on a matched call: its request, its stream live, its whole body.

`request`: the request chain; a failing policy that blocks answers with the dialect's
error body, a policy that refuses on purpose (a spent budget) with its status (429), the
dialect's limit error and retry advice (`retry-after`, `x-should-retry`), and upstream is
never contacted. `responseheaders`: an SSE response gets a
`StreamTap` (the record is reassembled from it as the stream passes) and, when a policy
looks at responses, a `PolicyStream` that rewrites it live. A stream upstream compressed
(gzip, deflate, br, zstd) is decoded as it passes: with no response policy the client
gets the original compressed bytes; a policed one reaches the client decoded, as
identity (`content-encoding` and `content-length` removed); mid-stream waits go through
`interlock_stream_wait` (see `addons.stream_wait`), with the dialect's keepalive event
sent every `keepalive.interval_s` while a policy holds the stream. `response`: bodies that arrived
whole (non-streamed, replayed, or a compressed stream buffered) go through the same
chain at once (an encoding with no incremental decoder is buffered so, decoded by
mitmproxy; a stream sent as one JSON array of chunks, `Dialect.json_array_as_sse`, goes
through the stream rewriter as its events). `error`: a stream cut mid-body is ended for its policies, sending nothing.
"""

from __future__ import annotations

from typing import Any

from mitmproxy import http

from addons import stream_wait
from addons.call_state import CALL_ID_HEADER, CallState, CallStates
from interlock.content_encoding import UnsupportedEncoding, decoder_for
from interlock.engine.policing import json_bytes, police_body, police_request
from interlock.engine.stream import Keepalive, PolicyStream, StreamTap
from interlock.policy.base import Refused
from interlock.policy.chain import PolicyFailed


def is_sse(headers: http.Headers) -> bool:
    return headers.get("content-type", "").startswith("text/event-stream")


def response_body_bytes(response: http.Response) -> bytes | None:
    """The decoded body (mitmproxy undoes gzip/br/zstd); raw bytes if decoding fails."""
    try:
        return response.get_content(strict=False)
    except ValueError:
        return response.raw_content


class Policing:
    def __init__(self, calls: CallStates) -> None:
        self.calls = calls
        self.live_waits = False  # mid-stream waits available (see addons.stream_wait)

    def load(self, loader: Any) -> None:
        self.live_waits = stream_wait.install()

    async def request(self, flow: http.HTTPFlow) -> None:
        state = self.calls.get(flow)
        if state is None or not isinstance(state.request_original, dict):
            return
        parsed = state.request_original
        state.policy = self.calls.policy_context(state, parsed, flow.request.headers)
        policed = await police_request(state.dialect, state.chain, state.policy, parsed)
        if policed.blocked is not None:
            self._answer_blocked(flow, state, policed.blocked)
            return
        if policed.refused is not None:
            self._answer_refused(flow, state, policed.refused)
            return
        final = policed.final
        if final is not parsed:
            state.request_final = final
            path, body = state.dialect.write_request(flow.request.path, final)
            flow.request.path = path
            flow.request.content = json_bytes(body)

    def _answer_blocked(self, flow: http.HTTPFlow, state: CallState, failed: PolicyFailed) -> None:
        flow.response = http.Response.make(
            state.dialect.blocked_status,
            json_bytes(state.dialect.blocked_request(failed.notice)),
            {"content-type": "application/json", CALL_ID_HEADER: state.call_id},
        )

    def _answer_refused(self, flow: http.HTTPFlow, state: CallState, refused: Refused) -> None:
        headers = {"content-type": "application/json", CALL_ID_HEADER: state.call_id}
        if refused.retry_after_s is not None:
            headers["retry-after"] = str(refused.retry_after_s)
        if not refused.retry_soon:
            # Else the openai SDK retries twice within seconds, each retry refused again, and
            # the anthropic SDK sleeps until `retry-after` (an hour for an hourly budget).
            headers["x-should-retry"] = "false"
        body = state.dialect.limit_error(refused.message, refused.retry_soon)
        flow.response = http.Response.make(refused.status, json_bytes(body), headers)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.calls.get(flow)
        if state is None or flow.response is None:
            return
        response = flow.response
        if not is_sse(response.headers) or flow.is_replay == "response":
            return  # replayed bodies arrive whole (server_replay): policed in `response`
        policed = state.policy is not None and state.chain.touches_responses
        try:
            decoder = decoder_for(response.headers.get("content-encoding"))
        except UnsupportedEncoding:
            if policed:
                return  # buffered, decoded by mitmproxy and policed whole in `response`
            decoder = None  # forwarded as it came; the record keeps the bytes undecoded
        if policed and not self.live_waits:
            return  # no mid-stream waits: buffered and policed whole in `response`
        state.tap = StreamTap(state.dialect.reassembler(), decoder)
        if state.policy is not None and policed:
            rewriter = state.dialect.stream_rewriter(state.chain, state.policy)
            ping = state.dialect.keepalive()
            keepalive = Keepalive(ping, state.keepalive_s) if ping is not None else None
            state.policy_stream = PolicyStream(rewriter, state.tap, state.dialect.reassembler(), keepalive)
            response.stream = state.policy_stream
            response.headers.pop("content-length", None)  # the body length may change
            if decoder is not None:  # what the client gets is the decoded, policed stream
                response.headers.pop("content-encoding")
        else:
            response.stream = state.tap.passthrough  # the original bytes, compressed or not

    async def interlock_stream_wait(self, flow: http.HTTPFlow) -> None:
        """A policy is waiting mid-stream (see `addons.stream_wait`); only this flow pauses."""
        state = self.calls.get(flow)
        if state is not None and state.policy_stream is not None:
            await state.policy_stream.wait()

    async def error(self, flow: http.HTTPFlow) -> None:
        """A connection failed mid-stream: mitmproxy never ends the stream then, so the
        policies are told here and decide what they hold (sending nothing) before the
        call is recorded."""
        state = self.calls.get(flow)
        if state is not None and state.policy_stream is not None:
            await state.policy_stream.abandon()

    async def response(self, flow: http.HTTPFlow) -> None:
        state = self.calls.get(flow)
        if state is None or flow.response is None or state.streamed:
            return
        if state.policy is None or not state.chain.touches_responses or flow.response.status_code >= 400:
            return
        response = flow.response
        body = response_body_bytes(response)
        if not body:
            return
        sse = is_sse(response.headers)
        policed = await police_body(state.dialect, state.chain, state.policy, body, sse=sse)
        if policed is None:
            return
        if sse:
            state.policy_stream = policed.stream  # the record's reassemblies come from it
        if policed.changed:
            state.response_original_body = body
            response.content = policed.final
