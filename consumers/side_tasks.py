"""Side tasks: what runs beside the consume loop (the parked-change retrier), supervised with one
`asyncio.wait(…, FIRST_COMPLETED)` as procrastinate's worker does.

A side task that fails ends the consume loop after its batch (never in the middle of one), then its error is
raised; a consume loop that ends (`stop`, or its own error) cancels the side tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""A loop that runs until the event it is handed is set."""


async def supervise(consume: Loop, sides: Sequence[Loop], stop: asyncio.Event) -> None:
    """Run `consume` and `sides` until `stop` or a failure. The consume loop is handed `halt` (set on `stop` or a side
    task's failure), the side tasks `stop`."""
    halt = asyncio.Event()
    main = asyncio.create_task(consume(halt), name="consume")
    stopped = asyncio.create_task(stop.wait(), name="stop")
    others = {asyncio.create_task(side(stop), name=getattr(side, "__name__", "side")) for side in sides}
    failure: BaseException | None = None
    try:
        pending = {main, stopped, *others}
        while not main.done():
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {main}:
                if task is stopped:
                    halt.set()
                elif failure is None and not task.cancelled() and task.exception() is not None:
                    failure = task.exception()  # a side task that ends cleanly leaves the others running
                    halt.set()
        main.result()  # the consume loop's own error first: it is the later one
        if failure is not None:
            raise failure
    finally:
        for task in (main, stopped, *others):
            task.cancel()
        for task in (main, stopped, *others):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
