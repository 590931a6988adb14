-- Tracked offsets: the worker's own record of the next Kafka offset per partition, written in the same
-- transaction as the couplings and counters it produced.

-- name: load
SELECT topic, partition, next_offset FROM cdc.tracked_offsets
WHERE consumer_group = $1 AND topic = ANY($2::text[])

-- name: store
INSERT INTO cdc.tracked_offsets AS t (consumer_group, topic, partition, next_offset)
SELECT $1, u.topic, u.partition, u.next_offset
FROM unnest($2::text[], $3::int[], $4::bigint[]) AS u(topic, partition, next_offset)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
    next_offset = EXCLUDED.next_offset,
    updated_at = now()
WHERE EXCLUDED.next_offset > t.next_offset  -- only forward; a stale offset leaves the row untouched

-- name: create_missing
INSERT INTO cdc.tracked_offsets (consumer_group, topic, partition, next_offset)
SELECT $1, u.topic, u.partition, 0 FROM unnest($2::text[], $3::int[]) AS u(topic, partition)
ON CONFLICT (consumer_group, topic, partition) DO NOTHING

-- name: claim
-- Locks the tracking rows until the transaction ends: a worker that lost a partition in a rebalance and the one
-- that gained it never process the same records twice (the second waits, then sees the first one's offset).
SELECT t.topic, t.partition, t.next_offset
FROM cdc.tracked_offsets t
JOIN unnest($2::text[], $3::int[]) AS u(topic, partition) USING (topic, partition)
WHERE t.consumer_group = $1
ORDER BY t.topic, t.partition
FOR UPDATE OF t
