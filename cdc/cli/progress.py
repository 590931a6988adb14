"""How a run shows itself: a live display per step (replayed / applied / total, rate, ETA) on a terminal, one
line per step otherwise, nothing in JSON mode.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cdc.orchestrator.progress import Reporter


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rec/s", style="progress.data.speed")


class _Counts(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{int(task.total):,}"
        return Text(f"replayed {task.fields.get('replayed', 0):,} · applied {int(task.completed):,} / {total}")


class LiveReporter:
    """A rich progress display (stderr), one bar per step; `completed` counts applied records."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), _Counts(), _Rate(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self.console, transient=False, speed_estimate_period=10)
        self.tasks: dict[str, TaskID] = {}
        self.progress.start()

    def note(self, message: str) -> None:
        self.progress.console.print(message)

    def started(self, label: str, total: int) -> None:
        self.tasks[label] = self.progress.add_task(label, total=max(total, 0), replayed=0)

    def update(self, label: str, *, replayed: int, applied: int) -> None:
        self.progress.update(self.tasks[label], completed=applied, replayed=replayed)

    def finished(self, label: str, *, replayed: int, applied: int, outcome: str = "done") -> None:
        task = self.tasks[label]
        description = label if outcome == "done" else f"{label} ({outcome})"
        self.progress.update(task, completed=applied, replayed=replayed, description=description)
        self.progress.stop_task(task)

    def close(self) -> None:
        self.progress.stop()


class LineReporter:
    """One line per step on stderr (no terminal): what a log file or CI output can hold."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.begun: dict[str, float] = {}
        self.totals: dict[str, int] = {}

    def note(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def started(self, label: str, total: int) -> None:
        self.begun[label] = time.monotonic()
        self.totals[label] = total

    def update(self, label: str, *, replayed: int, applied: int) -> None:
        pass

    def finished(self, label: str, *, replayed: int, applied: int, outcome: str = "done") -> None:
        seconds = time.monotonic() - self.begun.get(label, time.monotonic())
        rate = f", {replayed / seconds:,.0f} rec/s" if seconds > 0 and replayed else ""
        self.note(f"{label}: replayed {replayed:,} of {self.totals.get(label, replayed):,}, applied {applied:,} "
                  f"in {seconds:.1f} s{rate}" + ("" if outcome == "done" else f" ({outcome})"))

    def close(self) -> None:
        pass


class QuietReporter(LineReporter):
    """JSON mode: notes go to stderr, progress nowhere."""

    def finished(self, label: str, *, replayed: int, applied: int, outcome: str = "done") -> None:
        pass


def reporter(as_json: bool) -> Reporter:
    if as_json:
        return QuietReporter()
    if sys.stderr.isatty():
        return LiveReporter()
    return LineReporter()
