"""Keeps credential query parameters (`?key=...`, `interlock.secrets.SECRET_QUERY_PARAMS`)
out of what mitmproxy itself prints and logs, for every flow, matched or not.

mitmdump's `dumper` prints each flow's URL with its query (all of it when the terminal
is wide), with `flow_detail` 3 a request's query parameters one per line, and mitmproxy
logs may show a request's path (`proxy_debug`'s events, an addon logging a URL).
Nothing of the flow changes, so what goes upstream is what the client sent; only the
text shown is redacted, in two ways: the value of every credential parameter of a URL
in the text (`redact_text`), and every occurrence of the credential values seen in
requests' query strings (the last `KNOWN_LIMIT` distinct ones, noted at
`requestheaders`, before the dumper prints the flow), wherever the text shows them.

- the dumper's output stream is wrapped: each line it writes is redacted (the flow
  line, and with `flow_detail` 2 and more the headers and bodies it shows);
- a filter on every handler of the root logger (mitmdump's terminal log, mitmweb's
  event log, ...) redacts each record's message and traceback.

Both are put in place when the addon loads and taken away when it is done (a script
reload puts them back).
"""

from __future__ import annotations

import logging
from typing import IO, Any, cast

from mitmproxy import ctx, http
from mitmproxy.addons.dumper import Dumper

from interlock.secrets import MIN_SECRET_LENGTH, redact_text, scrub, secret_values

KNOWN_LIMIT = 256


class Redactor:
    """Redacts credential query values from text; `note` remembers the values of a URL.

    Read from any thread: the values are a tuple, replaced whole on the event loop."""

    def __init__(self, limit: int = KNOWN_LIMIT) -> None:
        self.limit = limit
        self.known: tuple[str, ...] = ()

    def note(self, url: str) -> None:
        values = [v for v in secret_values((), url) if len(v) >= MIN_SECRET_LENGTH and v not in self.known]
        if values:
            self.known = (*self.known, *values)[-self.limit :]

    def __call__(self, text: str) -> str:
        return scrub(redact_text(text), self.known)


class RedactingStream:
    """A text stream that redacts what is written to it, then writes it to `stream`."""

    def __init__(self, stream: IO[str], redact: Redactor) -> None:
        self.stream = stream
        self.redact = redact

    def write(self, text: str) -> int:
        self.stream.write(self.redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self.stream, name)


class RedactingFilter(logging.Filter):
    """Redacts a log record's message (and its traceback) in place, before any handler
    formats it; never drops a record."""

    _formatter = logging.Formatter()

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the logging module's to report
            return True
        redacted = self.redact(message)
        if record.exc_info:
            trace = self._formatter.formatException(record.exc_info)
            if self.redact(trace) != trace:  # fold the redacted traceback into the message
                redacted = f"{redacted}\n{self.redact(trace)}"
                record.exc_info = None
                record.exc_text = None
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


class OutputRedaction:
    def __init__(self) -> None:
        self.redact = Redactor()
        self._filter = RedactingFilter(self.redact)
        self._handlers: list[logging.Handler] = []
        self._dumper: Dumper | None = None

    def load(self, loader: Any) -> None:
        self._install()

    def running(self) -> None:
        self._install()  # handlers added since

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if "=" in flow.request.path:
            self.redact.note(flow.request.path)

    def done(self) -> None:
        for handler in self._handlers:
            handler.removeFilter(self._filter)
        self._handlers = []
        if self._dumper is not None and isinstance(self._dumper.outfp, RedactingStream):
            self._dumper.outfp = self._dumper.outfp.stream
        self._dumper = None

    def _install(self) -> None:
        for handler in logging.getLogger().handlers:
            if handler not in self._handlers:
                handler.addFilter(self._filter)
                self._handlers.append(handler)
        dumper = ctx.master.addons.get("dumper")
        if isinstance(dumper, Dumper) and not isinstance(dumper.outfp, RedactingStream):
            dumper.outfp = cast(IO[str], RedactingStream(dumper.outfp, self.redact))
            self._dumper = dumper
