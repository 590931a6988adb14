"""What a running capture last did, kept in a small JSON file per slot under `CDC_HOME/capture/` so `cdc status`
(another process) and the dashboard can read it. The slot itself (pg_replication_slots) is the authority on the
position; this file adds the times and counters PostgreSQL does not keep."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from cdc.settings import Settings


@dataclass(frozen=True)
class Progress:
    system: str
    slot: str
    pid: int = field(default_factory=os.getpid)
    updated_at: float = 0.0  # Unix seconds; refreshed at least every second while capture runs
    published_lsn: int | None = None  # where the slot was last advanced to
    published_at: float | None = None  # when events were last acknowledged and the slot advanced past them
    last_commit_at: float | None = None  # commit time of the last transaction published
    pending_since: float | None = None  # commit time of the oldest transaction read but not yet advanced past
    caught_up: bool = False  # the last read found less than a full batch: nothing older was waiting
    events: int = 0  # published since this capture started
    transactions: int = 0
    skipped_transactions: int = 0  # our appliers' writes, not published
    stopped: bool = False  # written by a capture that stopped cleanly

    def touched(self, **changes: object) -> Progress:
        return replace(self, updated_at=time.time(), **changes)


def progress_path(settings: Settings, slot: str) -> Path:
    return settings.home / "capture" / f"{slot}.json"


def write_progress(path: Path, progress: Progress) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(progress)), encoding="utf-8")
    os.replace(tmp, path)


def read_progress(path: Path) -> Progress | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Progress(**data)
    except (OSError, ValueError, TypeError):
        return None
