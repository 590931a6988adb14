-- The demo ERP: records keyed by codes, a modified-at column maintained by the database.
-- Applied by `cdc demo setup`; idempotent.

CREATE OR REPLACE FUNCTION touch_modified_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.modified_at := clock_timestamp();
  RETURN NEW;
END $$;

CREATE TABLE IF NOT EXISTS currency (
  code          varchar(10)  PRIMARY KEY,
  description   varchar(50)  NOT NULL DEFAULT '',
  symbol        varchar(10)  NOT NULL DEFAULT '',
  exchange_rate numeric(18,6) NOT NULL DEFAULT 1,
  modified_at   timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS salesperson (
  code        varchar(20)  PRIMARY KEY,
  name        varchar(50)  NOT NULL DEFAULT '',
  email       varchar(80)  NOT NULL DEFAULT '',
  phone_no    varchar(30)  NOT NULL DEFAULT '',
  blocked     boolean      NOT NULL DEFAULT false,
  modified_at timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS unit_of_measure (
  code        varchar(10)  PRIMARY KEY,
  description varchar(50)  NOT NULL DEFAULT '',
  modified_at timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS customer (
  no                 varchar(20)  PRIMARY KEY,
  name               varchar(100) NOT NULL DEFAULT '',
  address            varchar(100) NOT NULL DEFAULT '',
  address_2          varchar(50)  NOT NULL DEFAULT '',
  city               varchar(30)  NOT NULL DEFAULT '',
  post_code          varchar(20)  NOT NULL DEFAULT '',
  county             varchar(30)  NOT NULL DEFAULT '',
  country_code       varchar(10)  NOT NULL DEFAULT '',
  phone_no           varchar(30)  NOT NULL DEFAULT '',
  email              varchar(80)  NOT NULL DEFAULT '',
  home_page          varchar(80)  NOT NULL DEFAULT '',
  salesperson_code   varchar(20)  REFERENCES salesperson(code) ON DELETE SET NULL,
  currency_code      varchar(10)  REFERENCES currency(code) ON DELETE SET NULL,
  payment_terms_code varchar(10)  NOT NULL DEFAULT '',
  credit_limit       numeric(18,2) NOT NULL DEFAULT 0,
  blocked            varchar(10)  NOT NULL DEFAULT '' CHECK (blocked IN ('', 'ship', 'invoice', 'all')),
  modified_at        timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS contact (
  no              varchar(20)  PRIMARY KEY,
  type            varchar(10)  NOT NULL DEFAULT 'person' CHECK (type IN ('person', 'company')),
  first_name      varchar(30)  NOT NULL DEFAULT '',
  middle_name     varchar(30)  NOT NULL DEFAULT '',
  surname         varchar(30)  NOT NULL DEFAULT '',
  job_title       varchar(30)  NOT NULL DEFAULT '',
  email           varchar(80)  NOT NULL DEFAULT '',
  phone_no        varchar(30)  NOT NULL DEFAULT '',
  mobile_phone_no varchar(30)  NOT NULL DEFAULT '',
  customer_no     varchar(20)  REFERENCES customer(no) ON DELETE SET NULL,
  modified_at     timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS resource (
  no                   varchar(20)  PRIMARY KEY,
  name                 varchar(50)  NOT NULL DEFAULT '',
  type                 varchar(10)  NOT NULL DEFAULT 'person' CHECK (type IN ('person', 'machine')),
  base_unit_of_measure varchar(10)  REFERENCES unit_of_measure(code),
  unit_price           numeric(18,2) NOT NULL DEFAULT 0,
  unit_cost            numeric(18,2) NOT NULL DEFAULT 0,
  blocked              boolean      NOT NULL DEFAULT false,
  modified_at          timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS item (
  no                   varchar(20)  PRIMARY KEY,
  description          varchar(100) NOT NULL DEFAULT '',
  base_unit_of_measure varchar(10)  REFERENCES unit_of_measure(code),
  unit_price           numeric(18,2) NOT NULL DEFAULT 0,
  unit_cost            numeric(18,2) NOT NULL DEFAULT 0,
  inventory            numeric(18,2) NOT NULL DEFAULT 0,
  blocked              boolean      NOT NULL DEFAULT false,
  modified_at          timestamptz  NOT NULL DEFAULT clock_timestamp()
);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['currency','salesperson','unit_of_measure','customer','contact','resource','item'] LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS touch_modified_at ON %I', t);
    EXECUTE format('CREATE TRIGGER touch_modified_at BEFORE INSERT OR UPDATE ON %I
                    FOR EACH ROW EXECUTE FUNCTION touch_modified_at()', t);
    EXECUTE format('ALTER TABLE %I REPLICA IDENTITY FULL', t);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (modified_at)', t || '_modified_at', t);
  END LOOP;
END $$;

CREATE INDEX IF NOT EXISTS contact_customer_no ON contact (customer_no);
CREATE INDEX IF NOT EXISTS customer_email ON customer (lower(email));
CREATE INDEX IF NOT EXISTS customer_name ON customer (lower(name));
CREATE INDEX IF NOT EXISTS contact_email ON contact (lower(email));
