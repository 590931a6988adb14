-- Job errors: what failed for which record, with the change event to retry.

-- name: record
-- A repeat of an open (or parked) error for the same record counts an occurrence and keeps the newest job, state,
-- detail and event.
INSERT INTO cdc.job_errors AS e (job_id, mapping, source_system, source_key, destination_system,
                                 destination_key, message, detail, event, state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10)
ON CONFLICT (mapping, source_system, source_key, md5(message)) WHERE state IN ('open', 'parked')
DO UPDATE SET
    occurrences = e.occurrences + 1,
    state = EXCLUDED.state,
    job_id = coalesce(EXCLUDED.job_id, e.job_id),
    destination_system = coalesce(EXCLUDED.destination_system, e.destination_system),
    destination_key = coalesce(EXCLUDED.destination_key, e.destination_key),
    detail = coalesce(EXCLUDED.detail, e.detail),
    event = coalesce(EXCLUDED.event, e.event),
    updated_at = now()
RETURNING *

-- name: list
SELECT * FROM cdc.job_errors
WHERE (NOT $1::boolean OR state IN ('open', 'parked'))
  AND ($2::text IS NULL OR mapping = $2)
  AND ($3::uuid IS NULL OR job_id = $3)
ORDER BY updated_at DESC, id DESC
LIMIT $4

-- name: get
SELECT * FROM cdc.job_errors WHERE id = $1

-- name: open_ids
SELECT id FROM cdc.job_errors WHERE state = 'open' AND ($1::text IS NULL OR mapping = $1) ORDER BY id

-- name: mark
UPDATE cdc.job_errors SET state = $2, updated_at = now()
WHERE id = ANY($1::bigint[])
RETURNING *

-- name: purge
DELETE FROM cdc.job_errors WHERE updated_at < now() - $1::interval

-- name: open_count
SELECT count(*) FROM cdc.job_errors WHERE state = 'open'

-- name: any_unsettled
SELECT EXISTS (SELECT 1 FROM cdc.job_errors
               WHERE mapping = $1 AND source_system = $2 AND state IN ('open', 'parked'))

-- name: close
-- Errors of these records in one of the states $4 are settled: their record synced since ('resolved').
UPDATE cdc.job_errors SET state = 'resolved', updated_at = now()
WHERE mapping = $1 AND source_system = $2 AND source_key = ANY($3::text[]) AND state = ANY($4::text[])
