-- The demo CRM: records keyed by UUIDs, a modified-on column maintained by the database.
-- Applied by `cdc demo setup`; idempotent.

CREATE OR REPLACE FUNCTION touch_modifiedon() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.modifiedon := clock_timestamp();
  RETURN NEW;
END $$;

CREATE TABLE IF NOT EXISTS transactioncurrency (
  transactioncurrencyid uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
  isocurrencycode       varchar(5)   NOT NULL UNIQUE,
  currencyname          varchar(100) NOT NULL DEFAULT '',
  currencysymbol        varchar(10)  NOT NULL DEFAULT '',
  exchangerate          numeric(23,10) NOT NULL DEFAULT 1,
  statecode             integer      NOT NULL DEFAULT 0,
  modifiedon            timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS systemuser (
  systemuserid         uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
  fullname             varchar(200) NOT NULL DEFAULT '',
  internalemailaddress varchar(100) NOT NULL DEFAULT '',
  mobilephone          varchar(64)  NOT NULL DEFAULT '',
  isdisabled           boolean      NOT NULL DEFAULT false,
  islicensed           boolean      NOT NULL DEFAULT true,
  isintegrationuser    boolean      NOT NULL DEFAULT false,
  modifiedon           timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS uomschedule (
  uomscheduleid uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
  name          varchar(200) NOT NULL,
  description   varchar(200) NOT NULL DEFAULT '',
  statecode     integer      NOT NULL DEFAULT 0,
  modifiedon    timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS account (
  accountid             uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
  accountnumber         varchar(20)  NOT NULL DEFAULT '',
  name                  varchar(160) NOT NULL DEFAULT '',
  address1_line1        varchar(250) NOT NULL DEFAULT '',
  address1_line2        varchar(250) NOT NULL DEFAULT '',
  address1_city         varchar(80)  NOT NULL DEFAULT '',
  address1_postalcode   varchar(20)  NOT NULL DEFAULT '',
  address1_county       varchar(50)  NOT NULL DEFAULT '',
  address1_country      varchar(80)  NOT NULL DEFAULT '',
  telephone1            varchar(50)  NOT NULL DEFAULT '',
  emailaddress1         varchar(100) NOT NULL DEFAULT '',
  websiteurl            varchar(200) NOT NULL DEFAULT '',
  ownerid               uuid         REFERENCES systemuser(systemuserid) ON DELETE SET NULL,
  transactioncurrencyid uuid         REFERENCES transactioncurrency(transactioncurrencyid) ON DELETE SET NULL,
  paymenttermscode      integer,
  creditlimit           numeric(19,4) NOT NULL DEFAULT 0,
  customertypecode      integer      NOT NULL DEFAULT 3,
  statecode             integer      NOT NULL DEFAULT 0,
  modifiedon            timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS contact (
  contactid        uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
  firstname        varchar(50)  NOT NULL DEFAULT '',
  middlename       varchar(50)  NOT NULL DEFAULT '',
  lastname         varchar(50)  NOT NULL DEFAULT '',
  jobtitle         varchar(100) NOT NULL DEFAULT '',
  emailaddress1    varchar(100) NOT NULL DEFAULT '',
  telephone1       varchar(50)  NOT NULL DEFAULT '',
  mobilephone      varchar(50)  NOT NULL DEFAULT '',
  parentcustomerid uuid         REFERENCES account(accountid) ON DELETE SET NULL,
  statecode        integer      NOT NULL DEFAULT 0,
  modifiedon       timestamptz  NOT NULL DEFAULT clock_timestamp()
);

-- producttypecode: 1 sales inventory, 2 miscellaneous charges, 3 services, 4 flat fees
CREATE TABLE IF NOT EXISTS product (
  productid            uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
  productnumber        varchar(100) NOT NULL DEFAULT '',
  name                 varchar(100) NOT NULL DEFAULT '',
  producttypecode      integer      NOT NULL DEFAULT 1,
  defaultuomscheduleid uuid         REFERENCES uomschedule(uomscheduleid),
  price                numeric(19,4) NOT NULL DEFAULT 0,
  standardcost         numeric(19,4) NOT NULL DEFAULT 0,
  currentcost          numeric(19,4) NOT NULL DEFAULT 0,
  statecode            integer      NOT NULL DEFAULT 0,
  modifiedon           timestamptz  NOT NULL DEFAULT clock_timestamp()
);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['transactioncurrency','systemuser','uomschedule','account','contact','product'] LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS touch_modifiedon ON %I', t);
    EXECUTE format('CREATE TRIGGER touch_modifiedon BEFORE INSERT OR UPDATE ON %I
                    FOR EACH ROW EXECUTE FUNCTION touch_modifiedon()', t);
    EXECUTE format('ALTER TABLE %I REPLICA IDENTITY FULL', t);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (modifiedon)', t || '_modifiedon', t);
  END LOOP;
END $$;

CREATE INDEX IF NOT EXISTS contact_parentcustomerid ON contact (parentcustomerid);
CREATE INDEX IF NOT EXISTS account_email ON account (lower(emailaddress1));
CREATE INDEX IF NOT EXISTS account_name ON account (lower(name));
CREATE INDEX IF NOT EXISTS product_number ON product (productnumber);
CREATE INDEX IF NOT EXISTS contact_email ON contact (lower(emailaddress1));
