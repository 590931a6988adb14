"""Replay runs (`cdc.replay_runs`): one row per orchestrator command that replays, its jobs share its id.

`saved_settings` keeps what the run needs to undo or explain itself: the "only coupled" overrides in force when
it started and the mappings it covers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

RunKind = Literal["full", "modified", "manual", "manual-full", "match"]
RunStatus = Literal["running", "succeeded", "failed", "cancelled"]


@dataclass(frozen=True)
class Run:
    id: UUID
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    saved_settings: dict[str, Any] | None


def _run(row: asyncpg.Record) -> Run:
    data = dict(row)
    saved = data["saved_settings"]
    data["saved_settings"] = json.loads(saved) if isinstance(saved, str) else saved
    return Run(**data)


async def start(conn: asyncpg.Connection, kind: RunKind, saved: dict[str, Any]) -> Run:
    row = await conn.fetchrow(
        "INSERT INTO cdc.replay_runs (kind, saved_settings) VALUES ($1, $2::text::jsonb) RETURNING *",
        kind, json.dumps(saved, default=str, sort_keys=True))
    return _run(row)


async def finish(conn: asyncpg.Connection, run_id: UUID, status: RunStatus) -> None:
    await conn.execute("UPDATE cdc.replay_runs SET status = $2, finished_at = now() "
                       "WHERE id = $1 AND status = 'running'", run_id, status)


async def get(conn: asyncpg.Connection, run_id: UUID) -> Run | None:
    row = await conn.fetchrow("SELECT * FROM cdc.replay_runs WHERE id = $1", run_id)
    return None if row is None else _run(row)


async def last_full_start(conn: asyncpg.Connection, mapping: str, direction: str) -> datetime | None:
    """When the latest completed full replay of one mapping and direction started (full sync, or `sync --full`).

    Every in-filter record that existed then was replayed with creation allowed, so it should be coupled.
    """
    return await conn.fetchval(
        "SELECT max(j.started_at) FROM cdc.jobs j JOIN cdc.replay_runs r ON r.id = j.run_id "
        "WHERE j.mapping = $1 AND j.direction = $2 AND j.status = 'succeeded' "
        "AND r.kind IN ('full', 'manual-full')", mapping, direction)
