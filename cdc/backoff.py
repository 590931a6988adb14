"""Exponential backoff between attempts to reach a database or the broker again."""

from __future__ import annotations


class Backoff:
    def __init__(self, first: float = 0.5, most: float = 30.0) -> None:
        self.first, self.most, self._next = first, most, first

    def next(self) -> float:
        current, self._next = self._next, min(self._next * 2, self.most)
        return current

    def reset(self) -> None:
        self._next = self.first
