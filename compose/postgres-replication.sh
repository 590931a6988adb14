#!/bin/sh
# Capture streams each system over a replication connection, which pg_hba.conf admits only by lines whose database
# field is `replication`: the image's own `host all all all scram-sha-256` does not match them. The role `cdc` is
# the image's superuser, so it may replicate (another role needs ALTER ROLE ... REPLICATION).
set -e
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
