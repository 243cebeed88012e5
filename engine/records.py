"""What readers of the task store get: frozen dataclasses, and how a task prints as JSON.

Kept apart from engine.store (SQLAlchemy) so the quick read path (engine.store_read, stdlib sqlite3)
and `drs task list/show` build the very same records without importing the ORM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from engine.spec import FlowControl, TaskSpec, TimeWindow
from engine.status import Status


@dataclass(frozen=True)
class Checkpoint:
    binlog_file: str | None = None
    binlog_pos: int | None = None
    gtid: str | None = None

    def as_dict(self) -> dict[str, Any] | None:
        if self.binlog_file is None:
            return None
        return {"binlog_file": self.binlog_file, "binlog_pos": self.binlog_pos, "gtid": self.gtid}


@dataclass(frozen=True)
class DrLogEntry:
    time: datetime
    level: str
    component: str
    message: str


@dataclass(frozen=True)
class TaskRecord:
    id: int
    spec: TaskSpec  # passwords are empty Secrets here; engine.secrets fills them in
    status: Status
    phase: str
    progress_percent: float
    rows_copied: int
    rows_total: int
    bytes_copied: int
    delay_seconds: float | None
    events_per_second: float | None
    last_error: str | None
    control_request: str | None
    runner_pid: int | None
    runner_heartbeat: datetime | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    extra: dict[str, Any] = field(default_factory=dict)
    # the store's change counter for this row (schema 3): bumped by SQLite triggers on every write to the
    # task, its checkpoint or its compare runs, so a reader can tell which rows changed since it last looked
    change_seq: int = field(default=0, compare=False)

    @property
    def name(self) -> str:
        return self.spec.name

    def to_json(self) -> dict[str, Any]:
        """What `drs task show --json` prints; never a password."""
        data = self.spec.to_public_dict()
        data.update(
            {
                "status": self.status.value,
                "status_label": self.status.label,
                "phase": self.phase,
                "progress_percent": round(self.progress_percent, 2),
                "rows_copied": self.rows_copied,
                "rows_total": self.rows_total,
                "bytes_copied": self.bytes_copied,
                "delay_seconds": self.delay_seconds,
                "events_per_second": self.events_per_second,
                "checkpoint": self.checkpoint.as_dict(),
                "last_error": self.last_error,
                "created_at": self.created_at.isoformat(timespec="seconds"),
                "updated_at": self.updated_at.isoformat(timespec="seconds"),
                "runner_pid": self.runner_pid,
            }
        )
        for key in ("promote", "copy"):
            if key in self.extra:
                data[key] = self.extra[key]
        return data


def flow_to_json(fc: FlowControl | None) -> dict[str, Any] | None:
    """Flow control as the store keeps it (a JSON column)."""
    if fc is None:
        return None
    return {
        "max_mb_s": fc.max_mb_s,
        "windows": [[w.start.isoformat(), w.end.isoformat()] for w in fc.windows],
    }


def flow_from_json(data: dict[str, Any] | None) -> FlowControl | None:
    if not data:
        return None
    return FlowControl(
        data["max_mb_s"],
        tuple(TimeWindow(time.fromisoformat(a), time.fromisoformat(b)) for a, b in data["windows"]),
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str, ensure_ascii=False)
