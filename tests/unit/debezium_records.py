"""Real records of a stock Debezium PostgreSQL connector (tests/fixtures/debezium/postgres-3.6.1.json: how they
were made is in the file), and the same records as `schemas.enable=false` writes them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import NamedTuple

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "debezium" / "postgres-3.6.1.json"


class Record(NamedTuple):
    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None


@cache
def _records() -> dict[str, dict]:
    return json.loads(FIXTURE.read_text())["records"]


def names() -> list[str]:
    return sorted(_records())


def record(name: str, *, schemas: bool = True) -> Record:
    """The record `name`; with `schemas=False`, its key and value without the envelope (as Jackson writes them:
    compact, in the schema's field order)."""
    raw = _records()[name]
    key, value = raw["key"], raw["value"]
    if not schemas:
        key = key and _payload(key)
        value = value and _payload(value)
    return Record(raw["topic"], raw["partition"], key and key.encode(), value and value.encode())


def _payload(text: str) -> str:
    return json.dumps(json.loads(text)["payload"], separators=(",", ":"), ensure_ascii=False)
