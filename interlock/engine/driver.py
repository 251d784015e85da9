"""Runs async policy hooks from synchronous code without a cost when they don't wait.

mitmproxy's stream transformer is synchronous. The stream rewriters are written as
generators that `yield from run(coro)`: `run` starts the coroutine as an eager task,
which executes right away up to its first real suspension. A hook that never suspends
finishes inside that call and its result is used at once; one that does wait hands its
task to the driver, which pauses the stream (the addon's wait hook awaits the task) and
resumes the generator with the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")

Step = Generator["asyncio.Task[Any]", Any, T]


def start_eager[T](coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start a coroutine now, on the running loop; it runs until it first suspends."""
    return asyncio.Task(coro, loop=asyncio.get_running_loop(), eager_start=True)


def run[T](coro: Coroutine[Any, Any, T]) -> Step[T]:
    """`result = yield from run(coro)` inside a driven generator."""
    task = start_eager(coro)
    if task.done():
        return task.result()
    result: T = yield task
    return result


def wait_for[T](task: asyncio.Task[T]) -> Step[T]:
    """`result = yield from wait_for(task)` for a task started earlier."""
    if task.done():
        return task.result()
    result: T = yield task
    return result


class Driver:
    """Drives step generators one after another; pauses while a task is pending."""

    def __init__(self) -> None:
        self._current: Step[None] | None = None
        self._pending: asyncio.Task[Any] | None = None

    @property
    def waiting(self) -> bool:
        return self._pending is not None

    @property
    def ready(self) -> bool:
        """The pending task is done: `resume()` may continue."""
        return self._pending is not None and self._pending.done()

    async def wait(self, timeout: float | None = None) -> None:
        """Await the pending task, or at most `timeout` seconds (its exceptions are the
        generator's to handle)."""
        if self._pending is not None:
            await asyncio.wait([self._pending], timeout=timeout)

    def start(self, step: Step[None]) -> bool:
        """Run a new step generator; False if it had to pause."""
        assert self._current is None, "a step is still paused"
        self._current = step
        return self._advance(None, None)

    def resume(self) -> bool:
        """Continue the paused generator with its task's outcome; False if it paused again."""
        task = self._pending
        assert task is not None and task.done()
        self._pending = None
        error = task.exception()
        return self._advance(None if error else task.result(), error)

    def _advance(self, value: Any, error: BaseException | None) -> bool:
        step = self._current
        assert step is not None
        try:
            while True:
                task = step.throw(error) if error is not None else step.send(value)
                if not task.done():
                    self._pending = task
                    return False
                error = task.exception()
                value = None if error else task.result()
        except StopIteration:
            self._current = None
            return True
