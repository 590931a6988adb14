"""The sync engine on the real stack, through real capture: each rule of the reference, in both directions."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cdc.settings import Settings
from tests.integration.sync_harness import LiveSync, mapping_file

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def seed_reference_data(live: LiveSync) -> None:
    """A currency and a salesperson coupled through their mappings, so customers' lookups resolve."""
    assert live.erp and live.crm
    await live.erp.execute("INSERT INTO currency(code, description) VALUES ('EUR', 'Euro')")
    await live.crm.execute("INSERT INTO systemuser(fullname, internalemailaddress) VALUES ('Ann Seller', "
                           "'ann@example.com')")
    await live.until(lambda: live.coupling("CURRENCY", "erp", "EUR"), what="EUR coupled")
    await live.until(lambda: live.state.fetchval("SELECT count(*) FROM cdc.couplings WHERE mapping='SALESPEOPLE'"),
                     what="salesperson coupled")


@pytest.fixture
async def live(settings: Settings, tmp_path: Path):
    path = mapping_file(tmp_path, CUSTOMER={"sync_only_coupled": False}, CONTACTS={"sync_only_coupled": False})
    async with LiveSync(settings, path) as sync:
        await sync.start()
        await seed_reference_data(sync)
        yield sync


async def test_new_erp_customer_is_created_in_the_crm_and_coupled(live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO customer(no, name, city, email, currency_code) "
                           "VALUES ('C1', 'Acme', 'Oslo', 'post@acme.no', 'EUR')")
    coupling = await live.until(lambda: live.coupling("CUSTOMER", "erp", "C1"), what="C1 coupled")
    account = await live.crm.fetchrow("SELECT * FROM account WHERE accountid = $1", uuid.UUID(coupling["crm_key"]))
    currency = await live.coupling("CURRENCY", "erp", "EUR")
    assert account["name"] == "Acme" and account["address1_city"] == "Oslo"
    assert account["accountnumber"] == "C1" and account["customertypecode"] == 3
    assert str(account["transactioncurrencyid"]) == currency["crm_key"]


