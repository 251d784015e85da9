"""A loopback webhook receiver for the alert tests: records each POST, answers with the
statuses it is given in turn (then 200), after `delay_s` when it is to be slow."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from aiohttp import web
from loopback_server import LoopbackServer


class WebhookReceiver(LoopbackServer):
    thread_name = "webhook-receiver"

    def __init__(self, statuses: list[int] | None = None, delay_s: float = 0.0) -> None:
        super().__init__()
        self.statuses = list(statuses or [])
        self.delay_s = delay_s
        self.posts: list[dict[str, Any]] = []  # each: the JSON body, its headers, when it came
        self.attempts = 0  # answered
        self.arrived = 0  # read, perhaps not yet answered
        self._changed = threading.Condition()

    @property
    def url(self) -> str:
        return f"{self.root}/hook"

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._changed:
            self.arrived += 1
            self._changed.notify_all()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        with self._changed:
            self.attempts += 1
            status = self.statuses.pop(0) if self.statuses else 200
            if status < 300:
                self.posts.append(
                    {
                        "body": json.loads(body),
                        "headers": {k.lower(): v for k, v in request.headers.items()},
                        "at": time.time(),
                    }
                )
            self._changed.notify_all()
        return web.json_response({"ok": status < 300}, status=status)

    def wait_for_arrivals(self, count: int, timeout_s: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.arrived >= count, timeout_s):
                raise AssertionError(f"{self.arrived} webhook requests after {timeout_s} s, wanted {count}")

    def wait_for_posts(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.posts) >= count, timeout_s):
                raise AssertionError(f"{len(self.posts)} webhook posts after {timeout_s} s, wanted {count}")
            return list(self.posts)
