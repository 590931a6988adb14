"""The table gateway's statements (cdc/table_gateway.py): given a catalog table, the SQL text and the order of its
parameters — names quoted whatever they hold, values only ever parameters, casts the catalog's types."""

from __future__ import annotations

import pytest

from cdc import table_gateway as gw
from cdc.catalog import Column, Table
from cdc.mapping.filters import to_sql
from cdc.mapping.model import Condition


def table(schema: str, name: str, key: list[str], *columns: tuple[str, str]) -> Table:
    return Table(name, schema, {c: Column(c, t) for c, t in columns}, key)


CUSTOMER = table("erp", "Customer", ["No."], ("No.", "varchar"), ("Name", "text"), ("blocked", "bool"))
"""One key column, names needing quotes (capitals, a dot)."""
PRICES = table('Sales "EU"', "price line", ["item no", "Currency", "min_qty"],
               ("item no", "varchar"), ("Currency", "bpchar"), ("min_qty", "numeric"), ("unit_price", "numeric"),
               ("tier", "price_tier"))
"""A key of three columns; a schema with quotes, names with spaces and capitals, a column of an enum type."""
NAME = '"Sales ""EU"""."price line"'
KEY_WHERE = '"item no" = $%d AND "Currency" = $%d AND "min_qty" = $%d'


@pytest.mark.parametrize(("name", "quoted"), [
    ("customer", '"customer"'), ("Customer", '"Customer"'), ("item no", '"item no"'), ('say "hi"', '"say ""hi"""'),
    ('x"; DROP TABLE customer; --', '"x""; DROP TABLE customer; --"'),
])
def test_an_identifier_is_quoted_whatever_it_holds(name: str, quoted: str) -> None:
    assert gw.quote_ident(name) == quoted
    assert gw.qualified(name, "t") == f'{quoted}."t"'


# ---------------------------------------------------------------- reads


def test_rows_by_a_key_of_one_column_take_one_typed_array() -> None:
    assert gw.rows_by_key(CUSTOMER) == 'SELECT * FROM "erp"."Customer" WHERE "No." = ANY($1::varchar[])'
    assert gw.rows_by_key(CUSTOMER, key_only=True) == \
        'SELECT "No." FROM "erp"."Customer" WHERE "No." = ANY($1::varchar[])'


def test_rows_by_a_composite_key_join_one_array_per_key_column_in_the_keys_order() -> None:
    assert gw.rows_by_key(PRICES) == (
        f'SELECT t.* FROM {NAME} AS t JOIN unnest($1::varchar[], $2::bpchar[], $3::numeric[]) AS k(k0, k1, k2) '
        'ON t."item no" = k.k0 AND t."Currency" = k.k1 AND t."min_qty" = k.k2')
    assert gw.rows_by_key(PRICES, key_only=True).startswith(
        f'SELECT t."item no", t."Currency", t."min_qty" FROM {NAME} AS t JOIN unnest(')


def test_a_row_by_its_key_text_casts_each_part_to_its_columns_type() -> None:
    assert gw.row_by_key_text(CUSTOMER) == 'SELECT * FROM "erp"."Customer" WHERE "No." = $1::text::varchar'
    assert gw.row_by_key_text(PRICES) == (
        f'SELECT * FROM {NAME} WHERE "item no" = $1::text::varchar AND "Currency" = $2::text::bpchar '
        'AND "min_qty" = $3::text::numeric')


def test_selects_and_counts_take_the_conditions_parameters() -> None:
    condition, params = to_sql(Condition(field="Name", op="eq", value="A"), {"Name": "text"})
    assert (condition, params) == ('("Name" IS NOT NULL AND "Name" COLLATE "C" = $1::text)', ["A"])
    assert gw.select(CUSTOMER, None, condition) == f'SELECT * FROM "erp"."Customer" WHERE {condition}'
    assert gw.select(CUSTOMER, ["No.", "Name"], "TRUE") == 'SELECT "No.", "Name" FROM "erp"."Customer" WHERE TRUE'
    assert gw.count(PRICES, "TRUE") == f"SELECT count(*) FROM {NAME} WHERE TRUE"
    assert gw.modified_after("Modified At", 3) == '"Modified At" > $3::timestamptz'


