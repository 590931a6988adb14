"""What a run reports its steps through (`Reporter`; the command line's displays in `cdc.cli.progress` implement
it), and the JSON form of jobs and reports.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from cdc.state.jobs import Job


class Reporter(Protocol):
    def note(self, message: str) -> None: ...

    def started(self, label: str, total: int) -> None: ...

    def update(self, label: str, *, replayed: int, applied: int) -> None: ...

    def finished(self, label: str, *, replayed: int, applied: int, outcome: str = "done") -> None: ...

    def close(self) -> None: ...


def plain(value: Any) -> Any:
    """JSON-able form of what jobs and reports hold."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return value


def job_json(job: Job) -> dict[str, Any]:
    """A job as `cdc jobs --json` prints it: its fields with the counters at the top level."""
    data = dataclasses.asdict(job)
    data.update(data.pop("counts"))
    return plain(data)

