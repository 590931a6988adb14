-- The three databases of the service; the demo schemas are applied by `cdc demo setup`.
CREATE DATABASE erp;
CREATE DATABASE crm;
CREATE DATABASE cdc_state;
