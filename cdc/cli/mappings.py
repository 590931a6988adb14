"""`cdc` commands: mappings (not written yet)."""

from cdc.cli import app  # noqa: F401
