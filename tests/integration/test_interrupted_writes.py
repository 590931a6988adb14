"""A write reaching the destination just before the worker loses its state transaction (a crash between steps
3 and 4 of docs/exactly-once.md), followed by a change that makes a plain replay go wrong. The interruption is
real: the worker's state transaction is abandoned with a connection error, the worker reconnects and replays
from its tracked offsets."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

import consumers.batch
from cdc.settings import Settings
from consumers.appliers import origin
from consumers.appliers.writer import TableWrite
from consumers.batch import Engine
from tests.integration.sync_harness import LiveSync, mapping_file
from tests.integration.test_sync_engine import seed_reference_data

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Interruption:
    """Makes the first batch that decides `verdict` for the record `key` lose its state transaction after the
    writes, running `meanwhile(partner_key)` first (a user's change before the replay)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, key: uuid.UUID | str,
                 meanwhile: Callable[[str], Awaitable[None]], verdict: str = "created") -> None:
        self.created: str | None = None
        original = Engine._record
        interruption = self

        async def record(engine: Engine, state, items, decided) -> None:  # type: ignore[no-untyped-def]
            for i, decision in decided.items():
                if (interruption.created is None and items[i].change.key == str(key)
                        and decision.verdict == verdict):
                    interruption.created = decision.partner_key
                    await meanwhile(decision.partner_key)
                    raise ConnectionResetError("simulated crash between the destination write and the state commit")
            await original(engine, state, items, decided)

        monkeypatch.setattr(Engine, "_record", record)


