"""Issue #13, item 4: nothing waits silently. A live change whose lookup is not coupled yet is parked, as an error in
state `parked` naming what it waits for, since when and how often it was tried (`cdc errors`, `cdc parked`);
`cdc verify` lists such records as blocked, not as differing. A change whose lookup its own sync never couples (an
ERP salesperson, while SALESPEOPLE carries CRM users to the ERP only) is an open error at once, and is tried again
when that lookup is coupled after all. On the real stack, through capture."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cdc.settings import Settings
from tests.integration.sync_harness import LiveSync, mapping_file

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def live(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveSync]:
    path = mapping_file(tmp_path_factory.mktemp("waiting"), CUSTOMER={"sync_only_coupled": False},
                        CONTACTS={"sync_only_coupled": False})
    async with LiveSync(settings, path) as sync:
        await sync.start()
        await sync.erp.execute("INSERT INTO customer(no, name, city) VALUES ('C1', 'Coupled', 'Oslo')")
        await sync.erp.execute("INSERT INTO contact(no, first_name, surname, email, customer_no) VALUES "
                               "('K1', 'Kari', 'Nordmann', 'kari@coupled.example', 'C1')")
        await sync.until(lambda: sync.coupling("CONTACTS", "erp", "K1"), what="K1 coupled")
        # from now on new customers are not created on the other side: a contact of a new customer waits for it
        await sync.state.execute("INSERT INTO cdc.mapping_settings(mapping, sync_only_coupled) "
                                 "VALUES ('CUSTOMER', true)")
        await only_coupled_in_effect(sync)
        yield sync


async def only_coupled_in_effect(live: LiveSync) -> None:
    """Probe ERP customers until the worker (reading the flag at most a second late) skips one."""
    for _ in range(20):
        probe = f"P{uuid.uuid4().hex[:8]}"
        await live.erp.execute("INSERT INTO customer(no, name) VALUES ($1, 'Probe')", probe)
        decision = await live.until(lambda key=probe: live.state.fetchval(
            "SELECT decision FROM cdc.record_log WHERE key = $1 ORDER BY id DESC LIMIT 1", key), what="probe decided")
        if decision == "skipped":
            return
    raise AssertionError("'only coupled' never took effect")


async def parked_error(live: LiveSync, key: str) -> dict[str, Any]:
    return dict(await live.until(lambda: live.state.fetchrow(
        "SELECT * FROM cdc.job_errors WHERE source_key = $1 AND state = 'parked'", key), what=f"{key} parked"))


async def test_parked_changes_are_errors_naming_what_they_wait_for_and_verify_lists_them_as_blocked(
        live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO customer(no, name) VALUES ('C2', 'Not synced yet')")
    # a coupled contact moves to C2 and gets a new surname; a new contact of C2 arrives
    await live.erp.execute("UPDATE contact SET customer_no = 'C2', surname = 'Hansen' WHERE no = 'K1'")
    await live.erp.execute("INSERT INTO contact(no, first_name, surname, email, customer_no) VALUES "
                           "('K2', 'Per', 'Olsen', 'per@notsynced.example', 'C2')")
    moved, new = await parked_error(live, "K1"), await parked_error(live, "K2")
    for error in (moved, new):
        assert error["message"] == "waiting for ERP customer 'C2' (CUSTOMER) to be coupled"
        assert error["job_id"] is not None and error["event"] is not None

    listed = await live.cdc("errors", "--mapping", "CONTACTS")
    assert listed.returncode == 0, listed.stderr
    for key in ("K1", "K2"):
        row = next(line for line in listed.stdout.splitlines() if f"erp:{key}" in line)
        assert "parked" in row and "waiting for ERP customer 'C2' (CUSTOMER) to be coupled" in row
    parked = json.loads((await live.cdc("parked", "--json")).stdout)
    assert sorted(p["source_key"] for p in parked) == ["K1", "K2"]
    for p in parked:
        assert p["state"] == "parked" and p["created_at"] and p["next_attempt_at"] and p["attempts"] is not None
        assert p["waiting"] == 1 and p["occurrences"] >= 1
    table = (await live.cdc("parked")).stdout
    assert "waiting for ERP customer 'C2' (CUSTOMER) to be coupled" in table and "erp:K2" in table
    only = json.loads((await live.cdc("errors", "--state", "parked", "--json")).stdout)
    assert {e["source_key"] for e in only} == {"K1", "K2"}

    done = await live.cdc("verify", "--mapping", "CONTACTS", "--json")
    report = json.loads(done.stdout)
    contacts = report["mappings"][0]
    assert contacts["differences"] == [], contacts["differences"]  # K1's new surname is to come, not a divergence
    blocked = {(b["system"], b["key"]): b["reason"] for b in contacts["blocked"]}
    assert set(blocked) >= {("erp", "K1"), ("erp", "K2")}
    assert "customer_no <-> parentcustomerid: erp record 'C2' is not coupled in CUSTOMER yet" in blocked[("erp", "K1")]
    assert done.returncode == 0, done.stdout

    # the customer coupled (creation allowed again, the customer touched): both contacts follow, errors resolved
    await live.state.execute("UPDATE cdc.mapping_settings SET sync_only_coupled = false WHERE mapping = 'CUSTOMER'")
    for _ in range(20):
        await live.erp.execute("UPDATE customer SET name = name || '.' WHERE no = 'C2'")
        try:
            await live.until(lambda: live.coupling("CUSTOMER", "erp", "C2"), timeout=3, what="C2 coupled")
            break
        except AssertionError:
            continue
    await live.until(lambda: live.coupling("CONTACTS", "erp", "K2"), timeout=30, what="K2 coupled")
    await live.until(lambda: live.state.fetchval("SELECT count(*) = 0 FROM cdc.parked_events"), timeout=30,
                     what="nothing parked")
    assert await live.state.fetchval("SELECT array_agg(DISTINCT state) FROM cdc.job_errors WHERE id = ANY($1)",
                                     [moved["id"], new["id"]]) == ["resolved"]
    await live.state.execute("UPDATE cdc.mapping_settings SET sync_only_coupled = true WHERE mapping = 'CUSTOMER'")
    await only_coupled_in_effect(live)


async def test_a_lookup_its_own_sync_never_couples_is_an_open_error_at_once_retried_when_coupled(
        live: LiveSync) -> None:
    # SALESPEOPLE carries CRM users to the ERP only: an ERP salesperson without a CRM user is never coupled by it
    await live.erp.execute("INSERT INTO salesperson(code, name, email) VALUES ('XX', 'Only ERP', 'xx@example.com')")
    await live.erp.execute("UPDATE customer SET salesperson_code = 'XX', city = 'Bergen' WHERE no = 'C1'")
    error = dict(await live.until(lambda: live.state.fetchrow(
        "SELECT * FROM cdc.job_errors WHERE source_key = 'C1' AND state = 'open'"), what="C1's open error"))
    assert error["message"] == ("CUSTOMER: customer C1: salesperson XX is not coupled in SALESPEOPLE, which syncs "
                                "CRM → ERP only: create or couple its CRM partner (cdc couple --mapping SALESPEOPLE), "
                                "then cdc retry")
    assert await live.state.fetchval("SELECT count(*) FROM cdc.parked_events WHERE source_key = 'C1'") == 0
    report = json.loads((await live.cdc("verify", "--mapping", "CUSTOMER", "--json")).stdout)["mappings"][0]
    assert report["differences"] == []  # the city waits with the salesperson: blocked, not differing
    assert any(b["key"] == "C1" and "salesperson XX is not coupled in SALESPEOPLE" in b["reason"]
               for b in report["blocked"])

    # its CRM user created after all (same e-mail: coupled by match): the customer is tried again, and syncs
    user = uuid.uuid4()
    await live.crm.execute("INSERT INTO systemuser(systemuserid, fullname, internalemailaddress) VALUES "
                           "($1, 'Only ERP', 'xx@example.com')", user)
    account = uuid.UUID((await live.coupling("CUSTOMER", "erp", "C1"))["crm_key"])
    await live.until(lambda: live.crm.fetchval("SELECT ownerid = $1 AND address1_city = 'Bergen' FROM account "
                                               "WHERE accountid = $2", user, account), timeout=30,
                     what="owner and city in the CRM")
    await live.until(lambda: live.state.fetchval("SELECT state = 'resolved' FROM cdc.job_errors WHERE id = $1",
                                                 error["id"]), what="the error resolved")
