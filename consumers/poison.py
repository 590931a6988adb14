"""Poison: a record whose operation or key cannot be read goes to the dead-letter topic, with why and where it came
from, and becomes a job error. Its dead letter is acknowledged before the offsets that skip it are committed."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

from cdc.state import job_errors
from consumers.incoming import Poison

log = structlog.get_logger()


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str

    def headers(self) -> list[tuple[str, bytes]]:
        return [("cdc-dlq-topic", self.topic.encode()), ("cdc-dlq-partition", str(self.partition).encode()),
                ("cdc-dlq-offset", str(self.offset).encode()), ("cdc-dlq-reason", self.reason.encode()[:4000])]


async def send(producer: AIOKafkaProducer, topic: str, letters: list[DeadLetter]) -> None:
    """Publish and wait for every acknowledgement (before the offsets that skip these records are committed)."""
    futures = [await producer.send(topic, value=letter.value if letter.value is not None else b"",
                                   key=letter.key, headers=letter.headers()) for letter in letters]
    for future in futures:
        await future


class PoisonHandler:
    """A batch's poison: dead letters first (all acknowledged), then a job error each."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def handle(self, state: asyncpg.Connection, poisoned: list[tuple[DeadLetter, Poison]]) -> None:
        if not poisoned:
            return
        await send(self.producer, self.topic, [letter for letter, _ in poisoned])
        for letter, p in poisoned:
            await job_errors.record_error(
                state, None, "-", (p.system or "erp"), p.key or f"{letter.topic}@{letter.partition}:"
                f"{letter.offset}", None, None, f"dead letter: {p.reason}",
                detail=f"{letter.topic} partition {letter.partition} offset {letter.offset}")
            log.warning("dead letter", topic=letter.topic, partition=letter.partition, offset=letter.offset,
                        reason=p.reason)