class WriteCrash:
    """Makes the worker die inside its writes: the `at`-th call of the applier that writes a record `ours` picks
    out raises a connection error before writing (the calls before it committed)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ours: Callable[[TableWrite], bool], at: int) -> None:
        self.calls: list[str] = []
        original = consumers.batch.apply

        async def apply(conn, writes: list[TableWrite]) -> dict[int, str]:  # type: ignore[no-untyped-def]
            if any(ours(tw) for tw in writes):
                self.calls.append(writes[0].write.system)
                if len(self.calls) == at:
                    raise ConnectionResetError("simulated crash inside the writes")
            return await original(conn, writes)

        monkeypatch.setattr(consumers.batch, "apply", apply)


async def _create_account(live: LiveSync, crash: Interruption, account: uuid.UUID) -> None:
    """A new CRM account, from which the sync creates an ERP customer, and the interruption that follows."""
    await live.crm.execute("INSERT INTO account(accountid, name, address1_city, emailaddress1) "
                           "VALUES ($1, 'Interrupted AS', 'Oslo', 'post@interrupted.no')", account)
    await live.until(lambda: _fired(crash), what="the interruption")


async def _coupled_after_replay(live: LiveSync, account: uuid.UUID) -> dict:
    return await live.until(lambda: live.coupling("CUSTOMER", "crm", str(account)), timeout=30,
                            what="account coupled after the replay")


@pytest.fixture
async def live(settings: Settings, tmp_path: Path):
    path = mapping_file(tmp_path, CUSTOMER={"sync_only_coupled": False, "deletion": "propagate"})
    async with LiveSync(settings, path) as sync:
        await sync.start()
        await seed_reference_data(sync)
        yield sync


async def test_source_deleted_before_the_replay_deletes_the_created_record(
        live: LiveSync, monkeypatch: pytest.MonkeyPatch) -> None:
    account = uuid.uuid4()
    written: list[int] = []

    async def delete_the_account(created: str) -> None:
        written.append(await live.erp.fetchval("SELECT count(*) FROM customer WHERE no = $1", created))
        await live.crm.execute("DELETE FROM account WHERE accountid = $1", account)

    crash = Interruption(monkeypatch, account, delete_the_account)
    await _create_account(live, crash, account)
    assert written == [1], "the customer was written before the state transaction was lost"
    await live.until(lambda: _customer_gone(live, crash.created), timeout=30,
                     what="the created customer deleted with its account (deletion: propagate)")
    await live.until(lambda: _no_intents(live), what="no intent left behind")
    assert await live.coupling("CUSTOMER", "crm", str(account)) is None
    counts = await live.counters("CUSTOMER", "to_erp")
    assert counts["i"] == 1 and counts["d"] == 1


async def test_created_record_changed_before_the_replay_keeps_the_change_and_is_created_once(
        live: LiveSync, monkeypatch: pytest.MonkeyPatch) -> None:
    account = uuid.uuid4()

    async def change_the_customer(created: str) -> None:
        await live.erp.execute("UPDATE customer SET city = 'Bergen' WHERE no = $1", created)

    crash = Interruption(monkeypatch, account, change_the_customer)
    await _create_account(live, crash, account)
    coupling = await _coupled_after_replay(live, account)
    assert coupling["erp_key"] == crash.created
    await live.until(lambda: live.crm.fetchval("SELECT address1_city = 'Bergen' FROM account WHERE accountid = $1",
                                               account), what="the user's change reached the account")
    assert await live.erp.fetchval("SELECT city FROM customer WHERE no = $1", crash.created) == "Bergen"
    assert await live.erp.fetchval("SELECT count(*) FROM customer WHERE name = 'Interrupted AS'") == 1
    await live.until(lambda: _no_intents(live), what="no intent left behind")
    assert (await live.counters("CUSTOMER", "to_erp"))["i"] == 1


async def test_replay_after_an_interruption_creates_once(live: LiveSync, monkeypatch: pytest.MonkeyPatch) -> None:
    account = uuid.uuid4()

    async def nothing(created: str) -> None:
        return None

    crash = Interruption(monkeypatch, account, nothing)
    await _create_account(live, crash, account)
    coupling = await _coupled_after_replay(live, account)
    assert coupling["erp_key"] == crash.created
    assert await live.erp.fetchval("SELECT count(*) FROM customer WHERE name = 'Interrupted AS'") == 1
    await live.until(lambda: _no_intents(live), what="no intent left behind")
    counts = await live.counters("CUSTOMER", "to_erp")
    assert counts["i"] == 1 and counts["u"] == 0


async def _fired(crash: Interruption) -> bool:
    return crash.created is not None


async def _customer_gone(live: LiveSync, no: str | None) -> bool:
    return await live.erp.fetchval("SELECT count(*) FROM customer WHERE no = $1", no) == 0


async def test_source_changed_back_before_the_replay_reaches_the_destination(
        live: LiveSync, monkeypatch: pytest.MonkeyPatch) -> None:
    await live.erp.execute("INSERT INTO customer(no, name, city) VALUES ('W1', 'Written AS', 'Oslo')")
    coupling = await live.until(lambda: live.coupling("CUSTOMER", "erp", "W1"), what="W1 coupled")
    account = uuid.UUID(coupling["crm_key"])

    async def change_back(partner: str) -> None:
        assert await live.crm.fetchval("SELECT address1_city FROM account WHERE accountid = $1", account) == "Bergen"
        await live.erp.execute("UPDATE customer SET city = 'Oslo' WHERE no = 'W1'")

    crash = Interruption(monkeypatch, "W1", change_back, verdict="applied")
    await live.erp.execute("UPDATE customer SET city = 'Bergen' WHERE no = 'W1'")
    await live.until(lambda: _fired(crash), what="the interruption")
    await live.until(lambda: live.crm.fetchval("SELECT address1_city = 'Oslo' FROM account WHERE accountid = $1",
                                               account), timeout=30,
                     what="the account back to the customer's city (the interrupted write is not a CRM change)")
    await live.until(lambda: _no_intents(live), what="no intent left behind")


async def test_partner_changed_unseen_while_its_coupling_was_missing_is_decided_again(
        live: LiveSync, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ERP customer creates a CRM account and the worker dies after the write. Meanwhile the account is renamed,
    and no event of it is left to decide: here a write capture passes over, as under worker kills, where the
    account's event had been consumed while it was not coupled. The replay restores the coupling from the intent,
    whose fingerprint then calls the account's name the CRM's own change; the account must be decided again, or
    the rename never reaches the customer (found by the worker-kill fault test)."""
    async def rename_unseen(account: str) -> None:
        conn = await asyncpg.connect(live.settings.dsn("crm"))
        try:
            await origin.claim(conn, live.settings.replication_origin_prefix, "crm")
            await conn.execute("UPDATE account SET name = 'Renamed AS' WHERE accountid = $1", uuid.UUID(account))
        finally:
            await conn.close()

    crash = Interruption(monkeypatch, "W3", rename_unseen)
    await live.erp.execute("INSERT INTO customer(no, name, city) VALUES ('W3', 'Unseen AS', 'Oslo')")
    await live.until(lambda: _fired(crash), what="the interruption")
    coupling = await live.until(lambda: live.coupling("CUSTOMER", "erp", "W3"), timeout=30,
                                what="W3 coupled after the replay")
    assert coupling["crm_key"] == crash.created
    await live.until(lambda: live.erp.fetchval("SELECT name = 'Renamed AS' FROM customer WHERE no = 'W3'"),
                     timeout=30, what="the account's name reached the customer (newest wins)")
    assert await live.crm.fetchval("SELECT count(*) FROM account WHERE name IN ('Unseen AS', 'Renamed AS')") == 1


async def _no_intents(live: LiveSync) -> bool:
    return await live.state.fetchval("SELECT (SELECT count(*) FROM cdc.coupling_intents) "
                                     "+ (SELECT count(*) FROM cdc.update_intents)") == 0


