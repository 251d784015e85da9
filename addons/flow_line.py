"""Keeps credentials (`?key=...`, API key headers) out of mitmdump's own flow lines.

mitmdump's dumper prints each flow's URL, the whole of it on a wide terminal. A flow
whose URL carries a credential parameter (`interlock.secrets.SECRET_QUERY_PARAMS`),
LLM call or not, is noted at `requestheaders` (one substring check for the others) and
printed with the parameter's value redacted; every other flow is printed by the dumper
as it is. The flow itself keeps its URL: the redacted one is in place only while the
dumper writes the flow's lines, synchronously. At `flow_detail` 2 and above the dumper
also prints headers: credential headers (`interlock.secrets.SECRET_HEADERS`) are printed
redacted, for every flow; bodies (`flow_detail` 3) are printed as they are.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from mitmproxy import ctx, http

from interlock.secrets import SECRET_HEADERS, redact_header, redact_url


class FlowLineRedaction:
    def __init__(self) -> None:
        self._flagged: weakref.WeakSet[http.HTTPFlow] = weakref.WeakSet()
        self._dumper: Any = None

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        path = flow.request.path
        if "?" in path and redact_url(path) != path:
            self._flagged.add(flow)

    def running(self) -> None:
        dumper = ctx.master.addons.get("dumper")
        if dumper is None or "echo_flow" in vars(dumper):
            return
        self._dumper = dumper
        dumper.echo_flow = self._echo_flow(dumper.echo_flow)
        dumper._echo_headers = _echo_headers(dumper._echo_headers)

    def done(self) -> None:
        if self._dumper is not None:
            # The dumper's own methods again (a script reload wraps anew).
            del self._dumper.echo_flow, self._dumper._echo_headers
            self._dumper = None

    def _echo_flow(self, echo_flow: Callable[[http.HTTPFlow], None]) -> Callable[[http.HTTPFlow], None]:
        def echo(flow: http.HTTPFlow) -> None:
            if flow not in self._flagged:
                echo_flow(flow)
                return
            path = flow.request.path
            flow.request.path = redact_url(path)
            try:
                echo_flow(flow)
            finally:
                flow.request.path = path

        return echo


def _echo_headers(echo_headers: Callable[[http.Headers], None]) -> Callable[[http.Headers], None]:
    def echo(headers: http.Headers) -> None:
        if not any(name.lower() in SECRET_HEADERS for name in headers):
            echo_headers(headers)
            return
        shown = [(k.encode(), redact_header(k, v).encode()) for k, v in headers.items(multi=True)]
        echo_headers(http.Headers(shown))

    return echo
