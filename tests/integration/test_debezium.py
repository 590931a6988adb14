"""The sync behind a stock Debezium deployment: Kafka Connect 4.1 with debezium-connector-postgres (from Maven
Central, cached under CDC_HOME/connect) reads the ERP with every encoding at its default — the JsonConverter with
embedded schemas, precise decimals, adaptive time precision — into its own topics (`<topic.prefix>.public.<table>`,
no router); the worker applies them to the CRM; our capture reads only the CRM. Heartbeats and transaction metadata
are on; `customer` has REPLICA IDENTITY DEFAULT (partial images, key-only deletes and tombstones)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cdc.settings import Settings
from cdc.stack.connect import LocalConnect, postgres_connector
from cdc.topics.admin import admin_client
from consumers.decisions import echo
from tests.integration.sync_harness import LiveSync, mapping_file

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
ERP_TABLES = ["currency", "salesperson", "unit_of_measure", "customer", "contact", "resource", "item"]


@pytest.fixture(scope="module")
async def connect(settings: Settings) -> AsyncIterator[LocalConnect]:
    """One Connect worker for the module (fetched from Maven Central the first time); one already running under
    CDC_HOME (scripts/connect.sh up) is used and left running."""
    worker = LocalConnect(settings)
    started = worker.pid() is None
    await asyncio.to_thread(worker.ensure_jars)
    await asyncio.to_thread(worker.start)
    try:
        await worker.wait_ready(180)
        yield worker
    finally:
        if started:
            await asyncio.to_thread(worker.stop)


class Deployment:
    """A LiveSync whose ERP topics are a Debezium connector's, and that connector."""

    def __init__(self, live: LiveSync, connect: LocalConnect) -> None:
        self.live, self.connect = live, connect
        self.name = f"{live.settings.topic_prefix}-dbz"
        self.topic_prefix = f"{live.settings.topic_prefix}.dbz"  # under the test's prefix: dropped with its topics

    def topic(self, table: str) -> str:
        return self.live.settings.topic("erp", table)

    async def start_connector(self) -> None:
        config = postgres_connector(
            self.live.settings, "erp", topic_prefix=self.topic_prefix, slot=f"dbz_{self.live.tag}",
            tables=[f"public.{t}" for t in ERP_TABLES],
            **{"heartbeat.interval.ms": "1000", "provide.transaction.metadata": "true"})
        await asyncio.to_thread(self.connect.put_connector, self.name, config)
        await self.connect.wait_running(self.name, 120)
        shown = await asyncio.to_thread(self.connect.request, "GET", f"/connectors/{self.name}/config")
        assert shown["database.password"].startswith("${file:"), "Connect's REST API, open to local users, " \
            "shows the database password"

    async def stop_connector(self) -> None:
        await asyncio.to_thread(self.connect.delete_connector, self.name)
        admin = await admin_client(self.live.settings, 10)
        try:
            await admin.delete_topics([f"__debezium-heartbeat.{self.topic_prefix}"])
        except Exception:  # noqa: BLE001 - not created yet
            pass
        finally:
            await admin.close()

    async def consumed(self, table: str, name: str) -> None:
        """Until the worker has processed the record whose image has `name` (and everything before it)."""
        async def record():
            for r in await self.records(table):
                if r.value and (json.loads(r.value)["payload"]["after"] or {}).get("name") == name:
                    return r
            return None

        found = await self.live.until(record, what=f"Debezium publishing {name!r}")
        await self.live.until(lambda: self.live.state.fetchval(
            "SELECT next_offset > $4 FROM cdc.tracked_offsets WHERE consumer_group = $1 AND topic = $2 "
            "AND partition = $3", self.live.settings.consumer_group, found.topic, found.partition, found.offset),
            what=f"the worker past {name!r}")

    async def records(self, table: str) -> list:
        """Every record of a table's topic so far."""
        consumer = AIOKafkaConsumer(self.topic(table), bootstrap_servers=self.live.settings.kafka_bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            tps = consumer.assignment() or set()
            while not tps:
                await asyncio.sleep(0.1)
                tps = consumer.assignment()
            ends = await consumer.end_offsets(list(tps))
            found = []
            behind = {tp for tp, end in ends.items() if end > 0}
            while behind:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    found.extend(records)
                behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
            return found
        finally:
            await consumer.stop()

    def cdc(self, *args: str, **overrides: str) -> subprocess.CompletedProcess:
        s = self.live.settings
        env = {**os.environ, "CDC_ERP_DATABASE": s.erp_database, "CDC_CRM_DATABASE": s.crm_database,
               "CDC_STATE_DATABASE": s.state_database, "CDC_TOPIC_PREFIX": s.topic_prefix,
               "CDC_CONSUMER_GROUP": s.consumer_group, "CDC_TOPIC_PARTITIONS": str(s.topic_partitions),
               "CDC_ERP_TOPIC": s.erp_topic, "CDC_MAPPING_FILE": str(s.mapping_file), "CDC_LOG_LEVEL": "warning",
               "COLUMNS": "200", **overrides}
        return subprocess.run([sys.executable, "-m", "cdc", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)


@pytest.fixture(scope="module")
async def deployment(settings: Settings, connect: LocalConnect, tmp_path_factory) -> AsyncIterator[Deployment]:
    path = mapping_file(tmp_path_factory.mktemp("debezium"),
                        CUSTOMER={"sync_only_coupled": False, "deletion": "propagate"},
                        **{"ITEM-PRODUCT": {"sync_only_coupled": False}})
    live = LiveSync(settings, path)
    # Debezium's naming, under the test's topic prefix (so its topics go with the test's)
    live.settings = live.settings.model_copy(
        update={"erp_topic": f"{live.settings.topic_prefix}.dbz.{{schema}}.{{table}}"})
    async with live:
        dbz = Deployment(live, connect)
        erp, crm = live.erp, live.crm
        assert erp is not None and crm is not None
        await erp.execute("ALTER TABLE customer REPLICA IDENTITY DEFAULT")
        # rows from before the connector: its snapshot reads them (op r)
        await erp.execute("INSERT INTO currency(code, description, exchange_rate) VALUES ('EUR', 'Euro', 1.123456)")
        await erp.execute("INSERT INTO unit_of_measure(code, description) VALUES ('PCS', 'Pieces')")
        await erp.execute("INSERT INTO customer(no, name, city, credit_limit, currency_code) "
                          "VALUES ('C1', 'Acme', 'Oslo', 5000, 'EUR')")
        await erp.execute("INSERT INTO item(no, description, base_unit_of_measure, unit_price) "
                          "VALUES ('I1', 'Bolt', 'PCS', 10.00)")
        await crm.execute("INSERT INTO systemuser(fullname, internalemailaddress) VALUES ('Ann Seller', "
                          "'ann@example.com')")
        await live.start(systems=("crm",))
        await dbz.start_connector()
        try:
            yield dbz
        finally:
            await dbz.stop_connector()


async def test_changes_of_every_column_type_reach_the_crm(deployment: Deployment) -> None:
    live = deployment.live
    erp, crm = live.erp, live.crm
    assert erp is not None and crm is not None
    # the snapshot: each table's existing rows, created in the CRM (the customer's lookup waits for EUR, parked)
    eur = await live.until(lambda: live.coupling("CURRENCY", "erp", "EUR"), timeout=60, what="EUR from the snapshot")
    c1 = await live.until(lambda: live.coupling("CUSTOMER", "erp", "C1"), timeout=60, what="C1 from the snapshot")
    i1 = await live.until(lambda: live.coupling("ITEM-PRODUCT", "erp", "I1"), timeout=60, what="I1 from the snapshot")
    account = await crm.fetchrow("SELECT * FROM account WHERE accountid = $1", uuid.UUID(c1["crm_key"]))
    assert account["creditlimit"] == Decimal("5000") and str(account["transactioncurrencyid"]) == eur["crm_key"]
    assert await crm.fetchval("SELECT exchangerate FROM transactioncurrency WHERE transactioncurrencyid = $1",
                              uuid.UUID(eur["crm_key"])) == Decimal("1.123456")

    # an insert with every customer column
    await erp.execute("""INSERT INTO customer(no, name, address, address_2, city, post_code, county, country_code,
                             phone_no, email, home_page, currency_code, payment_terms_code, credit_limit)
                         VALUES ('C2', 'Beta AS', 'Street 1', 'Floor 2', 'Bergen', '5003', 'Vestland', 'NO',
                                 '+47 55 00 00 00', 'post@beta.no', 'beta.no', 'EUR', '30D', 12345.67)""")
    c2 = await live.until(lambda: live.coupling("CUSTOMER", "erp", "C2"), what="C2 created")
    beta = await crm.fetchrow("SELECT * FROM account WHERE accountid = $1", uuid.UUID(c2["crm_key"]))
    assert (beta["name"], beta["address1_line1"], beta["address1_line2"], beta["address1_city"],
            beta["address1_postalcode"], beta["address1_county"], beta["address1_country"], beta["telephone1"],
            beta["emailaddress1"], beta["websiteurl"], beta["paymenttermscode"], beta["creditlimit"],
            str(beta["transactioncurrencyid"])) == (
        "Beta AS", "Street 1", "Floor 2", "Bergen", "5003", "Vestland", "NO", "+47 55 00 00 00", "post@beta.no",
        "beta.no", 2, Decimal("12345.67"), eur["crm_key"])

    # updates: text, numeric(18,2), numeric(18,6), a value map, boolean (a filter) and timestamptz (the trigger)
    await erp.execute("UPDATE customer SET city = 'Trondheim', credit_limit = -0.01, payment_terms_code = 'COD' "
                      "WHERE no = 'C1'")
    await erp.execute("UPDATE currency SET exchange_rate = 9.876543, description = 'Euro (EU)' WHERE code = 'EUR'")
    await erp.execute("UPDATE item SET blocked = true WHERE no = 'I1'")
    await live.until(lambda: live.state.fetchval(
        "SELECT count(*) FROM cdc.record_log WHERE mapping = 'ITEM-PRODUCT' AND key = 'I1' AND decision = 'ignored'"),
        what="the blocked item's change read (outside the filter)")
    await erp.execute("UPDATE item SET blocked = false, unit_price = 12.34, description = 'Bolt M8' WHERE no = 'I1'")

    async def updated() -> bool:
        account = await crm.fetchrow("SELECT * FROM account WHERE accountid = $1", uuid.UUID(c1["crm_key"]))
        currency = await crm.fetchrow("SELECT * FROM transactioncurrency WHERE transactioncurrencyid = $1",
                                      uuid.UUID(eur["crm_key"]))
        product = await crm.fetchrow("SELECT * FROM product WHERE productid = $1", uuid.UUID(i1["crm_key"]))
        return ((account["address1_city"], account["creditlimit"], account["paymenttermscode"])
                == ("Trondheim", Decimal("-0.01"), 4)
                and (currency["exchangerate"], currency["currencyname"]) == (Decimal("9.876543"), "Euro (EU)")
                and (product["price"], product["name"]) == (Decimal("12.34"), "Bolt M8"))

    await live.until(updated, what="the updates in the CRM")

    # a delete (key-only image, then a tombstone) propagates
    await erp.execute("DELETE FROM customer WHERE no = 'C2'")
    await live.until(lambda: crm.fetchval("SELECT count(*) = 0 FROM account WHERE accountid = $1",
                                          uuid.UUID(c2["crm_key"])), what="C2's account deleted")

    async def uncoupled() -> bool:  # recorded in the batch's state transaction, a moment after the CRM write
        return await live.coupling("CUSTOMER", "erp", "C2") is None

    await live.until(uncoupled, what="C2's coupling removed")
    assert await live.state.fetchval("SELECT count(*) FROM cdc.job_errors") == 0, await live.state.fetch(
        "SELECT message FROM cdc.job_errors")


async def test_the_syncs_own_writes_into_the_erp_do_not_come_back(deployment: Deployment) -> None:
    live = deployment.live
    erp, crm, state = live.erp, live.crm, live.state
    assert erp is not None and crm is not None and state is not None
    c1 = await live.until(lambda: live.coupling("CUSTOMER", "erp", "C1"), timeout=60, what="C1 coupled")
    account_id = uuid.UUID(c1["crm_key"])
    await erp.execute("UPDATE customer SET name = 'Acme before' WHERE no = 'C1'")
    await deployment.consumed("customer", "Acme before")
    logged = await state.fetchval("SELECT max(id) FROM cdc.record_log")
    before = await live.counters("CUSTOMER", "to_crm")

    # a user's CRM change, written into the ERP by the sync (origin-tagged): Debezium reads that write back
    await crm.execute("UPDATE account SET address1_city = 'Echo City' WHERE accountid = $1", account_id)
    await live.until(lambda: erp.fetchval("SELECT city = 'Echo City' FROM customer WHERE no = 'C1'"),
                     what="the CRM change in the ERP")

    async def echoed() -> dict | None:
        for record in await deployment.records("customer"):
            payload = json.loads(record.value)["payload"] if record.value else None
            if payload and (payload["source"].get("origin") or "").startswith("cdc_applier"):
                return {"key": record.key, "value": json.loads(record.value)}
        return None

    found = await live.until(echoed, timeout=30, what="Debezium publishing the sync's write")
    assert found["value"]["payload"]["after"]["city"] == "Echo City"
    # the same event from a producer that reports no origin: recognised by the coupling's fingerprint
    stripped = found["value"]
    stripped["payload"]["source"]["origin"] = None
    producer = AIOKafkaProducer(bootstrap_servers=live.settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(deployment.topic("customer"), json.dumps(stripped).encode(), found["key"])
    finally:
        await producer.stop()
    # a later user change of the same row, behind both on its partition: once it is applied, both were consumed
    await erp.execute("UPDATE customer SET name = 'Acme after' WHERE no = 'C1'")
    await deployment.consumed("customer", "Acme after")
    entries = await state.fetch("SELECT decision, detail FROM cdc.record_log WHERE mapping = 'CUSTOMER' "
                                "AND system = 'erp' AND key = 'C1' AND id > $1 ORDER BY id", logged)
    # The origin-tagged echo left no entry. The two other notices each re-read the row: the first one processed
    # writes the new name (whichever it is: both may be read after the change), the other finds the record
    # equal to its fingerprint.
    assert sorted((e["decision"], e["detail"]) for e in entries) == [("applied", "wrote name"),
                                                                     ("unchanged", echo.REASON)], entries
    after = await live.counters("CUSTOMER", "to_crm")
    assert after == {**before, "m": before["m"] + 1}  # the later change only: the echoes count nowhere
    account = await crm.fetchrow("SELECT name, address1_city FROM account WHERE accountid = $1", account_id)
    assert (account["name"], account["address1_city"]) == ("Acme after", "Echo City")


async def test_replays_land_on_the_partition_of_debeziums_records_and_check_lists_the_topics(
        deployment: Deployment) -> None:
    live = deployment.live
    assert live.erp is not None
    await live.until(lambda: live.coupling("CUSTOMER", "erp", "C1"), timeout=60, what="C1 coupled")
    keys = [f"R{n}" for n in range(8)]  # with 3 partitions, 8 keys all on the right one by chance: 1 in 6,561
    await live.erp.executemany("INSERT INTO customer(no, name) VALUES ($1, $1)", [(k,) for k in keys])
    await deployment.consumed("customer", keys[-1])
    done = await asyncio.to_thread(deployment.cdc, "sync-modified", "--mapping", "CUSTOMER", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    partitions: dict[str, set[int]] = defaultdict(set)
    producers: dict[str, set[str]] = defaultdict(set)
    for record in await deployment.records("customer"):
        key = json.loads(record.key)
        no = key["payload"]["no"] if "payload" in key else key["no"]
        partitions[no].add(record.partition)
        if record.value is not None:
            value = json.loads(record.value)
            producers[no].add("replay" if value.get("replay") else "debezium")
    assert all(producers[k] == {"replay", "debezium"} for k in ["C1", *keys]), dict(producers)
    assert all(len(found) == 1 for found in partitions.values()), dict(partitions)

    check = await asyncio.to_thread(deployment.cdc, "check")
    lines = check.stdout.splitlines()
    assert f"ok  topic erp.customer reads {deployment.topic('customer')} (3 partitions)" in lines, check.stdout
    assert f"ok  topic crm.account reads {live.settings.topic('crm', 'account')} (3 partitions)" in lines
    assert check.returncode == 0, check.stdout
    # a connector that publishes elsewhere than the setting says: the topic is named as missing, and check fails
    elsewhere = f"{deployment.topic_prefix}.elsewhere.{{schema}}.{{table}}"
    check = await asyncio.to_thread(deployment.cdc, "check", CDC_ERP_TOPIC=elsewhere)
    missing = f"{deployment.topic_prefix}.elsewhere.public.customer"
    assert any(line.startswith(f"BAD topic erp.customer reads {missing}: does not exist")
               for line in check.stdout.splitlines()), check.stdout
    assert check.returncode == 1, check.stdout
