"""libpq's own connection-string parser (PQconninfoParse, through psycopg2's `parse_dsn`): the reference
`cdc.dsn` is checked against."""

from __future__ import annotations

import psycopg2
import psycopg2.extensions


def conninfo_parse(text: str) -> dict[str, str] | None:
    """The keywords libpq reads from `text`, or None when it refuses it."""
    try:
        return psycopg2.extensions.parse_dsn(text)
    except psycopg2.ProgrammingError:
        return None
