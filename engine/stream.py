"""The binlog reader: source transactions, in order, from a checkpoint.

Runs python-mysql-replication (file/position resume, blocking with heartbeats) and groups its events
into `Transaction`s that end at a commit (XID, or COMMIT for non-transactional tables) or are one DDL
statement, each with the binlog position right after it: the only positions a checkpoint may take.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import (
    GtidEvent,
    HeartbeatLogEvent,
    MariadbGtidEvent,
    QueryEvent,
    RotateEvent,
    XidEvent,
)
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from engine import rowdecode
from engine.connect import META_DATABASE, BinlogPosition, ssl_options
from engine.spec import SYSTEM_DATABASES, Endpoint

rowdecode.install()

HEARTBEAT_SECONDS = 1.0


@dataclass
class RowChange:
    """Consecutive row events of one table within a transaction."""

    kind: str  # "insert" | "update" | "delete"
    schema: str
    table: str
    rows: list  # insert/delete: tuples of SQL literals; update: (before, after) pairs


@dataclass
class DdlChange:
    schema: str  # the default database the statement ran in ("" when none)
    statement: str


@dataclass
class Transaction:
    changes: list[RowChange | DdlChange] = field(default_factory=list)
    end: BinlogPosition | None = None
    gtid: str | None = None
    timestamp: int = 0  # source commit time (epoch seconds)
    rows: int = 0

    @property
    def is_ddl(self) -> bool:
        return len(self.changes) == 1 and isinstance(self.changes[0], DdlChange)


@dataclass(frozen=True)
class Heartbeat:
    """No event for a while: the reader has everything the source has written."""

    position: BinlogPosition
    received: float


_TXN_CONTROL = re.compile(
    r"^\s*(BEGIN|COMMIT|ROLLBACK|XA\s|SAVEPOINT|RELEASE\s+SAVEPOINT|ROLLBACK\s+TO)", re.I
)


def reader_server_id(task_name: str) -> int:
    """A server id for our binlog reader: stable per task, away from typical server ids."""
    return 0x40000000 + (zlib.crc32(task_name.encode()) & 0x0FFFFFFF)


class BinlogReader:
    """Iterates source transactions from `start`; stops when `stop` is set (checked each heartbeat)."""

    def __init__(
        self,
        source: Endpoint,
        start: BinlogPosition,
        *,
        server_id: int,
        databases: tuple[str, ...] | None,
        stop: threading.Event,
    ):
        self.source = source
        self.position = start
        self.server_id = server_id
        self.databases = databases
        self.stop = stop
        self.stream: BinLogStreamReader | None = None

    def wants_schema(self, schema: str) -> bool:
        if not schema:
            return False
        if self.databases is not None:
            return schema in self.databases
        return schema.lower() not in SYSTEM_DATABASES and schema != META_DATABASE

    def _open(self) -> BinLogStreamReader:
        settings = {
            "host": self.source.host,
            "port": self.source.port,
            "user": self.source.user,
            "passwd": self.source.password.reveal(),
            "charset": "utf8mb4",
            "connect_timeout": 10,
            **(ssl_options(self.source) or {}),
        }
        return BinLogStreamReader(
            connection_settings=settings,
            server_id=self.server_id,
            log_file=self.position.file,
            log_pos=self.position.pos,
            resume_stream=True,
            blocking=True,
            slave_heartbeat=HEARTBEAT_SECONDS,
            # file/position resume; with is_mariadb=True the library switches to GTID mode
            is_mariadb=False,
            # table maps are parsed once per table id; we drop the cache on every DDL (see below)
            freeze_schema=True,
            only_events=[
                RotateEvent,
                XidEvent,
                QueryEvent,
                GtidEvent,
                MariadbGtidEvent,
                HeartbeatLogEvent,
                WriteRowsEvent,
                UpdateRowsEvent,
                DeleteRowsEvent,
            ],  # fmt: skip
            enable_logging=False,
        )

    def close(self) -> None:
        if self.stream is not None:
            try:
                self.stream.close()
            except Exception:  # closing a dead socket must not hide the real error
                pass
            self.stream = None

    def __iter__(self) -> Iterator[Transaction | Heartbeat]:
        self.stream = stream = self._open()
        current_file = self.position.file
        txn = Transaction()
        try:
            while not self.stop.is_set():
                event = stream.fetchone()
                if event is None:
                    continue
                if isinstance(event, RotateEvent):
                    current_file = event.next_binlog
                    if not txn.changes:
                        self.position = BinlogPosition(current_file, event.position, self.position.gtid)
                    continue
                if isinstance(event, HeartbeatLogEvent):
                    if not txn.changes and txn.gtid is None:
                        # Sent only when the source has nothing more to send: every event before
                        # this position has been read, so it is a safe checkpoint too.
                        if stream.log_pos and stream.log_pos > self.position.pos and current_file == self.position.file:
                            self.position = BinlogPosition(current_file, stream.log_pos, self.position.gtid)
                        yield Heartbeat(self.position, time.monotonic())
                    continue
                end = BinlogPosition(current_file, stream.log_pos, None)
                if isinstance(event, MariadbGtidEvent | GtidEvent):
                    txn.gtid = event.gtid
                    continue
                if isinstance(event, WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent):
                    if not self.wants_schema(event.schema):
                        continue
                    kind = (
                        "insert"
                        if isinstance(event, WriteRowsEvent)
                        else "update"
                        if isinstance(event, UpdateRowsEvent)
                        else "delete"
                    )
                    rows = event.rows
                    last = txn.changes[-1] if txn.changes else None
                    if isinstance(last, RowChange) and (last.kind, last.schema, last.table) == (
                        kind,
                        event.schema,
                        event.table,
                    ):
                        last.rows.extend(rows)
                    else:
                        txn.changes.append(RowChange(kind, event.schema, event.table, list(rows)))
                    txn.rows += len(rows)
                    txn.timestamp = event.timestamp
                    continue
                if isinstance(event, XidEvent):
                    txn.end, txn.timestamp = end, event.timestamp
                    self.position = BinlogPosition(end.file, end.pos, txn.gtid)
                    txn.end = self.position
                    yield txn
                    txn = Transaction()
                    continue
                if isinstance(event, QueryEvent):
                    query = event.query.strip()
                    match = _TXN_CONTROL.match(query)
                    if match:
                        word = match.group(1).upper()
                        if word == "COMMIT" or (word == "ROLLBACK" and not txn.changes):
                            txn.timestamp = event.timestamp
                            self.position = BinlogPosition(end.file, end.pos, txn.gtid)
                            txn.end = self.position
                            yield txn
                            txn = Transaction()
                        continue
                    schema = (
                        event.schema.decode() if isinstance(event.schema, bytes) else (event.schema or "")
                    )
                    # DDL changes table definitions: table ids may be reused with new columns.
                    stream.table_map.clear()
                    ddl = Transaction(
                        changes=[DdlChange(schema, query)],
                        gtid=txn.gtid,
                        timestamp=event.timestamp,
                    )
                    self.position = BinlogPosition(end.file, end.pos, txn.gtid)
                    ddl.end = self.position
                    txn = Transaction()
                    yield ddl
        finally:
            self.close()
