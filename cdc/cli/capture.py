"""`cdc` commands: capture (not written yet)."""

from cdc.cli import app  # noqa: F401
