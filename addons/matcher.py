"""Decides at `requestheaders` whether a flow is an LLM call, and gives it a call id.

Non-LLM flows are dismissed with one dictionary look-up and never touched again.
Matched flows get a `CallState` (with the chain and keepalive interval in force now, so
a reload never affects a call in flight), a call id in the flow comment and a response
header, the headers as the client sent them kept (redacted, and their secrets noted for
scrubbing, when the call is recorded: nothing of it delays the request), and
`accept-encoding: identity` so their streams can be read as they pass. The request body
is parsed once, at `request`, for every later hook.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mitmproxy import http

from addons.call_state import CALL_ID_HEADER, CallState, CallStates, new_call_id
from addons.call_tags import take_tags
from addons.config_watch import ConfigWatch
from addons.live_config import Loaded
from interlock.dialects import dialect_for
from interlock.providers import Match

HOST_CACHE_SIZE = 1024  # distinct Host headers whose parse is kept (all of them once more arrive)
_hosts: dict[str, str] = {}


def request_host(request: http.Request) -> str:
    """`request.pretty_host`, its parse of the Host header (a regular expression and a
    host name check, 13 us a flow) kept per header value: clients send the same few."""
    authority = request.host_header
    if not authority:
        return request.host
    host = _hosts.get(authority)
    if host is None:
        if len(_hosts) >= HOST_CACHE_SIZE:
            _hosts.clear()
        host = _hosts[authority] = request.pretty_host
    return host


def parse_json_body(body: bytes | None) -> tuple[Any | None, str | None]:
    """(parsed JSON, None) or (None, why not)."""
    if not body:
        return None, "empty body"
    try:
        return json.loads(body), None
    except (ValueError, UnicodeDecodeError) as error:
        return None, f"body is not JSON: {error}"


def new_call_state(
    match: Match, request: http.Request, loaded: Loaded, started_at: float, host: str | None = None
) -> CallState:
    """A call's state, with the request's headers as they are now (`CallState.secrets`,
    `CallState.original_headers`).
    `host` is `request_host(request)` when the caller has it already."""
    state = CallState(
        call_id=new_call_id(),
        match=match,
        dialect=dialect_for(match.dialect),
        started_at=started_at,
        host=host if host is not None else request_host(request),
        path=request.path.split("?", 1)[0],
        chain=loaded.chain,
        keepalive_s=loaded.config.keepalive.interval_s,
        sessions=loaded.config.sessions,
        request_fields=request.headers.fields,
        request_path_query=request.path,
    )
    return state


class CallMatcher:
    def __init__(self, config: ConfigWatch, calls: CallStates) -> None:
        self.config = config
        self.calls = calls

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        loaded = self.config.current
        if loaded is None:
            return
        request = flow.request
        if flow.response is not None:  # answered before it was sent (mitmproxy's proxyauth refusing it)
            return
        host = request_host(request)
        match = loaded.registry.match(request.method, host, request.path)
        if match is None:
            return
        state = new_call_state(match, request, loaded, request.timestamp_start or time.time(), host)
        state.tags = take_tags(flow, loaded.config.tags)  # after: the original headers keep the tag headers
        self.calls.attach(flow, state)
        flow.comment = f"interlock {state.call_id}"
        request.headers["accept-encoding"] = "identity"

    def request(self, flow: http.HTTPFlow) -> None:
        """Read the request once: the body (decoded if compressed), model, stream flag."""
        state = self.calls.get(flow)
        if state is None:
            return
        parsed, note = parse_json_body(flow.request.get_content(strict=False))
        if isinstance(parsed, dict):  # else: forwarded as it came, recorded raw
            parsed = state.dialect.read_request(flow.request.path, parsed)
            state.model = state.dialect.request_model(parsed)
            state.stream_requested = state.dialect.request_streams(parsed, flow.request.path)
        state.request_original = state.request_final = parsed
        state.request_note = note

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.calls.get(flow)
        if state is not None and flow.response is not None:
            flow.response.headers[CALL_ID_HEADER] = state.call_id
