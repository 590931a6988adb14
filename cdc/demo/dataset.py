"""The demo data set, generated in memory: a pure function of its shape (customers, seed, overlap).

Rows come in batches, each a dict from (system, table) to rows (tuples in the order of `COLUMNS`), in an
order that keeps every foreign key valid when the batches are loaded one after another. Each kind of record
draws from its own random stream and ERP rows never draw from a CRM stream, so the ERP rows are the same
whichever systems are generated and whatever the overlap: loading `--erp` and `--crm` separately gives what
`--both` gives.

Overlap: a share of customers (with their contacts), items and resources exists on both sides with identical
match fields (the `match_on` columns of the default mappings). A few ERP records have a deliberate near-duplicate
in the CRM instead, listed in `Dataset.near_duplicates`. Every salesperson customers have is a CRM user too
(SALESPEOPLE carries CRM users to the ERP, so the CRM is where salespeople come from); the CRM has more users.

The data syncs cleanly with the default mappings except a handful of deliberate cases, listed with their reason in
`Dataset.deliberate`, so the demo shows what a healthy installation looks like, and what its errors look like:
a salesperson who left (`OLD`, only in the ERP) and the two customers still assigned to them, the person contacts
of one blocked customer (outside the CUSTOMER filter), and those of one CRM account that is not a customer
(a partner, outside it too). Other blocked customers, and other CRM accounts outside the filter, have no person
contacts (they would fail in the same way).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

from cdc.demo import vocabulary as words
from cdc.pair import SYSTEMS, System

Row = tuple[Any, ...]
Batch = dict[tuple[System, str], list[Row]]

COLUMNS: dict[tuple[System, str], tuple[str, ...]] = {
    ("erp", "currency"): ("code", "description", "symbol", "exchange_rate"),
    ("erp", "salesperson"): ("code", "name", "email", "phone_no", "blocked"),
    ("erp", "unit_of_measure"): ("code", "description"),
    ("erp", "customer"): ("no", "name", "address", "address_2", "city", "post_code", "county", "country_code",
                          "phone_no", "email", "home_page", "salesperson_code", "currency_code",
                          "payment_terms_code", "credit_limit", "blocked"),
    ("erp", "contact"): ("no", "type", "first_name", "middle_name", "surname", "job_title", "email",
                         "phone_no", "mobile_phone_no", "customer_no"),
    ("erp", "item"): ("no", "description", "base_unit_of_measure", "unit_price", "unit_cost", "inventory",
                      "blocked"),
    ("erp", "resource"): ("no", "name", "type", "base_unit_of_measure", "unit_price", "unit_cost", "blocked"),
    ("crm", "transactioncurrency"): ("transactioncurrencyid", "isocurrencycode", "currencyname",
                                     "currencysymbol", "exchangerate", "statecode"),
    ("crm", "systemuser"): ("systemuserid", "fullname", "internalemailaddress", "mobilephone", "isdisabled",
                            "islicensed", "isintegrationuser"),
    ("crm", "uomschedule"): ("uomscheduleid", "name", "description", "statecode"),
    ("crm", "account"): ("accountid", "accountnumber", "name", "address1_line1", "address1_line2",
                         "address1_city", "address1_postalcode", "address1_county", "address1_country",
                         "telephone1", "emailaddress1", "websiteurl", "ownerid", "transactioncurrencyid",
                         "paymenttermscode", "creditlimit", "customertypecode", "statecode"),
    ("crm", "contact"): ("contactid", "firstname", "middlename", "lastname", "jobtitle", "emailaddress1",
                         "telephone1", "mobilephone", "parentcustomerid", "statecode"),
    ("crm", "product"): ("productid", "productnumber", "name", "producttypecode", "defaultuomscheduleid",
                         "price", "standardcost", "currentcost", "statecode"),
}
"""Every demo table with the columns the generator fills, parents before children (the load order)."""

TABLES: dict[System, tuple[str, ...]] = {
    system: tuple(table for s, table in COLUMNS if s == system) for system in SYSTEMS
}

OWN_DOMAIN = "halvorsen-supply.dk"
"""The demo company's own domain: salespeople and CRM users have their addresses here."""

