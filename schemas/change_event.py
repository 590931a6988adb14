"""The change event: Debezium's change-event value (JSON, no embedded schema) plus a few fields of our own.

Debezium consumers can read our topics as they read a PostgreSQL connector's, and our worker reads topics written
by a stock Debezium PostgreSQL connector (JsonConverter, with or without `schemas.enable`: the envelope and its
encodings are read by `schemas.connect_json`). Fields of our own: `event_id` (stable across re-publication, so
duplicates are recognisable), `system` and `replay` (set by the orchestrator on replayed rows).

Value encoding on our topics: numbers and text as JSON numbers/strings, `numeric` as a decimal string (Debezium's
`decimal.handling.mode=string`), dates and timestamps as ISO-8601 strings, UUIDs as strings, booleans as JSON
booleans. An event is a notice that a row changed: the worker reads only its key from the image (typed by the
image's schema when the record embeds one), and re-reads the row itself.

Not every record on a change topic is a change (`NotAChange`): tombstones, and Debezium's heartbeats, transaction
boundaries, logical decoding messages (op "m") and truncates (op "t") when they reach a change topic.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas import connect_json, json_text, key_text

SCHEMA_VERSION = 1
SCHEMA_VERSION_HEADER = "cdc-schema-version"
CONNECTOR = "cdc-sync"

Op = Literal["c", "u", "d", "r"]


class EventDecodeError(ValueError):
    """A record on a topic that is not a change event we can act on (a poison message)."""


class Source(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    version: str = "1"
    connector: str = CONNECTOR
    name: str = ""
    db: str = ""
    schema_: str = Field("public", alias="schema")
    table: str
    ts_ms: int = 0
    snapshot: str | bool | None = "false"
    txId: int | None = None
    lsn: int | None = None
    commit_lsn: int | None = None
    sequence: str | None = None

    @property
    def origin(self) -> str | None:
        """The replication origin of the change's transaction, which Debezium (3.5 and later, with pgoutput)
        reports: the sync's own writes carry one named `CDC_REPLICATION_ORIGIN_PREFIX...`. Not on our topics
        (capture drops those transactions)."""
        origin = (self.model_extra or {}).get("origin")
        return origin if isinstance(origin, str) else None

    @property
    def is_snapshot(self) -> bool:
        return str(self.snapshot).lower() not in ("false", "none", "")


class ReplayInfo(BaseModel):
    """Set on events the orchestrator replays: which run, which mapping, and whether creation is allowed."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    job_id: str
    mapping: str
    create: bool = True


class ChangeEvent(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    op: Op
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    source: Source
    ts_ms: int = 0
    transaction: dict[str, Any] | None = None
    event_id: str | None = None
    system: str | None = None
    replay: ReplayInfo | None = None
    schema_version: int = SCHEMA_VERSION

    @model_validator(mode="after")
    def _images(self) -> ChangeEvent:
        if self.op in ("c", "u", "r") and self.after is None:
            raise ValueError(f"op {self.op!r} needs an 'after' image")
        if self.op == "d" and self.before is None:
            raise ValueError("op 'd' needs a 'before' image (at least the key)")
        return self

    @property
    def row(self) -> dict[str, Any]:
        """The record as it is after the change (before it, for a delete)."""
        image = self.before if self.op == "d" else self.after
        assert image is not None
        return image

    @property
    def position(self) -> tuple[int, int]:
        """(commit LSN, change LSN): orders the changes of one system."""
        return (self.source.commit_lsn or self.source.lsn or 0, self.source.lsn or 0)

    def stable_id(self) -> str:
        """The event id, or one derived from the source position (Debezium events carry none)."""
        if self.event_id:
            return self.event_id
        commit, change = self.position
        return f"{self.source.name or self.source.db}:{self.source.table}:{commit}:{change}"

    def to_wire(self) -> bytes:
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=False),
                          separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_wire(cls, value: bytes | None) -> ChangeEvent | None:
        """Parse a topic record's value. None for a record that is not a change (a tombstone, a heartbeat...);
        EventDecodeError for anything unusable."""
        decoded = cls.decode_wire(value)
        return decoded.event if isinstance(decoded, Decoded) else None

    @classmethod
    def decode_wire(cls, value: bytes | None) -> Decoded | NotAChange:
        """The event, the JSON object it was validated from (parsed once) and its image's column schemas; or what
        else the record is. EventDecodeError for anything unusable."""
        if value is None:
            return NotAChange("tombstone")
        try:
            document = json_text.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EventDecodeError(f"not JSON: {exc}") from None
        payload, schema = connect_json.unwrap(document)  # Debezium with schemas.enable=true: an envelope
        if payload is None:
            return NotAChange("tombstone")
        if not isinstance(payload, dict):
            raise EventDecodeError(f"expected a JSON object, got {type(payload).__name__}")
        other = not_a_change(payload, schema)
        if other is not None:
            return other
        try:
            return Decoded(cls.model_validate(payload), payload, connect_json.image_columns(schema))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "event"
            raise EventDecodeError(f"invalid change event at {where}: {first['msg']}") from None


