-- A CRM's supplier side: users (who own suppliers), currencies and suppliers, keyed by UUIDs the CRM makes itself
-- (gen_random_uuid() defaults); a supplier may pay through another supplier. Idempotent.

CREATE OR REPLACE FUNCTION touch_modifiedon() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.modifiedon := clock_timestamp();
  RETURN NEW;
END $$;

CREATE TABLE IF NOT EXISTS systemuser (
  systemuserid         uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
  fullname             varchar(100) NOT NULL DEFAULT '',
  internalemailaddress varchar(100),
  isdisabled           boolean      NOT NULL DEFAULT false,
  modifiedon           timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS transactioncurrency (
  transactioncurrencyid uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  isocurrencycode       varchar(5)  NOT NULL DEFAULT '',
  currencyname          varchar(50) NOT NULL DEFAULT '',
  modifiedon            timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS supplier (
  supplierid            uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
  suppliernumber        varchar(20)  NOT NULL DEFAULT '',
  name                  varchar(160) NOT NULL DEFAULT '',
  emailaddress1         varchar(100),
  address1_country      varchar(80)  NOT NULL DEFAULT '',
  ownerid               uuid         REFERENCES systemuser(systemuserid) ON DELETE SET NULL,
  transactioncurrencyid uuid         REFERENCES transactioncurrency(transactioncurrencyid),
  paytosupplierid       uuid         REFERENCES supplier(supplierid) ON DELETE SET NULL,
  statecode             integer      NOT NULL DEFAULT 0,
  modifiedon            timestamptz  NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS supplier_email ON supplier (lower(emailaddress1));

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['systemuser', 'transactioncurrency', 'supplier'] LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I_touch ON %I', t, t);
    EXECUTE format('CREATE TRIGGER %I_touch BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION touch_modifiedon()', t, t);
  END LOOP;
END $$;
