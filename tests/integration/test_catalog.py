from __future__ import annotations

import asyncpg

from cdc.catalog import Column, read_mapped_tables, read_tables
from cdc.mapping.load import default_mapping_file
from cdc.mapping.validate import validate_against_catalog
from cdc.settings import Settings
from tests.integration.mapping_fixtures import demo_databases, scratch_database  # noqa: F401


async def test_demo_tables_read_from_the_catalog(demo_databases: dict[str, str]):  # noqa: F811
    erp = await asyncpg.connect(demo_databases["erp"])
    crm = await asyncpg.connect(demo_databases["crm"])
    try:
        tables = await read_tables(erp, "public", ["customer", "contact", "no_such_table"])
        account = (await read_tables(crm, "public", ["account"]))["account"]
    finally:
        await erp.close()
        await crm.close()
    assert sorted(tables) == ["contact", "customer"]
    customer = tables["customer"]
    assert (customer.name, customer.schema, customer.primary_key) == ("customer", "public", ["no"])
    assert list(customer.columns)[:3] == ["no", "name", "address"]
    assert customer.columns["name"] == Column("name", "varchar", 100, nullable=False, has_default=True)
    assert customer.columns["salesperson_code"] == Column("salesperson_code", "varchar", 20, nullable=True,
                                                          has_default=False)
    assert customer.columns["credit_limit"] == Column("credit_limit", "numeric", None, False, True, scale=2)
    assert customer.columns["modified_at"].type_name == "timestamptz"
    assert account.columns["accountid"] == Column("accountid", "uuid", None, nullable=False, has_default=True)
    assert account.columns["paymenttermscode"] == Column("paymenttermscode", "int4", None, True, False)
    assert tables["contact"].columns["customer_no"].nullable


async def test_keys_domains_identities_and_other_schemas(settings: Settings):
    async with scratch_database(settings, "catalog") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("""
                CREATE SCHEMA sales;
                CREATE DOMAIN code AS varchar(12) NOT NULL;
                CREATE TABLE sales.line (doc int, line int, item code, qty numeric(9,3),
                                         PRIMARY KEY (line, doc));
                CREATE TABLE sales.note (id bigint GENERATED ALWAYS AS IDENTITY, body text, flag boolean);
                CREATE TABLE public.line (id int PRIMARY KEY);
                ALTER TABLE sales.line DROP COLUMN qty;
            """)
            tables = await read_tables(conn, "sales", ["line", "note"])
        finally:
            await conn.close()
    line, note = tables["line"], tables["note"]
    assert line.schema == "sales"
    assert line.primary_key == ["line", "doc"]
    assert list(line.columns) == ["doc", "line", "item"]
    assert line.columns["item"] == Column("item", "varchar", 12, nullable=False, has_default=False)
    assert note.primary_key == []
    assert note.columns["id"] == Column("id", "int8", None, nullable=False, has_default=True)
    assert note.columns["flag"].type_name == "bool"


async def test_the_default_mappings_fit_the_demo_schemas(demo_databases: dict[str, str]):  # noqa: F811
    mapping_file = default_mapping_file()
    erp = await asyncpg.connect(demo_databases["erp"])
    crm = await asyncpg.connect(demo_databases["crm"])
    try:
        erp_tables = await read_mapped_tables(erp, mapping_file, "erp")
        crm_tables = await read_mapped_tables(crm, mapping_file, "crm")
    finally:
        await erp.close()
        await crm.close()
    assert sorted(erp_tables) == sorted(mapping_file.tables("erp"))
    assert sorted(crm_tables) == sorted(mapping_file.tables("crm"))
    assert validate_against_catalog(mapping_file, erp_tables, crm_tables) == []
