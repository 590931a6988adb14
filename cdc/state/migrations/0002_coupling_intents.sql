-- Coupling intents: what a batch is about to write, announced before the write. A creation holds the new
-- record's pre-allocated key, a match its partner's; every intent holds the coupling the batch will record (fingerprints, positions)
-- and the values it writes. Committed before the write, removed in the transaction that records the coupling:
-- one left behind by a crash tells the next attempt what was written and which records are partners
-- (docs/exactly-once.md). A record may hold one intent of each kind: the coupling a crashed batch created, and
-- what a later crashed batch wrote on it.
CREATE TABLE cdc.coupling_intents (
    mapping         text        NOT NULL,
    source_system   text        NOT NULL CHECK (source_system IN ('erp', 'crm')),
    source_key      text        NOT NULL,
    destination_key text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('create', 'match', 'update')),
    erp_values      jsonb       NOT NULL,
    crm_values      jsonb       NOT NULL,
    erp_modified_on timestamptz,
    crm_modified_on timestamptz,
    erp_position    bigint,
    crm_position    bigint,
    writes          jsonb       NOT NULL,
    job_id          uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mapping, source_system, source_key, kind)
);
CREATE INDEX coupling_intents_destination ON cdc.coupling_intents (mapping, source_system, destination_key);
-- Rows live for one batch: vacuumed often, so look-ups never wade through dead ones.
ALTER TABLE cdc.coupling_intents SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
                                      autovacuum_vacuum_cost_delay = 0);
