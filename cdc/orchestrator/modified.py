"""Synchronize modified records: per mapping (dependency order) and side, the in-filter rows modified since the
side's watermark (everything when there is none yet) are replayed; the watermarks then move forward.

Creation follows the mapping's effective "only coupled" setting: uncoupled records are created on the other side
only when it is off; otherwise they are counted as skipped.
"""

from __future__ import annotations

import asyncio

from cdc.mapping.model import MappingFile
from cdc.orchestrator import runner
from cdc.orchestrator.progress import Reporter
from cdc.orchestrator.workers import WorkerFactory
from cdc.settings import Settings


async def sync_modified(settings: Settings, mapping_file: MappingFile, *, stop: asyncio.Event,
                        reporter: Reporter, only: str | None = None, manual: bool = False,
                        stall_timeout: float = runner.STALL_TIMEOUT,
                        worker: WorkerFactory | None) -> runner.RunResult:
    """`cdc sync-modified` (jobs of kind 'modified') or `cdc sync --mapping M` (kind 'manual')."""
    options = runner.RunOptions(run_kind="manual" if manual else "modified",
                                job_kind="manual" if manual else "modified", full=False, only=only,
                                stall_timeout=stall_timeout)
    return await runner.run(settings, mapping_file, options, stop=stop, reporter=reporter, worker=worker)
