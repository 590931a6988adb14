"""The `cdc` command line. Each command group lives in its own module and registers itself on `app`."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

import typer

from cdc.errors import CdcError, ConfigError
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


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def usage(message: str) -> NoReturn:
    """A command given the wrong arguments: one line, exit 2 (as for an option click refuses)."""
    fail(message, ConfigError.exit_code)


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
    """Every way a command ends is one line at most, with every secret the settings know redacted from it (and
    from every log line); a traceback only for a bug, and only with CDC_LOG_LEVEL=debug."""
    from pydantic import ValidationError

    from cdc import log
    from cdc.redaction import Redactor
    from cdc.settings import problems

    os.umask(0o077)  # what `cdc` writes (the stack's data, logs, password; progress files) is its owner's only
    try:
        s = settings()
    except ValidationError as exc:
        for line in problems(exc):
            typer.echo(f"error: {line}", err=True)
        sys.exit(ConfigError.exit_code)
    redact = Redactor.of(s)
    log.configure(s.log_format, s.log_level, redact=redact)
    _register()
    sys.exit(_run(redact, debug=s.log_level.lower() == "debug"))


# typer vendors click in recent versions: its exception classes, whichever click that is
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _run(redact: Callable[[str], str], *, debug: bool) -> int:
    """Run the command; its exit code. Every way it can fail is one line on stderr."""
    try:
        code = app(standalone_mode=False)
    except _USAGE_ERROR as exc:  # an option or argument refused: exit 2
        if type(exc).__name__ == "NoArgsIsHelpError":  # `cdc` alone: the help is printed already
            return exc.exit_code
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {redact(' '.join(exc.format_message().split()))}{where}", err=True)
        return exc.exit_code
    except _CLICK_ERROR as exc:
        typer.echo(f"error: {redact(' '.join(exc.format_message().split()))}", err=True)
        return exc.exit_code
    except typer.Abort:  # a question answered no, or Ctrl-D
        typer.echo("aborted", err=True)
        return 1
    except CdcError as exc:
        typer.echo(f"error: {redact(str(exc))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, still redacted
        if debug:
            typer.echo(redact("".join(traceback.format_exception(exc))), err=True)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        typer.echo(f"error: unexpected {type(exc).__name__}{': ' + redact(text) if text else ''} (a bug: "
                   "CDC_LOG_LEVEL=debug shows where; please report it)", err=True)
        return 1
    return code if isinstance(code, int) else 0
