"""The DBA's escape hatch: move a failed task's checkpoint past exactly one source transaction.

When a task fails on an event the DBA has handled by hand on the DR side (a DDL that clashed with a
table created there, a row change that cannot apply), `drs task skip NAME --event FILE:POS` (or the
GUI's "Skip Failed Event…") takes the DR-side checkpoint past that one transaction, and the task is
retried from there. Before this, recovery meant editing the checkpoint table.

A transaction is named by where the DR-side checkpoint stands right before it: the position the
runner's failure message gives ("failed source transaction: the one at binlog FILE:POS"). Only the
next transaction that concerns the task can be skipped, so a slip of the finger cannot lose more
than the one the DBA has looked at.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from engine import checkpoint as cp
from engine.connect import BinlogPosition
from engine.errors import ActionNotAllowed
from engine.status import Action
from engine.store import Checkpoint
from engine.tasks import TaskService

_EVENT = re.compile(r"^\s*(?P<file>[^\s:]+):(?P<pos>\d+)\s*$")
DESCRIBE_STATEMENT = 500  # characters of a DDL statement shown to the DBA


class SkipRefused(ActionNotAllowed):
    """The skip asked for is not the one that can be done now (exit 2, the message says why)."""


def parse_event(text: str) -> BinlogPosition:
    """'binlog.000012:4567' -> BinlogPosition; ValueError saying what is expected."""
    m = _EVENT.match(text or "")
    if not m or int(m.group("pos")) < 4:
        raise ValueError(f"{text!r} is not a binlog position; expected FILE:POS, e.g. binlog.000012:4567")
    return BinlogPosition(m.group("file"), int(m.group("pos")))


@dataclass
class EventGroup:
    """One source transaction (or one DDL statement), as the DBA is shown it before a skip."""

    start: BinlogPosition  # where the DR-side checkpoint stands right before it
    end: BinlogPosition  # right after it: where a skip puts the checkpoint
    gtid: str | None = None
    timestamp: int = 0
    statement: str | None = None  # a DDL
    ddl_schema: str = ""
    rows: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (kind, schema, table) -> rows
    # other names of `start`: transactions before it that do not concern the task, only checkpointed
    aliases: list[BinlogPosition] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "DDL" if self.statement is not None else "row changes"

    def describe(self) -> str:
        where = f"binlog {self.start.file}:{self.start.pos} to {self.end.file}:{self.end.pos}"
        gtid = f", GTID {self.gtid}" if self.gtid else ""
        if self.statement is not None:
            statement = " ".join(self.statement.split())
            if len(statement) > DESCRIBE_STATEMENT:
                statement = statement[:DESCRIBE_STATEMENT] + "…"
            db = f" in {self.ddl_schema}" if self.ddl_schema else ""
            return f"DDL{db} ({where}{gtid}): {statement}"
        total = sum(self.rows.values())
        parts = [f"{kind} {n} row{'s' if n != 1 else ''} {'into' if kind == 'insert' else 'in' if kind == 'update' else 'from'} "
                 f"{schema}.{table}" for (kind, schema, table), n in self.rows.items()]  # fmt: skip
        return f"transaction of {total} row change{'s' if total != 1 else ''} ({where}{gtid}): {'; '.join(parts)}"


def _same(a: BinlogPosition, b: BinlogPosition) -> bool:
    return (a.file, a.pos) == (b.file, b.pos)


def _reader_id(name: str) -> int:
    """Away from the task's own reader id (a dump with the same id would replace a live one)."""
    from engine.stream import reader_server_id

    return reader_server_id(name) + 0x10000000


def _dr_checkpoint(svc: TaskService, name: str) -> cp.TargetCheckpoint:
    from engine.connect import connect

    spec = svc.spec_with_passwords(name)
    conn = connect(spec.target)
    try:
        cp.ensure_meta(conn)
        target = cp.read_checkpoint(conn, name)
    finally:
        conn.close()
    if target is None or target.phase != "incremental" or target.position is None:
        raise SkipRefused(
            f"task {name} failed before incremental DR started (during the initial copy): there is no source "
            "event to skip; retry the task to copy again"
        )
    return target


def next_event(svc: TaskService, name: str) -> EventGroup:
    """The next source transaction after the task's DR-side checkpoint that concerns the task."""
    record = svc.require(name, Action.SKIP_EVENT)
    from engine.lifecycle import pid_alive

    if pid_alive(record.runner_pid):
        raise SkipRefused(f"task {name} is being run by process {record.runner_pid}; stop it first")
    target = _dr_checkpoint(svc, name)
    return _scan(svc, name, target)


