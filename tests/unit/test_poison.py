"""Poison (consumers/poison.py): every dead letter of a batch is acknowledged before the first job error is written,
and each error says where the record came from."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from consumers import poison
from consumers.incoming import Poison
from consumers.poison import DeadLetter, PoisonHandler


class _Producer:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def send(self, topic: str, value: bytes, key: bytes | None, headers: list) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, lambda: (self.events.append(f"acked {value!r}"),
                                                             done.set_result(None)))
        return done


async def test_dead_letters_are_acknowledged_before_the_job_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []

    async def record_error(conn: Any, job: Any, mapping: str, system: str, key: str, *rest: Any,
                           detail: str | None = None) -> None:
        events.append(f"error {system} {key} {rest[-1]} ({detail})")

    monkeypatch.setattr(poison.job_errors, "record_error", record_error)
    letters = [(DeadLetter("t", 0, 5, None, b"x", "not JSON"), Poison("not JSON", "erp", None, None)),
               (DeadLetter("t", 1, 9, b"k", None, "no key"), Poison("no key", "crm", "account", "A1"))]
    await PoisonHandler(_Producer(events), "dlq").handle(None, letters)  # type: ignore[arg-type]
    assert events == ["acked b'x'", "acked b''", "error erp t@0:5 dead letter: not JSON (t partition 0 offset 5)",
                      "error crm A1 dead letter: no key (t partition 1 offset 9)"]
