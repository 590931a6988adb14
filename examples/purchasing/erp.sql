-- An ERP's purchasing side: purchasers, currencies and vendors. Vendors and purchasers are numbered by the ERP's
-- own number series (V000001, P0001: the key column's default), a vendor may pay through another vendor (a
-- hierarchy). A schema pair that is not the demo's, used by the mapping-language tests and as the worked example
-- of docs/mappings.md. Idempotent.

CREATE OR REPLACE FUNCTION touch_modified_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.modified_at := clock_timestamp();
  RETURN NEW;
END $$;

CREATE SEQUENCE IF NOT EXISTS purchaser_no;
CREATE TABLE IF NOT EXISTS purchaser (
  code        varchar(10)  PRIMARY KEY DEFAULT 'P' || lpad(nextval('purchaser_no')::text, 4, '0'),
  name        varchar(50)  NOT NULL DEFAULT '',
  email       varchar(80),
  modified_at timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS currency (
  code        varchar(10)  PRIMARY KEY,
  description varchar(30)  NOT NULL DEFAULT '',
  modified_at timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE SEQUENCE IF NOT EXISTS vendor_no;
CREATE TABLE IF NOT EXISTS vendor (
  no               varchar(20)  PRIMARY KEY DEFAULT 'V' || lpad(nextval('vendor_no')::text, 6, '0'),
  name             varchar(100) NOT NULL DEFAULT '',
  email            varchar(80),
  country_code     varchar(10)  NOT NULL DEFAULT '',
  purchaser_code   varchar(10)  REFERENCES purchaser(code) ON DELETE SET NULL,
  currency_code    varchar(10)  REFERENCES currency(code),
  pay_to_vendor_no varchar(20)  REFERENCES vendor(no) ON DELETE SET NULL,
  blocked          boolean      NOT NULL DEFAULT false,
  modified_at      timestamptz  NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS vendor_email ON vendor (lower(email));

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['purchaser', 'currency', 'vendor'] LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I_touch ON %I', t, t);
    EXECUTE format('CREATE TRIGGER %I_touch BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION touch_modified_at()', t, t);
  END LOOP;
END $$;
