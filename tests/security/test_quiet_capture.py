"""Issue #19, item 4: what capture does routinely stays out of the server log. It used to peek at its slot with
SQL many times a second, and each peek logged "starting logical decoding for slot …" and "… found consistent point"
with its statement — megabytes a day; a streaming capture logs them once per connection, and nothing while it
reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from cdc.capture.loop import run_capture
from cdc.capture.progress import progress_path, read_progress
from cdc.capture.slot import slot_name
from cdc.stack.postgres import LocalPostgres
from tests.integration.capture_fixtures import CaptureEnv, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")
CHANGES = 10


async def server_log(conn: asyncpg.Connection, env: CaptureEnv) -> Path:
    current = await conn.fetchval("SELECT pg_current_logfile()")
    return Path(current) if current else LocalPostgres(env.base).log_file


async def test_capture_reading_changes_writes_nothing_to_the_server_log(capture_env: CaptureEnv) -> None:
    settings = capture_env.settings_for("quiet")
    slot = slot_name(settings, "erp")
    conn = await capture_env.connect("erp")

    async def published(events: int) -> bool:
        progress = read_progress(progress_path(settings, slot))
        return progress is not None and progress.events >= events

    stop = asyncio.Event()
    capture = asyncio.create_task(run_capture(settings, ["erp"], stop))
    try:
        await wait_until(lambda: conn.fetchval("SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot),
                         60, "capture streaming its slot")
        await conn.execute("INSERT INTO currency(code, description) VALUES ('Q00', 'quiet')")
        await wait_until(lambda: published(1), 60, "capture reading (its first change published)")
        log = await server_log(conn, capture_env)
        start = log.stat().st_size
        for n in range(1, CHANGES + 1):
            await conn.execute("INSERT INTO currency(code, description) VALUES ($1, 'quiet')", f"Q{n:02d}")
            await wait_until(lambda n=n: published(1 + n), 30, f"change {n} published")
            await asyncio.sleep(0.2)  # idle between changes too: a polling capture would read meanwhile
        written = log.read_bytes()[start:].decode(errors="replace")
    finally:
        stop.set()
        await capture
        await conn.close()
    routine = [line for line in written.splitlines() if slot in line or "logical decoding" in line]
    assert routine == [], routine
