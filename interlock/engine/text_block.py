"""One block of assistant text on its way through the text policies, for every dialect.

A dialect's stream rewriter keeps a `PolicedText` per text block (or one for the
message, where the wire has a single text): the `TextAligner` lining up what the
policies release with the upstream deltas, the events waiting behind held text, and
whether the policies saw text whose end they were not told yet. What happens to the
block's text is here, once: a delta through the policies (`released`, then `line_up`
with the upstream deltas, or both at once: `add`), the block's end (`close`), a text policy that failed and blocks
(`fail`: the message ends; what was released goes out, then the notice). The rewriter
only turns the pieces into its wire's events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlock.engine.aligner import EventsBehindText, TextAligner, TextPiece
from interlock.engine.driver import Step, run
from interlock.policy.chain import PolicyFailed
from interlock.sse import SSEEvent

if TYPE_CHECKING:
    from interlock.policy.base import PolicyContext
    from interlock.policy.chain import PolicyChain

Pieces = list[TextPiece | SSEEvent]


class PolicedText:
    __slots__ = ("aligner", "behind", "chain", "ctx", "open")

    def __init__(self, chain: PolicyChain, ctx: PolicyContext) -> None:
        self.chain = chain
        self.ctx = ctx
        self.aligner = TextAligner()
        self.behind = EventsBehindText()
        self.open = False  # the policies saw text and were not told its end yet

    def released(self, text: str) -> Step[str]:
        """What the policies release for a delta; a policy failing and blocking ends
        the message and gives its notice instead (the caller abandons the aligner)."""
        self.open = True
        try:
            out: str = yield from run(self.chain.text(self.ctx, text))
        except PolicyFailed as failed:
            self.ctx.end_message(failed.policy, failed.reason)
            return failed.notice
        return out

    def add(self, event: SSEEvent | None, text: str) -> Step[Pieces]:
        """An upstream delta (`event` None when it cannot go out as it came) through the
        policies: what to send now, upstream events whose text came out unchanged as
        they came."""
        self.open = True
        try:
            out: str = yield from run(self.chain.text(self.ctx, text))
        except PolicyFailed as failed:
            return self.fail(failed)
        return self.line_up(event, text, out)

    def line_up(self, event: SSEEvent | None, text: str, released: str) -> Pieces:
        """What to send now for a delta whose text the policies released `released` for."""
        self.behind.add(event, text)
        return self.behind.release(self.aligner.add(event, text, released), final=False)

    def close(self) -> Step[Pieces]:
        """The block's text ends (a call, the finish, or a failed end follows): what the
        policies still hold. After the message was ended nothing more is asked of them:
        what they had released goes out, with the events that waited behind it."""
        if not self.open or self.ctx.ended_by is not None:
            return self.abandon()
        self.open = False
        try:
            tail: str = yield from run(self.chain.text_end(self.ctx))
        except PolicyFailed as failed:
            return self.fail(failed)
        return self.behind.release(self.aligner.flush(tail), final=True)

    def fail(self, failed: PolicyFailed) -> Pieces:
        """A text policy failed and blocks: the message ends; what was released goes
        out, then the notice, then the events behind the held text."""
        self.ctx.end_message(failed.policy, failed.reason)
        self.open = False
        return [(None, self.aligner.abandon() + failed.notice), *self.behind.abandon()]

    def abandon(self, extra: str = "") -> Pieces:
        """Forget the held deltas: what the policies released for them (then `extra`)
        goes out as new text, then the events that waited behind them."""
        self.open = False
        rest = self.aligner.abandon() + extra
        pieces: Pieces = [(None, rest)] if rest else []
        return [*pieces, *self.behind.abandon()]