# code, description, symbol, exchange rate against the local currency (EUR)
CURRENCIES = (("EUR", "Euro", "€", "1"), ("USD", "US Dollar", "$", "1.0842"),
              ("GBP", "Pound Sterling", "£", "0.8571"), ("DKK", "Danish Krone", "kr.", "7.4589"),
              ("SEK", "Swedish Krona", "kr", "11.2310"),
              ("NOK", "Norwegian Krone", "kr", "11.5120"), ("CHF", "Swiss Franc", "CHF", "0.9512"),
              ("PLN", "Polish Zloty", "zł", "4.3120"), ("JPY", "Japanese Yen", "¥", "162.4500"),
              ("CAD", "Canadian Dollar", "$", "1.4721"))
LOCAL_CURRENCY = "EUR"
CRM_CURRENCIES = ("EUR", "USD", "GBP", "DKK", "SEK")
UNITS = (("PCS", "Piece"), ("BOX", "Box"), ("HOUR", "Hour"), ("DAY", "Day"), ("KG", "Kilogram"),
         ("L", "Litre"), ("M", "Metre"), ("PACK", "Pack"), ("SET", "Set"), ("PALLET", "Pallet"))
CRM_UNITS = (("PCS", "Piece", 0), ("BOX", "Box", 0), ("HOUR", "Hour", 0),
             ("Default Unit", "Default unit group", 0), ("Legacy Units", "Units from the old price list", 1))

PAYMENT_TERMS = (("30D", 50), ("14D", 20), ("60D", 10), ("COD", 5), ("", 15))
PAYMENT_TERMS_CRM = {"14D": 1, "30D": 2, "60D": 3, "COD": 4}
CREDIT_LIMITS = tuple(Decimal(v) for v in ("0", "5000", "10000", "25000", "50000", "100000"))
CONTACTS_PER_COMPANY = (0.08, 0.25, 0.50, 0.75, 0.90, 1.0)  # cumulative P(0..5 contacts): 2.5 on average
FORMER_SALESPERSON = ("OLD", "Former salesperson (left)", f"former.salesperson@{OWN_DOMAIN}")
"""Code, name and e-mail of a salesperson who left: blocked, only in the ERP, still assigned to two customers."""
NEAR_DUPLICATE_KINDS = ("name_case", "name_space", "email_typo", "email_case")
"""How a near-duplicate CRM account differs from its ERP customer:
name_case: name in another case, email one character off; name_space: extra spaces in the name, email one
character off; email_typo: same name, email one character off; email_case: same name, email in upper case."""


