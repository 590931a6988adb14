"""The first command on a stack that has never run (issue #13): a freshly formatted broker answers metadata
requests seconds before it serves consumer groups, and the first group request only starts creating
`__consumer_offsets`. `cdc stack up` must return only once groups are served, and a command meeting a broker in
that state (or a coordinator moving) must retry instead of failing."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv
from tests.fresh_stack import ROOT, cold_broker, fresh_home

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_stack_up_returns_once_a_fresh_broker_serves_consumer_groups(settings: Settings) -> None:
    with fresh_home(settings) as (fresh, env):
        up = subprocess.run([sys.executable, "-m", "cdc", "stack", "up"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        # Right away, one request each and no retry: what the first command of `make demo` does.
        admin = AIOKafkaAdminClient(bootstrap_servers=fresh.kafka_bootstrap)
        await admin.start()
        try:
            assert "__consumer_offsets" in await admin.list_topics()
            for group in (fresh.consumer_group, f"first-{uuid.uuid4().hex[:8]}"):
                described = await admin.describe_consumer_groups([group])
                [answer] = [g for response in described for g in response.to_object()["groups"]]
                assert (answer["error_code"], answer["state"]) == (0, "Dead"), answer
        finally:
            await admin.close()


async def test_full_sync_succeeds_as_the_first_command_on_a_fresh_broker(settings: Settings) -> None:
    async with cold_broker(settings) as cold:
        env = await OrchestratorEnv(cold, "fresh").create()
        try:
            await env.seed(erp=True, crm=False, customers=5)
            done = env.cdc("full-sync", "--yes", "--restore", "--json")
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            assert json.loads(done.stdout)["status"] == "succeeded"
        finally:
            await env.drop()
