"""The README's main command, exactly: `make demo` (bash scripts/demo.sh) brings up the whole demo, and a change
made in the ERP appears in the CRM — the first time, on a stack that has never run (a freshly formatted broker
that has served no consumer group, a freshly initialised PostgreSQL), as on a fresh machine."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest

from cdc.demo.dataset import Dataset, Shape
from cdc.settings import Settings
from tests.fresh_stack import ROOT, fresh_home

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_readme_demo_command_runs_the_main_job_on_a_stack_that_never_ran(settings: Settings,
                                                                                    tmp_path: Path) -> None:
    with fresh_home(settings) as (s, env):
        env = {**env, "CDC_TOPIC_PARTITIONS": "2"}
        out = (tmp_path / "demo.out").open("w+")
        demo = subprocess.Popen(["make", "-s", "demo", "DEMO_ARGS=--customers 150"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 600
            text = ""
            while "live." not in text:
                assert demo.poll() is None, f"the demo exited early:\n{Path(out.name).read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"the demo did not go live:\n{text[-3000:]}"
                time.sleep(1)
                text = Path(out.name).read_text()
            assert f"http://127.0.0.1:{s.dashboard_port}/" in text
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
                no = await erp.fetchval("SELECT no FROM customer c WHERE blocked = '' AND (salesperson_code IS NULL "
                                        "OR EXISTS (SELECT 1 FROM salesperson p WHERE p.code = c.salesperson_code)) "
                                        "ORDER BY no LIMIT 1")
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
        # Ctrl-C reaches make too (it reports the interrupt); what matters is that the demo stopped cleanly.
        text = Path(out.name).read_text()
        assert "demo stopped" in text, (code, text[-3000:])
        assert "Traceback" not in text and "GroupCoordinatorNotAvailable" not in text, text[-3000:]
