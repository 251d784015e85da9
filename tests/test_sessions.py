"""Session grouping: header, Claude Code's session id, else a conversation fingerprint."""

from __future__ import annotations

import json

from interlock.config import SessionConfig
from interlock.dialects import dialect_for
from interlock.sessions import session_id_for

ANTHROPIC = dialect_for("anthropic-messages")
OPENAI = dialect_for("openai-chat")

CONFIG = SessionConfig()
TURN_1 = {"system": "You are Claude Code.", "messages": [{"role": "user", "content": "fix the bug"}]}
TURN_2 = {
    "system": "You are Claude Code.",
    "messages": [
        *TURN_1["messages"],
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
    ],
}


def test_header_wins() -> None:
    assert session_id_for(ANTHROPIC, TURN_1, {"x-interlock-session": "mine"}, CONFIG) == "mine"


def test_claude_code_session_id_in_metadata() -> None:
    user_id = json.dumps({"device_id": "d", "account_uuid": "a", "session_id": "5f0c2d1e-7a4b"})
    request = {**TURN_1, "metadata": {"user_id": user_id}}
    assert session_id_for(ANTHROPIC, request, {}, CONFIG) == "cc-5f0c2d1e-7a4b"
    legacy = {**TURN_1, "metadata": {"user_id": "user_abc_account_def_session_1234abcd-0000"}}
    assert session_id_for(ANTHROPIC, legacy, {}, CONFIG) == "cc-1234abcd-0000"


def test_fingerprint_is_stable_across_turns_and_differs_between_conversations() -> None:
    first = session_id_for(ANTHROPIC, TURN_1, {}, CONFIG)
    assert first is not None and first.startswith("fp-")
    assert session_id_for(ANTHROPIC, TURN_2, {}, CONFIG) == first
    other = {**TURN_1, "messages": [{"role": "user", "content": "write the docs"}]}
    assert session_id_for(ANTHROPIC, other, {}, CONFIG) != first
    openai = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}
    assert session_id_for(OPENAI, openai, {}, CONFIG) == session_id_for(
        OPENAI, {"messages": [*openai["messages"], {"role": "assistant", "content": "yo"}]}, {}, CONFIG
    )


def test_no_header_name_and_unparsable_requests() -> None:
    assert session_id_for(OPENAI, None, {"x-interlock-session": "x"}, SessionConfig(header=None)) is None
    assert session_id_for(OPENAI, {"messages": []}, {}, CONFIG) is None
