"""Issue #19, item 4: capture's peeks are routine and stay out of the server log (each one logged "starting
logical decoding for slot …" and "… found consistent point" with its statement: megabytes a day)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from cdc.capture.loop import run_capture
from cdc.capture.progress import progress_path, read_progress
from cdc.capture.slot import publication_name, slot_name
from cdc.stack.postgres import LocalPostgres
from tests.integration.capture_fixtures import CaptureEnv, capture_env_fixture, wait_until  # noqa: F401

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def server_log(conn: asyncpg.Connection, env: CaptureEnv) -> Path:
    current = await conn.fetchval("SELECT pg_current_logfile()")
    return Path(current) if current else LocalPostgres(env.base).log_file


async def test_capture_peeks_without_writing_to_the_server_log(capture_env: CaptureEnv) -> None:
    settings = capture_env.settings_for("quiet")
    slot = slot_name(settings, "erp")
    conn = await capture_env.connect("erp")
    try:
        log = await server_log(conn, capture_env)
        start = log.stat().st_size
        stop = asyncio.Event()
        capture = asyncio.create_task(run_capture(settings, ["erp"], stop))
        try:
            await wait_until(lambda: conn.fetchval("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
                                                   slot), 60, "capture's slot")
            await conn.execute("INSERT INTO currency(code, description) VALUES ('QQQ', 'quiet')")

            async def published() -> bool:
                progress = read_progress(progress_path(settings, slot))
                return progress is not None and progress.events >= 1

            await wait_until(published, 60, "the insert published (capture peeked it)")
        finally:
            stop.set()
            await capture
        # A plain session's peek at the same slot is logged: the server does log these lines.
        await conn.fetch("SELECT * FROM pg_logical_slot_peek_binary_changes($1, NULL, 1, 'proto_version', '1', "
                         "'publication_names', $2)", slot, publication_name(settings, "erp"))

        async def control_logged() -> bool:
            return f'slot "{slot}"' in log.read_bytes()[start:].decode(errors="replace")

        await wait_until(control_logged, 10, "the control peek's line")
    finally:
        await conn.close()
    written = log.read_bytes()[start:].decode(errors="replace")
    lines = [line for line in written.splitlines() if f'slot "{slot}"' in line]
    assert len(lines) == 1, lines  # the control peek's, and not one of capture's