def _scan(svc: TaskService, name: str, target: cp.TargetCheckpoint) -> EventGroup:
    from engine.ddl_apply import DdlApplier
    from engine.stream import BinlogReader, DdlChange, Heartbeat, RowChange, Transaction

    spec = svc.spec_with_passwords(name)
    assert target.position is not None
    # only to ask which DDL concerns the task, exactly as the runner decides it (never opened)
    ddl_policy = DdlApplier(name, databases=spec.databases, migrate_definer=spec.migrate_definer)
    stop = threading.Event()
    reader = BinlogReader(spec.source, target.position, server_id=_reader_id(name), databases=spec.databases, stop=stop)
    start = target.position
    aliases: list[BinlogPosition] = []
    group: EventGroup | None = None
    try:
        for item in reader:
            if isinstance(item, Heartbeat):
                # sent only when the reader has everything the source has written
                raise SkipRefused(
                    f"nothing to skip: the service database has written nothing for task {name} after its "
                    f"checkpoint {start.file}:{start.pos}"
                )
            assert isinstance(item, Transaction)
            if item.is_ddl and group is None:
                change = item.changes[0]
                assert isinstance(change, DdlChange) and item.end is not None
                db = ddl_policy.ddl_database(change)
                if db is None:
                    aliases.append(start)  # the runner only checkpoints past it
                    start = item.end
                    continue
                return EventGroup(start, item.end, item.gtid, item.timestamp, change.statement, db, aliases=aliases)
            rows = [c for c in item.changes if isinstance(c, RowChange)]
            if group is None:
                if not rows and not item.partial:
                    if item.end is not None:  # a transaction on databases the task does not copy
                        aliases.append(start)
                        start = item.end
                    continue
                group = EventGroup(start, start, item.gtid, aliases=aliases)
            for change in rows:
                key = (change.kind, change.schema, change.table)
                group.rows[key] = group.rows.get(key, 0) + len(change.rows)
            group.timestamp = item.timestamp or group.timestamp
            if not item.partial:  # its last piece: the transaction ends here
                assert item.end is not None
                group.end, group.gtid = item.end, item.gtid or group.gtid
                return group
    finally:
        stop.set()
        reader.close()
    raise SkipRefused(f"the binlog of the service database ended after {start.file}:{start.pos}")


def find_event(svc: TaskService, name: str, event: BinlogPosition) -> EventGroup:
    """The transaction named FILE:POS, if it is the next one after the checkpoint; else SkipRefused
    saying which one is next (a DBA cannot skip more than one, or one not yet reached, by mistake)."""
    group = next_event(svc, name)
    if _same(event, group.start) or any(_same(event, a) for a in group.aliases):
        return group
    raise SkipRefused(
        f"binlog {event.file}:{event.pos} is not the next source transaction of task {name}; the next one is at "
        f"{group.start.file}:{group.start.pos}: {group.describe()}. Only that one can be skipped "
        f"(drs task skip {name} --event {group.start.file}:{group.start.pos})"
    )


def skip_event(svc: TaskService, name: str, group: EventGroup) -> None:
    """Write the checkpoint past `group` on the DR side (committed), mirror it in the store, log it.

    The task stays failed: the DBA retries it (drs task resume) once ready."""
    from engine.connect import connect

    svc.require(name, Action.SKIP_EVENT)
    spec = svc.spec_with_passwords(name)
    conn = connect(spec.target, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT binlog_file, binlog_pos FROM {cp.META}.`checkpoint` WHERE task = %s FOR UPDATE", (name,))
            row = cur.fetchone()
            here = BinlogPosition(_text(row[0]), int(row[1])) if row and row[0] is not None else None
            if here is None or not (_same(here, group.start) or any(_same(here, a) for a in group.aliases)):
                raise SkipRefused(f"the checkpoint of task {name} moved meanwhile (now {here}); look at the next event again")
            cp.write_checkpoint(cur, name, "incremental", group.end, ddl_pending=False, source_ts=group.timestamp)
        conn.commit()
    finally:
        conn.close()  # uncommitted (refused): rolled back
    svc.store.save_checkpoint(name, Checkpoint(group.end.file, group.end.pos, group.end.gtid))
    svc.store.add_log(
        name,
        "warning",
        "dba",
        f"DBA skipped event {group.start.file}:{group.start.pos} ({group.describe()}); "
        f"checkpoint moved to {group.end.file}:{group.end.pos}; retry the task to continue",
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)
