"""`redact`: scrub secrets and personal data from requests before they leave the machine.

Built-in detectors (`interlock.detectors`) cover API-key shapes (OpenAI, Anthropic,
GitHub, Slack, Google, Stripe), AWS access key ids, private-key blocks, JWTs and e-mail
addresses; more patterns can be configured. Each match becomes `[REDACTED:<detector>]`
(configurable), and the counts per detector are recorded for the call. Whatever the
policy detects is also scrubbed from everything recorded about the call; with
`mode: record_only` the request goes upstream unchanged and only the record is scrubbed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import Field, field_validator

from interlock.detectors import DETECTORS, Detectors, check_pattern
from interlock.policy.base import Policy, PolicyContext, PolicyOptions


class RedactOptions(PolicyOptions):
    detectors: list[str] = Field(default_factory=lambda: list(DETECTORS))
    patterns: dict[str, str] = Field(default_factory=dict)  # name -> regex
    replacement: str = "[REDACTED:{name}]"
    mode: Literal["request", "record_only"] = "request"

    @field_validator("detectors")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(DETECTORS))
        if unknown:
            raise ValueError(f"unknown detector(s) {unknown}; known: {sorted(DETECTORS)}")
        return value

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            try:
                check_pattern(pattern)
            except ValueError as error:
                raise ValueError(f"pattern {name!r} {error}") from None
        return value


class RedactPolicy(Policy):
    name = "redact"
    Options = RedactOptions
    description = "Scrub secrets and personal data (keys, private keys, e-mails, custom patterns) from requests."
    options: RedactOptions

    def __init__(self, options: RedactOptions, instance_name: str) -> None:
        super().__init__(options, instance_name)
        self.record_patterns = {**{d: DETECTORS[d] for d in options.detectors}, **options.patterns}
        self.detectors = Detectors(self.record_patterns)

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        if self.options.mode == "record_only":
            return request
        counts: Counter[str] = Counter()

        def replace(name: str) -> str:
            counts[name] += 1
            return self.options.replacement.format(name=name)

        edited = ctx.dialect.map_request_text(request, lambda text: self.detectors.sub(text, replace))
        if not counts:
            return request
        total = sum(counts.values())
        ctx.record(self.instance_name, "redacted", f"{total} item(s) scrubbed from the request", counts=dict(counts))
        return edited
