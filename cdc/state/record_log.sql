-- Record log: the latest decisions about each record, for the dashboard's record lookup; kept to a bound.

-- name: append_many
INSERT INTO cdc.record_log (at, mapping, system, key, partner_key, event_id, op, decision, detail)
SELECT coalesce(u.at, now()), u.mapping, u.system, u.key, u.partner_key, u.event_id, u.op, u.decision, u.detail
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[])
     AS u(at, mapping, system, key, partner_key, event_id, op, decision, detail)

-- name: recent
SELECT * FROM cdc.record_log WHERE system = $1 AND key = $2 ORDER BY id DESC LIMIT $3

-- name: prune
-- Keep the newest $1 entries.
DELETE FROM cdc.record_log
WHERE id <= (SELECT id FROM cdc.record_log ORDER BY id DESC OFFSET $1 LIMIT 1)
