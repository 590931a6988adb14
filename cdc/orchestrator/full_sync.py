"""Full synchronization: every in-filter record of every mapping, in dependency order, with creation allowed.

Uncoupled records are created and coupled on the other side (or coupled to a matching record) whatever the
mapping's "only coupled" setting: the replays carry `create=True`, so the persistent setting is not touched while
the run goes. At the end the user chooses whether creation stays allowed (`keep_creating`: the mappings' "only
coupled" is cleared in the state database) or the settings stay as they were.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cdc import database
from cdc.mapping.model import MappingFile
from cdc.orchestrator import runner
from cdc.orchestrator.progress import Reporter
from cdc.orchestrator.workers import WorkerFactory
from cdc.settings import Settings
from cdc.state import mapping_settings


async def full_sync(settings: Settings, mapping_file: MappingFile, *, stop: asyncio.Event, reporter: Reporter,
                    only: str | None = None, manual: bool = False,
                    stall_timeout: float = runner.STALL_TIMEOUT,
                    worker: WorkerFactory | None) -> runner.RunResult:
    """`cdc full-sync` (all mappings, jobs of kind 'full') or `cdc sync --mapping M --full` (kind 'manual')."""
    options = runner.RunOptions(run_kind="manual-full" if manual else "full",
                                job_kind="manual" if manual else "full", full=True, only=only,
                                stall_timeout=stall_timeout)
    return await runner.run(settings, mapping_file, options, stop=stop, reporter=reporter, worker=worker)


def keep_creating_choice(keep: bool | None, interactive: bool, ask: Callable[[], bool]) -> bool:
    """Whether to leave "only coupled" cleared after a full sync.

    An explicit flag (`--keep-creating` True, `--restore` False) decides; otherwise a terminal asks; without a
    terminal the previous settings are kept (restore).
    """
    if keep is not None:
        return keep
    if interactive:
        return ask()
    return False


async def keep_creating(settings: Settings, names: list[str]) -> None:
    """Clear "only coupled" on these mappings for good: later changes of uncoupled records create partners."""
    conn = await database.connect(settings.dsn("state"), role="state")
    try:
        await mapping_settings.set_sync_only_coupled(conn, names, False)
    finally:
        await conn.close()