@dataclass(frozen=True)
class Shape:
    """What to generate. `customers` drives every other size."""

    customers: int
    seed: int = 1
    overlap: float = 0.3

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError("customers must be at least 1")
        if not 0.0 <= self.overlap <= 1.0:
            raise ValueError("overlap must be between 0 and 1")

    @property
    def items(self) -> int:
        return max(1, self.customers // 2)

    @property
    def resources(self) -> int:
        return max(1, self.customers // 20)

    @property
    def salespeople(self) -> int:
        return max(5, self.customers // 200)

    def shared(self, total: int) -> int:
        return round(total * self.overlap)

    @property
    def near_duplicates(self) -> int:
        return min(self.customers - self.shared(self.customers), max(4, self.customers // 1000))


class NearDuplicate(NamedTuple):
    table: str  # the ERP table
    erp_key: str
    crm_key: UUID
    kind: str


class Deliberate(NamedTuple):
    """A record of the data set that cannot sync with the default mappings, on purpose, and why."""

    system: System
    table: str
    key: str
    why: str


def former_customers(customers: int) -> frozenset[int]:
    """The indexes of the customers still assigned to the salesperson who left (none in very small data sets)."""
    return frozenset({customers // 4, 3 * customers // 4}) if customers >= 8 else frozenset()


def uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def cents(amount: int) -> Decimal:
    return Decimal(amount).scaleb(-2)


class Dataset:
    """Generates the rows of `shape` for `systems`; iterate `batches()` once."""

    def __init__(self, shape: Shape, systems: Iterable[System] = SYSTEMS) -> None:
        self.shape = shape
        self.systems = tuple(systems)
        self.near_duplicates: list[NearDuplicate] = []
        self.deliberate: list[Deliberate] = []
        self._blocked_example: str | None = None  # the blocked customer whose person contacts stay
        self._erp = "erp" in self.systems
        self._crm = "crm" in self.systems
        self._companies = words.Companies()
        self._emails: set[str] = set()  # addresses at OWN_DOMAIN
        self._contact_no = 0
        self._crm_currency: dict[str, UUID] = {}
        self._crm_unit: dict[str, UUID] = {}
        self._salesperson_user: dict[str, UUID] = {}
        self._owners: list[UUID] = []
        self._salespeople: list[str] = []

    def stream(self, name: str) -> random.Random:
        return random.Random(f"{self.shape.seed}/{name}")

    def batches(self, block: int = 5000) -> Iterator[Batch]:
        yield self._reference()
        yield from self._customers(block)
        yield from self._crm_accounts(block)
        yield from self._items(block)
        yield from self._resources(block)

    # ------------------------------------------------------------ reference data

    def _reference(self) -> Batch:
        batch: Batch = {key: [] for key in COLUMNS}
        rng, crm = self.stream("reference"), self.stream("crm-reference")
        for code, description, symbol, rate in CURRENCIES:
            batch["erp", "currency"].append((code, description, symbol, Decimal(rate)))
            if code in CRM_CURRENCIES:
                self._crm_currency[code] = uuid(crm)
                batch["crm", "transactioncurrency"].append(
                    (self._crm_currency[code], code, description, symbol, Decimal(rate), 0))
        batch["crm", "transactioncurrency"].append(
            (uuid(crm), "DEM", "Deutsche Mark", "DM", Decimal("1.95583"), 1))
        batch["erp", "unit_of_measure"].extend(UNITS)
        for name, description, state in CRM_UNITS:
            self._crm_unit[name] = uuid(crm)
            batch["crm", "uomschedule"].append((self._crm_unit[name], name, description, state))

        total = self.shape.salespeople
        crm_only = total - self.shape.shared(total)  # CRM users who are no salesperson (yet)
        codes: dict[str, int] = {}
        home = words.COUNTRIES[0]
        for _ in range(total):
            first, last = words.person(rng, home)
            initials = (words.slug(first)[0] + words.slug(last, "")[0]).upper()
            codes[initials] = codes.get(initials, 0) + 1
            code = initials if codes[initials] == 1 else f"{initials}{codes[initials]}"
            name, email = f"{first} {last}", self._own_email(first, last)
            phone = words.digits(rng, home.mobile)
            batch["erp", "salesperson"].append((code, name, email, phone, rng.random() < 0.05))
            self._salespeople.append(code)
            self._salesperson_user[code] = uuid(crm)
            batch["crm", "systemuser"].append((self._salesperson_user[code], name, email, phone,
                                               False, True, False))
        former, former_name, former_email = FORMER_SALESPERSON
        batch["erp", "salesperson"].append((former, former_name, former_email, "", True))
        self._owners = list(self._salesperson_user.values())
        if self._crm:
            for _ in range(crm_only):
                self._owners.append(uuid(crm))
                batch["crm", "systemuser"].append(
                    (self._owners[-1], *self._user(crm, home), False, True, False))
            for i in range(max(1, total // 10) + max(1, total // 20)):
                disabled = i < max(1, total // 10)
                batch["crm", "systemuser"].append((uuid(crm), *self._user(crm, home), disabled, not disabled,
                                                   False))
            batch["crm", "systemuser"].append(
                (uuid(crm), "CDC Integration", f"cdc-integration@{OWN_DOMAIN}", "", False, True, True))
        return self._select(batch)

    def _own_email(self, first: str, last: str) -> str:
        mailbox, n = words.mailbox(first, last), 1
        email = f"{mailbox}@{OWN_DOMAIN}"
        while email in self._emails:
            n += 1
            email = f"{mailbox}{n}@{OWN_DOMAIN}"
        self._emails.add(email)
        return email

    def _user(self, rng: random.Random, home: words.Country) -> tuple[str, str, str]:
        first, last = words.person(rng, home)
        return f"{first} {last}", self._own_email(first, last), words.digits(rng, home.mobile)

    # ------------------------------------------------------------ customers, accounts, contacts

    def _customers(self, block: int) -> Iterator[Batch]:
        shape = self.shape
        rng, people, crm = self.stream("customers"), self.stream("contacts"), self.stream("crm-customers")
        kind = bytearray(shape.customers)  # 0 ERP only, 1 on both sides, 2+ near-duplicate kind
        shared = shape.shared(shape.customers)
        former = former_customers(shape.customers)
        wanted = shared + shape.near_duplicates
        # the customers of the salesperson who left exist only in the ERP (a CRM twin would be coupled by match,
        # and write its owner over the ERP's salesperson), unless every customer is wanted on both sides
        candidates = [i for i in range(shape.customers) if i not in former]
        picks = self.stream("overlap-customers").sample(
            candidates if wanted <= len(candidates) else range(shape.customers), wanted)
        for n, i in enumerate(picks):
            kind[i] = 1 if n < shared else 2 + n % len(NEAR_DUPLICATE_KINDS)
        terms_cum = words.running_totals([w for _, w in PAYMENT_TERMS])
        batch = self._empty()
        for i in range(shape.customers):
            company = self._companies.make(rng)
            no = f"C{i + 1:05d}"
            salesperson = words.pick(rng, self._salespeople) if rng.random() < 0.9 else None
            if i in former:
                salesperson = FORMER_SALESPERSON[0]
            currency = company.origin.currency if rng.random() < 0.9 else LOCAL_CURRENCY
            currency_code = None if currency == LOCAL_CURRENCY else currency
            payment_terms = PAYMENT_TERMS[words.weighted(rng, terms_cum)][0]
            credit_limit = words.pick(rng, CREDIT_LIMITS)
            r = rng.random()
            blocked = "all" if r < 0.03 else "invoice" if r < 0.04 else "ship" if r < 0.05 else ""
            if i in former:
                blocked = ""  # in the CUSTOMER filter: its salesperson is what keeps it from syncing
            customer = (no, company.name, company.address, company.address_2, company.city, company.post_code,
                        company.county, company.country, company.phone, company.email, company.home_page,
                        salesperson, currency_code, payment_terms, credit_limit, blocked)
            contacts = self._erp_contacts(people, company, no)
            mirrored = contacts
            if i in former:
                contacts = mirrored = _out_of_scope(contacts)
                self.deliberate.append(Deliberate(
                    "erp", "customer", no, f"its salesperson {FORMER_SALESPERSON[0]} left the company: it exists only "
                    "in the ERP, and SALESPEOPLE carries CRM users to the ERP only"))
            elif blocked == "all":
                if self._blocked_example is None and _out_of_scope(contacts) != contacts:
                    self._blocked_example = no  # its person contacts stay (not mirrored: the ERP's example)
                    mirrored = _out_of_scope(contacts)
                    self.deliberate += [Deliberate("erp", "contact", c[0], f"its customer {no} is blocked: "
                                                   "outside the CUSTOMER filter, never coupled")
                                        for c in contacts if c not in mirrored]
                else:
                    contacts = mirrored = _out_of_scope(contacts)
            if self._erp:
                batch["erp", "customer"].append(customer)
                batch["erp", "contact"].extend(contacts)
            if self._crm and kind[i]:
                self._mirror(crm, batch, customer, mirrored, kind[i])
            if len(batch["erp", "customer"]) + len(batch["crm", "account"]) >= block:
                yield self._select(batch)
                batch = self._empty()
        yield self._select(batch)

    def _erp_contacts(self, rng: random.Random, company: words.Company, customer_no: str) -> list[Row]:
        rows: list[Row] = [(self._next_contact(), "person", *person, customer_no)
                           for person in _staff(rng, company)]
        r = rng.random()
        if r < 0.03:  # the company itself as a contact: out of the CONTACTS mapping's scope
            rows.append((self._next_contact(), "company", "", "", company.name[:30], "", company.email,
                         company.phone, "", customer_no))
        elif r < 0.05:  # a prospect not (yet) linked to a customer: out of scope too
            first, last = words.person(rng, company.origin)
            number = self._next_contact()
            email = f"{words.mailbox(first, last)}.{number[2:]}@{words.pick(rng, words.FREE_MAIL)}"
            rows.append((number, "person", first, "", last, "", email, "",
                         words.digits(rng, company.origin.mobile), None))
        return rows

    def _next_contact(self) -> str:
        self._contact_no += 1
        return f"CT{self._contact_no:06d}"

    def _mirror(self, rng: random.Random, batch: Batch, customer: Row, contacts: list[Row],
                kind: int) -> None:
        """The CRM account (and contacts) of an ERP customer on both sides, or of its near-duplicate."""
        (no, name, address, address_2, city, post_code, county, country, phone, email, home_page, salesperson,
         currency_code, payment_terms, credit_limit, blocked) = customer
        account = uuid(rng)
        owner = self._salesperson_user.get(salesperson) if salesperson else None
        if owner is None:
            owner = words.pick(rng, self._owners)
        currency = self._crm_currency.get(currency_code) if currency_code else None
        near = NEAR_DUPLICATE_KINDS[kind - 2] if kind >= 2 else None
        if near == "name_case":
            name = name.upper() if name != name.upper() else name.lower()
        elif near == "name_space":
            name = name.replace(" ", "  ", 1) + " "
        if near in ("name_case", "name_space", "email_typo"):
            email = words.typo(rng, email)
        elif near == "email_case":
            email = email.upper()
        if near:
            self.near_duplicates.append(NearDuplicate("customer", no, account, near))
        batch["crm", "account"].append(
            (account, "", name, address, address_2, city, post_code, county, country, phone, email, home_page,
             owner, currency, PAYMENT_TERMS_CRM.get(payment_terms), credit_limit, 3,
             1 if blocked == "all" else 0))
        for row in contacts:
            (contact_no, kind_, first, middle, last, job, contact_email, contact_phone, mobile, parent) = row
            if kind_ != "person" or parent is None:
                continue
            contact = uuid(rng)
            if near:
                contact_email = words.typo(rng, contact_email)
                self.near_duplicates.append(NearDuplicate("contact", contact_no, contact, "email_typo"))
            batch["crm", "contact"].append((contact, first, middle, last, job, contact_email, contact_phone,
                                            mobile, account, 0))

    def _crm_accounts(self, block: int) -> Iterator[Batch]:
        """Accounts that exist only in the CRM (and their contacts)."""
        if not self._crm:
            return
        shape = self.shape
        rng = self.stream("crm-accounts")
        total = shape.customers - shape.shared(shape.customers) - shape.near_duplicates
        batch = self._empty()
        example = False  # the one account outside the CUSTOMER filter whose contacts stay
        for _ in range(total):
            company = self._companies.make(rng)
            account = uuid(rng)
            currency = self._crm_currency.get(company.origin.currency)
            r = rng.random()
            customer_type = 3 if r < 0.9 else 8 if r < 0.94 else words.pick(rng, (1, 2, 5, 9, 10))
            terms = words.pick(rng, (1, 2, 2, 2, 3, 4, None))
            owner, limit = words.pick(rng, self._owners), words.pick(rng, CREDIT_LIMITS)
            state = 1 if rng.random() < 0.04 else 0
            batch["crm", "account"].append(
                (account, "", company.name, company.address, company.address_2, company.city,
                 company.post_code, company.county, company.country, company.phone, company.email,
                 company.home_page, owner, currency, terms, limit, customer_type, state))
            staff = [(uuid(rng), *person, account, 0) for person in _staff(rng, company)]
            outside = customer_type != 3 or state == 1
            if outside and not example and staff and customer_type != 3 and state == 0:
                example = True
                self.deliberate += [Deliberate("crm", "contact", str(c[0]), f"its account {company.name!r} is not "
                                               f"a customer (type {customer_type}): outside the CUSTOMER filter, "
                                               "never coupled") for c in staff]
            elif outside:
                staff = []  # people of partners, competitors and inactive accounts: none in the demo data
            batch["crm", "contact"].extend(staff)
            if rng.random() < 0.02:  # a contact without an account: out of the CONTACTS mapping's scope
                first, last = words.person(rng, company.origin)
                contact = uuid(rng)
                email = f"{words.mailbox(first, last)}.{contact.hex[:6]}@{words.pick(rng, words.FREE_MAIL)}"
                mobile = words.digits(rng, company.origin.mobile)
                batch["crm", "contact"].append((contact, first, "", last, "", email, "", mobile, None, 0))
            if len(batch["crm", "account"]) >= block:
                yield self._select(batch)
                batch = self._empty()
        yield self._select(batch)

    # ------------------------------------------------------------ items, resources, products

    def _items(self, block: int) -> Iterator[Batch]:
        total = self.shape.items
        rng, crm = self.stream("items"), self.stream("crm-items")
        shared = set(self.stream("overlap-items").sample(range(total), self.shape.shared(total)))
        batch = self._empty()
        for j in range(total):
            no = str(1000 + j)
            description, unit = words.item_description(rng), words.item_unit(rng)
            cost = rng.randrange(100, 40_000)
            price, cost_ = cents(cost * rng.randrange(120, 220) // 100), cents(cost)
            inventory, blocked = Decimal(rng.randrange(0, 2000)), rng.random() < 0.04
            if self._erp:
                batch["erp", "item"].append((no, description, unit, price, cost_, inventory, blocked))
            if self._crm and j in shared:
                batch["crm", "product"].append((uuid(crm), no, description, 1, self._crm_unit.get(unit),
                                                price, cost_, cost_, 1 if blocked else 0))
            if len(batch["erp", "item"]) + len(batch["crm", "product"]) >= block:
                yield self._select(batch)
                batch = self._empty()
        if self._crm:
            for j in range(total - len(shared)):
                cost = crm.randrange(100, 40_000)
                unit = words.item_unit(crm)
                batch["crm", "product"].append(
                    (uuid(crm), f"P-{j + 1:05d}", words.item_description(crm), 1, self._crm_unit.get(unit),
                     cents(cost * crm.randrange(120, 220) // 100), cents(cost), cents(cost),
                     1 if crm.random() < 0.03 else 0))
                if len(batch["crm", "product"]) >= block:
                    yield self._select(batch)
                    batch = self._empty()
        yield self._select(batch)

    def _resources(self, block: int) -> Iterator[Batch]:
        total = self.shape.resources
        rng, crm = self.stream("resources"), self.stream("crm-resources")
        shared_count = self.shape.shared(total)
        near_count = min(total - shared_count, max(1, total // 50))
        picks = self.stream("overlap-resources").sample(range(total), shared_count + near_count)
        shared, near = set(picks[:shared_count]), set(picks[shared_count:])
        home = words.COUNTRIES[0]
        batch = self._empty()
        for j in range(total):
            no = f"R{j + 1:04d}"
            if rng.random() < 0.8:
                first, last = words.person(rng, home)
                name, kind, unit, cost = f"{first} {last}", "person", "HOUR", rng.randrange(4_000, 9_000)
            else:
                name, kind = words.machine_name(rng), "machine"
                unit, cost = "DAY" if rng.random() < 0.5 else "HOUR", rng.randrange(6_000, 60_000)
            price, cost_ = cents(cost * 16 // 10), cents(cost)
            blocked = rng.random() < 0.05
            if self._erp:
                batch["erp", "resource"].append((no, name, kind, unit, price, cost_, blocked))
            if self._crm and (j in shared or j in near):
                product = uuid(crm)
                if j in near:
                    self.near_duplicates.append(NearDuplicate("resource", no, product, "number_case"))
                batch["crm", "product"].append((product, no if j in shared else no.lower(), name, 3,
                                                self._crm_unit.get(unit), price, cost_, cost_,
                                                1 if blocked else 0))
            if len(batch["erp", "resource"]) + len(batch["crm", "product"]) >= block:
                yield self._select(batch)
                batch = self._empty()
        if self._crm:
            for j in range(total - shared_count - near_count):
                cost = crm.randrange(5_000, 15_000)
                batch["crm", "product"].append(
                    (uuid(crm), f"SV-{j + 1:04d}", words.service_name(crm), 3, self._crm_unit["HOUR"],
                     cents(cost * 3 // 2), cents(cost), cents(cost), 1 if crm.random() < 0.03 else 0))
        yield self._select(batch)

    # ------------------------------------------------------------ batches

    @staticmethod
    def _empty() -> Batch:
        return {key: [] for key in COLUMNS}

    def _select(self, batch: Batch) -> Batch:
        return {key: rows for key, rows in batch.items() if rows and key[0] in self.systems}


def collect(shape: Shape, systems: Iterable[System] = SYSTEMS) -> tuple[dict[tuple[System, str], list[Row]],
                                                                         Dataset]:
    """All rows of a (small) shape at once, with the data set that made them (for its near-duplicates)."""
    dataset = Dataset(shape, systems)
    rows: dict[tuple[System, str], list[Row]] = {key: [] for key in COLUMNS if key[0] in dataset.systems}
    for batch in dataset.batches():
        for key, chunk in batch.items():
            rows[key].extend(chunk)
    return rows, dataset


def _out_of_scope(contacts: list[Row]) -> list[Row]:
    """The ERP contacts outside the CONTACTS mapping's filter (companies, people of no customer)."""
    return [c for c in contacts if c[1] != "person" or c[-1] is None]


def _staff(rng: random.Random, company: words.Company) -> list[Row]:
    """0 to 5 people working at `company`: first, middle, last name, job title, email, phone, mobile."""
    people: list[Row] = []
    mailboxes: set[str] = set()
    for _ in range(_draw(rng.random(), CONTACTS_PER_COMPANY)):
        first, last = words.person(rng, company.origin)
        mailbox = words.mailbox(first, last)
        while mailbox in mailboxes:
            mailbox += str(len(mailboxes))
        mailboxes.add(mailbox)
        middle = words.pick(rng, company.origin.first_names) if rng.random() < 0.05 else ""
        job = words.pick(rng, words.JOB_TITLES) if rng.random() < 0.85 else ""
        phone = words.digits(rng, company.origin.phone) if rng.random() < 0.6 else ""
        mobile = words.digits(rng, company.origin.mobile) if rng.random() < 0.7 else ""
        people.append((first, middle, last, job, f"{mailbox}@{company.domain}", phone, mobile))
    return people


def _draw(r: float, cumulative: tuple[float, ...]) -> int:
    for n, bound in enumerate(cumulative):
        if r < bound:
            return n
    return len(cumulative) - 1
