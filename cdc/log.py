"""structlog set-up: readable console lines interactively, JSON lines in service mode.

The one way to log (docs/architecture.md, "Logging"): each module that logs has, at module level,

    log = structlog.get_logger(component="…")  # the component (if the module has one) as an initial value

and adds the rest of the context per call (`log.info("…", mapping=…)`) or through `log.bind(…)` inside a function.
`structlog.get_logger` returns a lazy proxy: every call reads the configuration current at that moment, so a logger
made at import still writes what `configure` asked for when that runs later. A logger `.bind()`-ed at import would
keep the processors of the moment it was made (console lines on stdout in service mode);
tests/unit/test_log_style.py checks the tree for it.
"""

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
