-- An ERP's sales prices and units of measure, both keyed by several columns: a price line by item, currency and
-- minimum quantity, a unit of measure by item and code; and barcodes, each naming its unit by that unit's two key
-- columns. The worked example of composite keys (docs/mappings.md, "Composite keys"). Idempotent.

CREATE OR REPLACE FUNCTION touch_modified_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.modified_at := clock_timestamp();
  RETURN NEW;
END $$;

CREATE TABLE IF NOT EXISTS price_line (
  item_no       varchar(20)   NOT NULL,
  currency      varchar(3)    NOT NULL,
  min_quantity  numeric(18,3) NOT NULL DEFAULT 0,
  unit_price    numeric(18,2) NOT NULL DEFAULT 0,
  starting_date date,
  modified_at   timestamptz   NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (item_no, currency, min_quantity)
);

CREATE TABLE IF NOT EXISTS item_unit (
  item_no      varchar(20)   NOT NULL,
  code         varchar(10)   NOT NULL,
  qty_per_unit numeric(18,3) NOT NULL DEFAULT 1,
  modified_at  timestamptz   NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (item_no, code)
);

CREATE TABLE IF NOT EXISTS item_barcode (
  barcode     varchar(20) PRIMARY KEY,
  item_no     varchar(20),  -- with unit_code: the unit of measure (item_unit's key, in its order)
  unit_code   varchar(10),
  modified_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['price_line', 'item_unit', 'item_barcode'] LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I_touch ON %I', t, t);
    EXECUTE format('CREATE TRIGGER %I_touch BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION touch_modified_at()', t, t);
  END LOOP;
END $$;
