-- A CRM product catalogue: categories in a tree and products under a category, keyed by UUIDs; the CRM refuses
-- to delete a category anything still points to (RESTRICT). Idempotent.

CREATE OR REPLACE FUNCTION touch_modifiedon() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.modifiedon := clock_timestamp();
  RETURN NEW;
END $$;

CREATE TABLE IF NOT EXISTS category (
  categoryid       uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
  code             varchar(20)  NOT NULL DEFAULT '',
  parentcategoryid uuid         REFERENCES category(categoryid) ON DELETE RESTRICT,
  name             varchar(100) NOT NULL DEFAULT '',
  modifiedon       timestamptz  NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS category_code ON category (code);
CREATE INDEX IF NOT EXISTS category_parent ON category (parentcategoryid);

CREATE TABLE IF NOT EXISTS product (
  productid     uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
  productnumber varchar(20)   NOT NULL DEFAULT '',
  name          varchar(100)  NOT NULL DEFAULT '',
  categoryid    uuid          REFERENCES category(categoryid) ON DELETE RESTRICT,
  price         numeric(18,2) NOT NULL DEFAULT 0 CHECK (price >= 0),
  validfrom     date,
  modifiedon    timestamptz   NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS product_number ON product (productnumber);
CREATE INDEX IF NOT EXISTS product_category ON product (categoryid);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['category', 'product'] LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I_touch ON %I', t, t);
    EXECUTE format('CREATE TRIGGER %I_touch BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION touch_modifiedon()', t, t);
  END LOOP;
END $$;