def test_a_filters_columns_are_quoted_by_the_gateway() -> None:
    condition, _ = to_sql(Condition(field="Name", op="is_null"), {"Name": "text"})
    assert condition == f"{gw.quote_ident('Name')} IS NULL" == '"Name" IS NULL'


def test_a_hierarchy_is_read_parents_first() -> None:
    units = table("crm", "Unit", ["Id"], ("Id", "uuid"), ("Parent Id", "uuid"))
    assert gw.select_by_depth(units, [("Parent Id",)], "($1::bool)") == (
        'WITH RECURSIVE cdc_tree(cdc_k0, cdc_depth) AS (SELECT t."Id", 0 FROM "crm"."Unit" t WHERE '
        '(t."Parent Id" IS NULL OR t."Parent Id" = t."Id" OR NOT EXISTS (SELECT 1 FROM "crm"."Unit" a WHERE '
        'a."Id" = t."Parent Id")) UNION SELECT c."Id", cdc_tree.cdc_depth + 1 FROM cdc_tree JOIN "crm"."Unit" c '
        'ON (c."Parent Id" = cdc_tree.cdc_k0) AND c."Id" <> cdc_tree.cdc_k0 WHERE cdc_tree.cdc_depth < 1000), '
        'cdc_depths AS (SELECT cdc_k0, max(cdc_depth) AS cdc_depth FROM cdc_tree GROUP BY cdc_k0) '
        f'SELECT r.*, d.cdc_depth AS {gw.DEPTH} FROM "crm"."Unit" r LEFT JOIN cdc_depths d ON d.cdc_k0 = r."Id" '
        'WHERE ($1::bool) ORDER BY d.cdc_depth NULLS LAST, r."Id"')


def test_a_composite_hierarchy_compares_keys_as_rows() -> None:
    sql = gw.select_by_depth(PRICES, [("item no", "tier", "unit_price")], "TRUE")
    assert '(t."item no", t."tier", t."unit_price") = (t."item no", t."Currency", t."min_qty")' in sql
    assert 'ON d.cdc_k0 = r."item no"' not in sql and '(d.cdc_k0, d.cdc_k1, d.cdc_k2) = ' \
        '(r."item no", r."Currency", r."min_qty")' in sql


def test_match_candidates_take_the_indexes_then_one_text_array_per_column() -> None:
    assert gw.match_candidates(CUSTOMER, [("Name", False, True), ("No.", True, True)]) == (
        f'SELECT q.i AS {gw.MATCH_INDEX}, d.* FROM unnest($1::int[], $2::text[], $3::text[]) AS q(i, v2, v3) '
        'JOIN "erp"."Customer" d ON lower(d."Name"::text) = lower(q.v2) AND d."No."::text = q.v3')


def test_a_column_matched_by_value_takes_an_array_of_its_own_type() -> None:
    """A numeric or timestamp column's text is not the canonical text (1.50, '2024-01-01 10:00:00+00'): values."""
    assert gw.match_candidates(CUSTOMER, [("blocked", True, False), ("Name", False, True)]) == (
        f'SELECT q.i AS {gw.MATCH_INDEX}, d.* FROM unnest($1::int[], $2::bool[], $3::text[]) AS q(i, v2, v3) '
        'JOIN "erp"."Customer" d ON d."blocked" = q.v2 AND lower(d."Name"::text) = lower(q.v3)')


def test_drawing_a_default_takes_the_count_first() -> None:
    numbered = Column("No.", "varchar", default="'C' || nextval('customer_no')")
    assert gw.draw(CUSTOMER, numbered) == (
        "SELECT ('C' || nextval('customer_no'))::text AS key FROM generate_series(1, $1) AS n ORDER BY n", ())
    identity = Column("Id", "int8", identity="d")
    assert gw.draw(PRICES, identity) == (
        "SELECT nextval(pg_get_serial_sequence($2, $3))::text AS key FROM generate_series(1, $1) AS n ORDER BY n",
        (NAME, "Id"))
    with pytest.raises(ValueError, match="column Name has no default"):
        gw.draw(CUSTOMER, CUSTOMER.columns["Name"])


