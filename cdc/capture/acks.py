"""Which stream position capture may report to PostgreSQL as flushed (pure).

Events are appended to record batches (one open batch per topic partition) and the batches are acknowledged by the
broker in any order across partitions. A transaction's end may be reported as flushed once every batch opened
before that end was read has been acknowledged: its own events are in those batches, and so are the events of
every earlier transaction. Batches are numbered in the order they are opened; a boundary remembers the first number
not yet given out when it was read.
"""

from __future__ import annotations

from collections import deque


class Acknowledgements:
    """`opened()` a batch → its number; `acknowledged(n)` when the broker confirmed it; `boundary(lsn)` at the end of
    each transaction (or standalone message) read; `confirmed` is the position that may be reported as flushed."""

    def __init__(self, confirmed: int = 0) -> None:
        self.confirmed = confirmed  # only ever moves forward
        self._next = 0  # number of the next batch opened
        self._unacked: set[int] = set()
        self._marks: deque[tuple[int, int, int | None]] = deque()  # (batches before it, lsn, commit time)
        self.confirmed_commit_ts: int | None = None  # commit time of the last transaction confirmed (µs)

    def opened(self) -> int:
        number = self._next
        self._next += 1
        self._unacked.add(number)
        return number

    def acknowledged(self, number: int) -> None:
        self._unacked.discard(number)
        if self._marks:
            self._settle()

    def boundary(self, lsn: int, commit_ts: int | None = None) -> None:
        self._marks.append((self._next, lsn, commit_ts))
        self._settle()

    @property
    def unacknowledged(self) -> int:
        """Batches opened and not yet acknowledged."""
        return len(self._unacked)

    @property
    def pending_since(self) -> int | None:
        """Commit time (µs) of the oldest transaction read whose end is not confirmed yet, None when there is none."""
        for _, _, commit_ts in self._marks:
            if commit_ts is not None:
                return commit_ts
        return None

    def _settle(self) -> None:
        lowest = min(self._unacked) if self._unacked else self._next
        marks = self._marks
        while marks and marks[0][0] <= lowest:
            _, lsn, commit_ts = marks.popleft()
            if lsn > self.confirmed:
                self.confirmed = lsn
            if commit_ts is not None:
                self.confirmed_commit_ts = commit_ts
