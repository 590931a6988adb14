"""The state database (schema `cdc`): migrations and one store module per concept.

Every store function takes an asyncpg connection, so the caller decides the transaction.
"""
