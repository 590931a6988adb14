"""`cdc` commands: worker (not written yet)."""

from cdc.cli import app  # noqa: F401
