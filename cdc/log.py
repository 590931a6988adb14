"""structlog set-up: readable console lines interactively, JSON lines in service mode."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from cdc.redaction import Redactor


def configure(fmt: str = "console", level: str = "info", *, redact: Redactor | None = None) -> None:
    """`redact`: every log line passes through it, its values before rendering and the rendered line after."""
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    redacting: list[structlog.types.Processor] = []
    if redact is not None:
        redacting = [lambda _logger, _name, event: redact.deep(event)]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *redacting,
            renderer,
            *redacting,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # aiokafka logs every refused connection as an error; our own components report the broker being
    # unreachable (with the retry) once per attempt instead.
    logging.getLogger("aiokafka.client").setLevel(logging.CRITICAL)


def get(**context: object) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger().bind(**context)
