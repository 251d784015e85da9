"""The UI's pure parts: text diffs, provider bodies as blocks, tool-call notes, the
session timeline's links, formatting and the cost chart."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import datasette_plugins
from datasette_plugins.ui import fmt
from datasette_plugins.ui.blocks import parse_messages, parse_request, parse_response
from datasette_plugins.ui.calldiff import notes_for
from datasette_plugins.ui.chart import DayCost, cost_chart, window
from datasette_plugins.ui.store import CallRow, JudgeRow, PolicyEventRow, SessionCall, SessionTotals
from datasette_plugins.ui.textdiff import MAX_DIFF_CHARS, diff_text
from datasette_plugins.ui.timeline import build_session
from interlock.neutral import Block

PLUGINS = Path(datasette_plugins.__file__).resolve().parent
REPO = PLUGINS.parent
NOT_RECORDING = ("tests", "datasette_plugins", "benchmarks")  # code that records no policy events


def test_diff_marks_changed_words_and_elides_unchanged_runs() -> None:
    old = "\n".join(f"line {n}" for n in range(20)) + "\nthe cat sat"
    new = "\n".join(f"line {n}" for n in range(20)) + "\nthe dog sat"
    diff = diff_text(old, new, context=2)
    assert diff.changed and (diff.added, diff.removed) == (1, 1)
    assert diff.lines[0].op == "gap" and diff.lines[0].skipped == 18
    removed = next(line for line in diff.lines if line.op == "del")
    added = next(line for line in diff.lines if line.op == "add")
    assert [(s.text, s.changed) for s in removed.segments] == [("the ", False), ("cat", True), (" sat", False)]
    assert [s.text for s in added.segments if s.changed] == ["dog"]
    assert (removed.old_no, added.new_no) == (21, 21)


def test_diff_of_equal_texts_and_of_huge_texts() -> None:
    assert not diff_text("same", "same").changed
    huge = diff_text("a" * MAX_DIFF_CHARS, "b")
    assert huge.changed and huge.too_large and huge.lines == ()


@given(
    st.lists(st.sampled_from(["a", "b", "c", ""]), max_size=12), st.lists(st.sampled_from(["a", "b", "d"]), max_size=12)
)
def test_diff_keeps_every_line_of_both_sides(old_lines: list[str], new_lines: list[str]) -> None:
    """Removed + unchanged lines rebuild the old text, added + unchanged the new one (no gaps
    with a context this large)."""
    old, new = "\n".join(old_lines), "\n".join(new_lines)
    diff = diff_text(old, new, context=100)
    if not diff.changed:
        assert old == new
        return
    rebuilt_old = ["".join(s.text for s in line.segments) for line in diff.lines if line.op in ("same", "del")]
    rebuilt_new = ["".join(s.text for s in line.segments) for line in diff.lines if line.op in ("same", "add")]
    assert rebuilt_old == old.split("\n") and rebuilt_new == new.split("\n")


def test_anthropic_request_and_response_as_blocks() -> None:
    request = parse_request(
        "anthropic-messages",
        {
            "model": "claude-sonnet-4-5",
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "x"},
                    {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "ls"}},
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a.py"}], "is_error": True}]},
                {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}, {"type": "future_block", "x": 1}]},
            ],
        },
    )  # fmt: skip
    assert request is not None
    assert request.system == (Block("text", "Be brief."),)
    assert request.params == {"model": "claude-sonnet-4-5"}
    thinking, tool_use = request.messages[1].blocks
    assert thinking == Block("thinking", "hmm")
    assert (tool_use.kind, tool_use.tool_id, tool_use.tool_name, json.loads(tool_use.text)) == (
        "tool_call",
        "toolu_1",
        "bash",
        {"command": "ls"},
    )
    result = request.messages[2].blocks[0]
    assert (result.kind, result.tool_id, result.text, result.is_error) == ("tool_result", "toolu_1", "a.py", True)
    image, other = request.messages[3].blocks
    assert image.kind == "image" and "image/png" in image.text
    assert other.kind == "other" and other.label == "future_block" and '"x": 1' in other.text

    response = parse_response(
        "anthropic-messages",
        {
            "content": [{"type": "redacted_thinking", "data": "zz"}],
            "stop_reason": "end_turn",
            "model": "m",
            "usage": {"output_tokens": 3},
        },
    )
    assert response is not None
    assert response.stop_reason == "end_turn" and response.message.blocks[0].kind == "redacted_thinking"


def test_openai_request_and_response_as_blocks() -> None:
    request = parse_request(
        "openai-chat",
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            ],
        },
    )  # fmt: skip
    assert request is not None and request.system == ()
    assert [m.role for m in request.messages] == ["developer", "assistant", "tool"]
    call = request.messages[1].blocks[0]
    assert (call.kind, call.tool_id, call.tool_name, call.text) == ("tool_call", "call_1", "f", '{\n  "a": 1\n}')
    assert request.messages[2].blocks == (Block("tool_result", "42", tool_id="call_1"),)
    response = parse_response("openai-chat", {"choices": [{"message": {"role": "assistant", "content": "hi", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "g", "arguments": "not json"}}]}, "finish_reason": "tool_calls"}]})  # fmt: skip
    assert response is not None and response.stop_reason == "tool_calls"
    assert [b.kind for b in response.message.blocks] == ["text", "tool_call"]
    assert response.message.blocks[1].text == "not json"  # arguments that do not parse, as sent


def test_unknown_dialects_and_bodies_are_not_guessed() -> None:
    assert parse_request("no-such-dialect", {"contents": []}) is None
    assert parse_request("openai-chat", ["not", "an", "object"]) is None
    assert parse_response("anthropic-messages", {"type": "error", "error": {"type": "overloaded_error"}}) is None
    assert parse_messages("no-such-dialect", [{"role": "user"}]) == []


def test_notes_match_tool_calls_by_id_then_by_name() -> None:
    call = Block("tool_call", "{}", tool_id="toolu_1", tool_name="bash")
    events = [
        PolicyEventRow(id=1, policy="judge", action="blocked", reason="bad", details={"tool_call_id": "toolu_1"}),
        PolicyEventRow(id=2, policy="other", action="blocked", reason="other call", details={"tool_call_id": "toolu_2", "tool_name": "bash"}),
        PolicyEventRow(id=3, policy="deny", action="blocked", reason="by name", details={"tool_name": "bash"}),
        PolicyEventRow(id=4, policy="redact", action="redacted", reason="not about tools", details={}),
    ]  # fmt: skip
    judges = [
        JudgeRow(
            id=1,
            tool_call_id="toolu_1",
            tool_name="bash",
            decision="blocked",
            probability=0.9,
            explanation="rm -rf",
            judge_model="m",
        )
    ]
    notes = notes_for(call, events, judges)
    assert [(n.source, n.reason) for n in notes] == [("judge", "bad"), ("deny", "by name"), ("judge m", "rm -rf")]
    assert all(n.blocks for n in notes) and notes[2].probability == 0.9
    assert notes_for(Block("text", "x"), events, judges) == ()


def _call(call_id: str, **fields: object) -> CallRow:
    return CallRow.model_validate({"call_id": call_id, "started_at": "2026-11-18T10:00:00.000Z", "provider": "openai",
                                   "dialect": "openai-chat", "host": "h", "path": "/p", "verdict": "pass", **fields})  # fmt: skip


def test_timeline_links_tool_calls_to_results_and_finds_side_threads() -> None:
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    first = [{"role": "user", "content": "go"}]
    second = [
        *first,
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
    ]
    calls = [
        SessionCall(call=_call("a"), first_message=json.dumps(first[0]), tail=first,
                    response={"choices": [{"message": {"role": "assistant", "tool_calls": [tool_call]}}]}),
        SessionCall(call=_call("side"), first_message='{"role":"user","content":"title?"}', tail=[{"role": "user", "content": "title?"}],
                    response={"choices": [{"message": {"role": "assistant", "content": "A title"}}]}),
        SessionCall(call=_call("b"), first_message=json.dumps(first[0]), tail=second,
                    response={"choices": [{"message": {"role": "assistant", "content": "All done."}}]}),
    ]  # fmt: skip
    view = build_session("s", calls, SessionTotals(calls=3))
    one, side, two = view.turns
    assert view.threads == 2 and (one.thread, side.thread, two.thread) == (0, 1, 0) and side.new_thread
    assert one.user_text == "go" and one.tool_uses[0].result_turn == 3
    assert two.results[0].use is one.tool_uses[0] and two.results[0].text == "done"
    assert two.user_text == "" and two.text == "All done."


def test_formatting() -> None:
    assert (fmt.ms(87.2), fmt.ms(1234.5), fmt.ms(65_000), fmt.ms(None)) == ("87 ms", "1.23 s", "65.0 s", "")
    assert (fmt.usd(0.0000123), fmt.usd(0.5), fmt.usd(1234.5), fmt.usd(None)) == ("$0.000012", "$0.5", "$1,234.50", "")
    assert fmt.when("2026-11-23T11:32:02.123Z") == "2026-11-23 11:32:02"
    assert fmt.clip("abcdef", 3) == "abc\n… (3 more characters)"


def test_cost_chart_draws_a_bar_per_day_with_calls() -> None:
    days = window("2026-11-18", 30)
    assert days[0] == "2026-10-20" and days[-1] == "2026-11-18" and len(days) == 30
    svg = cost_chart([DayCost("2026-11-01", 2.5, 10, 0), DayCost("2026-11-18", 1.0, 4, 2)], days)
    assert svg.count("<rect") == 2 and "2026-11-18: $1 over 4 calls, 2 of unknown price" in svg
    assert "il-bar-unknown" in svg and "$2.5" in svg
    assert cost_chart([], days).count("<rect") == 0


def test_gemini_calls_render_as_blocks() -> None:
    request = parse_request(
        "gemini",
        {
            "model": "gemini-2.5-flash",
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "list files"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "ls", "args": {}}, "thoughtSignature": "c2ln"}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "ls", "response": {"output": "a.txt"}}}]},
            ],
        },
    )
    assert request is not None and [b.text for b in request.system] == ["Be brief."]
    assert [[b.kind for b in m.blocks] for m in request.messages] == [["text"], ["tool_call"], ["tool_result"]]
    response = parse_response(
        "gemini",
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "hmm", "thought": True}, {"text": "a.txt"}]},
                    "finishReason": "STOP",
                }
            ]
        },
    )
    assert response is not None and response.stop_reason == "STOP"
    assert [(b.kind, b.text) for b in response.message.blocks] == [("thinking", "hmm"), ("text", "a.txt")]
    assert [m.role for m in parse_messages("gemini", [{"role": "user", "parts": [{"text": "hi"}]}])] == ["user"]
