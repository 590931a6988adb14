-- A CRM's price list items, keyed by a generated UUID, units of measure keyed, as in the ERP, by product and unit
-- name, and barcodes naming their unit by those two columns. Idempotent.

CREATE OR REPLACE FUNCTION touch_modifiedon() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.modifiedon := clock_timestamp();
  RETURN NEW;
END $$;

CREATE TABLE IF NOT EXISTS productpricelevel (
  productpricelevelid uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
  productnumber       varchar(20)   NOT NULL DEFAULT '',
  currencycode        varchar(3)    NOT NULL DEFAULT '',
  quantity            numeric(18,3) NOT NULL DEFAULT 0,
  amount              numeric(18,2) NOT NULL DEFAULT 0,
  validfrom           date,
  modifiedon          timestamptz   NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS uomitem (
  productnumber varchar(20)   NOT NULL,
  unitname      varchar(10)   NOT NULL,
  quantity      numeric(18,3) NOT NULL DEFAULT 1,
  modifiedon    timestamptz   NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (productnumber, unitname)
);

CREATE TABLE IF NOT EXISTS productbarcode (
  productbarcodeid uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  barcode          varchar(20) NOT NULL DEFAULT '',
  productnumber    varchar(20),  -- with unitname: the unit of measure (uomitem's key, in its order)
  unitname         varchar(10),
  modifiedon       timestamptz NOT NULL DEFAULT clock_timestamp()
);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['productpricelevel', 'uomitem', 'productbarcode'] LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I_touch ON %I', t, t);
    EXECUTE format('CREATE TRIGGER %I_touch BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION touch_modifiedon()', t, t);
  END LOOP;
END $$;
