-- Jobs: one row per sync, coupling or replay job, and one per live window of the worker.

-- name: start
INSERT INTO cdc.jobs (mapping, kind, direction, run_id, message)
VALUES ($1, $2, $3, $4, $5)
RETURNING *

-- name: live
-- xmax = 0 only on a freshly inserted row: the caller then closes earlier windows.
INSERT INTO cdc.jobs AS j (mapping, kind, direction, window_start, started_at)
VALUES ($1, 'live', $2, $3, $4)
ON CONFLICT (mapping, direction, window_start) WHERE kind = 'live'
DO UPDATE SET status = j.status
RETURNING id, (xmax = 0) AS inserted

-- name: count_live
-- The live job's counters incremented, the job inserted if its window is new (xmax = 0: then the caller closes
-- earlier windows): one statement where live + add_counts are two.
INSERT INTO cdc.jobs AS j (mapping, kind, direction, window_start, started_at, inserted, modified, deleted,
                           unchanged, skipped, failed, coupled, uncoupled)
VALUES ($1, 'live', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (mapping, direction, window_start) WHERE kind = 'live'
DO UPDATE SET inserted = j.inserted + EXCLUDED.inserted, modified = j.modified + EXCLUDED.modified,
    deleted = j.deleted + EXCLUDED.deleted, unchanged = j.unchanged + EXCLUDED.unchanged,
    skipped = j.skipped + EXCLUDED.skipped, failed = j.failed + EXCLUDED.failed,
    coupled = j.coupled + EXCLUDED.coupled, uncoupled = j.uncoupled + EXCLUDED.uncoupled
RETURNING id, (xmax = 0) AS inserted

-- name: close_live_windows
UPDATE cdc.jobs SET status = 'succeeded', finished_at = window_start + make_interval(secs => $4)
WHERE kind = 'live' AND mapping = $1 AND direction = $2 AND window_start < $3 AND status = 'running'

-- name: add_counts
UPDATE cdc.jobs SET
    inserted = inserted + $2, modified = modified + $3, deleted = deleted + $4, unchanged = unchanged + $5,
    skipped = skipped + $6, failed = failed + $7, coupled = coupled + $8, uncoupled = uncoupled + $9
WHERE id = $1

-- name: finish
UPDATE cdc.jobs SET status = $2, finished_at = now(), message = coalesce($3, message)
WHERE id = $1 AND status = 'running'

-- name: list
SELECT * FROM cdc.jobs
WHERE ($1::text IS NULL OR mapping = $1) AND ($2::text IS NULL OR kind = $2)
ORDER BY started_at DESC, id
LIMIT $3

-- name: by_id_range
SELECT * FROM cdc.jobs WHERE id BETWEEN $1 AND $2 ORDER BY id LIMIT 2
