"""The one retry policy for reaching a database or the broker again: exponential backoff with jitter, and
`retry`, which repeats an operation on retriable errors until a deadline.

Jitter spreads the attempts of processes that lost a service at the same moment (a worker, capture and a command
all retrying against a restarted broker) so they do not come back in lockstep: each wait is drawn between
(1 - `jitter`) and 1 times the nominal delay, so the documented bounds still hold.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

JITTER = 0.2


class Backoff:
    def __init__(self, first: float = 0.5, most: float = 30.0, *, jitter: float = JITTER,
                 rng: Callable[[], float] = random.random) -> None:
        self.first, self.most, self.jitter, self._rng = first, most, jitter, rng
        self._next = first

    def next(self) -> float:
        """The next wait: the nominal delay (doubling from `first` up to `most`) shortened by up to `jitter`."""
        current, self._next = self._next, min(self._next * 2, self.most)
        return current * (1 - self.jitter * self._rng())

    def reset(self) -> None:
        self._next = self.first


async def retry(operation: Callable[[], Awaitable[T]], *, retriable: Callable[[BaseException], bool],
                timeout: float, on_retry: Callable[[BaseException, float], None] | None = None,
                backoff: Backoff | None = None, stop: asyncio.Event | None = None) -> T:
    """`await operation()` until it succeeds. An error `retriable` accepts is tried again after the backoff's next
    wait (cut short at the deadline, `timeout` seconds from now, for one last attempt); any other error, a
    retriable one at the deadline, or any error once `stop` is set, propagates. `on_retry(error, wait)` is called
    before each wait (to log it)."""
    deadline = time.monotonic() + timeout
    delays = backoff or Backoff(first=0.25, most=5.0)
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not retriable(exc):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                raise
            pause = min(delays.next(), remaining)
            if on_retry is not None:
                on_retry(exc, pause)
        if stop is None:
            await asyncio.sleep(pause)
        else:
            try:
                await asyncio.wait_for(stop.wait(), pause)
            except TimeoutError:
                pass
