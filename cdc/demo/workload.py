"""A load generator: a steady stream of realistic changes to the demo ERP and CRM, as users would make them.

Mostly updates (names, phones, emails, addresses, prices), some new customers, accounts, contacts and products,
and rarely the delete of a record nothing depends on. Each change is its own short transaction. Changes are
chosen in order from one random stream, so the same seed against the same data makes the same changes; the
records changed are drawn from a sample of each table taken at the start (and kept up to date with the
generator's own inserts and deletes). A change that finds its record gone counts as missed; one the database
refuses (a constraint, a lost connection) counts as failed, and the load goes on.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import structlog

from cdc.database import pool
from cdc.demo import vocabulary as words
from cdc.demo.dataset import CREDIT_LIMITS, PAYMENT_TERMS_CRM, uuid
from cdc.errors import ConfigError
from cdc.pair import SYSTEMS, System
from cdc.settings import Settings

log = structlog.get_logger(component="workload")

SAMPLE = 5000
"""Keys of each table kept for choosing what to update or delete."""
CONCURRENCY = 4
"""Changes in flight per system."""
MAX_BACKLOG = 1.0
"""Seconds of changes made up for after a stall; an older backlog is dropped rather than burst."""

Change = tuple[System, str, str, str, tuple[Any, ...]]  # system, table, insert|update|delete, SQL, arguments

KEYS: dict[tuple[System, str], str] = {
    ("erp", "customer"): "no", ("erp", "contact"): "no", ("erp", "item"): "no", ("erp", "resource"): "no",
    ("crm", "account"): "accountid", ("crm", "contact"): "contactid", ("crm", "product"): "productid",
}

EMAIL_DIGIT = r"[0-9]*@"


@dataclass
class WorkloadReport:
    changes: Counter[tuple[System, str, str]] = field(default_factory=Counter)
    missed: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.changes.values())

    @property
    def per_second(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0


@dataclass
class Sample:
    """What the generator knows about the databases: keys to change, lookups for new rows, next numbers."""

    keys: dict[tuple[System, str], list[Any]]
    deletable: dict[tuple[System, str], list[Any]]  # customers and accounts without contacts
    salespeople: list[str]
    currencies: set[str]
    owners: list[Any]
    crm_currencies: dict[str, Any]
    crm_units: dict[str, Any]
    next_no: dict[str, int]


async def generate(settings: Settings, *, rate: float, duration: float | None = None, seed: int = 1,
                   stop: asyncio.Event | None = None, concurrency: int = CONCURRENCY) -> WorkloadReport:
    """Make about `rate` changes per second, spread over both systems, until `duration` or `stop`."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    stop = stop or asyncio.Event()
    pools: dict[System, asyncpg.Pool] = {}
    report = WorkloadReport()
    try:
        for system in SYSTEMS:
            pools[system] = await pool(settings.dsn(system), role=system, min_size=1, max_size=concurrency)
        try:
            sample = await _sample(pools, seed)
        except asyncpg.UndefinedTableError as exc:
            raise ConfigError(f"no demo schema ({exc}): run `cdc demo setup` and `cdc demo seed` first") from None
        changes = Changes(random.Random(f"{seed}/workload"), sample)
        await _drive(pools, changes, report, rate=rate, duration=duration, stop=stop, concurrency=concurrency)
    finally:
        await asyncio.gather(*(p.close() for p in pools.values()), return_exceptions=True)
    return report


