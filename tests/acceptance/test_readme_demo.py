"""The README's main command, exactly: `make demo` (bash scripts/demo.sh) brings up the whole demo, and a change
made in the ERP appears in the CRM."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from cdc.demo.dataset import Dataset, Shape
from cdc.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROOT = Path(__file__).resolve().parents[2]


async def test_the_readme_demo_command_runs_the_main_job(settings: Settings, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "CDC_ERP_DATABASE": f"cdc_demo_erp_{tag}", "CDC_CRM_DATABASE": f"cdc_demo_crm_{tag}",
           "CDC_STATE_DATABASE": f"cdc_demo_state_{tag}", "CDC_TOPIC_PREFIX": f"d{tag}",
           "CDC_CONSUMER_GROUP": f"d{tag}", "CDC_DASHBOARD_PORT": "8188", "CDC_TOPIC_PARTITIONS": "2"}
    s = settings.model_copy(update={"erp_database": env["CDC_ERP_DATABASE"], "crm_database": env["CDC_CRM_DATABASE"],
                                    "state_database": env["CDC_STATE_DATABASE"]})
    out = (tmp_path / "demo.out").open("w+")
    demo = subprocess.Popen(["make", "-s", "demo", "DEMO_ARGS=--customers 150"], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        text = ""
        while "live." not in text:
            assert demo.poll() is None, f"the demo exited early:\n{Path(out.name).read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the demo did not go live:\n{text[-3000:]}"
            time.sleep(1)
            text = Path(out.name).read_text()
        assert "http://127.0.0.1:8188/" in text
        # a healthy sync: the records that cannot sync are the data set's deliberate cases, each listed
        dataset = Dataset(Shape(customers=150, seed=1, overlap=0.3))
        for _ in dataset.batches():
            pass
        assert 3 <= len(dataset.deliberate) <= 12
        assert f"    {len(dataset.deliberate)} record(s) cannot sync" in text, text[-3000:]
        for record in dataset.deliberate:
            assert f": {record.table} {record.key}: " in text, (record, text[-3000:])

        erp = await asyncpg.connect(s.dsn("erp"))
        crm = await asyncpg.connect(s.dsn("crm"))
        try:
            no = await erp.fetchval("SELECT no FROM customer c WHERE blocked = '' AND (salesperson_code IS NULL OR "
                                    "EXISTS (SELECT 1 FROM salesperson p WHERE p.code = c.salesperson_code)) "
                                    "AND EXISTS (SELECT 1 FROM customer) ORDER BY no LIMIT 1")
            account = await crm.fetchval("SELECT accountid FROM account WHERE accountnumber = $1", no)
            assert account is not None, f"customer {no} was not synced by the full sync"
            started = time.monotonic()
            await erp.execute("UPDATE customer SET city = 'Demo City' WHERE no = $1", no)
            while await crm.fetchval("SELECT address1_city FROM account WHERE accountid = $1", account) != \
                    "Demo City":
                assert time.monotonic() - started < 30, "the ERP change did not reach the CRM"
                time.sleep(0.05)
            print(f"ERP -> CRM in {time.monotonic() - started:.2f} s")
        finally:
            await erp.close()
            await crm.close()
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            code = demo.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            code = demo.wait(10)
        admin = await asyncpg.connect(settings.local_dsn("postgres"))
        try:
            for name in (env["CDC_ERP_DATABASE"], env["CDC_CRM_DATABASE"], env["CDC_STATE_DATABASE"]):
                await admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                    "WHERE database = $1 AND NOT active", name)
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
    # Ctrl-C reaches make too (it reports the interrupt); what matters is that the demo stopped cleanly.
    assert "demo stopped" in Path(out.name).read_text(), (code, Path(out.name).read_text()[-3000:])
