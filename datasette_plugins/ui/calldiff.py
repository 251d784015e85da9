"""Original against final for one call: what the call page shows.

Request and response are compared block by block where the dialect is understood
(system prompt, each message aligned with difflib, text with line and word marks, tool
calls with their pretty-printed arguments, thinking, parameters, model, stop reason) and
as pretty-printed JSON otherwise. Tool calls carry the policy events and judge verdicts
that name them, so a blocked one shows why. Runs of unchanged messages are grouped for
the page to collapse. A stage that is missing or not JSON is reported, never guessed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from datasette_plugins.ui.blocks import parse_request, parse_response
from datasette_plugins.ui.schema import TOOL_CALL_BLOCKS
from datasette_plugins.ui.store import CallData, JudgeRow, PolicyEventRow, StageRow
from datasette_plugins.ui.textdiff import TextDiff, diff_text
from interlock.dialects.view_parts import pretty_json
from interlock.neutral import Block, Message, RequestView, ResponseView

Status = Literal["same", "changed", "added", "removed", "blocked"]
Mode = Literal["blocks", "json", "none"]

_TOOL_ID_KEYS = ("tool_call_id", "tool_use_id", "tool_id")
_TOOL_NAME_KEYS = ("tool_name", "tool")


@dataclass(frozen=True)
class Note:
    """A decision about a tool call: a policy event or a judge verdict."""

    source: str  # the policy's name, or "judge <model>"
    action: str
    reason: str
    probability: float | None = None

    @property
    def blocks(self) -> bool:
        return self.action in TOOL_CALL_BLOCKS


@dataclass(frozen=True)
class BlockDiff:
    status: Status
    old: Block | None
    new: Block | None
    diff: TextDiff | None = None
    notes: tuple[Note, ...] = ()

    @property
    def block(self) -> Block:
        shown = self.new or self.old
        assert shown is not None
        return shown

    @property
    def name_changed(self) -> bool:
        return self.old is not None and self.new is not None and self.old.tool_name != self.new.tool_name


@dataclass(frozen=True)
class MessageDiff:
    status: Status
    role: str
    position: int  # 1-based, in the final version when there is one
    blocks: tuple[BlockDiff, ...]


@dataclass(frozen=True)
class SameRun:
    """Consecutive messages that did not change: `first` is the 1-based position."""

    first: int
    messages: tuple[Message, ...]
    status: Status = "same"
    open: bool = False  # shown expanded: the newest message of an unchanged request


@dataclass(frozen=True)
class FieldDiff:
    """A parameter, the model, the stop reason or the usage: compact JSON on each side."""

    name: str
    status: Status
    old: str | None
    new: str | None
    diff: TextDiff | None = None


@dataclass(frozen=True)
class StageInfo:
    """What the page says about one stage: is it there, is its body JSON, why not."""

    stage: str
    recorded: bool
    has_json: bool
    problem: str | None  # why there is no JSON body to show
    note: str | None
    size: int | None
    raw_size: int | None
    raw_preview: str | None


@dataclass
class PairDiff:
    """Original against final for the request or the response."""

    title: str
    original: StageInfo
    final: StageInfo
    mode: Mode
    changed: bool = False
    system: list[BlockDiff] = field(default_factory=list)
    items: list[MessageDiff | SameRun] = field(default_factory=list)
    fields: list[FieldDiff] = field(default_factory=list)
    json_diff: TextDiff | None = None
    json_text: str | None = None  # the body, when there is no diff to show
    shown: str | None = None  # when only one side is there: which one is shown

    @property
    def summary(self) -> list[str]:
        """What changed, counted: "1 parameter changed", "1 tool call blocked", ..."""
        found: dict[tuple[str, str], int] = {}

        def add(noun: str, status: Status) -> None:
            if status != "same":
                found[(noun, status)] = found.get((noun, status), 0) + 1

        for f in self.fields:
            add("parameter", f.status)
        for b in self.system:
            add("system prompt block", b.status)
        for item in self.items:
            if isinstance(item, MessageDiff) and item.status == "changed":
                for b in item.blocks:
                    add(_NOUNS[b.block.kind], b.status)
            elif isinstance(item, MessageDiff):
                add("message", item.status)
        return [f"{n} {noun}{'s' if n != 1 else ''} {status}" for (noun, status), n in found.items()]


_NOUNS = {
    "text": "text block",
    "image": "image",
    "tool_call": "tool call",
    "tool_result": "tool result",
    "thinking": "thinking block",
    "redacted_thinking": "redacted thinking block",
    "other": "block",
}


# Notes: which policy events and judge verdicts are about a tool call


def _detail(details: Any, keys: Sequence[str]) -> str | None:
    if not isinstance(details, dict):
        return None
    for key in keys:
        if isinstance(details.get(key), str):
            return str(details[key])
    return None


def notes_for(block: Block, events: Sequence[PolicyEventRow], judges: Sequence[JudgeRow]) -> tuple[Note, ...]:
    """Events and verdicts naming this tool call: by id, else (no id recorded) by name."""
    if block.kind != "tool_call":
        return ()

    def names(tool_id: str | None, tool_name: str | None) -> bool:
        if tool_id is not None and block.tool_id is not None:
            return tool_id == block.tool_id
        return tool_name is not None and tool_name == block.tool_name

    notes = [
        Note(event.policy, event.action, event.reason or "")
        for event in events
        if names(_detail(event.details, _TOOL_ID_KEYS), _detail(event.details, _TOOL_NAME_KEYS))
    ]
    for judge in judges:
        if names(judge.tool_call_id, judge.tool_name):
            reason = judge.explanation or judge.error or judge.raw_answer or ""
            notes.append(Note(f"judge {judge.judge_model or ''}".strip(), judge.decision, reason, judge.probability))
    return tuple(notes)


# Blocks and messages


class _Differ:
    def __init__(self, events: Sequence[PolicyEventRow], judges: Sequence[JudgeRow]) -> None:
        self.events = events
        self.judges = judges

    def one(self, status: Status, old: Block | None, new: Block | None) -> BlockDiff:
        shown = new or old
        assert shown is not None
        notes = notes_for(shown, self.events, self.judges)
        if status == "removed" and any(note.blocks for note in notes):
            status = "blocked"
        diff = diff_text(old.text, new.text) if status == "changed" and old and new else None
        return BlockDiff(status, old, new, diff, notes)

    def blocks(self, old: Sequence[Block], new: Sequence[Block]) -> list[BlockDiff]:
        result: list[BlockDiff] = []
        matcher = difflib.SequenceMatcher(None, [b.key() for b in old], [b.key() for b in new], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                result += [self.one("same", old[i], new[j1 + i - i1]) for i in range(i1, i2)]
                continue
            olds, news = list(old[i1:i2]), list(new[j1:j2])
            while olds and news and olds[0].kind == news[0].kind:
                result.append(self.one("changed", olds.pop(0), news.pop(0)))
            result += [self.one("removed", b, None) for b in olds]
            result += [self.one("added", None, b) for b in news]
        return result

    def messages(self, old: Sequence[Message], new: Sequence[Message]) -> list[MessageDiff | SameRun]:
        items: list[MessageDiff | SameRun] = []
        matcher = difflib.SequenceMatcher(None, [m.key() for m in old], [m.key() for m in new], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                items.append(SameRun(j1 + 1, tuple(new[j1:j2])))
                continue
            pairs = min(i2 - i1, j2 - j1)
            for k in range(pairs):
                o, n = old[i1 + k], new[j1 + k]
                status: Status = "changed" if o.role == n.role else "removed"
                if status == "changed":
                    items.append(MessageDiff("changed", n.role, j1 + k + 1, tuple(self.blocks(o.blocks, n.blocks))))
                else:
                    items.append(self.whole("removed", o, j1 + k + 1))
                    items.append(self.whole("added", n, j1 + k + 1))
            items += [self.whole("removed", old[i], j1 + pairs + 1) for i in range(i1 + pairs, i2)]
            items += [self.whole("added", new[j], j + 1) for j in range(j1 + pairs, j2)]
        return items

    def whole(self, status: Status, message: Message, position: int) -> MessageDiff:
        side_old, side_new = (message, None) if status == "removed" else (None, message)
        blocks = [self.one(status, b if side_old else None, b if side_new else None) for b in message.blocks]
        if status == "removed" and blocks and all(b.status == "blocked" for b in blocks):
            status = "blocked"
        return MessageDiff(status, message.role, position, tuple(blocks))


def _compact(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def field_diffs(old: dict[str, Any], new: dict[str, Any], always: Sequence[str] = ()) -> list[FieldDiff]:
    """One entry per key in either dict (and every name in `always`), in a stable order."""
    names = list(dict.fromkeys([*always, *old, *new]))
    result = []
    for name in names:
        o, n = old.get(name), new.get(name)
        if name not in old and name not in new and name not in always:
            continue
        if o == n:
            result.append(FieldDiff(name, "same", _compact(o), _compact(n)))
            continue
        status: Status = "added" if name not in old else "removed" if name not in new else "changed"
        text_diff = None
        if isinstance(o, (dict, list)) or isinstance(n, (dict, list)):
            text_diff = diff_text(pretty_json(o) if o is not None else "", pretty_json(n) if n is not None else "")
        result.append(FieldDiff(name, status, _compact(o), _compact(n), text_diff))
    return result


# Stages


def stage_info(stage_name: str, stage: StageRow | None, call_error: str | None) -> StageInfo:
    if stage is None:
        why = f"not recorded ({call_error})" if call_error else "not recorded"
        return StageInfo(stage_name, False, False, why, None, None, None, None)
    problem = None
    if not stage.has_body:
        generic = "the body is not JSON: raw bytes kept" if stage.raw_size else "no body"
        problem = stage.body_error or stage.note or generic
    preview = stage.raw_head.decode("utf-8", errors="replace") if stage.raw_head is not None else None
    note = None if stage.note == problem else stage.note
    return StageInfo(stage_name, True, stage.has_body, problem, note, stage.size_bytes, stage.raw_size, preview)


def _side_text(info: StageInfo, stage: StageRow | None) -> str:
    if stage is not None and stage.has_body:
        return pretty_json(stage.body)
    return info.raw_preview or ""


def _open_newest(items: list[MessageDiff | SameRun]) -> list[MessageDiff | SameRun]:
    """Split the newest message off a trailing unchanged run, to show it expanded."""
    if not items or not isinstance(items[-1], SameRun):
        return items
    run = items[-1]
    newest = SameRun(run.first + len(run.messages) - 1, run.messages[-1:], open=True)
    rest = [SameRun(run.first, run.messages[:-1])] if len(run.messages) > 1 else []
    return [*items[:-1], *rest, newest]


def _request_fields(old: RequestView, new: RequestView) -> list[FieldDiff]:
    return field_diffs(old.params, new.params, always=("model",))


def _response_fields(old: ResponseView, new: ResponseView) -> list[FieldDiff]:
    def flat(view: ResponseView) -> dict[str, Any]:
        values: dict[str, Any] = {"model": view.model, "stop_reason": view.stop_reason, "usage": view.usage}
        return {k: v for k, v in values.items() if v is not None} | view.params

    return field_diffs(flat(old), flat(new), always=("model", "stop_reason"))


def pair_diff(title: str, stages: tuple[str, str], data: CallData, *, is_request: bool) -> PairDiff:
    """Original against final for the request (is_request) or the response."""
    call = data.call
    rows = [data.stages.get(name) for name in stages]
    infos = [stage_info(name, row, call.error) for name, row in zip(stages, rows)]
    pair = PairDiff(title, infos[0], infos[1], mode="none")
    present = [row for row in rows if row is not None and row.has_body]
    if not present:
        texts = [_side_text(info, row) for info, row in zip(infos, rows)]
        if any(texts):
            pair.mode = "json"
            pair.json_diff = diff_text(texts[0], texts[1])
            pair.changed = pair.json_diff.changed
            pair.json_text = texts[1] or texts[0] if not pair.changed else None
        return pair
    if len(present) == 1:
        pair.shown = present[0].stage
    old_body, new_body = (present[0].body, present[-1].body)
    parse = parse_request if is_request else parse_response
    old_view, new_view = parse(call.dialect, old_body), parse(call.dialect, new_body)
    if old_view is None or new_view is None:
        pair.mode = "json"
        pair.json_diff = diff_text(pretty_json(old_body), pretty_json(new_body))
        pair.changed = pair.json_diff.changed
        pair.json_text = None if pair.changed else pretty_json(new_body)
        return pair
    differ = _Differ(data.events, data.judgements)
    pair.mode = "blocks"
    if isinstance(old_view, RequestView) and isinstance(new_view, RequestView):
        pair.system = differ.blocks(old_view.system, new_view.system)
        pair.items = _open_newest(differ.messages(old_view.messages, new_view.messages))
        pair.fields = _request_fields(old_view, new_view)
    elif isinstance(old_view, ResponseView) and isinstance(new_view, ResponseView):
        message = differ.blocks(old_view.message.blocks, new_view.message.blocks)
        status: Status = "changed" if any(b.status != "same" for b in message) else "same"
        pair.items = [MessageDiff(status, new_view.message.role, 1, tuple(message))]
        pair.fields = _response_fields(old_view, new_view)
    pair.changed = old_body != new_body
    return pair


@dataclass
class CallDiff:
    request: PairDiff
    response: PairDiff


def call_diff(data: CallData) -> CallDiff:
    return CallDiff(
        request=pair_diff("Request", ("request_original", "request_final"), data, is_request=True),
        response=pair_diff("Response", ("response_original", "response_final"), data, is_request=False),
    )
