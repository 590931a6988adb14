"""The embedded default: a local PostgreSQL cluster and a local Kafka broker, started without Docker."""
