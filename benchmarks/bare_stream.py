"""The bare-mitmdump baseline's only addon: stream Server-Sent Events as they arrive.

Without it mitmdump buffers a whole response before sending it on, so a streamed call
through bare mitmdump would not be the like-for-like baseline of one through Interlock.
"""

from __future__ import annotations

from mitmproxy import http


def responseheaders(flow: http.HTTPFlow) -> None:
    if flow.response is not None and "text/event-stream" in flow.response.headers.get("content-type", ""):
        flow.response.stream = True
