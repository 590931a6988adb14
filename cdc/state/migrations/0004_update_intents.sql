-- Update intents: what a batch is about to write into records that are already coupled, announced as one row per
-- batch and mapping (not one per record), committed before the writes. The batch's own state transaction deletes
-- its row at once, which holds the row locked until it commits (and the row gone) or dies (and the row back): a
-- row nobody holds is a batch that died between its writes and its commit. The next batch recovers every such row,
-- oldest first, field by field (consumers/recovery.py): a later interrupted batch no longer overwrites what an
-- earlier one wrote, as the per-record row of kind 'update' in cdc.coupling_intents did.
CREATE TABLE cdc.update_intents (
    id         bigserial   PRIMARY KEY,
    mapping    text        NOT NULL,
    source_system text     NOT NULL CHECK (source_system IN ('erp', 'crm')),
    entries    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE cdc.update_intents SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                                    autovacuum_vacuum_cost_delay = 0);

INSERT INTO cdc.update_intents (mapping, source_system, entries, created_at)
SELECT mapping, source_system,
       jsonb_build_array(jsonb_build_object(
           'erp_key', CASE WHEN source_system = 'erp' THEN source_key ELSE destination_key END,
           'crm_key', CASE WHEN source_system = 'crm' THEN source_key ELSE destination_key END,
           'writes', writes, 'erp_values', erp_values, 'crm_values', crm_values,
           'erp_modified_on', erp_modified_on, 'crm_modified_on', crm_modified_on,
           'erp_position', erp_position, 'crm_position', crm_position)),
       created_at
FROM cdc.coupling_intents WHERE kind = 'update' ORDER BY created_at;
DELETE FROM cdc.coupling_intents WHERE kind = 'update';
ALTER TABLE cdc.coupling_intents DROP CONSTRAINT coupling_intents_kind_check;
ALTER TABLE cdc.coupling_intents ADD CONSTRAINT coupling_intents_kind_check CHECK (kind IN ('create', 'match'));
