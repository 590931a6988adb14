-- Bookkeeping of the migrations in cdc/state/migrations/.

-- name: lock
SELECT pg_advisory_lock($1::bigint)

-- name: unlock
SELECT pg_advisory_unlock($1::bigint)

-- name: create_bookkeeping
CREATE SCHEMA IF NOT EXISTS cdc;
CREATE TABLE IF NOT EXISTS cdc.schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: has_bookkeeping
SELECT to_regclass('cdc.schema_migrations') IS NOT NULL

-- name: applied_versions
SELECT version FROM cdc.schema_migrations ORDER BY version

-- name: record
INSERT INTO cdc.schema_migrations (version, name) VALUES ($1, $2)