async def test_erp_update_reaches_the_crm_and_writes_only_changed_fields(live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO customer(no, name, city) VALUES ('C2', 'Beta', 'Rome')")
    coupling = await live.until(lambda: live.coupling("CUSTOMER", "erp", "C2"), what="C2 coupled")
    account_id = uuid.UUID(coupling["crm_key"])
    await live.erp.execute("UPDATE customer SET city = 'Milan' WHERE no = 'C2'")
    await live.until(lambda: live.crm.fetchval("SELECT address1_city = 'Milan' FROM account WHERE accountid = $1",
                                               account_id), what="city in CRM")
    counts = await live.counters("CUSTOMER", "to_crm")
    assert counts["i"] == 1 and counts["m"] == 1


async def test_no_echo_the_syncs_own_writes_are_not_captured(live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO customer(no, name) VALUES ('C3', 'Gamma')")
    await live.until(lambda: live.coupling("CUSTOMER", "erp", "C3"), what="C3 coupled")
    await live.erp.execute("UPDATE customer SET name = 'Gamma 2' WHERE no = 'C3'")
    coupling = await live.coupling("CUSTOMER", "erp", "C3")
    await live.until(lambda: live.crm.fetchval("SELECT name = 'Gamma 2' FROM account WHERE accountid = $1",
                                               uuid.UUID(coupling["crm_key"])), what="name in CRM")
    # Had capture published the CRM write, the worker would have decided on it (unchanged) for CUSTOMER to_erp.
    await live.until(lambda: live.state.fetchval(
        "SELECT count(*) FROM cdc.record_log WHERE key = 'C3' AND system = 'erp'"), what="record log")
    echoes = await live.state.fetchval("SELECT count(*) FROM cdc.record_log WHERE mapping = 'CUSTOMER' "
                                       "AND system = 'crm' AND key = $1", coupling["crm_key"])
    assert echoes == 0


async def test_new_crm_account_becomes_an_erp_customer(live: LiveSync) -> None:
    account_id = uuid.uuid4()
    await live.crm.execute("INSERT INTO account(accountid, name, address1_city, emailaddress1) "
                           "VALUES ($1, 'Delta AS', 'Bergen', 'hi@delta.no')", account_id)
    coupling = await live.until(lambda: live.coupling("CUSTOMER", "crm", str(account_id)), what="account coupled")
    customer = await live.erp.fetchrow("SELECT * FROM customer WHERE no = $1", coupling["erp_key"])
    assert customer["name"] == "Delta AS" and customer["city"] == "Bergen" and customer["email"] == "hi@delta.no"
    assert customer["no"].startswith("C") and len(customer["no"]) == 10


async def test_contact_of_a_customer_outside_the_filter_fails_at_once_and_syncs_once_the_customer_is_coupled(
        live: LiveSync) -> None:
    # The customer is blocked (outside the CUSTOMER filter) when its contact arrives: nothing couples the customer
    # by itself, so the contact is an open error at once (not a change parked for ever), saying why.
    await live.erp.execute("INSERT INTO customer(no, name, blocked) VALUES ('C9', 'Owner Ltd', 'all')")
    await live.erp.execute("INSERT INTO contact(no, first_name, surname, email, customer_no) "
                           "VALUES ('K1', 'Ola', 'Nordmann', 'ola@owner.no', 'C9')")
    error = await live.until(lambda: live.state.fetchrow(
        "SELECT * FROM cdc.job_errors WHERE source_key = 'K1' AND state = 'open'"), what="contact's open error")
    assert error["message"] == ("CONTACTS: contact K1: customer C9 is outside CUSTOMER's ERP filter "
                                "(blocked ne 'all'): it is never coupled, so this record cannot sync")
    assert await live.state.fetchval("SELECT count(*) FROM cdc.parked_events WHERE source_key = 'K1'") == 0
    assert await live.coupling("CONTACTS", "erp", "K1") is None
    # Unblocked, the customer is coupled, and the contact waiting for it is tried again at once.
    await live.erp.execute("UPDATE customer SET blocked = '' WHERE no = 'C9'")
    contact = await live.until(lambda: live.coupling("CONTACTS", "erp", "K1"), timeout=30, what="contact coupled")
    customer = await live.coupling("CUSTOMER", "erp", "C9")
    row = await live.crm.fetchrow("SELECT * FROM contact WHERE contactid = $1", uuid.UUID(contact["crm_key"]))
    assert str(row["parentcustomerid"]) == customer["crm_key"] and row["lastname"] == "Nordmann"
    await live.until(lambda: live.state.fetchval("SELECT count(*) = 0 FROM cdc.parked_events"), what="queue empty")
    assert await live.state.fetchval("SELECT state FROM cdc.job_errors WHERE id = $1", error["id"]) == "resolved"


async def test_lookup_to_a_record_not_coupled_yet_parks_without_blocking_others(live: LiveSync) -> None:
    # With "only coupled" on for CUSTOMER, a new CRM account is not created in the ERP: its contact waits for it.
    await live.state.execute("INSERT INTO cdc.mapping_settings(mapping, sync_only_coupled) VALUES ('CUSTOMER', true)")
    await _only_coupled_in_effect(live)
    waiting_for = uuid.uuid4()
    await live.crm.execute("INSERT INTO account(accountid, name) VALUES ($1, 'Not yet')", waiting_for)
    parked_contact = uuid.uuid4()
    await live.crm.execute("INSERT INTO contact(contactid, lastname, parentcustomerid) VALUES ($1, 'Waits', $2)",
                           parked_contact, waiting_for)
    error = await live.until(lambda: live.state.fetchrow(
        "SELECT * FROM cdc.job_errors WHERE source_key = $1 AND state = 'parked'", str(parked_contact)),
        what="contact parked, as an error in state parked")
    assert error["message"] == f"waiting for CRM account '{waiting_for}' (CUSTOMER) to be coupled"
    assert await live.state.fetchval("SELECT count(*) FROM cdc.parked_events WHERE source_key = $1",
                                     str(parked_contact)) == 1
    await live.crm.execute("INSERT INTO systemuser(fullname, internalemailaddress) VALUES ('Bo Other', "
                           "'bo@example.com')")
    await live.until(lambda: live.state.fetchval("SELECT count(*) = 2 FROM cdc.couplings WHERE mapping = "
                                                 "'SALESPEOPLE'"), what="other records still flow")
    # Creation allowed again and the account touched: the account is coupled, and the parked contact follows.
    await live.state.execute("UPDATE cdc.mapping_settings SET sync_only_coupled = false WHERE mapping = 'CUSTOMER'")
    await _touch_until_coupled(live, waiting_for)
    await live.until(lambda: live.coupling("CONTACTS", "crm", str(parked_contact)), timeout=30,
                     what="parked contact applied")
    await live.until(lambda: live.state.fetchval("SELECT state = 'resolved' FROM cdc.job_errors WHERE id = $1",
                                                 error["id"]), what="parked error resolved")


async def _only_coupled_in_effect(live: LiveSync) -> None:
    """Wait until the worker (which reads the flag at most a second late) skips a new account instead of creating
    its ERP partner: probe accounts until one is skipped."""
    for _ in range(20):
        probe = uuid.uuid4()
        await live.crm.execute("INSERT INTO account(accountid, name) VALUES ($1, 'Probe')", probe)
        decision = await live.until(lambda key=str(probe): live.state.fetchval(
            "SELECT decision FROM cdc.record_log WHERE key = $1 ORDER BY id DESC LIMIT 1", key),
            what="the probe decided")
        if decision == "skipped":
            return
    raise AssertionError("'only coupled' never took effect")


async def _touch_until_coupled(live: LiveSync, account: uuid.UUID) -> None:
    """Touch the account until the worker (which reads the flag at most a second late) creates its ERP partner."""
    for _ in range(20):
        await live.crm.execute("UPDATE account SET name = name || '.' WHERE accountid = $1", account)
        try:
            await live.until(lambda: live.coupling("CUSTOMER", "crm", str(account)), timeout=3, what="account coupled")
            return
        except AssertionError:
            continue
    raise AssertionError("the account was never coupled")


# ---------------------------------------------------------------- conflicts and deletes, one mapping file each

async def coupled_customer(live: LiveSync, no: str) -> uuid.UUID:
    await live.erp.execute("INSERT INTO customer(no, name, city, phone_no) VALUES ($1, 'Original', 'Oslo', '1')", no)
    coupling = await live.until(lambda: live.coupling("CUSTOMER", "erp", no), what=f"{no} coupled")
    return uuid.UUID(coupling["crm_key"])


async def both_sides_change(live: LiveSync, no: str, account: uuid.UUID, *, erp_first: bool = True) -> None:
    """With the worker stopped, both systems change the customer's name (and each a different other field)."""
    await live.stop_worker()
    erp = live.erp.execute("UPDATE customer SET name = 'ERP name', city = 'Bergen' WHERE no = $1", no)
    crm = live.crm.execute("UPDATE account SET name = 'CRM name', telephone1 = '2' WHERE accountid = $1", account)
    for step in ((erp, crm) if erp_first else (crm, erp)):
        await step
    await live.captured()
    await live.start_worker()


async def names(live: LiveSync, no: str, account: uuid.UUID) -> tuple[str, str]:
    return (await live.erp.fetchval("SELECT name FROM customer WHERE no = $1", no),
            await live.crm.fetchval("SELECT name FROM account WHERE accountid = $1", account))


@pytest.mark.parametrize("policy, expected", [("erp-wins", "ERP name"), ("crm-wins", "CRM name"),
                                              ("newest-wins", "CRM name")])
async def test_conflict_resolved_by_policy(settings: Settings, tmp_path: Path, policy: str, expected: str) -> None:
    path = mapping_file(tmp_path, CUSTOMER={"sync_only_coupled": False, "conflict": policy})
    async with LiveSync(settings, path) as live:
        await live.start()
        account = await coupled_customer(live, "K1")
        await both_sides_change(live, "K1", account, erp_first=True)

        async def converged() -> bool:
            return await names(live, "K1", account) == (expected, expected)

        await live.until(converged, what=f"both names {expected!r}")
        # Non-conflicting field changes flow both ways.
        await live.until(lambda: live.crm.fetchval("SELECT address1_city = 'Bergen' FROM account WHERE accountid=$1",
                                                   account), what="city to CRM")
        await live.until(lambda: live.erp.fetchval("SELECT phone_no = '2' FROM customer WHERE no = 'K1'"),
                         what="phone to ERP")


async def test_conflict_fail_records_an_error_and_keeps_both_values(settings: Settings, tmp_path: Path) -> None:
    path = mapping_file(tmp_path, CUSTOMER={"sync_only_coupled": False, "conflict": "fail"})
    async with LiveSync(settings, path) as live:
        await live.start()
        account = await coupled_customer(live, "K2")
        await both_sides_change(live, "K2", account)
        error = await live.until(lambda: live.state.fetchval(
            "SELECT message FROM cdc.job_errors WHERE mapping = 'CUSTOMER' AND state = 'open'"), what="error")
        assert "name" in error
        assert await names(live, "K2", account) == ("ERP name", "CRM name")
        # the record failed whole: what only one side changed did not flow either (merge writes it)
        assert await live.crm.fetchval("SELECT address1_city FROM account WHERE accountid = $1", account) == "Oslo"
        assert await live.erp.fetchval("SELECT phone_no FROM customer WHERE no = 'K2'") == "1"


async def test_conflict_merge_applies_the_rest_and_reports_the_overlap(settings: Settings, tmp_path: Path) -> None:
    path = mapping_file(tmp_path, CUSTOMER={"sync_only_coupled": False, "conflict": "merge"})
    async with LiveSync(settings, path) as live:
        await live.start()
        account = await coupled_customer(live, "K3")
        await both_sides_change(live, "K3", account)
        await live.until(lambda: live.crm.fetchval("SELECT address1_city = 'Bergen' FROM account WHERE accountid=$1",
                                                   account), what="city merged into CRM")
        await live.until(lambda: live.erp.fetchval("SELECT phone_no = '2' FROM customer WHERE no = 'K3'"),
                         what="phone merged into ERP")
        error = await live.until(lambda: live.state.fetchval(
            "SELECT message FROM cdc.job_errors WHERE mapping = 'CUSTOMER'"), what="overlap reported")
        assert "name" in error
        assert await names(live, "K3", account) == ("ERP name", "CRM name")


@pytest.mark.parametrize("policy", ["propagate", "uncouple", "restore", "fail"])
async def test_deletion_policy(settings: Settings, tmp_path: Path, policy: str) -> None:
    path = mapping_file(tmp_path, CUSTOMER={"sync_only_coupled": False, "deletion": policy})
    async with LiveSync(settings, path) as live:
        await live.start()
        account = await coupled_customer(live, "D1")
        await live.crm.execute("DELETE FROM account WHERE accountid = $1", account)
        erp_row = "SELECT count(*) FROM customer WHERE no = 'D1'"
        if policy == "propagate":
            await live.until(lambda: _gone(live, erp_row), what="ERP customer deleted")
            # the coupling goes in the state transaction, which commits just after the destination's
            await live.until(lambda: _uncoupled(live, "D1"), what="coupling removed with the delete")
        elif policy == "uncouple":
            await live.until(lambda: _uncoupled(live, "D1"), what="coupling removed")
            assert await live.erp.fetchval(erp_row) == 1
        elif policy == "restore":
            await live.until(lambda: live.crm.fetchval("SELECT count(*) FROM account WHERE accountid = $1", account),
                             what="account re-created")
            assert (await live.coupling("CUSTOMER", "erp", "D1"))["crm_key"] == str(account)
            assert await live.crm.fetchval("SELECT name FROM account WHERE accountid = $1", account) == "Original"
        else:
            error = await live.until(lambda: live.state.fetchval(
                "SELECT message FROM cdc.job_errors WHERE mapping = 'CUSTOMER'"), what="error recorded")
            assert "deleted" in error and await live.erp.fetchval(erp_row) == 1


async def _gone(live: LiveSync, sql: str) -> bool:
    return await live.erp.fetchval(sql) == 0


async def _uncoupled(live: LiveSync, no: str) -> bool:
    return await live.coupling("CUSTOMER", "erp", no) is None


async def test_two_records_matching_one_partner_in_one_batch_couple_once(live: LiveSync) -> None:
    await live.stop_worker()
    await live.crm.execute("INSERT INTO account(name) VALUES ('Twin Trading')")
    async with live.erp.transaction():
        await live.erp.execute("INSERT INTO customer(no, name) VALUES ('T1', 'Twin Trading')")
        await live.erp.execute("INSERT INTO customer(no, name) VALUES ('T2', 'Twin Trading')")
    await live.captured()
    await live.start_worker()
    first = await live.until(lambda: live.coupling("CUSTOMER", "erp", "T1"), what="T1 coupled")
    second = await live.until(lambda: live.coupling("CUSTOMER", "erp", "T2"), what="T2 coupled")
    assert first["crm_key"] != second["crm_key"]
    assert live.worker is not None and not live.worker_task.done()


async def test_a_change_too_large_for_the_broker_still_syncs(live: LiveSync) -> None:
    """A 1.5 MB value (in a column the mapping does not even carry) makes the event larger than the broker's
    1 MiB limit: capture publishes it with its key only, the worker reads the row and syncs it."""
    await live.erp.execute("ALTER TABLE customer ADD COLUMN notes text")
    await live.erp.execute("INSERT INTO customer(no, name, notes) VALUES ('BIG1', 'Big AS', $1)", "x" * 1_500_000)
    coupling = await live.until(lambda: live.coupling("CUSTOMER", "erp", "BIG1"), what="BIG1 coupled")
    assert await live.crm.fetchval("SELECT name FROM account WHERE accountid = $1",
                                   uuid.UUID(coupling["crm_key"])) == "Big AS"
