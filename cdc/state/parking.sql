-- Parked events: changes the worker could not apply yet (a missing partner, a retry), due again later.

-- name: park_many
INSERT INTO cdc.parked_events (mapping, source_system, source_key, event, reason, next_attempt_at, keep)
SELECT u.mapping, u.source_system, u.source_key, u.event::jsonb, u.reason, now() + $6::interval, u.keep
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $7::text[])
     AS u(mapping, source_system, source_key, event, reason, keep)
RETURNING id

-- name: due
-- Only the oldest parked change of each record (per-record order; the later ones wait behind it and would
-- otherwise fill the batch and starve other records). SKIP LOCKED: two retriers never take the same event.
SELECT * FROM cdc.parked_events p
WHERE p.next_attempt_at <= $1
  AND NOT EXISTS (SELECT 1 FROM cdc.parked_events e
                  WHERE e.mapping = p.mapping AND e.source_system = p.source_system
                    AND e.source_key = p.source_key AND e.id < p.id)
ORDER BY p.next_attempt_at, p.id
LIMIT $2
FOR UPDATE SKIP LOCKED

-- name: any_parked
SELECT EXISTS (SELECT 1 FROM cdc.parked_events WHERE mapping = $1 AND source_system = $2)

-- name: parked_keys
SELECT DISTINCT source_key FROM cdc.parked_events
WHERE mapping = $1 AND source_system = $2 AND source_key = ANY($3::text[])

-- name: release
DELETE FROM cdc.parked_events WHERE id = ANY($1::bigint[])

-- name: reschedule
UPDATE cdc.parked_events SET attempts = $2, next_attempt_at = $3, reason = coalesce($4, reason)
WHERE id = $1

-- name: count
SELECT count(*) FROM cdc.parked_events WHERE $1::text IS NULL OR mapping = $1

-- name: waiting
SELECT EXISTS (SELECT 1 FROM cdc.parked_events WHERE id = $1)

-- name: records
SELECT source_system, source_key, (array_agg(reason ORDER BY id))[1] AS reason
FROM cdc.parked_events WHERE mapping = $1
GROUP BY source_system, source_key
