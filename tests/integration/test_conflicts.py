"""Issue #13, items 2 and 3: a conflict (both systems changed a field carried both ways) is one error on one record
pair, counted once, whose message names the field, both values and when each record changed; it closes by itself
when the pair syncs cleanly from either side, even after the coupling was skipped for repeating it; `cdc resolve
ID --keep erp|crm` writes the kept values to the other side and closes it. On the real stack, through capture."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cdc.settings import Settings
from tests.integration.sync_harness import LiveSync, mapping_file

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def live(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveSync]:
    path = mapping_file(tmp_path_factory.mktemp("conflicts"), CUSTOMER={"sync_only_coupled": False,
                                                                         "conflict": "fail"})
    async with LiveSync(settings, path) as sync:
        await sync.start()
        yield sync


async def coupled(live: LiveSync, no: str) -> uuid.UUID:
    await live.erp.execute("INSERT INTO customer(no, name, city, phone_no) VALUES ($1, $1, 'Oslo', '1')", no)
    coupling = await live.until(lambda: live.coupling("CUSTOMER", "erp", no), what=f"{no} coupled")
    return uuid.UUID(coupling["crm_key"])


async def conflict(live: LiveSync, no: str, account: uuid.UUID) -> dict[str, Any]:
    """Both systems change the city while the worker is stopped; then both changes are decided: the open error."""
    await live.stop_worker()
    await live.erp.execute("UPDATE customer SET city = 'Bergen' WHERE no = $1", no)
    await live.crm.execute("UPDATE account SET address1_city = 'Trondheim' WHERE accountid = $1", account)
    await live.captured()
    await live.start_worker()
    await live.until(lambda: live.state.fetchval(
        "SELECT count(DISTINCT system) = 2 FROM cdc.record_log WHERE mapping = 'CUSTOMER' AND decision = 'conflict' "
        "AND key IN ($1, $2)", no, str(account)), what="both sides' changes decided")
    return dict(await live.state.fetchrow(
        "SELECT * FROM cdc.job_errors WHERE mapping = 'CUSTOMER' AND state = 'open' AND $1 IN (source_key, "
        "destination_key)", no))


async def failures(live: LiveSync) -> int:
    return await live.state.fetchval("SELECT coalesce(sum(failed), 0) FROM cdc.jobs WHERE mapping = 'CUSTOMER'")


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def test_a_conflict_is_one_error_on_the_pair_counted_once_naming_both_values(live: LiveSync) -> None:
    before = await failures(live)
    account = await coupled(live, "K1")
    error = await conflict(live, "K1", account)
    errors = await live.state.fetch("SELECT * FROM cdc.job_errors WHERE mapping = 'CUSTOMER' AND state = 'open' "
                                    "AND (source_key IN ('K1', $1) OR destination_key IN ('K1', $1))", str(account))
    assert len(errors) == 1, [dict(e) for e in errors]
    assert (error["kind"], error["source_system"], error["source_key"], error["destination_system"],
            error["destination_key"]) == ("conflict", "erp", "K1", "crm", str(account))
    erp_changed = await live.erp.fetchval("SELECT modified_at FROM customer WHERE no = 'K1'")
    crm_changed = await live.crm.fetchval("SELECT modifiedon FROM account WHERE accountid = $1", account)
    assert error["message"] == (f"conflict on city ↔ address1_city: ERP 'Bergen' (changed {when(erp_changed)}) vs "
                                f"CRM 'Trondheim' (changed {when(crm_changed)}), last synced 'Oslo'")
    assert error["detail"] != error["message"]
    assert f"CRM account {account}" in error["detail"] and "cdc resolve" in error["detail"]
    assert "last synced 'Oslo'; the ERP now holds 'Bergen', the CRM 'Trondheim'" in error["detail"]
    assert await failures(live) - before == 1  # one conflict, counted once (not once per side's event)
    assert (await live.erp.fetchval("SELECT city FROM customer WHERE no = 'K1'"),
            await live.crm.fetchval("SELECT address1_city FROM account WHERE accountid = $1", account)) == (
        "Bergen", "Trondheim")


async def test_a_conflict_closes_when_the_losing_side_agrees_though_its_coupling_was_skipped(live: LiveSync) -> None:
    account = await coupled(live, "K2")
    error = await conflict(live, "K2", account)
    coupling = await live.coupling("CUSTOMER", "erp", "K2")
    assert coupling["skipped"]  # the same error from both sides' events: skipped, as the reference does
    # The CRM user takes the ERP's city: the change that resolves the conflict goes through, and closes it.
    await live.crm.execute("UPDATE account SET address1_city = 'Bergen' WHERE accountid = $1", account)
    await live.until(lambda: live.state.fetchval("SELECT state = 'resolved' FROM cdc.job_errors WHERE id = $1",
                                                 error["id"]), what="the conflict resolved")
    coupling = await live.coupling("CUSTOMER", "erp", "K2")
    assert not coupling["skipped"] and coupling["failure_count"] == 0
    # and the pair syncs again
    await live.erp.execute("UPDATE customer SET phone_no = '3' WHERE no = 'K2'")
    await live.until(lambda: live.crm.fetchval("SELECT telephone1 = '3' FROM account WHERE accountid = $1", account),
                     what="the next change synced")


async def test_a_conflict_withdrawn_on_one_side_lets_the_other_sides_value_flow(live: LiveSync) -> None:
    account = await coupled(live, "K3")
    error = await conflict(live, "K3", account)
    # The ERP user puts the old city back: the CRM's change stands, and reaches the ERP although its event was
    # consumed by the conflict.
    await live.erp.execute("UPDATE customer SET city = 'Oslo' WHERE no = 'K3'")
    await live.until(lambda: live.erp.fetchval("SELECT city = 'Trondheim' FROM customer WHERE no = 'K3'"),
                     timeout=30, what="the CRM's city in the ERP")
    assert await live.state.fetchval("SELECT state FROM cdc.job_errors WHERE id = $1", error["id"]) == "resolved"
    assert await live.crm.fetchval("SELECT address1_city FROM account WHERE accountid = $1", account) == "Trondheim"


@pytest.mark.parametrize("keep, city", [("erp", "Bergen"), ("crm", "Trondheim")])
async def test_cdc_resolve_writes_the_kept_value_to_the_other_side_and_closes_the_error(
        live: LiveSync, keep: str, city: str) -> None:
    no = f"K4{keep}"
    account = await coupled(live, no)
    error = await conflict(live, no, account)
    done = await live.cdc("resolve", str(error["id"]), "--keep", keep)
    assert done.returncode == 0, done.stdout + done.stderr
    target = "CRM" if keep == "erp" else "ERP"
    assert f"error #{error['id']} resolved: the {target} now holds the {keep.upper()}'s values" in done.stdout
    assert (await live.erp.fetchval("SELECT city FROM customer WHERE no = $1", no),
            await live.crm.fetchval("SELECT address1_city FROM account WHERE accountid = $1", account)) == (city, city)
    assert await live.state.fetchval("SELECT state FROM cdc.job_errors WHERE id = $1", error["id"]) == "resolved"
    listed = await live.cdc("errors", "--all", "--mapping", "CUSTOMER")
    assert any(str(error["id"]) in line and "resolved" in line for line in listed.stdout.splitlines())
    again = await live.cdc("resolve", str(error["id"]), "--keep", keep)
    assert again.returncode == 1 and "is resolved, not an open conflict" in again.stderr


async def test_cdc_resolve_refuses_what_is_not_a_conflict(live: LiveSync) -> None:
    error_id = await live.state.fetchval(
        "INSERT INTO cdc.job_errors (mapping, source_system, source_key, message) VALUES ('CUSTOMER', 'erp', 'X', "
        "'value too long') RETURNING id")
    refused = await live.cdc("resolve", str(error_id), "--keep", "erp")
    assert refused.returncode == 1 and f"error #{error_id} is not a conflict" in refused.stderr
    missing = await live.cdc("resolve", "987654", "--keep", "crm")
    assert missing.returncode == 1 and "no error #987654" in missing.stderr
    assert (await live.cdc("resolve", str(error_id), "--keep", "both")).returncode == 2
