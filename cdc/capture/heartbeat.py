"""Heartbeats: a non-transactional logical message written every `heartbeat_interval` seconds, so a slot whose
tables see no writes still has something to advance past (otherwise it would hold WAL back forever). Capture
reads them like any change and advances past them; they never become events."""

from __future__ import annotations

import time

import asyncpg

PREFIX = "cdc-heartbeat"


class HeartbeatClock:
    def __init__(self, interval: float, clock=time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: float | None = None

    def due(self) -> bool:
        return self.interval > 0 and (self._last is None or self.clock() - self._last >= self.interval)

    def beat(self) -> None:
        self._last = self.clock()


async def emit_heartbeat(conn: asyncpg.Connection) -> int:
    """Write one heartbeat; its LSN."""
    return await conn.fetchval(
        "SELECT (pg_catalog.pg_logical_emit_message(false, $1, now()::text) - '0/0'::pg_lsn)::int8", PREFIX)
