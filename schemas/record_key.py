"""How a topic's producer writes record keys, so that the keys we add to that topic are the same bytes.

Kafka puts a keyed record on partition murmur2(key bytes) % partitions: a row's records stay on one partition, in
order, only while every producer writes its key as the same bytes. Our keys are compact JSON objects
(`{"no":"C00001"}`), which is also what Debezium writes with `key.converter.schemas.enable=false`. With
the JsonConverter's default (`schemas.enable=true`) Debezium wraps the key in `{"schema": ..., "payload": ...}`:
the same row then hashes to another partition. A `KeyFormat` learnt from one of the topic's keys writes our
keys the producer's way (the schema's bytes as the producer wrote them, then the payload, its values encoded by
the key schema), so a replayed row lands where the producer's records of that row are. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas import connect_json, json_text
from schemas.change_event import compact_json, encode_key

_ENVELOPE_START = b'{"schema":'
_PAYLOAD = b',"payload":'


@dataclass(frozen=True)
class KeyFormat:
    """Our keys as a topic's producer writes its own: plain compact JSON, or in its JsonConverter envelope."""

    prefix: bytes = b""
    """`{"schema":<the producer's key schema>,"payload":` exactly as the producer wrote it; empty for plain keys."""
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The key schema's fields, in the producer's order."""

    @property
    def plain(self) -> bool:
        return not self.prefix

    def describe(self) -> str:
        return "JSON" if self.plain else f"JSON with an embedded schema ({', '.join(self.fields)})"

    def encode(self, key: dict[str, Any]) -> bytes:
        """The record key for `key` (column -> value, canonical or typed). Plain JSON when the producer's key has
        other columns than `key`, or types `connect_json.encode` cannot write exactly."""
        if self.plain or set(self.fields) != set(key):
            return encode_key(key)
        try:
            payload = {name: connect_json.encode(key[name], schema) for name, schema in self.fields.items()}
        except connect_json.ConnectValueError:
            return encode_key(key)
        return self.prefix + compact_json(payload).encode() + b"}"

    @classmethod
    def learn(cls, sample: bytes | None) -> KeyFormat:
        """The format of `sample`, a key the topic's producer wrote; plain when it is plain, not JSON, or written
        with other spacing than the JsonConverter's (then it cannot be reproduced byte for byte)."""
        if not sample or not sample.startswith(_ENVELOPE_START):
            return PLAIN
        try:
            document = json_text.loads(sample)
        except ValueError:
            return PLAIN
        payload, schema = connect_json.unwrap(document)
        fields = connect_json.struct_fields(schema)
        if not isinstance(payload, dict) or not fields or set(fields) != set(payload):
            return PLAIN
        tail = _PAYLOAD + compact_json(payload).encode() + b"}"
        if not sample.endswith(tail):
            return PLAIN
        return cls(sample[:len(sample) - len(tail) + len(_PAYLOAD)], fields)


PLAIN = KeyFormat()