async def test_creation_interrupted_between_its_two_systems_writes_back_its_key(
        live: LiveSync, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CRM account creates an ERP customer and gets the new customer no. written back: two systems, two
    transactions. The worker dies after the first commits: the replay must still end with both written."""
    account = uuid.uuid4()
    crash = WriteCrash(monkeypatch, lambda tw: str(tw.write.key) == str(account)
                       or tw.write.values.get("name") == "Halfway AS", at=2)  # the first system's writes committed
    await live.crm.execute("INSERT INTO account(accountid, name, address1_city, emailaddress1) "
                           "VALUES ($1, 'Halfway AS', 'Bergen', 'post@halfway.no')", account)
    coupling = await _coupled_after_replay(live, account)
    assert len(crash.calls) >= 2, "the interruption did not happen"
    assert await live.erp.fetchval("SELECT count(*) FROM customer WHERE name = 'Halfway AS'") == 1
    assert await live.crm.fetchval("SELECT accountnumber FROM account WHERE accountid = $1",
                                   account) == coupling["erp_key"]
    await live.until(lambda: _no_intents(live), what="no intent left behind")


async def test_match_interrupted_before_its_writes_is_made_again(
        live: LiveSync, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ERP customer matches an uncoupled CRM account by e-mail; the worker dies before writing anything. The
    partner existed before, so its existence proves nothing: the replay must match again and write the customer's
    values into the account, not take the announced match for done."""
    account = uuid.uuid4()
    crash = WriteCrash(monkeypatch, lambda tw: str(tw.write.key) in (str(account), "M1"), at=1)
    async with live.crm.transaction(), live.erp.transaction():
        await live.crm.execute("INSERT INTO account(accountid, name, address1_city, emailaddress1) "
                               "VALUES ($1, 'Matched AS', 'Bergen', 'post@matched.no')", account)
        await live.erp.execute("INSERT INTO customer(no, name, city, email) "
                               "VALUES ('M1', 'Matched AS', 'Oslo', 'post@matched.no')")
    coupling = await live.until(lambda: live.coupling("CUSTOMER", "erp", "M1"), timeout=30, what="M1 coupled")
    assert crash.calls, "the interruption did not happen"
    assert coupling["crm_key"] == str(account), "matched, not created"
    assert await live.erp.fetchval("SELECT count(*) FROM customer WHERE email = 'post@matched.no'") == 1
    assert await live.crm.fetchval("SELECT count(*) FROM account WHERE emailaddress1 = 'post@matched.no'") == 1
    row = await live.crm.fetchrow("SELECT accountnumber, address1_city FROM account WHERE accountid = $1", account)
    log = await live.state.fetch("SELECT system, key, decision, detail FROM cdc.record_log ORDER BY id")
    assert row["accountnumber"] == "M1", [dict(r) for r in log if r["key"] in ("M1", str(account))]
    await live.until(lambda: _no_intents(live), what="no intent left behind")


class Interruptions:
    """Makes the batches that decide `verdict` for the record `key` lose their state transaction after the writes,
    once per step in `steps` (in order), running each step's change first (a user's change before the replay)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, key: str,
                 steps: list[Callable[[], Awaitable[None]]], verdict: str = "applied") -> None:
        self.fired = 0
        original = Engine._record
        interruptions = self

        async def record(engine: Engine, state, items, decided) -> None:  # type: ignore[no-untyped-def]
            for i, decision in decided.items():
                if (interruptions.fired < len(steps) and items[i].change.key == key
                        and decision.verdict == verdict):
                    await steps[interruptions.fired]()
                    interruptions.fired += 1
                    raise ConnectionResetError("simulated crash between the destination write and the state commit")
            await original(engine, state, items, decided)

        monkeypatch.setattr(Engine, "_record", record)


async def test_two_interrupted_batches_in_a_row_each_leave_what_they_wrote_known(
        live: LiveSync, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first interrupted batch writes a city, the replay writes a phone number and is interrupted too, then the
    user changes the city back. Both writes must be known, else the first one's city passes for the CRM's own change
    (found by the fault suite: an ERP credit limit the sync had written stayed, the CRM's was never applied)."""
    await live.erp.execute("INSERT INTO customer(no, name, city, phone_no) VALUES ('W2', 'Twice AS', 'Oslo', '1')")
    coupling = await live.until(lambda: live.coupling("CUSTOMER", "erp", "W2"), what="W2 coupled")
    account = uuid.UUID(coupling["crm_key"])

    async def change_phone() -> None:
        await live.erp.execute("UPDATE customer SET phone_no = '2' WHERE no = 'W2'")

    async def change_city_back() -> None:
        await live.erp.execute("UPDATE customer SET city = 'Oslo' WHERE no = 'W2'")

    crash = Interruptions(monkeypatch, "W2", [change_phone, change_city_back])
    await live.erp.execute("UPDATE customer SET city = 'Bergen' WHERE no = 'W2'")
    await live.until(lambda: _all_fired(crash, 2), timeout=30, what="two interruptions")
    await live.until(lambda: live.crm.fetchval("SELECT address1_city = 'Oslo' AND telephone1 = '2' FROM account "
                                               "WHERE accountid = $1", account), timeout=30,
                     what="the account holding the customer's city and phone")


async def _all_fired(crash: Interruptions, n: int) -> bool:
    return crash.fired >= n
