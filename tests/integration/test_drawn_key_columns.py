"""A composite key column drawn from its own default, through real capture and a real worker: a CRM quote line
becomes an ERP sales line keyed (document_no, line_no), the document carried from the CRM, the line no. from
`nextval('sales_line_no')` drawn before the write (`strategy: columns`, consumers/series.py) — also across a crash
between the drawing and the write, past a line no. someone typed by hand, and not at all by a dry run."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cdc.catalog import read_tables
from cdc.mapping.load import load_mapping_file
from cdc.mapping.validate import catalog_problems
from cdc.settings import Settings
from consumers.appliers.writer import TableWrite
from tests.integration.sync_harness import LiveSync
from tests.integration.test_interrupted_writes import WriteCrash

pytestmark = pytest.mark.asyncio(loop_scope="session")

ERP = """
CREATE OR REPLACE FUNCTION touch_modified_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.modified_at := clock_timestamp(); RETURN NEW; END $$;
CREATE SEQUENCE sales_line_no;
CREATE TABLE sales_line (
  document_no varchar(20)   NOT NULL,
  line_no     integer       NOT NULL DEFAULT nextval('sales_line_no'),
  description varchar(50),
  quantity    numeric(18,3) NOT NULL DEFAULT 0,
  modified_at timestamptz   NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (document_no, line_no)
);
CREATE TRIGGER sales_line_touch BEFORE INSERT OR UPDATE ON sales_line
  FOR EACH ROW EXECUTE FUNCTION touch_modified_at();
"""

CRM = """
CREATE OR REPLACE FUNCTION touch_modifiedon() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.modifiedon := clock_timestamp(); RETURN NEW; END $$;
CREATE TABLE quotedetail (
  quotedetailid  uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
  quotenumber    varchar(20)   NOT NULL DEFAULT '',
  lineitemnumber integer,
  description    varchar(50),
  quantity       numeric(18,3) NOT NULL DEFAULT 0,
  modifiedon     timestamptz   NOT NULL DEFAULT clock_timestamp()
);
CREATE TRIGGER quotedetail_touch BEFORE INSERT OR UPDATE ON quotedetail
  FOR EACH ROW EXECUTE FUNCTION touch_modifiedon();
"""

MAPPING = """\
version: 1
mappings:
  - name: LINE
    sync_only_coupled: false
    deletion: propagate
    erp:
      table: sales_line
      key: [document_no, line_no]   # line_no: no field, no default here: its column default draws it
      modified_on: modified_at
    crm: {table: quotedetail, key: quotedetailid, modified_on: modifiedon}
    fields:
      - {erp: document_no, crm: quotenumber}
      - {erp: line_no, crm: lineitemnumber, direction: to_crm}
      - {erp: description, crm: description}
      - {erp: quantity, crm: quantity}
