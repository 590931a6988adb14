"""Watermarks of "sync modified": per mapping and side, the latest modified-on already synced.

The rules (pure; the values live in `cdc.state.mapping_settings`):
- a side without a watermark replays everything in its filter; otherwise only rows modified after it;
- after a step completes, the watermark moves to the latest modified-on seen, but never past the job's start
  (a row modified after the job started may not have been read, and is read again next time) and never back.
A row whose transaction commits after the read with an older modified-on is not seen by the next
"sync modified" either (the reference has the same weakness); live capture carries such changes anyway.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from cdc.pair import System
from cdc.state import mapping_settings


def replay_since(watermark: datetime | None, full: bool) -> datetime | None:
    """The lower bound (exclusive) of the rows a step replays: none for a full sync or without a watermark."""
    return None if full else watermark


def advanced(current: datetime | None, latest_seen: datetime | None, job_started: datetime) -> datetime | None:
    """The watermark after a completed step, or None when it stays where it is."""
    if latest_seen is None:
        return None
    candidate = min(latest_seen, job_started)
    if current is not None and candidate <= current:
        return None
    return candidate


class LatestSeen:
    """Tracks the latest modified-on among the rows a step replays."""

    def __init__(self) -> None:
        self.value: datetime | None = None

    def see(self, moment: datetime | None) -> None:
        if moment is not None and (self.value is None or moment > self.value):
            self.value = moment


async def current(conn: asyncpg.Connection, mapping: str, system: System) -> datetime | None:
    return await mapping_settings.get_watermark(conn, mapping, system)


async def advance(conn: asyncpg.Connection, mapping: str, system: System, latest_seen: datetime | None,
                  job_started: datetime) -> datetime | None:
    """Apply the rule in the state database; the watermark now in force."""
    now = await current(conn, mapping, system)
    moved = advanced(now, latest_seen, job_started)
    if moved is None:
        return now
    return await mapping_settings.set_watermark(conn, mapping, system, moved)
