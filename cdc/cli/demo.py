"""`cdc` commands: demo (not written yet)."""

from cdc.cli import app  # noqa: F401
