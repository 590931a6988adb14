-- Coupling intents: creations announced before they are written (cdc/state/intents.py).

-- name: announce
INSERT INTO cdc.coupling_intents AS i (
    mapping, source_system, source_key, destination_key, kind, erp_values, crm_values, erp_modified_on,
    crm_modified_on, erp_position, crm_position, writes, job_id)
SELECT $1, $2, u.source_key, u.destination_key, u.kind, u.erp_values::jsonb, u.crm_values::jsonb,
       u.erp_modified_on, u.crm_modified_on, u.erp_position, u.crm_position, u.writes::jsonb, u.job_id
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[],
            $10::bigint[], $11::bigint[], $12::text[], $13::uuid[])
     AS u(source_key, destination_key, kind, erp_values, crm_values, erp_modified_on, crm_modified_on,
          erp_position, crm_position, writes, job_id)
ON CONFLICT (mapping, source_system, source_key, kind) DO UPDATE SET
    destination_key = EXCLUDED.destination_key,
    writes = EXCLUDED.writes,
    erp_values = EXCLUDED.erp_values,
    crm_values = EXCLUDED.crm_values,
    erp_modified_on = EXCLUDED.erp_modified_on,
    crm_modified_on = EXCLUDED.crm_modified_on,
    erp_position = EXCLUDED.erp_position,
    crm_position = EXCLUDED.crm_position,
    job_id = EXCLUDED.job_id,
    created_at = now()

-- name: couplings_by_source
-- Intents that create a coupling (a creation, a match), announced by these records.
SELECT * FROM cdc.coupling_intents
WHERE mapping = $1 AND source_system = $2 AND source_key = ANY($3::text[])

-- name: couplings_by_destination
-- Intents that create a coupling with these records as the partner.
SELECT * FROM cdc.coupling_intents
WHERE mapping = $1 AND source_system = $2 AND destination_key = ANY($3::text[])

-- name: forget
DELETE FROM cdc.coupling_intents WHERE mapping = $1 AND source_system = $2 AND source_key = ANY($3::text[])

-- name: taken_erp
-- One statement, one snapshot: a record is coupled, or announced as being created, never neither in between
-- (the intent is removed in the transaction that records the coupling).
SELECT erp_key AS key FROM cdc.couplings WHERE mapping = $1 AND erp_key = ANY($2::text[])
UNION
SELECT destination_key FROM cdc.coupling_intents
WHERE mapping = $1 AND source_system = 'crm' AND destination_key = ANY($2::text[])

-- name: taken_crm
SELECT crm_key AS key FROM cdc.couplings WHERE mapping = $1 AND crm_key = ANY($2::text[])
UNION
SELECT destination_key FROM cdc.coupling_intents
WHERE mapping = $1 AND source_system = 'erp' AND destination_key = ANY($2::text[])

-- name: exist
SELECT EXISTS (SELECT 1 FROM cdc.coupling_intents)