async def _drive(pools: dict[System, asyncpg.Pool], changes: Changes, report: WorkloadReport, *, rate: float,
                 duration: float | None, stop: asyncio.Event, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task[None]] = set()
    started = loop.time()
    due = started
    deadline = None if duration is None else started + duration

    async def apply(change: Change) -> None:
        system, table, op, sql, args = change
        try:
            result = await pools[system].execute(sql, *args)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            report.failed += 1
            if report.failed <= 5 or report.failed % 1000 == 0:
                log.warning("change failed", system=system, table=table, op=op, failed=report.failed,
                               error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        if result.endswith(" 0"):
            report.missed += 1
        else:
            report.changes[system, table, op] += 1

    while not stop.is_set():
        now = loop.time()
        if deadline is not None and now >= deadline:
            break
        if due > now:
            wait = due - now if deadline is None else min(due, deadline) - now
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass
            continue
        due = max(due, now - MAX_BACKLOG) + 1.0 / rate
        change = changes.next()
        task = asyncio.create_task(apply(change))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        if len(in_flight) >= 4 * concurrency * len(SYSTEMS):  # the databases are slower than the rate
            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
    if in_flight:
        await asyncio.wait(in_flight)
    report.seconds = loop.time() - started


async def _sample(pools: dict[System, asyncpg.Pool], seed: int) -> Sample:
    """Up to SAMPLE keys of each table, chosen by a hash of key and seed (the same for the same data)."""
    keys: dict[tuple[System, str], list[Any]] = {}
    for (system, table), key in KEYS.items():
        rows = await pools[system].fetch(
            f"SELECT {key} AS key FROM {table} ORDER BY md5({key}::text || $1), {key} LIMIT $2",
            str(seed), SAMPLE)
        keys[system, table] = [r["key"] for r in rows]
    erp, crm = pools["erp"], pools["crm"]
    deletable: dict[tuple[System, str], list[Any]] = {
        ("erp", "customer"): [r["no"] for r in await erp.fetch(
            "SELECT no FROM customer c WHERE NOT EXISTS (SELECT 1 FROM contact WHERE customer_no = c.no) "
            "ORDER BY md5(no || $1), no LIMIT $2", str(seed), SAMPLE // 5)],
        ("crm", "account"): [r["accountid"] for r in await crm.fetch(
            "SELECT accountid FROM account a WHERE NOT EXISTS "
            "(SELECT 1 FROM contact WHERE parentcustomerid = a.accountid) "
            "ORDER BY md5(accountid::text || $1), accountid LIMIT $2", str(seed), SAMPLE // 5)],
    }
    numbered = {
        "customer": "SELECT max(substring(no FROM 2)::bigint) FROM customer WHERE no ~ '^C[0-9]{1,15}$'",
        "contact": "SELECT max(substring(no FROM 3)::bigint) FROM contact WHERE no ~ '^CT[0-9]{1,15}$'",
        "item": "SELECT max(no::bigint) FROM item WHERE no ~ '^[0-9]{1,15}$'",
    }
    next_no = {table: (await erp.fetchval(sql) or 0) + 1 for table, sql in numbered.items()}
    next_no["item"] = max(next_no["item"], 1000)
    next_no["product"] = (await crm.fetchval(
        "SELECT max(substring(productnumber FROM 3)::bigint) FROM product "
        "WHERE productnumber ~ '^P-[0-9]{1,15}$'") or 0) + 1
    return Sample(
        keys=keys,
        deletable=deletable,
        salespeople=[r["code"] for r in await erp.fetch("SELECT code FROM salesperson WHERE NOT blocked "
                                                         "ORDER BY code")],
        currencies={r["code"] for r in await erp.fetch("SELECT code FROM currency")},
        owners=[r["systemuserid"] for r in await crm.fetch(
            "SELECT systemuserid FROM systemuser WHERE NOT isdisabled AND islicensed AND NOT isintegrationuser "
            "ORDER BY systemuserid")],
        crm_currencies={r["isocurrencycode"]: r["transactioncurrencyid"] for r in await crm.fetch(
            "SELECT isocurrencycode, transactioncurrencyid FROM transactioncurrency WHERE statecode = 0")},
        crm_units={r["name"]: r["uomscheduleid"] for r in await crm.fetch(
            "SELECT name, uomscheduleid FROM uomschedule WHERE statecode = 0")},
        next_no=next_no,
    )


class Changes:
    """Chooses the next change and its values. Weights: ~84% updates, ~13% inserts, ~3% deletes."""

    def __init__(self, rng: random.Random, sample: Sample) -> None:
        self.rng = rng
        self.sample = sample
        self.companies = words.Companies()
        self.kinds: list[tuple[float, System, str, str, Callable[[], tuple[str, tuple[Any, ...]] | None]]] = [
            (30, "erp", "customer", "update", self.update_customer),
            (22, "erp", "contact", "update", self.update_erp_contact),
            (14, "erp", "item", "update", self.update_item),
            (3, "erp", "resource", "update", self.update_resource),
            (5, "erp", "customer", "insert", self.insert_customer),
            (6, "erp", "contact", "insert", self.insert_erp_contact),
            (2, "erp", "item", "insert", self.insert_item),
            (1.5, "erp", "contact", "delete", self.delete_erp_contact),
            (0.75, "erp", "customer", "delete", self.delete_customer),
            (0.75, "erp", "item", "delete", self.delete_item),
            (30, "crm", "account", "update", self.update_account),
            (22, "crm", "contact", "update", self.update_crm_contact),
            (17, "crm", "product", "update", self.update_product),
            (5, "crm", "account", "insert", self.insert_account),
            (6, "crm", "contact", "insert", self.insert_crm_contact),
            (2, "crm", "product", "insert", self.insert_product),
            (1.5, "crm", "contact", "delete", self.delete_crm_contact),
            (0.75, "crm", "account", "delete", self.delete_account),
            (0.75, "crm", "product", "delete", self.delete_product),
        ]
        self.cumulative = words.running_totals([k[0] for k in self.kinds])

    def next(self) -> Change:
        while True:
            _, system, table, op, make = self.kinds[words.weighted(self.rng, self.cumulative)]
            made = make()
            if made is not None:  # None: nothing to update or delete in that table
                return (system, table, op, *made)

    # ------------------------------------------------------------ choosing records

    def key(self, system: System, table: str) -> Any | None:
        keys = self.sample.keys[system, table]
        return words.pick(self.rng, keys) if keys else None

    def take(self, system: System, table: str) -> Any | None:
        """A key to delete, no longer offered for other changes (of the deletable ones, if the table has any)."""
        keys = self.sample.deletable.get((system, table), self.sample.keys[system, table])
        if not keys:
            return None
        at = int(self.rng.random() * len(keys))
        keys[at], keys[-1] = keys[-1], keys[at]
        key = keys.pop()
        if (system, table) in self.sample.deletable and key in self.sample.keys[system, table]:
            self.sample.keys[system, table].remove(key)
        return key

    def number(self, table: str) -> int:
        self.sample.next_no[table] += 1
        return self.sample.next_no[table] - 1

    def factor(self) -> Decimal:
        """A price change between -10% and +10%."""
        return Decimal(90 + int(self.rng.random() * 21)) / 100

    def tag(self) -> str:
        return f"-{int(self.rng.random() * 36 ** 4):x}"

    # ------------------------------------------------------------ ERP

    def update_customer(self) -> tuple[str, tuple[Any, ...]] | None:
        no, r = self.key("erp", "customer"), self.rng.random()
        if no is None:
            return None
        where = words.country(self.rng)
        if r < 0.35:
            return "UPDATE customer SET phone_no = $2 WHERE no = $1", (no, words.digits(self.rng, where.phone))
        if r < 0.5:
            return ("UPDATE customer SET email = $2 || '@' || split_part(email, '@', 2) WHERE no = $1",
                    (no, words.pick(self.rng, where.mailboxes)))
        if r < 0.65:
            return ("UPDATE customer SET name = CASE WHEN name LIKE '% Group' THEN left(name, -6) "
                    "ELSE left(name, 94) || ' Group' END WHERE no = $1", (no,))
        if r < 0.8:
            return ("UPDATE customer SET address = regexp_replace(address, '[0-9]+', $2) WHERE no = $1",
                    (no, str(1 + int(self.rng.random() * 200))))
        return "UPDATE customer SET credit_limit = $2 WHERE no = $1", (no, words.pick(self.rng, CREDIT_LIMITS))

    def update_erp_contact(self) -> tuple[str, tuple[Any, ...]] | None:
        no, r = self.key("erp", "contact"), self.rng.random()
        if no is None:
            return None
        where = words.country(self.rng)
        if r < 0.35:
            return "UPDATE contact SET phone_no = $2 WHERE no = $1", (no, words.digits(self.rng, where.phone))
        if r < 0.6:
            return ("UPDATE contact SET mobile_phone_no = $2 WHERE no = $1",
                    (no, words.digits(self.rng, where.mobile)))
        if r < 0.8:
            return "UPDATE contact SET job_title = $2 WHERE no = $1", (no, words.pick(self.rng, words.JOB_TITLES))
        return ("UPDATE contact SET email = regexp_replace(email, $3, $2 || '@') WHERE no = $1",
                (no, str(int(self.rng.random() * 10)), EMAIL_DIGIT))

    def update_item(self) -> tuple[str, tuple[Any, ...]] | None:
        no = self.key("erp", "item")
        if no is None:
            return None
        if self.rng.random() < 0.7:
            return "UPDATE item SET unit_price = round(unit_price * $2, 2) WHERE no = $1", (no, self.factor())
        return ("UPDATE item SET inventory = greatest(inventory + $2, 0) WHERE no = $1",
                (no, Decimal(int(self.rng.random() * 200) - 100)))

    def update_resource(self) -> tuple[str, tuple[Any, ...]] | None:
        no = self.key("erp", "resource")
        if no is None:
            return None
        return "UPDATE resource SET unit_price = round(unit_price * $2, 2) WHERE no = $1", (no, self.factor())

    def insert_customer(self) -> tuple[str, tuple[Any, ...]]:
        company = self.companies.make(self.rng, tag=self.tag())
        no = f"C{self.number('customer'):05d}"
        self.sample.keys["erp", "customer"].append(no)
        self.sample.deletable["erp", "customer"].append(no)
        salesperson = words.pick(self.rng, self.sample.salespeople) if self.sample.salespeople else None
        currency = company.origin.currency if company.origin.currency in self.sample.currencies else None
        return ("INSERT INTO customer (no, name, address, address_2, city, post_code, county, country_code, "
                "phone_no, email, home_page, salesperson_code, currency_code, payment_terms_code, credit_limit) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                (no, company.name, company.address, company.address_2, company.city, company.post_code,
                 company.county, company.country, company.phone, company.email, company.home_page, salesperson,
                 None if currency == "EUR" else currency, "30D", words.pick(self.rng, CREDIT_LIMITS)))

    def insert_erp_contact(self) -> tuple[str, tuple[Any, ...]] | None:
        customer = self.key("erp", "customer")
        if customer is None:
            return None
        first, last = words.person(self.rng, words.country(self.rng))
        no = f"CT{self.number('contact'):06d}"
        self.sample.keys["erp", "contact"].append(no)
        return ("INSERT INTO contact (no, type, first_name, surname, job_title, email, customer_no) "
                "SELECT $1, 'person', $2, $3, $4, $5 || '@' || split_part(email, '@', 2), no "
                "FROM customer WHERE no = $6",
                (no, first, last, words.pick(self.rng, words.JOB_TITLES), words.mailbox(first, last), customer))

    def insert_item(self) -> tuple[str, tuple[Any, ...]]:
        no = str(self.number("item"))
        self.sample.keys["erp", "item"].append(no)
        cost = int(self.rng.random() * 40_000) + 100
        return ("INSERT INTO item (no, description, base_unit_of_measure, unit_price, unit_cost) "
                "SELECT $1, $2, code, $3, $4 FROM unit_of_measure WHERE code = 'PCS'",
                (no, words.item_description(self.rng), Decimal(cost * 3 // 2).scaleb(-2), Decimal(cost).scaleb(-2)))

    def delete_erp_contact(self) -> tuple[str, tuple[Any, ...]] | None:
        no = self.take("erp", "contact")
        return None if no is None else ("DELETE FROM contact WHERE no = $1", (no,))

    def delete_customer(self) -> tuple[str, tuple[Any, ...]] | None:
        no = self.take("erp", "customer")
        if no is None:
            return None
        return ("DELETE FROM customer c WHERE no = $1 "
                "AND NOT EXISTS (SELECT 1 FROM contact WHERE customer_no = c.no)", (no,))

    def delete_item(self) -> tuple[str, tuple[Any, ...]] | None:
        no = self.take("erp", "item")
        return None if no is None else ("DELETE FROM item WHERE no = $1", (no,))

    # ------------------------------------------------------------ CRM

    def update_account(self) -> tuple[str, tuple[Any, ...]] | None:
        account, r = self.key("crm", "account"), self.rng.random()
        if account is None:
            return None
        where = words.country(self.rng)
        if r < 0.35:
            return ("UPDATE account SET telephone1 = $2 WHERE accountid = $1",
                    (account, words.digits(self.rng, where.phone)))
        if r < 0.5:
            return ("UPDATE account SET emailaddress1 = $2 || '@' || split_part(emailaddress1, '@', 2) "
                    "WHERE accountid = $1", (account, words.pick(self.rng, where.mailboxes)))
        if r < 0.65:
            return ("UPDATE account SET name = CASE WHEN name LIKE '% Group' THEN left(name, -6) "
                    "ELSE left(name, 94) || ' Group' END WHERE accountid = $1", (account,))
        if r < 0.8:
            return ("UPDATE account SET address1_line1 = regexp_replace(address1_line1, '[0-9]+', $2) "
                    "WHERE accountid = $1", (account, str(1 + int(self.rng.random() * 200))))
        return ("UPDATE account SET creditlimit = $2 WHERE accountid = $1",
                (account, words.pick(self.rng, CREDIT_LIMITS)))

    def update_crm_contact(self) -> tuple[str, tuple[Any, ...]] | None:
        contact, r = self.key("crm", "contact"), self.rng.random()
        if contact is None:
            return None
        where = words.country(self.rng)
        if r < 0.35:
            return ("UPDATE contact SET telephone1 = $2 WHERE contactid = $1",
                    (contact, words.digits(self.rng, where.phone)))
        if r < 0.6:
            return ("UPDATE contact SET mobilephone = $2 WHERE contactid = $1",
                    (contact, words.digits(self.rng, where.mobile)))
        if r < 0.8:
            return ("UPDATE contact SET jobtitle = $2 WHERE contactid = $1",
                    (contact, words.pick(self.rng, words.JOB_TITLES)))
        return ("UPDATE contact SET emailaddress1 = regexp_replace(emailaddress1, $3, $2 || '@') "
                "WHERE contactid = $1", (contact, str(int(self.rng.random() * 10)), EMAIL_DIGIT))

    def update_product(self) -> tuple[str, tuple[Any, ...]] | None:
        product = self.key("crm", "product")
        if product is None:
            return None
        return "UPDATE product SET price = round(price * $2, 2) WHERE productid = $1", (product, self.factor())

    def insert_account(self) -> tuple[str, tuple[Any, ...]]:
        company = self.companies.make(self.rng, tag=self.tag())
        account = uuid(self.rng)
        self.sample.keys["crm", "account"].append(account)
        self.sample.deletable["crm", "account"].append(account)
        owner = words.pick(self.rng, self.sample.owners) if self.sample.owners else None
        return ("INSERT INTO account (accountid, name, address1_line1, address1_line2, address1_city, "
                "address1_postalcode, address1_county, address1_country, telephone1, emailaddress1, websiteurl, "
                "ownerid, transactioncurrencyid, paymenttermscode, creditlimit) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                (account, company.name, company.address, company.address_2, company.city, company.post_code,
                 company.county, company.country, company.phone, company.email, company.home_page, owner,
                 self.sample.crm_currencies.get(company.origin.currency), PAYMENT_TERMS_CRM["30D"],
                 words.pick(self.rng, CREDIT_LIMITS)))

    def insert_crm_contact(self) -> tuple[str, tuple[Any, ...]] | None:
        account = self.key("crm", "account")
        if account is None:
            return None
        first, last = words.person(self.rng, words.country(self.rng))
        contact = uuid(self.rng)
        self.sample.keys["crm", "contact"].append(contact)
        return ("INSERT INTO contact (contactid, firstname, lastname, jobtitle, emailaddress1, parentcustomerid) "
                "SELECT $1, $2, $3, $4, $5 || '@' || split_part(emailaddress1, '@', 2), accountid "
                "FROM account WHERE accountid = $6",
                (contact, first, last, words.pick(self.rng, words.JOB_TITLES), words.mailbox(first, last),
                 account))

    def insert_product(self) -> tuple[str, tuple[Any, ...]]:
        product = uuid(self.rng)
        self.sample.keys["crm", "product"].append(product)
        cost = Decimal(int(self.rng.random() * 40_000) + 100).scaleb(-2)
        return ("INSERT INTO product (productid, productnumber, name, producttypecode, defaultuomscheduleid, "
                "price, standardcost, currentcost) VALUES ($1, $2, $3, 1, $4, $5, $6, $6)",
                (product, f"P-{self.number('product'):05d}", words.item_description(self.rng),
                 self.sample.crm_units.get("PCS"), cost * Decimal("1.5"), cost))

    def delete_crm_contact(self) -> tuple[str, tuple[Any, ...]] | None:
        contact = self.take("crm", "contact")
        return None if contact is None else ("DELETE FROM contact WHERE contactid = $1", (contact,))

    def delete_account(self) -> tuple[str, tuple[Any, ...]] | None:
        account = self.take("crm", "account")
        if account is None:
            return None
        return ("DELETE FROM account a WHERE accountid = $1 "
                "AND NOT EXISTS (SELECT 1 FROM contact WHERE parentcustomerid = a.accountid)", (account,))

    def delete_product(self) -> tuple[str, tuple[Any, ...]] | None:
        product = self.take("crm", "product")
        return None if product is None else ("DELETE FROM product WHERE productid = $1", (product,))

