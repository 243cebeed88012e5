"""The local task store: one SQLite file (WAL) through SQLAlchemy 2.x typed ORM.

ORM rows stay inside this module; callers get frozen dataclasses. Every call opens its own short
session, so the GUI thread, worker threads and other processes (`drs run`) can share the file.
Passwords are never stored here (see engine.secrets).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, selectinload, sessionmaker
from sqlalchemy.orm import relationship as orm_relationship  # TaskRow has a column named relationship

from engine.errors import FieldError, SpecInvalid, StoreError, TaskNotFound
from engine.records import Checkpoint, DrLogEntry, TaskRecord, dumps, flow_from_json, flow_to_json
from engine.spec import Endpoint, FlowControl, TaskSpec
from engine.status import Status
from engine.store_read import CREATION_FAILED_RETENTION, SCHEMA_VERSION, STORE_FILE

__all__ = [
    "CREATION_FAILED_RETENTION", "SCHEMA_VERSION", "STORE_FILE", "Checkpoint", "DrLogEntry", "Store",
    "TaskRecord", "dumps",
]  # fmt: skip

LOG_LEVELS = ("info", "warning", "alarm", "error")
# DR log retention per task, enforced by add_log every LOG_PRUNE_EVERY inserts (and on a process's first
# insert for a task): entries beyond the newest LOG_KEEP_ENTRIES, and entries older than LOG_KEEP_DAYS, go.
# 20,000 entries are weeks of a busy task's log and about 3 MB of SQLite; 30 days covers a monthly review.
LOG_KEEP_ENTRIES = 20_000
LOG_KEEP_DAYS = 30
LOG_PRUNE_EVERY = 200
# What to do about a store file that cannot be read; the file is left exactly as it is.
UNUSABLE_HINT = (
    "the file was left unchanged: restore it from a backup, or move it aside to start with an empty "
    "task store, or use another DRS home (--home or DRS_HOME)"
)


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TaskRow(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True, index=True)
    description: Mapped[str] = mapped_column(String(256), default="")
    relationship: Mapped[str] = mapped_column(String(16), default="standby")
    network: Mapped[str] = mapped_column(String(16), default="public")
    source_engine: Mapped[str] = mapped_column(String(16), default="mysql")
    target_engine: Mapped[str] = mapped_column(String(16), default="mysql")
    source_host: Mapped[str] = mapped_column(String(253))
    source_port: Mapped[int] = mapped_column(Integer)
    source_user: Mapped[str] = mapped_column(String(80))
    source_tls: Mapped[str] = mapped_column(String(16), default="off")
    source_ca_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    target_host: Mapped[str] = mapped_column(String(253))
    target_port: Mapped[int] = mapped_column(Integer)
    target_user: Mapped[str] = mapped_column(String(80))
    target_tls: Mapped[str] = mapped_column(String(16), default="off")
    target_ca_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    databases: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    flow_control: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    migrate_definer: Mapped[bool] = mapped_column(Boolean, default=True)
    start_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    status: Mapped[str] = mapped_column(String(24), default=Status.CONFIGURATION.value)
    phase: Mapped[str] = mapped_column(String(16), default="none")
    progress_percent: Mapped[float] = mapped_column(Float, default=0.0)
    rows_copied: Mapped[int] = mapped_column(Integer, default=0)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    bytes_copied: Mapped[int] = mapped_column(Integer, default=0)
    delay_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    events_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    control_request: Mapped[str | None] = mapped_column(String(16), nullable=True)
    runner_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    runner_heartbeat: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # promote positions, table progress
    created_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.now)
    status_changed_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.now)
    # schema 3: bumped by the triggers in CHANGE_TRIGGERS on every write to the task (see TaskRecord.change_seq)
    change_seq: Mapped[int] = mapped_column(Integer, default=0, index=True)

    tags: Mapped[list[TagRow]] = orm_relationship(cascade="all, delete-orphan", order_by="TagRow.id")


class TagRow(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[str] = mapped_column(String(255))


class DrLogRow(Base):
    __tablename__ = "dr_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(DateTime, default=datetime.now, index=True)
    level: Mapped[str] = mapped_column(String(8))
    component: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)


class CheckpointRow(Base):
    """Mirror of the checkpoint the applier keeps on the DR server (that one is authoritative)."""

    __tablename__ = "checkpoints"
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    binlog_file: Mapped[str | None] = mapped_column(String(255), nullable=True)
    binlog_pos: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gtid: Mapped[str | None] = mapped_column(Text, nullable=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # initial-phase state per table
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.now)


class CompareRunRow(Base):
    __tablename__ = "compare_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # object | rows | values
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CompareResultRow(Base):
    __tablename__ = "compare_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("compare_runs.id", ondelete="CASCADE"), index=True)
    object_type: Mapped[str] = mapped_column(String(16))
    object_name: Mapped[str] = mapped_column(Text)
    source_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    target_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    consistent: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    # schema 2: the CLI contract's difference kind, the row's key (JSON list) and the fix statement
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    key_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    fix_sql: Mapped[str | None] = mapped_column(Text, nullable=True)


class MetricSampleRow(Base):
    """Monitoring samples (schema 2): raw every few seconds, downsampled as they age (engine.metrics)."""

    __tablename__ = "metric_samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(DateTime, index=True)
    resolution: Mapped[int] = mapped_column(Integer, default=0)  # seconds a sample stands for; 0 = raw
    delay_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    rto_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    rows_per_second: Mapped[float] = mapped_column(Float, default=0.0)
    events_per_second: Mapped[float] = mapped_column(Float, default=0.0)
    bytes_per_second: Mapped[float] = mapped_column(Float, default=0.0)


# ---- what callers get: engine.records (re-exported here for the existing imports) ------------------


def _record(row: TaskRow, cp: CheckpointRow | None) -> TaskRecord:
    spec = TaskSpec(
        name=row.name,
        description=row.description,
        relationship=row.relationship,
        network=row.network,
        source_engine=row.source_engine,
        target_engine=row.target_engine,
        source=Endpoint(
            row.source_host, row.source_port, row.source_user, tls=row.source_tls, ca_file=row.source_ca_file
        ),
        target=Endpoint(
            row.target_host, row.target_port, row.target_user, tls=row.target_tls, ca_file=row.target_ca_file
        ),
        databases=tuple(row.databases) if row.databases is not None else None,
        flow_control=flow_from_json(row.flow_control),
        migrate_definer=row.migrate_definer,
        start_at=row.start_at,
        tags=tuple((t.key, t.value) for t in row.tags),
    )
    return TaskRecord(
        id=row.id,
        spec=spec,
        status=Status(row.status),
        phase=row.phase,
        progress_percent=row.progress_percent,
        rows_copied=row.rows_copied,
        rows_total=row.rows_total,
        bytes_copied=row.bytes_copied,
        delay_seconds=row.delay_seconds,
        events_per_second=row.events_per_second,
        last_error=row.last_error,
        control_request=row.control_request,
        runner_pid=row.runner_pid,
        runner_heartbeat=row.runner_heartbeat,
        created_at=row.created_at,
        updated_at=row.updated_at,
        status_changed_at=row.status_changed_at,
        checkpoint=Checkpoint(cp.binlog_file, cp.binlog_pos, cp.gtid) if cp else Checkpoint(),
        extra=dict(row.extra or {}),
        change_seq=row.change_seq or 0,
    )


# Statements that take a store from schema N to N+1 (new tables come from create_all). A column that is
# there already (a store migrated by hand, or put back to an older version by a test) is left alone.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE compare_results ADD COLUMN kind VARCHAR(16)",
        "ALTER TABLE compare_results ADD COLUMN key_json TEXT",
        "ALTER TABLE compare_results ADD COLUMN fix_sql TEXT",
    ),
    2: (
        "ALTER TABLE tasks ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS ix_tasks_change_seq ON tasks (change_seq)",
    ),
}

# Every write to a task row, its checkpoint or its compare runs gives the task the next change number,
# so a reader (the window's refresh) asks "which rows changed?" without reading them all. In SQLite, as
# triggers: every writer (this module, a test's raw UPDATE, another process) counts, nobody can forget.
# Writers are serialized by SQLite's write lock, so numbers follow commit order. The WHEN clause keeps
# the triggers' own UPDATE from firing them again.
_NEXT_SEQ = "(SELECT COALESCE(MAX(change_seq), 0) + 1 FROM tasks)"
CHANGE_TRIGGERS = (
    f"""CREATE TRIGGER IF NOT EXISTS tasks_change_seq_insert AFTER INSERT ON tasks BEGIN
        UPDATE tasks SET change_seq = {_NEXT_SEQ} WHERE id = NEW.id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS tasks_change_seq_update AFTER UPDATE ON tasks
        WHEN NEW.change_seq IS OLD.change_seq BEGIN
        UPDATE tasks SET change_seq = {_NEXT_SEQ} WHERE id = NEW.id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS checkpoints_change_seq_insert AFTER INSERT ON checkpoints BEGIN
        UPDATE tasks SET change_seq = {_NEXT_SEQ} WHERE id = NEW.task_id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS checkpoints_change_seq_update AFTER UPDATE ON checkpoints BEGIN
        UPDATE tasks SET change_seq = {_NEXT_SEQ} WHERE id = NEW.task_id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS compare_runs_change_seq_insert AFTER INSERT ON compare_runs BEGIN
        UPDATE tasks SET change_seq = {_NEXT_SEQ} WHERE id = NEW.task_id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS compare_runs_change_seq_update AFTER UPDATE ON compare_runs BEGIN
        UPDATE tasks SET change_seq = {_NEXT_SEQ} WHERE id = NEW.task_id; END""",
)


def _migration_statement_needed(conn: Any, statement: str) -> bool:
    """False for an ADD COLUMN whose column exists already."""
    words = statement.split()
    if words[:2] != ["ALTER", "TABLE"] or words[3:5] != ["ADD", "COLUMN"]:
        return True
    columns = {row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({words[2]})")}
    return words[5] not in columns


# Columns a runner may update through update_task(); anything else goes through its own method.
UPDATABLE = {
    "phase", "progress_percent", "rows_copied", "rows_total", "bytes_copied", "delay_seconds",
    "events_per_second", "last_error", "runner_pid", "runner_heartbeat", "extra", "control_request",
    "flow_control", "start_at",
}  # fmt: skip


class Store:
    """The task store of one DRS home directory."""

    def __init__(self, home: str | os.PathLike[str]):
        self.home = Path(home)
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except ValueError:  # a NUL character in the path
            raise StoreError(
                f"cannot use {str(self.home)!r} as DRS home: a path cannot contain NUL"
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot use {self.home} as DRS home: {exc.strerror or exc}") from None
        self.path = self.home / STORE_FILE
        self._engine = create_engine(
            f"sqlite:///{self.path}",
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(self._engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._lock = threading.RLock()
        try:
            self._open_schema()
        except BaseException:
            # close the pooled connection now: a refused store keeps no -wal/-shm files beside it
            self._engine.dispose()
            raise

    def close(self) -> None:
        self._engine.dispose()

    # -- schema ---------------------------------------------------------------------------------
    def _open_schema(self) -> None:
        try:
            with self._engine.connect() as conn:
                # Write-lock first: two processes (GUI and `drs`) opening a new home at once must not
                # both see "no schema" and both create it.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                existing = set(self._engine.dialect.get_table_names(conn))
                if existing and "meta" not in existing:
                    raise StoreError(
                        f"{self.path} is not a DRS Desktop task store (no schema version); {UNUSABLE_HINT}"
                    )
                if "meta" in existing:
                    row = conn.execute(select(MetaRow.value).where(MetaRow.key == "schema_version")).scalar()
                    version = int(row) if row and row.isdigit() else None
                    if version is None:
                        raise StoreError(
                            f"{self.path}: schema version is missing or unreadable; {UNUSABLE_HINT}"
                        )
                    if version > SCHEMA_VERSION:
                        raise StoreError(
                            f"{self.path} was written by a newer DRS Desktop (schema {version}, this one "
                            f"knows up to {SCHEMA_VERSION}); upgrade DRS Desktop or use another --home"
                        )
                    for step in range(version, SCHEMA_VERSION):
                        for statement in MIGRATIONS[step]:
                            if _migration_statement_needed(conn, statement):
                                conn.exec_driver_sql(statement)
                Base.metadata.create_all(conn)  # also adds tables that a migration step introduces
                for statement in CHANGE_TRIGGERS:
                    conn.exec_driver_sql(statement)
                if "meta" not in existing:
                    conn.execute(
                        MetaRow.__table__.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
                    )
                else:
                    conn.execute(
                        update(MetaRow)
                        .where(MetaRow.key == "schema_version")
                        .values(value=str(SCHEMA_VERSION))
                    )
                conn.commit()
        except DBAPIError as exc:  # locked for too long, not an SQLite file at all, damaged, ...
            damaged = any(w in str(exc.orig) for w in ("not a database", "malformed", "corrupt"))
            hint = f"; {UNUSABLE_HINT}" if damaged else ""
            raise StoreError(f"cannot open task store {self.path}: {exc.orig}{hint}") from None

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @staticmethod
    def _task_row(session: Session, name: str) -> TaskRow:
        row = session.execute(select(TaskRow).where(TaskRow.name == name)).scalar_one_or_none()
        if row is None:
            raise TaskNotFound(name)
        return row

    # -- tasks ----------------------------------------------------------------------------------
    def create_task(self, spec: TaskSpec, status: Status = Status.CONFIGURATION) -> TaskRecord:
        now = datetime.now()
        row = TaskRow(
            name=spec.name,
            description=spec.description,
            relationship=spec.relationship,
            network=spec.network,
            source_engine=spec.source_engine,
            target_engine=spec.target_engine,
            source_host=spec.source.host,
            source_port=spec.source.port,
            source_user=spec.source.user,
            source_tls=spec.source.tls,
            source_ca_file=spec.source.ca_file,
            target_host=spec.target.host,
            target_port=spec.target.port,
            target_user=spec.target.user,
            target_tls=spec.target.tls,
            target_ca_file=spec.target.ca_file,
            databases=list(spec.databases) if spec.databases is not None else None,
            flow_control=flow_to_json(spec.flow_control),
            migrate_definer=spec.migrate_definer,
            start_at=spec.start_at,
            status=status.value,
            created_at=now,
            updated_at=now,
            status_changed_at=now,
            extra={},
            tags=[TagRow(key=k, value=v) for k, v in spec.tags],
        )
        try:
            with self.session_scope() as s:
                s.add(row)
                s.flush()
                s.add(CheckpointRow(task_id=row.id, snapshot={}))
        except IntegrityError:
            raise SpecInvalid(
                [FieldError("name", f"a task named {spec.name!r} already exists; names must be unique")]
            ) from None
        return self.get_task(spec.name)

    def name_taken(self, name: str) -> bool:
        with self.session_scope() as s:
            return s.execute(select(TaskRow.id).where(TaskRow.name == name)).first() is not None

    def get_task(self, name: str) -> TaskRecord:
        with self.session_scope() as s:
            row = self._task_row(s, name)
            return _record(row, s.get(CheckpointRow, row.id))

    def list_tasks(self) -> list[TaskRecord]:
        """Every task, oldest first. Read over stdlib sqlite3 (engine.store_read: the same records, a
        fifth of the time for a thousand tasks); through the ORM where that reader cannot serve."""
        from engine.store_read import StoreReader, StoreUnreadable

        try:
            reader = StoreReader(self.home)
        except StoreUnreadable:
            return self.list_tasks_orm()
        try:
            return reader.list_tasks()
        except sqlite3.Error:  # (the file changed under the reader) the ORM reads it or says what is wrong
            return self.list_tasks_orm()
        finally:
            reader.close()

    def list_tasks_orm(self) -> list[TaskRecord]:
        with self.session_scope() as s:
            # the tags in one more query, not one per task
            query = (
                select(TaskRow).options(selectinload(TaskRow.tags)).order_by(TaskRow.created_at, TaskRow.id)
            )
            rows = s.execute(query).scalars().all()
            cps = {c.task_id: c for c in s.execute(select(CheckpointRow)).scalars()}
            return [_record(r, cps.get(r.id)) for r in rows]

    def delete_task(self, name: str) -> None:
        with self.session_scope() as s:
            row = self._task_row(s, name)
            for model in (DrLogRow, CheckpointRow, TagRow, MetricSampleRow):
                s.execute(delete(model).where(model.task_id == row.id))
            run_ids = select(CompareRunRow.id).where(CompareRunRow.task_id == row.id)
            s.execute(delete(CompareResultRow).where(CompareResultRow.run_id.in_(run_ids)))
            s.execute(delete(CompareRunRow).where(CompareRunRow.task_id == row.id))
            s.delete(row)

    def set_status(
        self,
        name: str,
        status: Status,
        *,
        last_error: str | None = None,
        expect: set[Status] | None = None,
        **fields: Any,
    ) -> bool:
        """Move a task to a status. With `expect`, only from one of those statuses (compare-and-set)."""
        values: dict[str, Any] = {
            "status": status.value,
            "updated_at": datetime.now(),
            "status_changed_at": datetime.now(),
        }
        if last_error is not None or status not in (Status.FAILED, Status.CREATION_FAILED):
            values["last_error"] = last_error
        for key, value in fields.items():
            if key not in UPDATABLE:
                raise ValueError(f"not an updatable task field: {key}")
            values[key] = value
        with self.session_scope() as s:
            stmt = update(TaskRow).where(TaskRow.name == name)
            if expect is not None:
                stmt = stmt.where(TaskRow.status.in_([e.value for e in expect]))
            result = s.execute(stmt.values(**values))
            if result.rowcount == 0 and expect is None:
                raise TaskNotFound(name)
            return result.rowcount > 0

    def set_status_if(
        self,
        name: str,
        expected: set[Status],
        new: Status,
        *,
        last_error: str | None = None,
        extra: dict[str, Any] | None = None,
        extra_guard: Callable[[dict[str, Any]], bool] | None = None,
        **fields: Any,
    ) -> bool:
        """Compare-and-set in one transaction: move the task to `new` only while its status is one of
        `expected` (and `extra_guard`, if given, accepts its extra); merge `extra` items at the same time.

        The guarded UPDATE comes first, so SQLite's write lock is held before anything is read: of two
        processes racing for the same change, exactly one gets True.
        """
        now = datetime.now()
        values: dict[str, Any] = {"status": new.value, "updated_at": now, "status_changed_at": now}
        if last_error is not None or new not in (Status.FAILED, Status.CREATION_FAILED):
            values["last_error"] = last_error
        for key, value in fields.items():
            if key not in UPDATABLE or key == "extra":
                raise ValueError(f"not an updatable task field: {key}")
            values[key] = value
        with self._lock, self.session_scope() as s:
            guarded = update(TaskRow).where(
                TaskRow.name == name, TaskRow.status.in_([e.value for e in expected])
            )
            if s.execute(guarded.values(updated_at=now)).rowcount == 0:
                self._task_row(s, name)  # TaskNotFound when there is no such task
                return False
            row = self._task_row(s, name)
            current = dict(row.extra or {})
            if extra_guard is not None and not extra_guard(current):
                s.rollback()
                return False
            for key, value in values.items():
                setattr(row, key, value)
            if extra:
                current.update(extra)
                row.extra = current
            return True

    def update_task(self, name: str, **fields: Any) -> None:
        bad = set(fields) - UPDATABLE
        if bad:
            raise ValueError(f"not updatable task fields: {sorted(bad)}")
        if "flow_control" in fields and isinstance(fields["flow_control"], FlowControl | type(None)):
            fields["flow_control"] = flow_to_json(fields["flow_control"])
        fields["updated_at"] = datetime.now()
        with self.session_scope() as s:
            if s.execute(update(TaskRow).where(TaskRow.name == name).values(**fields)).rowcount == 0:
                raise TaskNotFound(name)

    def update_endpoint(self, name: str, side: str, endpoint: Endpoint) -> None:
        """Where one side of the task is reached (host, port, user, TLS); the password is not stored here.
        TaskService.modify_connection validates and checks the server first."""
        if side not in ("source", "target"):
            raise ValueError(f"side must be source or target, not {side!r}")
        values = {
            f"{side}_host": endpoint.host,
            f"{side}_port": endpoint.port,
            f"{side}_user": endpoint.user,
            f"{side}_tls": endpoint.tls,
            f"{side}_ca_file": endpoint.ca_file,
            "updated_at": datetime.now(),
        }
        with self.session_scope() as s:
            if s.execute(update(TaskRow).where(TaskRow.name == name).values(**values)).rowcount == 0:
                raise TaskNotFound(name)

    def merge_extra(self, name: str, **items: Any) -> None:
        self.merge_extra_if(name, lambda _extra: True, items)

    def merge_extra_if(
        self, name: str, guard: Callable[[dict[str, Any]], bool], items: dict[str, Any]
    ) -> bool:
        """merge_extra, only while `guard` accepts the current extra (e.g. a journal still owned by us)."""
        with self._lock, self.session_scope() as s:
            # write lock first, then read: another process's merge cannot slip in between
            if (
                s.execute(
                    update(TaskRow).where(TaskRow.name == name).values(updated_at=datetime.now())
                ).rowcount
                == 0
            ):
                raise TaskNotFound(name)
            row = self._task_row(s, name)
            extra = dict(row.extra or {})
            if not guard(extra):
                s.rollback()
                return False
            extra.update(items)
            row.extra = extra
            return True

    def request_control(self, name: str, request: str | None) -> None:
        """Ask the process running a task to pause/stop/promote at its next safe point."""
        self.update_task(name, control_request=request)

    # -- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(
        self, name: str, checkpoint: Checkpoint, snapshot: dict[str, Any] | None = None
    ) -> None:
        with self.session_scope() as s:
            row = self._task_row(s, name)
            cp = s.get(CheckpointRow, row.id) or CheckpointRow(task_id=row.id, snapshot={})
            cp.binlog_file, cp.binlog_pos, cp.gtid = (
                checkpoint.binlog_file,
                checkpoint.binlog_pos,
                checkpoint.gtid,
            )
            if snapshot is not None:
                cp.snapshot = snapshot
            cp.updated_at = datetime.now()
            s.add(cp)

    def snapshot_state(self, name: str) -> dict[str, Any]:
        with self.session_scope() as s:
            row = self._task_row(s, name)
            cp = s.get(CheckpointRow, row.id)
            return dict(cp.snapshot or {}) if cp else {}

    # -- DR log ---------------------------------------------------------------------------------
    def add_log(self, name: str, level: str, component: str, message: str) -> DrLogEntry:
        if level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {LOG_LEVELS}")
        entry = DrLogEntry(datetime.now(), level, component, message)
        with self.session_scope() as s:
            row = self._task_row(s, name)
            s.add(
                DrLogRow(task_id=row.id, time=entry.time, level=level, component=component, message=message)
            )
            task_id = row.id
        # Count inserts in memory (per task, per process) instead of counting rows: pruning stays cheap.
        with self._lock:
            counts: dict[int, int] = self.__dict__.setdefault("_log_inserts", {})
            counts[task_id] = counts.get(task_id, 0) + 1
            due = counts[task_id] % LOG_PRUNE_EVERY == 1
        if due:
            self.prune_logs(name)
        return entry

    def prune_logs(self, name: str, *, keep: int | None = None, days: float | None = None,
                   now: datetime | None = None) -> int:  # fmt: skip
        """Apply the retention bound (default LOG_KEEP_ENTRIES, LOG_KEEP_DAYS) to one task's log; returns
        how many entries were deleted."""
        keep = LOG_KEEP_ENTRIES if keep is None else keep
        cutoff = (now or datetime.now()) - timedelta(days=LOG_KEEP_DAYS if days is None else days)
        with self.session_scope() as s:
            task_id = self._task_row(s, name).id
            # The id of the (keep+1)-th newest entry: it and everything older go (NULL when fewer exist).
            boundary = (
                select(DrLogRow.id).where(DrLogRow.task_id == task_id)
                .order_by(DrLogRow.id.desc()).limit(1).offset(keep).scalar_subquery()
            )  # fmt: skip
            result = s.execute(
                delete(DrLogRow).where(
                    DrLogRow.task_id == task_id, (DrLogRow.time < cutoff) | (DrLogRow.id <= boundary)
                )
            )
            return result.rowcount or 0

    def logs(
        self,
        name: str,
        *,
        level: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        text: str | None = None,
        limit: int | None = 1000,
    ) -> list[DrLogEntry]:
        """The newest `limit` entries (None: all) that match every filter given, oldest first.

        `since`/`until` bound the time (both inclusive); `text` matches the message or the component,
        case-insensitively (ASCII) and literally: % and _ are not wildcards.
        """
        with self.session_scope() as s:
            row = self._task_row(s, name)
            q = select(DrLogRow).where(DrLogRow.task_id == row.id)
            if level:
                q = q.where(DrLogRow.level == level)
            if since:
                q = q.where(DrLogRow.time >= since)
            if until:
                q = q.where(DrLogRow.time <= until)
            if text:
                q = q.where(
                    DrLogRow.message.icontains(text, autoescape=True)
                    | DrLogRow.component.icontains(text, autoescape=True)
                )
            q = q.order_by(DrLogRow.id.desc())
            if limit is not None:
                q = q.limit(limit)
            rows = list(s.execute(q).scalars())
            return [DrLogEntry(r.time, r.level, r.component, r.message) for r in reversed(rows)]

    # -- compare runs -----------------------------------------------------------------------------
    def start_compare_run(self, name: str, kind: str) -> int:
        with self.session_scope() as s:
            row = self._task_row(s, name)
            run = CompareRunRow(task_id=row.id, kind=kind, summary={})
            s.add(run)
            s.flush()
            return run.id

    def finish_compare_run(
        self, run_id: int, status: str, summary: dict[str, Any], results: list[dict[str, Any]]
    ) -> None:
        with self.session_scope() as s:
            run = s.get(CompareRunRow, run_id)
            if run is None:
                raise StoreError(f"no compare run {run_id}")
            run.status, run.summary, run.finished_at = status, summary, datetime.now()
            s.add_all(CompareResultRow(run_id=run_id, **r) for r in results)

    def compare_runs(self, name: str) -> list[dict[str, Any]]:
        with self.session_scope() as s:
            row = self._task_row(s, name)
            runs = s.execute(
                select(CompareRunRow).where(CompareRunRow.task_id == row.id).order_by(CompareRunRow.id)
            ).scalars()
            return [
                {"id": r.id, "kind": r.kind, "status": r.status, "started_at": r.started_at.isoformat(timespec="seconds"),
                 "finished_at": r.finished_at.isoformat(timespec="seconds") if r.finished_at else None, "summary": r.summary}
                for r in runs
            ]  # fmt: skip

    def compare_results(self, run_id: int) -> list[dict[str, Any]]:
        with self.session_scope() as s:
            rows = s.execute(
                select(CompareResultRow)
                .where(CompareResultRow.run_id == run_id)
                .order_by(CompareResultRow.id)
            ).scalars()
            return [
                {"object_type": r.object_type, "object_name": r.object_name, "source_value": r.source_value,
                 "target_value": r.target_value, "consistent": r.consistent, "detail": r.detail,
                 "kind": r.kind, "key_json": r.key_json, "fix_sql": r.fix_sql}
                for r in rows
            ]  # fmt: skip

    def latest_compare_run(self, name: str) -> dict[str, Any] | None:
        """The task's most recent compare run (same shape as compare_runs()), or None."""
        runs = self.compare_runs(name)
        return runs[-1] if runs else None

    # -- metric samples ---------------------------------------------------------------------------
    def add_metric_sample(self, name: str, **values: Any) -> None:
        """One monitoring sample (engine.metrics owns the meaning of the values)."""
        with self.session_scope() as s:
            row = self._task_row(s, name)
            s.add(MetricSampleRow(task_id=row.id, **values))

    def metric_samples(
        self,
        name: str,
        *,
        since: datetime | None = None,
        before: datetime | None = None,
        resolution: int | None = None,
    ) -> list[dict[str, Any]]:
        """Samples oldest first, as dicts with the MetricSampleRow column names (plus `id`)."""
        with self.session_scope() as s:
            row = self._task_row(s, name)
            q = select(MetricSampleRow).where(MetricSampleRow.task_id == row.id)
            if since is not None:
                q = q.where(MetricSampleRow.time >= since)
            if before is not None:
                q = q.where(MetricSampleRow.time < before)
            if resolution is not None:
                q = q.where(MetricSampleRow.resolution == resolution)
            rows = s.execute(q.order_by(MetricSampleRow.time, MetricSampleRow.id)).scalars()
            return [
                {"id": r.id, "time": r.time, "resolution": r.resolution, "delay_seconds": r.delay_seconds,
                 "rto_seconds": r.rto_seconds, "rows_per_second": r.rows_per_second,
                 "events_per_second": r.events_per_second, "bytes_per_second": r.bytes_per_second}
                for r in rows
            ]  # fmt: skip

    def replace_metric_samples(self, name: str, remove_ids: list[int], add: list[dict[str, Any]]) -> None:
        """Swap samples for their aggregates in one transaction (a reader never sees both or neither)."""
        with self.session_scope() as s:
            row = self._task_row(s, name)
            for start in range(0, len(remove_ids), 500):  # SQLite's bound-parameter limit
                chunk = remove_ids[start : start + 500]
                s.execute(
                    delete(MetricSampleRow).where(
                        MetricSampleRow.task_id == row.id, MetricSampleRow.id.in_(chunk)
                    )
                )
            s.add_all(MetricSampleRow(task_id=row.id, **values) for values in add)

    def delete_metric_samples(self, name: str, before: datetime) -> int:
        with self.session_scope() as s:
            row = self._task_row(s, name)
            result = s.execute(
                delete(MetricSampleRow).where(
                    MetricSampleRow.task_id == row.id, MetricSampleRow.time < before
                )
            )
            return result.rowcount

    # -- housekeeping ---------------------------------------------------------------------------
    def end_expired_creation_failures(self, now: datetime | None = None) -> list[str]:
        """Creation failed tasks are kept three days, then ended (as the reference service does)."""
        now = now or datetime.now()
        cutoff = now - CREATION_FAILED_RETENTION
        with self.session_scope() as s:
            rows = (
                s.execute(
                    select(TaskRow).where(
                        TaskRow.status == Status.CREATION_FAILED.value, TaskRow.status_changed_at <= cutoff
                    )
                )
                .scalars()
                .all()
            )
            for r in rows:
                r.status, r.status_changed_at, r.updated_at = Status.ENDED.value, now, now
            return [r.name for r in rows]
