-- Couplings: one ERP record <-> one CRM record per mapping, with what was last synced.

-- name: fetch_by_erp_keys
SELECT * FROM cdc.couplings WHERE mapping = $1 AND erp_key = ANY($2::text[])

-- name: fetch_by_crm_keys
SELECT * FROM cdc.couplings WHERE mapping = $1 AND crm_key = ANY($2::text[])

-- name: partners_by_erp_keys
SELECT erp_key, crm_key FROM cdc.couplings WHERE mapping = $1 AND erp_key = ANY($2::text[])

-- name: partners_by_crm_keys
SELECT erp_key, crm_key FROM cdc.couplings WHERE mapping = $1 AND crm_key = ANY($2::text[])

-- name: partners_of_many
-- The partner of each (mapping, system, key), for many mappings and both systems in one statement (lookups).
SELECT c.mapping, 'erp' AS system, c.erp_key AS key, c.crm_key AS partner
FROM unnest($1::text[], $2::text[]) AS n(mapping, key) JOIN cdc.couplings c ON c.mapping = n.mapping AND c.erp_key = n.key
UNION ALL
SELECT c.mapping, 'crm', c.crm_key, c.erp_key
FROM unnest($3::text[], $4::text[]) AS n(mapping, key) JOIN cdc.couplings c ON c.mapping = n.mapping AND c.crm_key = n.key

-- name: update_many
-- The couplings that exist, overwritten (one UPDATE, HOT where the page has room: no index touched); the keys of
-- the ones updated come back, the rest are inserted by upsert_many.
UPDATE cdc.couplings AS c SET
    crm_key = u.crm_key,
    erp_values = u.erp_values::jsonb,
    crm_values = u.crm_values::jsonb,
    erp_modified_on = u.erp_modified_on,
    crm_modified_on = u.crm_modified_on,
    erp_position = u.erp_position,
    crm_position = u.crm_position,
    last_result_to_crm = coalesce(u.last_result_to_crm, c.last_result_to_crm),
    last_result_to_erp = coalesce(u.last_result_to_erp, c.last_result_to_erp),
    last_error = u.last_error,
    failure_count = u.failure_count,
    skipped = u.skipped,
    updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
            $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::int[], $14::boolean[])
     AS u(mapping, erp_key, crm_key, erp_values, crm_values, erp_modified_on, crm_modified_on, erp_position,
          crm_position, last_result_to_crm, last_result_to_erp, last_error, failure_count, skipped)
WHERE c.mapping = u.mapping AND c.erp_key = u.erp_key
RETURNING c.mapping, c.erp_key

-- name: upsert_many
INSERT INTO cdc.couplings AS c (
    mapping, erp_key, crm_key, erp_values, crm_values, erp_modified_on, crm_modified_on, erp_position,
    crm_position, last_result_to_crm, last_result_to_erp, last_error, failure_count, skipped)
SELECT u.mapping, u.erp_key, u.crm_key, u.erp_values::jsonb, u.crm_values::jsonb, u.erp_modified_on,
       u.crm_modified_on, u.erp_position, u.crm_position, u.last_result_to_crm, u.last_result_to_erp,
       u.last_error, u.failure_count, u.skipped
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
            $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::int[], $14::boolean[])
     AS u(mapping, erp_key, crm_key, erp_values, crm_values, erp_modified_on, crm_modified_on, erp_position,
          crm_position, last_result_to_crm, last_result_to_erp, last_error, failure_count, skipped)
ON CONFLICT (mapping, erp_key) DO UPDATE SET
    crm_key = EXCLUDED.crm_key,
    erp_values = EXCLUDED.erp_values,
    crm_values = EXCLUDED.crm_values,
    erp_modified_on = EXCLUDED.erp_modified_on,
    crm_modified_on = EXCLUDED.crm_modified_on,
    erp_position = EXCLUDED.erp_position,
    crm_position = EXCLUDED.crm_position,
    last_result_to_crm = coalesce(EXCLUDED.last_result_to_crm, c.last_result_to_crm),
    last_result_to_erp = coalesce(EXCLUDED.last_result_to_erp, c.last_result_to_erp),
    last_error = EXCLUDED.last_error,
    failure_count = EXCLUDED.failure_count,
    skipped = EXCLUDED.skipped,
    updated_at = now()

-- name: couple
INSERT INTO cdc.couplings (mapping, erp_key, crm_key) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
RETURNING *

-- name: uncouple_erp
DELETE FROM cdc.couplings WHERE mapping = $1 AND erp_key = $2

-- name: uncouple_crm
DELETE FROM cdc.couplings WHERE mapping = $1 AND crm_key = $2

-- name: uncouple_all
DELETE FROM cdc.couplings WHERE mapping = $1

-- name: count
SELECT count(*) FROM cdc.couplings WHERE mapping = $1

-- name: mark_failure
-- The same error as the previous failure (no success in between) makes the coupling skipped.
UPDATE cdc.couplings SET
    last_result_to_crm = CASE WHEN $3::text = 'to_crm' THEN 'failure' ELSE last_result_to_crm END,
    last_result_to_erp = CASE WHEN $3::text = 'to_erp' THEN 'failure' ELSE last_result_to_erp END,
    skipped = skipped OR (failure_count > 0 AND last_error IS NOT DISTINCT FROM $4::text),
    failure_count = failure_count + 1,
    last_error = $4,
    updated_at = now()
WHERE mapping = $1 AND erp_key = $2
RETURNING *

-- name: skip_erp
UPDATE cdc.couplings SET skipped = true, updated_at = now()
WHERE mapping = $1 AND erp_key = $2

-- name: skip_crm
UPDATE cdc.couplings SET skipped = true, updated_at = now()
WHERE mapping = $1 AND crm_key = $2

-- name: clear_skipped_erp
UPDATE cdc.couplings SET skipped = false, failure_count = 0, updated_at = now()
WHERE mapping = $1 AND ($2::text[] IS NULL OR erp_key = ANY($2::text[])) AND (skipped OR failure_count > 0)

-- name: clear_skipped_crm
UPDATE cdc.couplings SET skipped = false, failure_count = 0, updated_at = now()
WHERE mapping = $1 AND ($2::text[] IS NULL OR crm_key = ANY($2::text[])) AND (skipped OR failure_count > 0)

-- name: list_skipped
SELECT * FROM cdc.couplings
WHERE skipped AND ($1::text IS NULL OR mapping = $1)
ORDER BY mapping, updated_at DESC
LIMIT $2
