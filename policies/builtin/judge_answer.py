"""Reads a judge model's answer: a JSON object with `probability` and `explanation`.

Models wrap JSON in code fences, put prose around it, quote numbers or answer with a
percentage; all of that is accepted. The first JSON object carrying a `probability`
wins; the probability is clamped to [0, 1]. Anything else raises `JudgeAnswerError`,
which the policy treats as a judge failure (its `on_error` applies).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_EXPLANATION_CHARS = 1000
_FENCE = re.compile(r"```[\w-]*\s*\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


class JudgeAnswerError(ValueError):
    """The answer holds no usable verdict; the message says why, in a few words."""


@dataclass(frozen=True, slots=True)
class JudgeAnswer:
    probability: float  # that the tool call is harmful, in [0, 1]
    explanation: str


def parse_answer(text: str | None) -> JudgeAnswer:
    """The verdict in a judge's raw answer; raises `JudgeAnswerError`."""
    if text is None or not text.strip():
        raise JudgeAnswerError("empty answer")
    found_object = False
    for candidate in _objects(text):
        found_object = True
        if "probability" in candidate:
            return JudgeAnswer(_probability(candidate["probability"]), _explanation(candidate.get("explanation")))
    if found_object:
        raise JudgeAnswerError("no `probability` in the answer's JSON")
    raise JudgeAnswerError("no JSON object in the answer")


def _objects(text: str) -> Iterator[dict[str, Any]]:
    """JSON objects in the text: the whole text, then fenced blocks, then any `{...}`
    that decodes, in order of appearance."""
    pieces = [text.strip(), *(match.group(1).strip() for match in _FENCE.finditer(text))]
    for piece in pieces:
        try:
            value = json.loads(piece)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value
    position = text.find("{")
    while position != -1:
        try:
            value, end = _DECODER.raw_decode(text, position)
        except ValueError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            yield value
        position = text.find("{", end if isinstance(value, dict) else position + 1)


def _probability(value: Any) -> float:
    if isinstance(value, bool):
        raise JudgeAnswerError("`probability` is not a number")
    number: float
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        stripped = value.strip()
        percent = stripped.endswith("%")
        try:
            number = float(stripped.rstrip("%").strip())
        except ValueError:
            raise JudgeAnswerError("`probability` is not a number") from None
        if percent:
            number /= 100
    else:
        raise JudgeAnswerError("`probability` is not a number")
    if math.isnan(number):
        raise JudgeAnswerError("`probability` is not a number")
    return min(1.0, max(0.0, number))


def _explanation(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.strip()
    if len(text) > MAX_EXPLANATION_CHARS:
        return text[:MAX_EXPLANATION_CHARS] + "…"
    return text
