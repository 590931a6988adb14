-- Coupling intents: a record the worker is about to create in the other system, with its pre-allocated key and
-- the coupling it would record, committed before the create is written and removed in the transaction that
-- records the coupling. One left behind by a crash tells the next attempt which destination record belongs to
-- which source record, as synced (docs/exactly-once.md).
CREATE TABLE cdc.coupling_intents (
    mapping         text        NOT NULL,
    source_system   text        NOT NULL CHECK (source_system IN ('erp', 'crm')),
    source_key      text        NOT NULL,
    destination_key text        NOT NULL,
    erp_values      jsonb       NOT NULL,
    crm_values      jsonb       NOT NULL,
    erp_modified_on timestamptz,
    crm_modified_on timestamptz,
    erp_position    bigint,
    crm_position    bigint,
    job_id          uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mapping, source_system, source_key)
);
CREATE INDEX coupling_intents_destination ON cdc.coupling_intents (mapping, source_system, destination_key);
