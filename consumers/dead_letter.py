"""Dead letters: a record the worker cannot use goes to the dead-letter topic with why and where it came from."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaProducer


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
