"""Bringing the whole local stack up and down: what `cdc stack`, `cdc demo` and the test fixtures call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from cdc.settings import Settings
from cdc.stack.kafka import KafkaStatus, LocalKafka
from cdc.stack.postgres import LocalPostgres, PostgresStatus

log = structlog.get_logger()


async def up(settings: Settings) -> None:
    """Idempotent: starts what is not running and returns when both services answer — the broker once it serves
    consumer groups, so the first command after it does not meet "coordinator not available"."""
    postgres, kafka = LocalPostgres(settings), LocalKafka(settings)
    _private(settings.home)
    await asyncio.to_thread(kafka.start)
    await asyncio.to_thread(postgres.start)
    await postgres.wait_ready(settings.stack_timeout)
    await postgres.harden()
    await postgres.create_databases()
    await kafka.wait_ready(settings.stack_timeout)
    log.info("stack up", postgres=postgres.address, kafka=kafka.address)


OWN_DIRECTORIES = ("logs", "metrics", "capture")
"""What `cdc` keeps directly in CDC_HOME besides PostgreSQL's and Kafka's directories (which see to their own)."""


def _private(home: Path) -> None:
    """CDC_HOME and what `cdc` keeps in it (logs, metrics, progress files, the password) for its owner only: `cdc`
    creates files so (umask 077); this tightens what an older version left open. PostgreSQL's directory is
    `LocalPostgres`'s business, which also lets `postgres` pass through CDC_HOME."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    for name in OWN_DIRECTORIES:
        path = home / name
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o700)


async def down(settings: Settings) -> None:
    """Stops both services, and a local Kafka Connect (scripts/connect.sh) first when one runs."""
    from cdc.stack.connect import LocalConnect

    await asyncio.to_thread(LocalConnect(settings).stop)
    await asyncio.gather(asyncio.to_thread(LocalKafka(settings).stop), asyncio.to_thread(LocalPostgres(settings).stop))


async def status(settings: Settings) -> tuple[PostgresStatus, KafkaStatus]:
    return await asyncio.gather(LocalPostgres(settings).status(), LocalKafka(settings).status())
