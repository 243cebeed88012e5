"""Read-only access to the task store over the stdlib sqlite3 module, for readers that must be quick:
`drs task list/show` (no SQLAlchemy import) and the window's refresh (only the rows that changed).

It reads the file engine.store writes and gives the same TaskRecords. Whenever the file is not exactly
what this version writes (missing, a schema to migrate or from a newer version), it raises StoreUnreadable
and the caller opens engine.store.Store, which migrates, creates or explains.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from engine.errors import TaskNotFound
from engine.records import Checkpoint, TaskRecord, flow_from_json
from engine.spec import Endpoint, TaskSpec
from engine.status import Status

SCHEMA_VERSION = 3
STORE_FILE = "drs.sqlite3"
CREATION_FAILED_RETENTION = timedelta(days=3)

# tasks.* columns in the order _record() reads them
_TASK_COLUMNS = (
    "id", "name", "description", "relationship", "network", "source_engine", "target_engine",
    "source_host", "source_port", "source_user", "source_tls", "source_ca_file",
    "target_host", "target_port", "target_user", "target_tls", "target_ca_file",
    "databases", "flow_control", "migrate_definer", "start_at",
    "status", "phase", "progress_percent", "rows_copied", "rows_total", "bytes_copied", "delay_seconds",
    "events_per_second", "last_error", "control_request", "runner_pid", "runner_heartbeat", "extra",
    "created_at", "updated_at", "status_changed_at", "change_seq",
)  # fmt: skip
_SELECT_TASKS = (
    "SELECT " + ", ".join(f"t.{c}" for c in _TASK_COLUMNS) + ", c.binlog_file, c.binlog_pos, c.gtid "
    "FROM tasks t LEFT JOIN checkpoints c ON c.task_id = t.id"
)
_ORDER = " ORDER BY t.created_at, t.id"
_IN_CHUNK = 500  # SQLite's bound-parameter limit is far above; chunks keep statements short


class StoreUnreadable(Exception):
    """The quick read path cannot serve this store; open engine.store.Store instead."""


def _when(value: str | None) -> datetime | None:
    # SQLAlchemy writes DateTime as "YYYY-MM-DD HH:MM:SS.ffffff"
    return None if value is None else datetime.fromisoformat(value)


def _json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _record(row: tuple, tags: list[tuple[str, str]]) -> TaskRecord:
    (
        task_id, name, description, relationship, network, source_engine, target_engine,
        source_host, source_port, source_user, source_tls, source_ca_file,
        target_host, target_port, target_user, target_tls, target_ca_file,
        databases, flow_control, migrate_definer, start_at,
        status, phase, progress_percent, rows_copied, rows_total, bytes_copied, delay_seconds,
        events_per_second, last_error, control_request, runner_pid, runner_heartbeat, extra,
        created_at, updated_at, status_changed_at, change_seq,
        cp_file, cp_pos, cp_gtid,
    ) = row  # fmt: skip
    dbs = _json(databases)
    spec = TaskSpec(
        name=name,
        description=description,
        relationship=relationship,
        network=network,
        source_engine=source_engine,
        target_engine=target_engine,
        source=Endpoint(source_host, source_port, source_user, tls=source_tls, ca_file=source_ca_file),
        target=Endpoint(target_host, target_port, target_user, tls=target_tls, ca_file=target_ca_file),
        databases=tuple(dbs) if dbs is not None else None,
        flow_control=flow_from_json(_json(flow_control)),
        migrate_definer=bool(migrate_definer),
        start_at=_when(start_at),
        tags=tuple(tags),
    )
    return TaskRecord(
        id=task_id,
        spec=spec,
        status=Status(status),
        phase=phase,
        progress_percent=progress_percent,
        rows_copied=rows_copied,
        rows_total=rows_total,
        bytes_copied=bytes_copied,
        delay_seconds=delay_seconds,
        events_per_second=events_per_second,
        last_error=last_error,
        control_request=control_request,
        runner_pid=runner_pid,
        runner_heartbeat=_when(runner_heartbeat),
        created_at=_when(created_at),  # type: ignore[arg-type]  # NOT NULL in the schema
        updated_at=_when(updated_at),  # type: ignore[arg-type]
        status_changed_at=_when(status_changed_at),  # type: ignore[arg-type]
        checkpoint=Checkpoint(cp_file, cp_pos, cp_gtid),
        extra=dict(_json(extra) or {}),
        change_seq=change_seq or 0,
    )


class StoreReader:
    """A read-only sqlite3 connection to one DRS home's task store (one thread at a time)."""

    def __init__(self, home: str | os.PathLike[str]):
        self.path = Path(home) / STORE_FILE
        if not self.path.is_file():
            raise StoreUnreadable(f"{self.path} does not exist")
        try:
            # mode=ro: this path never writes, so it cannot damage or lock out the writers
            self._conn = sqlite3.connect(
                self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30, check_same_thread=False
            )
            self._conn.isolation_level = None  # autocommit; snapshot() opens a read transaction
            version = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.Error as exc:
            self._close_quietly()
            raise StoreUnreadable(f"{self.path}: {exc}") from None
        if version is None or version[0] != str(SCHEMA_VERSION):
            self._close_quietly()
            raise StoreUnreadable(
                f"{self.path}: schema {version and version[0]}, this reader knows {SCHEMA_VERSION}"
            )
        self.rows_read = 0  # task rows read so far (the window's refresh counts on reading only changes)

    def _close_quietly(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: everything read inside sees the store at one instant (WAL snapshot)."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    # -- tasks ----------------------------------------------------------------------------------
    def _tags(self, ids: list[int] | None) -> dict[int, list[tuple[str, str]]]:
        tags: dict[int, list[tuple[str, str]]] = {}
        if ids is None:
            rows: Iterable[tuple] = self._conn.execute("SELECT task_id, key, value FROM tags ORDER BY id")
        else:
            rows = []
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows.extend(
                    self._conn.execute(
                        f"SELECT task_id, key, value FROM tags WHERE task_id IN ({marks}) ORDER BY id", chunk
                    )
                )
            rows = sorted(rows, key=lambda r: r[0])  # stable: each task's tags keep their id order
        for task_id, key, value in rows:
            tags.setdefault(task_id, []).append((key, value))
        return tags

    def _records(self, rows: list[tuple], ids: list[int] | None) -> list[TaskRecord]:
        self.rows_read += len(rows)
        tags = self._tags(ids)
        return [_record(row, tags.get(row[0], [])) for row in rows]

    def list_tasks(self) -> list[TaskRecord]:
        """Every task, oldest first (as Store.list_tasks)."""
        with self.snapshot():
            rows = self._conn.execute(_SELECT_TASKS + _ORDER).fetchall()
            return self._records(rows, None)

    def get_task(self, name: str) -> TaskRecord:
        with self.snapshot():
            rows = self._conn.execute(_SELECT_TASKS + " WHERE t.name = ?", (name,)).fetchall()
            if not rows:
                raise TaskNotFound(name)
            return self._records(rows, [rows[0][0]])[0]

    def tasks_by_id(self, ids: list[int]) -> list[TaskRecord]:
        """The tasks with these ids (those still there), oldest first."""
        rows: list[tuple] = []
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows.extend(self._conn.execute(_SELECT_TASKS + f" WHERE t.id IN ({marks})", chunk))
        rows.sort(key=lambda r: (r[_TASK_COLUMNS.index("created_at")], r[0]))
        return self._records(rows, [r[0] for r in rows])

    def row_versions(self) -> dict[int, int]:
        """Each task's id and change counter: what a reader compares to know which rows changed."""
        return dict(self._conn.execute("SELECT id, change_seq FROM tasks"))

    def data_version(self) -> int:
        """Changes when another connection (any thread or process) commits to the file; cheap to ask."""
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def has_expired_creation_failures(self, now: datetime | None = None) -> bool:
        """Whether Store.end_expired_creation_failures() would end a task now (that one writes)."""
        cutoff = (now or datetime.now()) - CREATION_FAILED_RETENTION
        row = self._conn.execute(
            "SELECT 1 FROM tasks WHERE status = ? AND status_changed_at <= ? LIMIT 1",
            (Status.CREATION_FAILED.value, cutoff.isoformat(sep=" ", timespec="microseconds")),
        ).fetchone()
        return row is not None

    # -- compare runs ---------------------------------------------------------------------------
    @staticmethod
    def _run(row: tuple) -> dict[str, Any]:
        run_id, kind, status, started_at, finished_at, summary = row
        return {
            "id": run_id,
            "kind": kind,
            "status": status,
            "started_at": _when(started_at).isoformat(timespec="seconds"),  # type: ignore[union-attr]
            "finished_at": _when(finished_at).isoformat(timespec="seconds") if finished_at else None,
            "summary": _json(summary),
        }

    def latest_compare_run(self, name: str) -> dict[str, Any] | None:
        """As Store.latest_compare_run: the task's most recent compare run, or None."""
        row = self._conn.execute(
            "SELECT r.id, r.kind, r.status, r.started_at, r.finished_at, r.summary FROM compare_runs r "
            "JOIN tasks t ON t.id = r.task_id WHERE t.name = ? ORDER BY r.id DESC LIMIT 1",
            (name,),
        ).fetchone()
        return None if row is None else self._run(row)

    def latest_compare_runs(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """The most recent compare run of each of these tasks (by task id), in one pass."""
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for task_id, *run in self._conn.execute(
                "SELECT r.task_id, r.id, r.kind, r.status, r.started_at, r.finished_at, r.summary FROM compare_runs r "
                f"WHERE r.id IN (SELECT MAX(id) FROM compare_runs WHERE task_id IN ({marks}) GROUP BY task_id)",
                chunk,
            ):
                found[task_id] = self._run(tuple(run))
        return found


@dataclass
class TaskChanges:
    """What changed in the store since the watcher last looked."""

    changed: list[TaskRecord] = field(default_factory=list)  # new or changed tasks, oldest first
    removed: list[str] = field(default_factory=list)  # names of tasks no longer stored
    looked: bool = False  # False: the file had not changed at all (nothing was read)


class TaskWatcher:
    """Keeps the latest record of every task by reading only what changed: the file's data_version says
    whether anything was committed since the last look, each row's change counter says which rows.

    Also keeps each task's latest compare run (a compare run bumps its task's counter), so health can be
    evaluated without a query per task: `latest_compare_run(name)` answers from memory.
    """

    def __init__(self, home: str | os.PathLike[str]):
        self.reader = StoreReader(home)
        self._data_version: int | None = None
        self._versions: dict[int, int] = {}
        self.records: dict[int, TaskRecord] = {}
        self._compare: dict[str, dict[str, Any] | None] = {}

    def close(self) -> None:
        self.reader.close()

    @property
    def rows_read(self) -> int:
        return self.reader.rows_read

    def poll(self) -> TaskChanges:
        with self.reader.snapshot():
            version = self.reader.data_version()
            if version == self._data_version:
                return TaskChanges()
            versions = self.reader.row_versions()
            ids = [i for i, seq in versions.items() if self._versions.get(i) != seq]
            changed = self.reader.tasks_by_id(ids) if ids else []
            runs = self.reader.latest_compare_runs(ids) if ids else {}
        gone = [self.records.pop(i) for i in list(self.records) if i not in versions]
        for record in changed:
            self.records[record.id] = record
            self._compare[record.name] = runs.get(record.id)
        for record in gone:
            self._compare.pop(record.name, None)
        self._data_version, self._versions = version, versions
        return TaskChanges(changed, [r.name for r in gone], True)

    def latest_compare_run(self, name: str) -> dict[str, Any] | None:
        return self._compare.get(name)
