"""Records the proxy hands to the recorder: the boundary between addons and SQLite.

Everything here is already free of secrets (see `interlock.secrets`) when it is built;
the recorder writes it as it is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from interlock.neutral import Usage
from interlock.policy.records import JudgeRecord, PolicyEventRecord, Verdict

Stage = Literal["request_original", "request_final", "response_original", "response_final"]
STAGES: tuple[Stage, ...] = ("request_original", "request_final", "response_original", "response_final")
# A final stage equal to its original (nobody changed it) is stored once: its row in
# `stage_rows` names the original in `same_as`, and the `stages` view reads it from there.
SAME_AS: dict[Stage, Stage] = {"request_final": "request_original", "response_final": "response_original"}


class StageRecord(BaseModel):
    """One of the four views of a call: what the client sent, what went upstream, what
    upstream answered, what the client got."""

    stage: Stage
    headers: dict[str, str] | None = None
    body: Any | None = None  # parsed JSON, or the reassembled message of a stream
    raw: bytes | None = None  # exact bytes when streamed or not parseable as JSON
    note: str | None = None  # why `body` is missing or partial
    # A stream's pacing: (seconds since the call started, bytes of `raw`) per chunk or
    # WebSocket frame as it arrived from upstream; on `response_original` only.
    arrivals: list[tuple[float, int]] | None = None
    # The exact bytes of a whole body `body` parses (a cassette replays them); kept in
    # memory only, never stored, and dropped when the body holds a secret.
    exact: bytes | None = Field(default=None, exclude=True, repr=False)


class CallRecord(BaseModel):
    """Everything known about one intercepted LLM call, written when the call ends."""

    call_id: str
    started_at: float  # unix time the request arrived
    first_byte_at: float | None = None  # first response byte from upstream
    first_token_at: float | None = None  # first generated content (streams only)
    ended_at: float | None = None
    provider: str
    dialect: str
    host: str
    path: str
    client: str | None = None  # user-agent
    session_id: str | None = None
    user: str | None = None  # who sent it: the proxy-auth user name (never the password), else the user header
    project: str | None = None  # the project tag header's value (`tags.project_header`)
    model: str | None = None  # as requested by the client
    model_final: str | None = None  # as sent upstream (a policy may rewrite it)
    response_model: str | None = None  # as the provider answered
    stream: bool = False
    status: int | None = None
    error: str | None = None
    verdict: Verdict = "pass"
    usage: Usage = Field(default_factory=Usage)
    prompt_text: str | None = None  # the words the person typed last (`Dialect.typed_text`), for lists
    user_text: str | None = None  # the whole last user message, as sent (`Dialect.last_user_text`)
    response_text: str | None = None  # final response text, for full-text search
    stages: list[StageRecord] = Field(default_factory=list)
    events: list[PolicyEventRecord] = Field(default_factory=list)
    judgements: list[JudgeRecord] = Field(default_factory=list)