@dataclass(frozen=True)
class Decoded:
    """A change event read from a topic record."""

    event: ChangeEvent
    payload: dict[str, Any]
    """The JSON object the event was validated from (the envelope's payload)."""
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The Connect schema of each image column, when the record embedded its schema; {} otherwise."""


NotAChangeKind = Literal["tombstone", "heartbeat", "transaction", "message", "truncate"]


@dataclass(frozen=True)
class NotAChange:
    """A record on a change topic that changes no row."""

    kind: NotAChangeKind
    table: str | None = None


TRANSACTION_STATUSES = frozenset({"BEGIN", "END"})
HEARTBEAT_SCHEMA = "io.debezium.connector.common.Heartbeat"
TRANSACTION_SCHEMA_SUFFIX = "TransactionMetadataValue"


def not_a_change(payload: dict[str, Any], schema: dict[str, Any] | None = None) -> NotAChange | None:
    """What a record that is not a row change is (Debezium's heartbeats, transaction boundaries, logical decoding
    messages, truncates), or None for anything else."""
    op = payload.get("op")
    if op == "t":
        source = payload.get("source")
        return NotAChange("truncate", source.get("table") if isinstance(source, dict) else None)
    if op == "m":
        return NotAChange("message")
    if op is not None:
        return None
    name = str((schema or {}).get("name") or "")
    if name.endswith(TRANSACTION_SCHEMA_SUFFIX) or (
            payload.get("status") in TRANSACTION_STATUSES and "id" in payload):
        return NotAChange("transaction")
    if name == HEARTBEAT_SCHEMA or (payload.keys() == {"ts_ms"}):
        return NotAChange("heartbeat")
    return None


def _compact_encoder() -> Any:
    """Compact JSON keeping UTF-8 as is. The C encoder is built once: JSONEncoder.encode builds it per call, which
    costs as much as the encoding (keys are encoded once per captured change)."""
    make = json.encoder.c_make_encoder
    if make is None:
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
    encode = make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


compact_json = _compact_encoder()
"""`json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)`, faster."""


def encode_key(key: dict[str, Any]) -> bytes:
    return compact_json(key).encode()


def decode_key(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        key, _ = connect_json.unwrap(json_text.loads(raw))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return key if isinstance(key, dict) else None


def notice(system: str, schema: str, table: str, key_columns: Sequence[str], key: str, why: str) -> dict[str, Any]:
    """An event (as its JSON object) that says only "decide this record again": the worker reads its key and
    re-reads the row, as for any event. Stored on a conflict's error (to retry or resolve it) and parked for a
    record whose partner was settled while its own change may have been consumed."""
    after = dict(zip(key_columns, key_text.decode(key, len(key_columns)), strict=True))
    return ChangeEvent(op="u", after=after, source=Source(table=table, schema=schema),
                       event_id=f"notice:{why}:{system}:{table}:{key}", system=system).model_dump(
        mode="json", by_alias=True)
