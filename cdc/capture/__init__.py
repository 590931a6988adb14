"""Capture: a PostgreSQL logical replication slot streamed, decoded and published to Kafka (docs/architecture.md)."""