"""


@pytest.fixture(scope="module")
async def live(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveSync]:
    path = tmp_path_factory.mktemp("lines") / "lines.yaml"
    path.write_text(MAPPING)
    async with LiveSync(settings, path, {"erp": ERP, "crm": CRM}) as sync:
        await sync.start()
        yield sync


def key(document: str, line: int) -> str:
    return json.dumps([document, str(line)], separators=(",", ":"))


async def quote_line(live: LiveSync, document: str, description: str) -> uuid.UUID:
    return await live.crm.fetchval("INSERT INTO quotedetail(quotenumber, description, quantity) VALUES ($1, $2, 3) "
                                   "RETURNING quotedetailid", document, description)


async def coupled(live: LiveSync, line: uuid.UUID, what: str = "the quote line coupled") -> Any:
    return await live.until(lambda: live.coupling("LINE", "crm", str(line)), timeout=30, what=what)


async def test_the_mapping_fits_its_tables(live: LiveSync) -> None:
    tables = {system: await read_tables(conn, "public", [table])
              for system, conn, table in (("erp", live.erp, "sales_line"), ("crm", live.crm, "quotedetail"))}
    assert catalog_problems(load_mapping_file(live.settings.mapping_file), tables["erp"], tables["crm"]) == []


async def test_a_quote_line_becomes_the_next_sales_line_and_a_line_no_held_by_hand_is_skipped(
        live: LiveSync) -> None:
    first = await quote_line(live, "SO1001", "Bolts")
    coupling = await coupled(live, first)
    drawn = await live.erp.fetchval("SELECT last_value FROM sales_line_no")
    assert coupling["erp_key"] == key("SO1001", drawn)
    row = await live.erp.fetchrow("SELECT * FROM sales_line WHERE document_no = 'SO1001' AND line_no = $1", drawn)
    assert (row["description"], row["quantity"]) == ("Bolts", 3)
    assert await live.crm.fetchval("SELECT lineitemnumber FROM quotedetail WHERE quotedetailid = $1",
                                   first) == drawn, "the drawn line no. written back to the quote line"

    # someone typed the next line no. of that document by hand, past the sequence
    await live.erp.execute("INSERT INTO sales_line(document_no, line_no, description) VALUES ('SO1001', $1, 'Typed')",
                           drawn + 1)
    await live.until(lambda: live.coupling("LINE", "erp", key("SO1001", drawn + 1)), timeout=30,
                     what="the typed line coupled")
    second = await quote_line(live, "SO1001", "Nuts")
    assert (await coupled(live, second))["erp_key"] == key("SO1001", drawn + 2), "the line no. after the typed one"
    assert await live.erp.fetchval("SELECT description FROM sales_line WHERE document_no = 'SO1001' "
                                   "AND line_no = $1", drawn + 1) == "Typed"

    await live.crm.execute("UPDATE quotedetail SET quantity = 5 WHERE quotedetailid = $1", first)
    await live.until(lambda: live.erp.fetchval("SELECT quantity = 5 FROM sales_line WHERE document_no = 'SO1001' "
                                               "AND line_no = $1", drawn), what="the CRM's change in the ERP line")


async def test_a_dry_run_predicts_the_line_without_drawing_a_number(live: LiveSync) -> None:
    await live.stop_worker()
    try:
        predicted = await quote_line(live, "SO3003", "Predicted")
        before = await live.erp.fetchrow("SELECT last_value, is_called FROM sales_line_no")
        done = await live.cdc("full-sync", "--dry-run", "--json")
        assert done.returncode == 0, done.stderr
        [to_erp] = [p for p in json.loads(done.stdout)["predictions"] if p["direction"] == "to_erp"]
        assert (to_erp["created"], to_erp["failed"]) == (1, 0)
        assert await live.erp.fetchrow("SELECT last_value, is_called FROM sales_line_no") == before
    finally:
        await live.start_worker()
    await coupled(live, predicted, "the predicted line created once the worker runs")


async def test_a_crash_between_drawing_and_writing_creates_one_line_with_the_announced_key(
        live: LiveSync, monkeypatch: pytest.MonkeyPatch) -> None:
    attempted: list[str] = []  # the key of each attempt to write the line: the crashed one, then the replay's

    def ours(tw: TableWrite) -> bool:
        if tw.write.system == "erp" and tw.write.kind == "insert" and tw.write.values.get("description") == "Crashed":
            attempted.append(tw.write.key)
            return True
        return False

    crash = WriteCrash(monkeypatch, ours, at=1)
    await live.erp.execute("SELECT setval('sales_line_no', 500)")
    line = await quote_line(live, "SO2002", "Crashed")
    coupling = await coupled(live, line, "the quote line coupled after the replay")
    assert crash.calls, "the interruption did not happen"
    assert attempted == [key("SO2002", 501)] * 2, "the replay wrote the key the crashed attempt announced"
    assert coupling["erp_key"] == key("SO2002", 501)
    assert [r["line_no"] for r in await live.erp.fetch("SELECT line_no FROM sales_line "
                                                       "WHERE description = 'Crashed'")] == [501], "exactly one line"
    assert await live.erp.fetchval("SELECT last_value FROM sales_line_no") == 501, "nothing drawn on the replay"
    assert await live.crm.fetchval("SELECT lineitemnumber FROM quotedetail WHERE quotedetailid = $1", line) == 501
    assert await live.state.fetchval("SELECT count(*) FROM cdc.coupling_intents") == 0
