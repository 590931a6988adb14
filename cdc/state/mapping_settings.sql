-- Runtime settings of each mapping that the mapping file does not own: the "only coupled" override,
-- the watermarks of "sync modified" and when the mapping last synced.

-- name: sync_only_coupled_overrides
SELECT mapping, sync_only_coupled FROM cdc.mapping_settings WHERE sync_only_coupled IS NOT NULL

-- name: set_sync_only_coupled
INSERT INTO cdc.mapping_settings AS s (mapping, sync_only_coupled)
SELECT name, $2::boolean FROM unnest($1::text[]) AS name
ON CONFLICT (mapping) DO UPDATE SET sync_only_coupled = EXCLUDED.sync_only_coupled, updated_at = now()

-- name: watermarks
SELECT erp_watermark, crm_watermark FROM cdc.mapping_settings WHERE mapping = $1

-- name: advance_watermark
-- GREATEST ignores NULL: the other side's watermark (NULL here) stays as it is.
INSERT INTO cdc.mapping_settings AS s (mapping, erp_watermark, crm_watermark)
VALUES ($1, CASE WHEN $2::text = 'erp' THEN $3::timestamptz END, CASE WHEN $2::text = 'crm' THEN $3::timestamptz END)
ON CONFLICT (mapping) DO UPDATE SET
    erp_watermark = GREATEST(s.erp_watermark, EXCLUDED.erp_watermark),
    crm_watermark = GREATEST(s.crm_watermark, EXCLUDED.crm_watermark),
    updated_at = now()
RETURNING CASE WHEN $2::text = 'erp' THEN erp_watermark ELSE crm_watermark END

-- name: mark_synced
INSERT INTO cdc.mapping_settings AS s (mapping, last_synced_at) VALUES ($1, $2)
ON CONFLICT (mapping) DO UPDATE SET
    last_synced_at = GREATEST(s.last_synced_at, EXCLUDED.last_synced_at), updated_at = now()

-- name: fetch_all
SELECT * FROM cdc.mapping_settings ORDER BY mapping
