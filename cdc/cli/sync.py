"""`cdc` commands: sync (not written yet)."""

from cdc.cli import app  # noqa: F401
