"""The `cdc` command line. Each command group lives in its own module and registers itself on `app`."""

from __future__ import annotations

import sys

import typer

from cdc.errors import CdcError
from cdc.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Keep an ERP and a CRM in sync through Kafka: capture, sync, orchestrate, monitor.")


def settings() -> Settings:
    """The settings of this invocation (built once, from CDC_* variables)."""
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


_settings: Settings | None = None


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _register() -> None:
    from cdc.cli import (  # noqa: F401  (each module adds its commands to `app`)
        capture,
        coupling,
        dashboard,
        demo,
        jobs,
        mappings,
        service,
        stack,
        status,
        sync,
        worker,
    )


def main() -> None:
    from cdc import log

    s = settings()
    log.configure(s.log_format, s.log_level)
    _register()
    try:
        app()
    except CdcError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
