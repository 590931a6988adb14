-- Job errors: what failed for which record, with the change event to retry.

-- name: record
-- A repeat of an open (or parked) error for the same record counts an occurrence and keeps the newest job, state,
-- detail and event.
INSERT INTO cdc.job_errors AS e (job_id, mapping, source_system, source_key, destination_system,
                                 destination_key, message, detail, event, state, waiting_for)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, $11)
ON CONFLICT (mapping, source_system, source_key, md5(message)) WHERE state IN ('open', 'parked')
DO UPDATE SET
    occurrences = e.occurrences + 1,
    state = EXCLUDED.state,
    waiting_for = EXCLUDED.waiting_for,
    job_id = coalesce(EXCLUDED.job_id, e.job_id),
    destination_system = coalesce(EXCLUDED.destination_system, e.destination_system),
    destination_key = coalesce(EXCLUDED.destination_key, e.destination_key),
    detail = coalesce(EXCLUDED.detail, e.detail),
    event = coalesce(EXCLUDED.event, e.event),
    updated_at = now()
RETURNING *

-- name: list
-- $1: open and parked only; $5: one state only. A parked error shows how often its record's oldest waiting change
-- was tried, when it is tried next, and how many changes of the record wait.
SELECT e.*, p.attempts, p.next_attempt_at, p.waiting
FROM cdc.job_errors e
LEFT JOIN LATERAL (
    SELECT (array_agg(q.attempts ORDER BY q.id))[1] AS attempts,
           (array_agg(q.next_attempt_at ORDER BY q.id))[1] AS next_attempt_at, count(*) AS waiting
    FROM cdc.parked_events q
    WHERE q.mapping = e.mapping AND q.source_system = e.source_system AND q.source_key = e.source_key
) p ON e.state = 'parked'
WHERE (NOT $1::boolean OR e.state IN ('open', 'parked'))
  AND ($2::text IS NULL OR e.mapping = $2)
  AND ($3::uuid IS NULL OR e.job_id = $3)
  AND ($5::text IS NULL OR e.state = $5)
ORDER BY e.updated_at DESC, e.id DESC
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

-- name: counts
SELECT state, count(*) AS n FROM cdc.job_errors WHERE state IN ('open', 'parked') GROUP BY state

-- name: close
-- Errors of these records in one of the states $4 are settled: their record synced since ('resolved').
UPDATE cdc.job_errors SET state = 'resolved', updated_at = now()
WHERE mapping = $1 AND source_system = $2 AND source_key = ANY($3::text[]) AND state = ANY($4::text[])

-- name: record_conflict
-- One open conflict per coupled pair (on its ERP record), whichever side's event found it. A conflict found again
-- keeps the job that counted it and takes the newest message (the competing values may have changed); `new` says
-- whether this opened it.
INSERT INTO cdc.job_errors AS e (job_id, mapping, source_system, source_key, destination_system, destination_key,
                                 message, detail, event, state, kind)
VALUES ($1, $2, 'erp', $3, 'crm', $4, $5, $6, $7::text::jsonb, 'open', 'conflict')
ON CONFLICT (mapping, source_key) WHERE kind = 'conflict' AND state IN ('open', 'parked')
DO UPDATE SET
    occurrences = e.occurrences + 1,
    destination_key = EXCLUDED.destination_key,
    message = EXCLUDED.message,
    detail = EXCLUDED.detail,
    event = coalesce(EXCLUDED.event, e.event),
    updated_at = now()
RETURNING *, (xmax = 0) AS new

-- name: settle
-- Records of one mapping that synced cleanly: their open and parked errors ($2 ERP keys, $3 CRM keys) and their
-- pairs' conflicts ($4 ERP keys) are settled, in one statement. The literal state predicates let the partial
-- indexes answer the usual case, nothing to settle, without touching the table.
WITH failures AS (
    UPDATE cdc.job_errors SET state = 'resolved', updated_at = now()
    WHERE mapping = $1 AND state IN ('open', 'parked')
      AND ((source_system = 'erp' AND source_key = ANY($2::text[]))
           OR (source_system = 'crm' AND source_key = ANY($3::text[])))
    RETURNING 1
), conflicts AS (
    UPDATE cdc.job_errors SET state = 'resolved', updated_at = now()
    WHERE kind = 'conflict' AND state IN ('open', 'parked') AND mapping = $1 AND source_key = ANY($4::text[])
    RETURNING 1
)
SELECT (SELECT count(*) FROM failures) + (SELECT count(*) FROM conflicts)

-- name: requeue_waiting
-- Records whose open error waits for one of these lookups ('MAPPING:system:key'), just coupled: their stored
-- change is decided again, due now (an error that still cannot sync is recorded again; one that syncs resolves).
INSERT INTO cdc.parked_events (mapping, source_system, source_key, event, reason, next_attempt_at)
SELECT e.mapping, e.source_system, e.source_key, e.event, 'a lookup it waited for was coupled: decided again', now()
FROM cdc.job_errors e
WHERE e.state = 'open' AND e.waiting_for && $1::text[] AND e.event IS NOT NULL
RETURNING id
