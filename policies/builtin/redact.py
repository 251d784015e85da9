"""`redact`: scrub secrets and personal data from requests before they leave the machine.

Built-in detectors cover API-key shapes (OpenAI, Anthropic, GitHub, Slack, Google,
Stripe), AWS access key ids, private-key blocks, JWTs and e-mail addresses; more
patterns can be configured. Each match becomes `[REDACTED:<detector>]` (configurable),
and the counts per detector are recorded for the call.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pydantic import Field, field_validator

from interlock.policy.base import Policy, PolicyContext, PolicyOptions

DETECTORS: dict[str, str] = {
    "private_key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    "anthropic_key": r"\bsk-ant-[A-Za-z0-9_-]{20,}",
    "openai_key": r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
    "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
    "slack_token": r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
    "google_api_key": r"\bAIza[0-9A-Za-z_-]{35}",
    "stripe_key": r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}",
    "aws_access_key_id": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "jwt": r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    "email": r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
}
# A cheap pre-check per detector. The detectors start with `\b`, which makes `re` try
# every position of the text (about 12 ns a character each); these start with a literal
# `re` can skip ahead to (about 0.3 ns a character). A text passes through only the
# detectors whose pre-check finds something: usually none.
HINTS: dict[str, str] = {
    "private_key": "-----BEGIN ",
    "anthropic_key": "sk-ant-",
    "openai_key": "sk-",
    "github_token": "gh[pousr]_|github_pat_",
    "slack_token": "xox[abposr]-",
    "google_api_key": "AIza",
    "stripe_key": "_(?:live|test)_",
    "aws_access_key_id": "A(?:KIA|SIA)",
    "jwt": "eyJ",
    "email": r"@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
}


class RedactOptions(PolicyOptions):
    detectors: list[str] = Field(default_factory=lambda: list(DETECTORS))
    patterns: dict[str, str] = Field(default_factory=dict)  # name -> regex
    replacement: str = "[REDACTED:{name}]"

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
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"pattern {name!r} is not a valid regular expression: {error}") from None
        return value


class RedactPolicy(Policy):
    name = "redact"
    Options = RedactOptions
    description = "Scrub secrets and personal data (keys, private keys, e-mails, custom patterns) from requests."
    options: RedactOptions

    def __init__(self, options: RedactOptions, instance_name: str) -> None:
        super().__init__(options, instance_name)
        named = {**{d: DETECTORS[d] for d in options.detectors}, **options.patterns}
        self.names = list(named)
        self.patterns = list(named.values())
        # Custom patterns have no pre-check: they always run.
        self.hints = [re.compile(HINTS[n]) if n in HINTS and n not in options.patterns else None for n in named]
        self._alternations: dict[tuple[int, ...], re.Pattern[str]] = {}

    def _alternation(self, active: tuple[int, ...]) -> re.Pattern[str]:
        """One alternation of the active detectors: the first wins where several match
        at the same place."""
        if active not in self._alternations:
            self._alternations[active] = re.compile("|".join(f"(?P<{_group(i)}>{self.patterns[i]})" for i in active))
        return self._alternations[active]

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        counts: Counter[str] = Counter()

        def scrub(text: str) -> str:
            active = tuple(i for i, hint in enumerate(self.hints) if hint is None or hint.search(text))
            if not active:
                return text

            def replace(match: re.Match[str]) -> str:
                name = next(self.names[i] for i in active if match.group(_group(i)) is not None)
                counts[name] += 1
                return self.options.replacement.format(name=name)

            return self._alternation(active).sub(replace, text)

        edited = ctx.dialect.map_request_text(request, scrub)
        if not counts:
            return request
        total = sum(counts.values())
        ctx.record(self.instance_name, "redacted", f"{total} item(s) scrubbed from the request", counts=dict(counts))
        return edited


def _group(index: int) -> str:
    """The alternation's group name for a detector (not a name a custom pattern would use)."""
    return f"interlock_detector_{index}"