# ---------------------------------------------------------------- writes


def test_one_record_is_written_with_the_key_last() -> None:
    assert gw.insert(CUSTOMER, ("Name", "No.")) == 'INSERT INTO "erp"."Customer" ("Name", "No.") VALUES ($1, $2)'
    assert gw.update(CUSTOMER, ("Name", "blocked")) == \
        'UPDATE "erp"."Customer" SET "Name" = $1, "blocked" = $2 WHERE "No." = $3'
    assert gw.delete(CUSTOMER) == 'DELETE FROM "erp"."Customer" WHERE "No." = $1'


def test_one_record_under_a_composite_key_is_found_by_every_key_column() -> None:
    assert gw.update(PRICES, ("unit_price",)) == f'UPDATE {NAME} SET "unit_price" = $1 WHERE {KEY_WHERE % (2, 3, 4)}'
    assert gw.delete(PRICES) == f"DELETE FROM {NAME} WHERE {KEY_WHERE % (1, 2, 3)}"
    assert gw.insert(PRICES, ("unit_price", "item no", "Currency", "min_qty")) == (
        f'INSERT INTO {NAME} ("unit_price", "item no", "Currency", "min_qty") VALUES ($1, $2, $3, $4)')


def test_a_set_of_records_is_one_statement_over_typed_arrays() -> None:
    assert gw.insert_set(CUSTOMER, ("Name", "No.")) == (
        'INSERT INTO "erp"."Customer" ("Name", "No.") SELECT * FROM unnest($1::text[], $2::varchar[])')
    assert gw.update_set(CUSTOMER, ("Name",)) == (
        'UPDATE "erp"."Customer" AS t SET "Name" = u.v0 FROM unnest($1::text[], $2::varchar[]) AS u(v0, v1) '
        'WHERE t."No." = u.v1')
    assert gw.delete_set(CUSTOMER) == 'DELETE FROM "erp"."Customer" WHERE "No." = ANY($1::varchar[])'


def test_a_set_under_a_composite_key_is_joined_column_by_column() -> None:
    assert gw.update_set(PRICES, ("unit_price",)) == (
        f'UPDATE {NAME} AS t SET "unit_price" = u.v0 FROM unnest($1::numeric[], $2::varchar[], $3::bpchar[], '
        '$4::numeric[]) AS u(v0, v1, v2, v3) WHERE t."item no" = u.v1 AND t."Currency" = u.v2 '
        'AND t."min_qty" = u.v3')
    assert gw.delete_set(PRICES) == (
        f'DELETE FROM {NAME} AS t USING unnest($1::varchar[], $2::bpchar[], $3::numeric[]) AS u(v0, v1, v2) '
        'WHERE t."item no" = u.v0 AND t."Currency" = u.v1 AND t."min_qty" = u.v2')


def test_a_column_type_without_array_parameters_has_no_set_statement() -> None:
    assert gw.update_set(PRICES, ("tier",)) is None
    assert gw.insert_set(PRICES, ("tier", "item no", "Currency", "min_qty")) is None
    assert gw.update_set(PRICES, ("unit_price",)) is not None


def test_statements_of_one_shape_are_built_once() -> None:
    """The engine asks per write and per batch: the same shape gives the same text, not a new one."""
    assert gw.update(PRICES, ("unit_price",)) is gw.update(PRICES, ("unit_price",))
    assert gw.update_set(PRICES, ("unit_price",)) is gw.update_set(PRICES, ("unit_price",))
    assert gw.rows_by_key(PRICES) is gw.rows_by_key(PRICES)
    assert gw.match_candidates(CUSTOMER, [("Name", True, True)]) is gw.match_candidates(CUSTOMER,
                                                                                        [("Name", True, True)])
