-- An ERP item catalogue: a category tree (each category names its parent) and items filed under a category.
-- A schema pair that is not the demo's, used by the integrity tests and as a worked example (README.md here).
-- Idempotent.

CREATE OR REPLACE FUNCTION touch_modified_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.modified_at := clock_timestamp();
  RETURN NEW;
END $$;

CREATE TABLE IF NOT EXISTS item_category (
  code        varchar(20)  PRIMARY KEY,
  parent_code varchar(20)  REFERENCES item_category(code) ON DELETE RESTRICT,
  description varchar(100) NOT NULL DEFAULT '',
  modified_at timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS item (
  no             varchar(20)   PRIMARY KEY,
  description    varchar(100)  NOT NULL DEFAULT '',
  category_code  varchar(20)   REFERENCES item_category(code) ON DELETE RESTRICT,
  unit_price     numeric(18,2) NOT NULL DEFAULT 0,
  available_from date,
  modified_at    timestamptz   NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS item_category_code ON item (category_code);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['item_category', 'item'] LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I_touch ON %I', t, t);
    EXECUTE format('CREATE TRIGGER %I_touch BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION touch_modified_at()', t, t);
  END LOOP;
END $$;
