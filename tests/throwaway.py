"""Tearing down what a test made on the shared stack: its databases (with their replication slots) and topics."""

from __future__ import annotations

import contextlib

import asyncpg

from cdc.demo.setup import drop_database
from cdc.settings import Settings


async def drop_throwaway(settings: Settings) -> None:
    """Drop the test's ERP, CRM and state databases and every topic under its topic prefix."""
    admin = await asyncpg.connect(settings.local_dsn("postgres"))
    try:
        for name in (settings.erp_database, settings.crm_database, settings.state_database):
            await drop_database(admin, name)
    finally:
        await admin.close()
    from cdc.topics.admin import admin_client

    with contextlib.suppress(Exception):
        client = await admin_client(settings, 10)
        try:
            topics = [t for t in await client.list_topics() if t.startswith(settings.topic_prefix + ".")]
            if topics:
                await client.delete_topics(topics)
        finally:
            await client.close()
