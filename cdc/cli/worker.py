"""`cdc worker`: run one sync worker (a consumer-group member) until SIGTERM / Ctrl-C."""

from __future__ import annotations

import asyncio
import signal

from cdc.cli import app, settings


@app.command()
def worker() -> None:
    """Consume the mapped topics and apply the mappings. Start several to share the partitions."""
    from consumers import run_worker

    asyncio.run(_until_signalled(run_worker))


async def _until_signalled(main) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await main(settings(), stop)
