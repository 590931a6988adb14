"""Capture lag of one system: how far the slot trails the WAL (bytes) and how old the oldest change not yet
published is (seconds). Usable from any process: `cdc capture status`, `cdc status`, the dashboard.

Bytes come from pg_replication_slots. The age comes from the running capture's progress file while it is fresh;
when no capture is running (the slot idle, the file stale or absent) it is measured by peeking at the slot once for
the commit time of the first pending transaction.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from cdc.capture.pgoutput import Begin, Decoder
from cdc.capture.progress import Progress, progress_path, read_progress
from cdc.capture.slot import SlotState, publication_name, read_slot, slot_name
from cdc.database import connect
from cdc.settings import Settings

FRESH_SECONDS = 5.0  # a running capture refreshes its progress at least every second
PROBE_TIMEOUT = "5s"
PEEK = (  # a one-off look at a slot nobody streams (status of a stopped capture); never moves the slot
    "SELECT (lsn - '0/0'::pg_lsn)::int8, data "
    "  FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, NULL, $2::int, 'proto_version', '1', "
    "       'publication_names', $3, 'messages', 'true')"
)


@dataclass(frozen=True)
class CaptureLag:
    system: str
    slot: str
    slot_exists: bool
    slot_active: bool
    current_lsn: int
    confirmed_lsn: int | None
    lag_bytes: int | None
    oldest_unpublished_age: float | None  # seconds; 0 when caught up; None when unknown
    age_source: str  # 'capture' (live progress), 'probe' (peeked at the slot), 'slot' (no WAL since) or 'unknown'
    capture_running: bool
    last_published_lsn: int | None
    last_published_at: float | None  # Unix seconds
    events_published: int | None  # by the running capture since it started

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def live_age(progress: Progress | None, now: float) -> float | None:
    """The age from a fresh progress record, None when there is none (capture stopped or busy reading)."""
    if progress is None or progress.stopped or now - progress.updated_at > FRESH_SECONDS:
        return None
    if progress.pending_since is not None:
        return max(0.0, now - progress.pending_since)
    return 0.0 if progress.caught_up else None


def lag_of(system: str, slot: str, state: SlotState | None, current_lsn: int, progress: Progress | None,
           now: float, probed_age: float | None = None) -> CaptureLag:
    confirmed = state.confirmed_flush_lsn if state else None
    age = live_age(progress, now)
    source = "capture" if age is not None else "unknown"
    if age is None and probed_age is not None:
        age, source = probed_age, "probe"
    running = progress is not None and not progress.stopped and now - progress.updated_at <= FRESH_SECONDS
    if running and confirmed is not None and progress.published_lsn:
        confirmed = max(confirmed, progress.published_lsn)  # reported to the server up to a second late
    lag_bytes = max(0, current_lsn - confirmed) if confirmed is not None else None
    if age is None and lag_bytes == 0:
        age, source = 0.0, "slot"  # nothing written since the slot's position
    return CaptureLag(
        system=system, slot=slot, slot_exists=state is not None, slot_active=bool(state and state.active),
        current_lsn=current_lsn, confirmed_lsn=confirmed,
        lag_bytes=lag_bytes,
        oldest_unpublished_age=age, age_source=source, capture_running=running,
        last_published_lsn=progress.published_lsn if progress else confirmed,
        last_published_at=progress.published_at if progress else None,
        events_published=progress.events if progress else None)


async def read_lag(conn: asyncpg.Connection, settings: Settings, system: str, *, probe: bool = True) -> CaptureLag:
    slot = slot_name(settings, system)
    state = await read_slot(conn, slot)
    current = await conn.fetchval("SELECT (pg_catalog.pg_current_wal_lsn() - '0/0'::pg_lsn)::int8")
    progress = read_progress(progress_path(settings, slot))
    now = time.time()
    probed = None
    if (probe and state is not None and not state.active and live_age(progress, now) is None
            and state.confirmed_flush_lsn is not None and current > state.confirmed_flush_lsn):
        probed = await probe_age(conn, slot, publication_name(settings, system), now)
    return lag_of(system, slot, state, current, progress, now, probed)


async def capture_lag(settings: Settings, system: str, *, probe: bool = True) -> CaptureLag:
    """The lag of `system`'s capture; ServiceUnavailable when its database does not answer."""
    conn = await connect(settings.dsn(system), role=system)  # type: ignore[arg-type]
    try:
        return await read_lag(conn, settings, system, probe=probe)
    finally:
        await conn.close()


async def probe_age(conn: asyncpg.Connection, slot: str, publication: str, now: float) -> float | None:
    """Seconds since the commit of the first transaction the slot still holds; 0 if it holds none; None if the
    slot is busy or the peek takes too long."""
    decoder = Decoder()
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = '{PROBE_TIMEOUT}'")
            async for _, data in conn.cursor(PEEK, slot, 64, publication, prefetch=16):
                if data[:1] == b"B":
                    message = decoder.decode(data)
                    assert isinstance(message, Begin)
                    return max(0.0, now - message.commit_ts / 1e6)
        return 0.0
    except (asyncpg.ObjectInUseError, asyncpg.QueryCanceledError, TimeoutError):
        return None
