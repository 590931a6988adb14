"""The console every command prints its tables through.

On a terminal: the terminal's width. In a pipe or a log (no TTY), rich would fall back to 80 columns and wrap
every long cell (a `cdc errors` message about ten characters a line); there the width is unbounded, so each table
is as wide as its content and each row stays one line that `grep` and `cut` can read. `--json` is the form for
machines.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

UNBOUNDED = 1_000_000
"""The width of a console that is not a terminal: wider than any table's content."""


def console(*, stderr: bool = False, file: TextIO | None = None) -> Console:
    stream = file or (sys.stderr if stderr else sys.stdout)
    if _is_terminal(stream):
        return Console(file=stream)
    return Console(file=stream, width=UNBOUNDED)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
