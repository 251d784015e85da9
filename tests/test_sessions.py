"""Session grouping: header, Claude Code's session id, Codex's conversation ids, a
conversation fingerprint, else the `previous_response_id` chain."""

from __future__ import annotations

import json

from interlock.config import SessionConfig
from interlock.dialects import dialect_for
from interlock.sessions import ResponseChains, session_id_for

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


RESPONSES = dialect_for("openai-responses")
CODEX_TURN = {"model": "gpt-5-codex", "instructions": "You are Codex.", "input": [{"role": "user", "content": "tidy"}]}


def test_codex_conversation_headers_then_prompt_cache_key() -> None:
    """Codex names its conversation in headers (the thread first) and in `prompt_cache_key`."""
    headers = {"session-id": "sess-1", "thread-id": "thr-1"}
    assert session_id_for(RESPONSES, CODEX_TURN, headers, CONFIG) == "codex-thr-1"
    assert session_id_for(RESPONSES, CODEX_TURN, {"session-id": "sess-1"}, CONFIG) == "codex-sess-1"
    assert session_id_for(RESPONSES, CODEX_TURN, {"conversation_id": "c-1"}, CONFIG) == "codex-c-1"
    assert session_id_for(RESPONSES, CODEX_TURN, {**headers, "x-interlock-session": "mine"}, CONFIG) == "mine"
    keyed = {**CODEX_TURN, "prompt_cache_key": "thr-1"}
    assert session_id_for(RESPONSES, keyed, {}, CONFIG) == "pck-thr-1"
    assert session_id_for(OPENAI, {"messages": []}, headers, CONFIG) is None  # only Responses reads them


def test_a_previous_response_id_chain_joins_its_first_call() -> None:
    chains = ResponseChains()
    first = session_id_for(RESPONSES, CODEX_TURN, {}, CONFIG, chains)
    assert first is not None and first.startswith("fp-")
    chains.remember(RESPONSES, {"id": "resp_1", "object": "response", "output": []}, first)
    second = {"model": "gpt-5", "previous_response_id": "resp_1", "input": [{"role": "user", "content": "more"}]}
    assert session_id_for(RESPONSES, second, {}, CONFIG, chains) == first
    chains.remember(RESPONSES, {"id": "resp_2"}, first)
    third = {"model": "gpt-5", "previous_response_id": "resp_2", "input": [{"type": "function_call_output"}]}
    assert session_id_for(RESPONSES, third, {}, CONFIG, chains) == first
    # A response it never saw (recorded before a restart): a session named after it,
    # which the rest of the chain joins.
    lost = {"model": "gpt-5", "previous_response_id": "resp_old", "input": "go on"}
    assert session_id_for(RESPONSES, lost, {}, CONFIG, chains) == "chain-resp_old"
    assert session_id_for(RESPONSES, lost, {}, CONFIG) == "chain-resp_old"
    # A key of the request's own still wins over the chain.
    assert session_id_for(RESPONSES, {**second, "prompt_cache_key": "k"}, {}, CONFIG, chains) == "pck-k"


def test_the_chain_memory_is_bounded_and_ignores_what_it_cannot_use() -> None:
    chains = ResponseChains(size=2)
    for n in range(3):
        chains.remember(RESPONSES, {"id": f"resp_{n}"}, "s")
    assert len(chains) == 2 and chains.session_of("resp_0") is None and chains.session_of("resp_2") == "s"
    chains.remember(RESPONSES, {"id": "resp_x"}, None)
    chains.remember(RESPONSES, "not a body", "s")
    chains.remember(OPENAI, {"id": "chatcmpl-1"}, "s")  # chat completions are never chained on
    assert chains.session_of("resp_x") is None and chains.session_of("chatcmpl-1") is None
