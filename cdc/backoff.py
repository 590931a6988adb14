"""The one retry policy: backoff with jitter, and `retry`, which repeats an operation on retriable errors until a
deadline or a number of tries.

Each purpose configures a `Backoff` of its own: reaching a database or the broker again (capture, the worker's
reconnect, `cdc.topics.broker`, monitoring: doubling up to a cap), a worker's batch that collided with another
worker's (`consumers.worker`: a few tenths of a second), a parked change's next try (`consumers.parking.PARKED`: a
fixed schedule of steps, counted by the attempts the state database keeps).

Jitter spreads the attempts of processes that lost a service at the same moment (a worker, capture and a command
all retrying against a restarted broker) so they do not come back in lockstep: each wait is drawn between
(1 - `jitter`) and 1 times the nominal delay, so the documented bounds still hold.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

JITTER = 0.2


class Backoff:
    """Waits that grow with each attempt: doubling from `first` up to `most`, or, given `steps`, those delays in turn
    (the last one repeated); each drawn between (1 - `jitter`) and 1 times its nominal delay."""

    def __init__(self, first: float = 0.5, most: float = 30.0, *, steps: Sequence[float] = (),
                 jitter: float = JITTER, rng: Callable[[], float] = random.random) -> None:
        self.first, self.most, self.steps, self.jitter, self._rng = first, most, tuple(steps), jitter, rng
        self._attempt = 0

    def nominal(self, attempt: int) -> float:
        """The delay before retry `attempt` (0: the first retry), without jitter."""
        if self.steps:
            return self.steps[min(attempt, len(self.steps) - 1)]
        return min(self.first * 2 ** min(attempt, 64), self.most)

    def delay(self, attempt: int) -> float:
        """The wait before retry `attempt`: its nominal delay shortened by up to `jitter`. Keeps no state, for
        attempts counted elsewhere (a parked change's, in the state database)."""
        return self.nominal(attempt) * (1 - self.jitter * self._rng())

    def next(self) -> float:
        """The next wait of this series of attempts."""
        current = self.delay(self._attempt)
        self._attempt += 1
        return current

    def reset(self) -> None:
        self._attempt = 0


async def retry(operation: Callable[[], Awaitable[T]], *, retriable: Callable[[BaseException], bool],
                timeout: float = math.inf, attempts: int | None = None,
                on_retry: Callable[[BaseException, float], None] | None = None,
                backoff: Backoff | None = None, stop: asyncio.Event | None = None) -> T:
    """`await operation()` until it succeeds. An error `retriable` accepts is tried again after the backoff's next
    wait (cut short at the deadline, `timeout` seconds from now, for one last attempt); any other error, a
    retriable one at the deadline or on the last of `attempts` tries, or any error once `stop` is set, propagates.
    `on_retry(error, wait)` is called before each wait (to log it)."""
    deadline = time.monotonic() + timeout
    delays = backoff or Backoff(first=0.25, most=5.0)
    tried = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            tried += 1
            if not retriable(exc):
                raise
            remaining = deadline - time.monotonic()
            if (remaining <= 0 or (attempts is not None and tried >= attempts)
                    or (stop is not None and stop.is_set())):
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
