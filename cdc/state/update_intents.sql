-- Update intents: one row per batch and mapping, announced before the batch writes into coupled records
-- (cdc/state/update_intents.py).

-- name: announce
INSERT INTO cdc.update_intents (mapping, source_system, entries) VALUES ($1, $2, $3::text::jsonb) RETURNING id

-- name: hold
-- In the announcing batch's own transaction: the row is gone when it commits, back (and free) if it dies.
DELETE FROM cdc.update_intents WHERE id = $1

-- name: any
SELECT EXISTS (SELECT 1 FROM cdc.update_intents)

-- name: dangling
-- Rows no live batch holds: batches that died between their writes and their commit. Oldest first.
SELECT id, mapping, source_system, entries::text AS entries FROM cdc.update_intents
ORDER BY id
FOR UPDATE SKIP LOCKED

-- name: settle
DELETE FROM cdc.update_intents WHERE id = ANY($1::bigint[])

-- name: restore_fingerprints
-- What the interrupted batches would have recorded about existing couplings, field by field, merged over the
-- stored fingerprints.
UPDATE cdc.couplings c SET
    erp_values = coalesce(c.erp_values, '{}'::jsonb) || u.erp_values::jsonb,
    crm_values = coalesce(c.crm_values, '{}'::jsonb) || u.crm_values::jsonb,
    erp_modified_on = coalesce(u.erp_modified_on, c.erp_modified_on),
    crm_modified_on = coalesce(u.crm_modified_on, c.crm_modified_on),
    erp_position = greatest(u.erp_position, c.erp_position),
    crm_position = greatest(u.crm_position, c.crm_position),
    updated_at = now()
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::bigint[],
            $9::bigint[])
     AS u(erp_key, crm_key, erp_values, crm_values, erp_modified_on, crm_modified_on, erp_position, crm_position)
WHERE c.mapping = $1 AND c.erp_key = u.erp_key AND c.crm_key = u.crm_key
