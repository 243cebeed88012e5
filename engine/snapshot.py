"""The initial DR phase: a consistent snapshot of the service databases copied to the DR server.

The phase, in order: the snapshot (engine.snapshot_lock) pins the binlog position; the schema is read
and the databases and tables are created on the DR side (engine.schema); each table is planned in key
chunks (engine.chunks) and copied by parallel readers and writers (engine.copier); then big tables get
their secondary indexes, and views, routines and events are created (triggers wait for promote).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pymysql

from engine import infile
from engine import schema as sch
from engine.chunks import TableState, plan_table
from engine.connect import (
    META_DATABASE,
    BinlogPosition,
    connect,
    qualified,
    server_info,
    user_databases,
    variables,
)
from engine.copier import Copier, ProgressReporter
from engine.errors import ReplicationError
from engine.progress import CopyProgress, LogFn
from engine.schema import fetch, server_error, text
from engine.snapshot_lock import SnapshotLock
from engine.spec import SYSTEM_DATABASES, TaskSpec
from engine.throttle import Throttle

INDEX_LATER_MIN_ROWS = 100_000  # tables this big get their secondary indexes after the load


class CopyInterrupted(Exception):
    """The stop event was set; the DR side is left half-copied and must be copied again."""


@dataclass(frozen=True)
class SnapshotResult:
    position: BinlogPosition  # the copied data is exactly the source's state at this binlog position
    databases: tuple[str, ...]
    tables: int
    rows: int
    bytes: int  # bytes read from the service database (SQL text of the rows)
    seconds: float
    deferred_triggers: tuple[str, ...]  # CREATE TRIGGER statements for promote (not on the DR side)
    disabled_events: tuple[tuple[str, str], ...]  # (db, event) enabled on the source, disabled here


# ---- the phase -----------------------------------------------------------------------------------


def _no_log(level: str, component: str, message: str) -> None:
    pass


def _selected_databases(spec: TaskSpec, conn: pymysql.connections.Connection) -> tuple[str, ...]:
    if spec.databases is not None:
        return tuple(d for d in spec.databases if d.lower() not in SYSTEM_DATABASES and d != META_DATABASE)
    return tuple(user_databases(conn))


def _tables_to_index_later(
    conn: pymysql.connections.Connection, schemas: Sequence[sch.DatabaseSchema], plans: Sequence[TableState]
) -> dict[str, set[str]]:
    """Big tables whose secondary indexes are built after their rows are in.

    Only tables with a primary key (so the clustered index stays put) and outside every foreign key
    (a foreign key needs its index while the table exists).
    """
    in_foreign_keys: set[tuple[str, str]] = set()
    for s in schemas:
        for db, table, ref_db, ref_table in fetch(
            conn,
            "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME "
            "FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s OR "
            "UNIQUE_CONSTRAINT_SCHEMA = %s",
            [s.name, s.name],
        ):
            in_foreign_keys |= {(db, table), (ref_db, ref_table)}
    big = {(p.db, p.name) for p in plans if p.rows_estimate >= INDEX_LATER_MIN_ROWS}
    defer: dict[str, set[str]] = {}
    for s in schemas:
        for t in s.tables:
            key = (s.name, t.name)
            if key in big and key not in in_foreign_keys and "\n  PRIMARY KEY " in t.create_sql:
                defer.setdefault(s.name, set()).add(t.name)
    return defer


def _sequence_values(
    conn: pymysql.connections.Connection, tables: Sequence[sch.TableDef]
) -> dict[tuple[str, str], str]:
    return {
        (t.database, t.name): text(
            fetch(conn, f"SELECT next_not_cached_value FROM {qualified(t.database, t.name)}")[0][0]
        )
        for t in tables
        if t.kind == "SEQUENCE"
    }


# a column attribute, not the table option AUTO_INCREMENT=N
_AUTO_INCREMENT_COLUMN = re.compile(r"\bAUTO_INCREMENT\b(?!\s*=)", re.IGNORECASE)


def autoinc_lock_note(
    lock_mode: str | None, tables: Sequence[sch.TableDef], plans: Sequence[TableState]
) -> str | None:
    """What to tell the DBA when the DR server loads an AUTO_INCREMENT table one session at a time.
    Under innodb_autoinc_lock_mode 0 or 1 a LOAD DATA holds the table's AUTO-INC lock to its end, so
    the copy's sessions take turns on such a table (measured: 1M rows, 1 session 3.4-3.9 s, 2-4 sessions
    3.3-3.8 s). Said only for tables big enough to be read as several key ranges at once."""
    if lock_mode is None or lock_mode.strip() not in ("0", "1"):
        return None
    with_auto_inc = {(t.database, t.name) for t in tables if _AUTO_INCREMENT_COLUMN.search(t.create_sql)}
    big = [p.label for p in plans if len(p.ranges) > 1 and (p.db, p.name) in with_auto_inc]
    if not big:
        return None
    shown = ", ".join(big[:3]) + (f" and {len(big) - 3} more" if len(big) > 3 else "")
    return (
        f"{shown}: the DR server's innodb_autoinc_lock_mode is {lock_mode.strip()}, so each LOAD DATA into a "
        "table with an AUTO_INCREMENT column holds that table's AUTO-INC lock until it ends, and the copy's "
        "sessions load such a table one at a time; with innodb_autoinc_lock_mode=2 on the DR server (a "
        "startup option, safe with binlog_format=ROW, and MySQL 8's default) they load it together"
    )


def run_initial_copy(
    spec: TaskSpec,
    *,
    on_progress: Callable[[CopyProgress], None] | None = None,
    log: LogFn | None = None,
    stop: threading.Event | None = None,
    parallel: int = 4,
    throttle: Throttle | None = None,
) -> SnapshotResult:
    """Copy the selected databases to the DR server as of one binlog position (see SnapshotResult).

    Each selected database is dropped and re-created on the DR side. `throttle` replaces the one
    built from spec.flow_control (tests inject a fake clock).
    """
    log = log or _no_log
    stop = stop or threading.Event()
    throttle = throttle or Throttle(spec.flow_control, sleep=lambda s: stop.wait(s))
    started = time.monotonic()
    snap = SnapshotLock(spec, parallel, log)
    target = None
    try:
        snap.open()
        assert snap.position is not None
        if stop.is_set():
            raise CopyInterrupted("initial copy stopped before it began")
        reader0 = snap.readers[0]
        databases = _selected_databases(spec, reader0)
        log("info", "snapshot", f"initial copy started at binlog position {snap.position}: "
            f"{len(databases)} database(s), {len(snap.readers)} reader(s)")  # fmt: skip
        if snap.ddl_unblocked_why:
            log("warning", "snapshot", f"DDL on the service databases is not held back during the initial copy: "
                f"{snap.ddl_unblocked_why}; a DDL on a table not yet copied makes the copy start over (or, right "
                "at its start, can stop the DR stream), so avoid DDL until the initial copy is done")  # fmt: skip
        if snap.ddl_block is not None:
            log("info", "snapshot", "DDL on the service server waits until the initial copy's reads are done "
                f"({snap.ddl_block_how}); reads and writes go on as usual")  # fmt: skip
        schemas = [sch.read_schema(reader0, db) for db in databases]
        max_packet = int(variables(reader0, "max_allowed_packet")["max_allowed_packet"] or 16 << 20)
        data_tables = [t for s in schemas for t in s.tables if t.kind == "BASE TABLE"]
        non_tx = [
            f"{t.database}.{t.name} ({t.engine})"
            for t in data_tables
            if t.engine.lower() not in ("innodb", "")
        ]
        if non_tx:
            log(
                "warning",
                "snapshot",
                "non-transactional tables are copied without a consistent snapshot: " + ", ".join(non_tx),
            )
        plans = [plan_table(reader0, t, len(snap.readers), max_packet) for t in data_tables]
        sequences = _sequence_values(reader0, [t for s in schemas for t in s.tables])

        target = connect(spec.target)
        tinfo = server_info(target)
        definer = sch.current_account(target) if spec.migrate_definer else None
        if not spec.migrate_definer:
            sch.log_missing_definers(target, schemas, log)
        target_vars = variables(target, "max_allowed_packet", "local_infile", "innodb_autoinc_lock_mode")
        target_packet = int(target_vars["max_allowed_packet"] or 16 << 20)
        # rows go as LOAD DATA LOCAL INFILE where the DR server takes it, else as INSERTs
        load_data = (target_vars["local_infile"] or "").upper() in ("ON", "1") and infile.available()
        if load_data:
            note = autoinc_lock_note(target_vars["innodb_autoinc_lock_mode"], data_tables, plans)
            if note:
                log("info", "snapshot", note)
        defer = _tables_to_index_later(reader0, schemas, plans)
        index_later: dict[tuple[str, str], str] = {}
        for s in schemas:
            sch.recreate_database(target, s)
            for name, alter in sch.create_tables(target, s, defer.get(s.name, ())).items():
                index_later[(s.name, name)] = alter
        for (db, name), value in sequences.items():
            sch.execute(
                target, f"SELECT SETVAL({qualified(db, name)}, {int(value)}, 0)", f"sequence {db}.{name}"
            )

        progress = ProgressReporter(plans, on_progress)
        copier = Copier(spec, snap, plans, throttle, stop, log, target_packet, load_data)
        copier.run(progress.tick)
        if copier.errors:
            raise copier.errors[0]
        if stop.is_set():
            raise CopyInterrupted("initial copy stopped; the DR databases must be copied again")
        for t in plans:  # safety net: every table is finished by its last range or batch
            if t.finished is None:
                copier.table_done(t)
        copier.flush_log()

        for (db, name), alter in index_later.items():
            if stop.is_set():
                raise CopyInterrupted("initial copy stopped while building indexes")
            began = time.monotonic()
            sch.execute(target, alter, f"the secondary indexes of table {db}.{name}")
            log(
                "info",
                "snapshot",
                f"table {db}.{name}: secondary indexes built in {time.monotonic() - began:.1f} s",
            )
        disabled: list[tuple[str, str]] = []
        for s in schemas:
            sch.create_routines(target, s, definer)
        sch.create_views(target, schemas, definer)
        for s in schemas:
            disabled += sch.create_events(target, s, definer, tinfo)
        triggers = tuple(sch.deferred_trigger_sql(t, definer, tinfo) for s in schemas for t in s.triggers)
        progress.tick(final=True)
        rows = sum(t.rows_done for t in plans)
        nbytes = sum(t.bytes_done for t in plans)
        seconds = time.monotonic() - started
        log("info", "snapshot", f"initial copy finished at binlog position {snap.position}: {len(plans)} tables, "
            f"{rows} rows, {nbytes / 1048576:.1f} MB in {seconds:.1f} s")  # fmt: skip
        return SnapshotResult(
            snap.position, databases, len(plans), rows, nbytes, seconds, triggers, tuple(disabled)
        )
    except pymysql.err.MySQLError as exc:
        raise ReplicationError(
            f"initial copy failed: {server_error(exc)}"
        ) from exc  # the runner reads the cause
    finally:
        snap.close()
        if target is not None:
            target.close()
