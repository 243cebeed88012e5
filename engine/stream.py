"""The binlog reader: source transactions, in order, from a checkpoint.

Runs python-mysql-replication (file/position resume, blocking with heartbeats) and groups its events
into `Transaction`s that end at a commit (XID, or COMMIT for non-transactional tables) or are one DDL
statement, each with the binlog position right after it: the only positions a checkpoint may take.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pymysql
from pymysql.protocol import MysqlPacket
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import (
    FormatDescriptionEvent,
    GtidEvent,
    HeartbeatLogEvent,
    MariadbGtidEvent,
    QueryEvent,
    RotateEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.row_event import DeleteRowsEvent, TableMapEvent, UpdateRowsEvent, WriteRowsEvent

from engine import rowdecode
from engine.connect import META_DATABASE, BinlogPosition, ssl_options
from engine.ddl import SessionContext, parse_status_vars
from engine.errors import AccessDenied, Unreplicable
from engine.spec import SYSTEM_DATABASES, Endpoint

rowdecode.install()

HEARTBEAT_SECONDS = 1.0
# A source transaction bigger than this is handed over in pieces, so memory stays bounded; the DR
# side still commits it once, with its checkpoint, after the last piece.
PARTIAL_ROWS = 20000
# An XA transaction is held whole until its PREPARE (its rows must not reach the DR side before the
# source decides): past this many rows the task fails rather than growing without bound.
XA_MAX_ROWS = 2_000_000
STREAM_BUFFER = 1 << 20


@dataclass
class RowChange:
    """Consecutive row events of one table within a transaction."""

    kind: str  # "insert" | "update" | "delete"
    schema: str
    table: str
    rows: list  # insert/delete: tuples of SQL literals; update: (before, after) pairs
    # the source session ran with foreign_key_checks=0 (rows event flag NO_FOREIGN_KEY_CHECKS_F): a
    # replica applies these rows without FK checks too, or a child row without parent stops it
    fk_checks_off: bool = False


@dataclass
class DdlChange:
    schema: str  # the default database the statement ran in ("" when none)
    statement: str
    context: SessionContext | None = None  # the source session's settings (None: not known)


@dataclass
class Transaction:
    changes: list[RowChange | DdlChange] = field(default_factory=list)
    end: BinlogPosition | None = None
    gtid: str | None = None
    timestamp: int = 0  # source commit time (epoch seconds)
    rows: int = 0
    partial: bool = False  # a piece of a big transaction: apply, but commit only with its last piece
    # XA: ("prepare", xid) holds `changes` back until ("commit", xid) applies them or
    # ("rollback", xid) drops them (see engine/xa.py); None for every other transaction
    xa: tuple[str, str] | None = None

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
_XA_STATEMENT = re.compile(r"^\s*XA\s+(START|BEGIN|END|PREPARE|COMMIT|ROLLBACK)\b\s*(.*?)\s*$", re.I | re.S)


def xid_text(gtrid: bytes, bqual: bytes, format_id: int) -> str:
    """An XID as the binlog's XA statements spell it (X'gtrid',X'bqual',formatID)."""
    return f"X'{gtrid.hex()}',X'{bqual.hex()}',{format_id}"


def _xid_of(rest: str) -> str:
    """The XID of an `XA END|COMMIT|ROLLBACK <xid> [ONE PHASE]` statement, spaces removed."""
    rest = re.sub(r"\s+ONE\s+PHASE\s*$", "", rest, flags=re.I)
    return re.sub(r"\s+", "", rest)


def reader_server_id(task_name: str) -> int:
    """A server id for our binlog reader: stable per task, away from typical server ids."""
    return 0x40000000 + (zlib.crc32(task_name.encode()) & 0x0FFFFFFF)


# ---- fast path -------------------------------------------------------------------------------
# python-mysql-replication builds a Python event object (and, per rows event, re-reads its table map's
# whole attribute dict) for every event: at OLTP rates that, not the network, bounds catch-up. The
# frequent events (rows, XID, query, GTID, heartbeat) are parsed here straight from the packet;
# everything else (table maps, rotations, format descriptions) still goes through the library, which
# keeps its table map cache and position bookkeeping.

_u16 = struct.Struct("<H").unpack_from
_u32 = struct.Struct("<I").unpack_from
_HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server_id, event_size, log_pos, flags
ROWS_V1 = {23: "insert", 24: "update", 25: "delete"}
ROWS_V2 = {30: "insert", 31: "update", 32: "delete"}
QUERY, XID, TABLE_MAP, HEARTBEAT, MYSQL_GTID, MYSQL_ANON_GTID, MARIADB_GTID = 2, 16, 19, 27, 33, 34, 162
FL_PREPARED_XA = 64  # MariaDB GTID event flag (log_event.h)
NO_FK_CHECKS_F = 2  # rows event flag: written under foreign_key_checks=0
MARIADB_COMPRESSED = {166, 167, 168, 169, 170, 171}
MYSQL_PARTIAL_UPDATE_ROWS, MYSQL_TRANSACTION_PAYLOAD, INCIDENT = 39, 40, 26
LOAD_DATA = {6, 8, 9, 10, 11, 12, 17, 18}  # LOAD DATA logged as a statement (binlog_format not ROW)
_ROWS_KIND = {**ROWS_V1, **ROWS_V2}
FAST_TYPES = {*ROWS_V1, *ROWS_V2, QUERY, XID, HEARTBEAT, MYSQL_GTID, MYSQL_ANON_GTID, MARIADB_GTID}


def refusal(etype: int) -> str | None:
    """Why an event of this type cannot be replayed (None: it can, or carries no change).

    These events carry changes the library would filter away in silence; the task must fail instead.
    """
    if etype in MARIADB_COMPRESSED:
        return (
            "the service database writes compressed binlog events (log_bin_compress=ON); DRS Desktop "
            "cannot read them. Fix: SET GLOBAL log_bin_compress=OFF; (and log_bin_compress=OFF under "
            "[mysqld] in my.cnf); changes written while it was ON cannot be replayed: start the task "
            "again with a new initial copy"
        )
    if etype == MYSQL_TRANSACTION_PAYLOAD:
        return (
            "the service database writes compressed transactions (TRANSACTION_PAYLOAD events, "
            "binlog_transaction_compression=ON); DRS Desktop cannot read them. Fix: SET GLOBAL "
            "binlog_transaction_compression=OFF; (and binlog_transaction_compression=OFF under [mysqld] "
            "in my.cnf; sessions that set it themselves must stop); transactions written while it was "
            "ON cannot be replayed: start the task again with a new initial copy"
        )
    if etype == MYSQL_PARTIAL_UPDATE_ROWS:
        return (
            "the service database logs partial JSON updates (PARTIAL_UPDATE_ROWS events, "
            "binlog_row_value_options=PARTIAL_JSON); DRS Desktop needs every updated row in full. Fix: "
            "SET GLOBAL binlog_row_value_options=''; (and binlog_row_value_options='' under [mysqld] in "
            "my.cnf; sessions that set it themselves must stop); updates written while it was set "
            "cannot be replayed: start the task again with a new initial copy"
        )
    if etype == INCIDENT:
        return (
            "the service database's binlog has an incident event: it lost changes it could not log "
            "(e.g. a failed write of its binlog cache), so the DR copy cannot follow it. Fix: start the "
            "task again with a new initial copy"
        )
    if etype in LOAD_DATA:
        return (
            "the service database logged a LOAD DATA statement instead of its rows (binlog_format was "
            "not ROW for that session); DRS Desktop replays row events only. Fix: SET GLOBAL "
            "binlog_format='ROW'; and make sure no session sets another format, then start the task "
            "again with a new initial copy"
        )
    return None


class _LibraryFiltered(Exception):
    """The library filtered the one packet it was given and asked for the next one."""


@dataclass(slots=True)  # one per event: no per-object dict
class FastRows:
    kind: str
    table_id: int
    timestamp: int
    data: bytes
    offset: int
    end: int
    bitmap1: bytes
    bitmap2: bytes | None
    flags: int = 0  # rows event flags (STMT_END_F 1, NO_FOREIGN_KEY_CHECKS_F 2, RELAXED_UNIQUE_CHECKS_F 4)


@dataclass(slots=True)  # one per event: no per-object dict
class FastXid:
    timestamp: int


@dataclass
class FastQuery:
    timestamp: int
    schema: str
    query: str
    # the raw event and where its status variables and query text lie: parsed only for DDL (rare)
    data: bytes = b""
    status_at: int = 0
    status_len: int = 0
    query_at: int = 0
    end: int = 0

    def context(self, vendor: str | None = None) -> SessionContext:
        return parse_status_vars(self.data, self.status_at, self.status_len, vendor)

    def text(self, ctx: SessionContext) -> str:
        """The statement decoded in the character set its client sent it in."""
        encoding = ctx.encoding()
        if encoding == "utf-8":
            return self.query
        return self.data[self.query_at : self.end].decode(encoding, "backslashreplace")


@dataclass(slots=True)  # one per event: no per-object dict
class FastGtid:
    gtid: str | None
    xa: bool = False  # MariaDB: the transaction that follows is an XA transaction being prepared


@dataclass(slots=True)  # one per event: no per-object dict
class FastHeartbeat:
    log_pos: int


def _lenenc(data: bytes, p: int) -> tuple[int, int]:
    first = data[p]
    if first < 251:
        return first, p + 1
    size = {252: 2, 253: 3, 254: 8}[first]
    return int.from_bytes(data[p + 1 : p + 1 + size], "little"), p + 1 + size


def parse_fast(data: bytes, checksum: bool) -> tuple[object, int]:
    """(event, log_pos) for a packet whose type is in FAST_TYPES; data[0] is the OK byte."""
    timestamp, etype, server_id, _size, log_pos, _flags = _HEADER.unpack_from(data, 1)
    end = len(data) - (4 if checksum else 0)
    p = 20
    kind = _ROWS_KIND.get(etype)
    if kind is not None:
        table_id = int.from_bytes(data[p : p + 6], "little")
        flags = _u16(data, p + 6)[0]
        p += 8  # table id, flags
        if etype >= 30:  # version 2: extra data, whose length includes its own two bytes
            p += _u16(data, p)[0]
        ncols = data[p]
        if ncols < 251:
            p += 1
        else:
            ncols, p = _lenenc(data, p)
        nbytes = (ncols + 7) >> 3
        bitmap1 = data[p : p + nbytes]
        p += nbytes
        bitmap2 = None
        if kind == "update":
            bitmap2 = data[p : p + nbytes]
            p += nbytes
        return FastRows(kind, table_id, timestamp, data, p, end, bitmap1, bitmap2, flags), log_pos
    if etype == XID:
        return FastXid(timestamp), log_pos
    if etype == QUERY:
        db_len = data[p + 8]
        status_len = _u16(data, p + 11)[0]
        q = p + 13 + status_len
        schema = data[q : q + db_len].decode("utf-8", "backslashreplace")
        query = data[q + db_len + 1 : end].decode("utf-8", "backslashreplace")
        return FastQuery(timestamp, schema, query, data, p + 13, status_len, q + db_len + 1, end), log_pos
    if etype == MARIADB_GTID:
        seq = int.from_bytes(data[p : p + 8], "little")
        domain = _u32(data, p + 8)[0]
        return FastGtid(f"{domain}-{server_id}-{seq}", bool(data[p + 12] & FL_PREPARED_XA)), log_pos
    if etype == MYSQL_GTID:
        sid = data[p + 1 : p + 17].hex()
        gno = int.from_bytes(data[p + 17 : p + 25], "little")
        return FastGtid(f"{sid[:8]}-{sid[8:12]}-{sid[12:16]}-{sid[16:20]}-{sid[20:]}:{gno}"), log_pos
    if etype == MYSQL_ANON_GTID:
        return FastGtid(None), log_pos
    return FastHeartbeat(log_pos), log_pos


def _only(pkt: object) -> Callable[..., object]:
    """A packet reader that returns `pkt` once; asked again, it stops the library's fetchone.

    The library must never read packets itself: one it parsed would skip the checks above (a
    compressed or partial event would be filtered away in silence).
    """
    pending = [pkt]

    def reader(*args: object, **kwargs: object) -> object:
        if pending:
            return pending.pop()
        raise _LibraryFiltered

    return reader


CR_SERVER_LOST = 2013  # pymysql's error for a connection lost mid-read (the runner reconnects)
MAX_PACKET_LEN = (1 << 24) - 1  # a payload this long continues in the next packet


def _lost(conn: pymysql.connections.Connection, exc: OSError | None) -> pymysql.err.OperationalError:
    """What pymysql's _read_bytes raises when a read fails or comes back short (the runner
    reconnects); the connection is closed, as pymysql closes it."""
    conn._force_close()
    detail = f" ({exc})" if exc is not None else ""
    message = f"Lost connection to MySQL server during query{detail}"
    return pymysql.err.OperationalError(CR_SERVER_LOST, message)


# The pymysql internals read_payload uses (pymysql 1.1.1 to 1.2.x); a pymysql without them keeps its own reader.
_FAST_READ_ATTRS = frozenset({"_rfile", "_sock", "_next_seq_id", "_read_timeout", "_current_timeout"})


def read_payload(conn: pymysql.connections.Connection) -> bytes:
    """The next packet's payload, checked as pymysql's _read_packet checks it (sequence number, error
    packet), without the packet object and the half a dozen calls pymysql spends on every packet."""
    if conn._current_timeout != conn._read_timeout:
        conn._sock.settimeout(conn._read_timeout)
        conn._current_timeout = conn._read_timeout
    read = conn._rfile.read
    parts: list[bytes] = []
    while True:
        try:
            header = read(4)
        except OSError as exc:
            raise _lost(conn, exc) from exc
        except BaseException:
            conn._force_close()
            raise
        if len(header) < 4:
            raise _lost(conn, None)
        seq = header[3]
        if seq != conn._next_seq_id:
            conn._force_close()
            if seq == 0:  # MariaDB sends its shutdown error with sequence number 0
                raise pymysql.err.OperationalError(
                    CR_SERVER_LOST, "Lost connection to MySQL server during query"
                )
            raise pymysql.err.InternalError(
                f"Packet sequence number wrong - got {seq} expected {conn._next_seq_id}"
            )
        conn._next_seq_id = (seq + 1) & 0xFF
        size = header[0] | header[1] << 8 | header[2] << 16
        try:
            data = read(size)
        except OSError as exc:
            raise _lost(conn, exc) from exc
        except BaseException:
            conn._force_close()
            raise
        if len(data) < size:
            raise _lost(conn, None)
        if size < MAX_PACKET_LEN and not parts:
            break  # the usual case: one packet
        parts.append(data)
        if size < MAX_PACKET_LEN:
            data = b"".join(parts)
            break
    if data[0] == 0xFF:
        MysqlPacket(data, conn.encoding).raise_for_error()
    return data


class _FastStream(BinLogStreamReader):
    """BinLogStreamReader whose frequent events take the fast path above."""

    bytes_read = 0  # binlog bytes received (monitoring: one addition per packet)
    _fast_conn: object = None  # the connection read_payload was found to know

    def fetchone(self):  # type: ignore[override]
        while True:
            if not self._BinLogStreamReader__connected_stream:  # type: ignore[attr-defined]
                self._BinLogStreamReader__connect_to_stream()  # type: ignore[attr-defined]
                # Reads of 8 KB mean a syscall (and a GIL hand-over to the apply thread) every few
                # events; 1 MB reads take a burst of the binlog at once. Safe to swap right here: the
                # dump command was just sent and nothing of its answer has been read yet.
                conn = self._stream_connection
                conn._rfile = conn._sock.makefile("rb", buffering=STREAM_BUFFER)
            if not self._BinLogStreamReader__connected_ctl:  # type: ignore[attr-defined]
                self._BinLogStreamReader__connect_to_ctl()  # type: ignore[attr-defined]
            conn = self._stream_connection
            pkt = None  # built only for the library, which needs one (rare events)
            fast = self._fast_conn is conn
            if not fast and isinstance(conn, pymysql.connections.Connection) and _FAST_READ_ATTRS.issubset(vars(conn)):
                self._fast_conn = conn  # asked once per connection, not per packet
                fast = True
            if fast:
                data = read_payload(conn)
            else:  # not pymysql's own connection (whose internals read_payload knows): its packet API
                pkt = conn._read_packet()
                data = pkt.get_all_data()
            if data[0] == 0xFE and len(data) < 9:  # EOF packet: the server ended the dump
                self.close()
                return None
            if data[0] != 0 or len(data) < 7:  # not an OK packet: no event
                continue
            self.bytes_read += len(data)
            etype = data[5]
            if etype in FAST_TYPES:
                event, log_pos = parse_fast(data, self._BinLogStreamReader__use_checksum)  # type: ignore[attr-defined]
                if log_pos:
                    self.log_pos = log_pos
                return event
            if etype == TABLE_MAP and int.from_bytes(data[20:26], "little") in self.table_map:
                # known table id (the cache is dropped on every DDL, rotate and new binlog file): nothing to parse
                log_pos = _HEADER.unpack_from(data, 1)[4]
                if log_pos:
                    self.log_pos = log_pos
                continue
            reason = refusal(etype)
            if reason:
                raise Unreplicable(f"{reason} (event type {etype} ending at {self.log_file}:{_HEADER.unpack_from(data, 1)[4]})")
            # The library handles this packet (and keeps its table maps); it must not read further
            # packets on its own, so it gets this one packet to parse.
            conn._read_packet = _only(pkt if pkt is not None else MysqlPacket(data, conn.encoding))
            try:
                return super().fetchone()
            except _LibraryFiltered:
                continue  # filtered (an event we do not use): on with the next packet, here
            finally:
                if conn.__dict__.get("_read_packet") is not None:
                    del conn._read_packet


# The binlog connection (it logs in by itself, then asks to read the binlog) was refused: wrong
# password, or a user without REPLICATION SLAVE (1227). The runner names the side and the fix.
ACCESS_DENIED = {1044, 1045, 1142, 1227, 1698}


def _access_denied(source: Endpoint, exc: pymysql.err.MySQLError) -> AccessDenied:
    code, text = exc.args[0], str(exc.args[1]) if len(exc.args) > 1 else ""
    if code == 1227 or "REPLICATION" in text.upper():
        detail = (f"the user {source.user!r} may not read the binlog: it needs the REPLICATION SLAVE privilege "
                  f"(MySQL error {code}: {text})")  # fmt: skip
    else:
        detail = f"access denied for user {source.user!r} while opening the binlog connection (MySQL error {code}: {text})"
    return AccessDenied(f"{source.user}@{source.address}", detail)


class StreamDropped(ConnectionError):
    """The binlog connection was closed under the reader (pymysql drops its socket on a lost
    connection; a read after that fails as AttributeError/ValueError): reconnect, it is no bug."""


def _socket_gone(stream: BinLogStreamReader) -> bool:
    conn = getattr(stream, "_stream_connection", None)
    return conn is None or getattr(conn, "_sock", None) is None or getattr(conn, "_rfile", None) is None


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
        self._closed_bytes = 0  # read by streams already closed
        self.vendor: str | None = None  # "mariadb" | "mysql", from the binlog's format description

    @property
    def bytes_read(self) -> int:
        stream = self.stream
        return self._closed_bytes + (getattr(stream, "bytes_read", 0) if stream is not None else 0)

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
            "password": self.source.password.reveal().encode("utf-8"),  # pymysql would send text as latin-1
            "charset": "utf8mb4",
            "connect_timeout": 10,
            **(ssl_options(self.source) or {}),
        }
        return _FastStream(
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
                TableMapEvent,
                FormatDescriptionEvent,
                RotateEvent,
                XidEvent,
                QueryEvent,
                GtidEvent,
                MariadbGtidEvent,
                HeartbeatLogEvent,
                XAPrepareEvent,
                WriteRowsEvent,
                UpdateRowsEvent,
                DeleteRowsEvent,
            ],  # fmt: skip
            enable_logging=False,
        )

    def close(self) -> None:
        if self.stream is not None:
            self._closed_bytes += getattr(self.stream, "bytes_read", 0)
            # Shut the socket down first: the reader thread may be blocked reading it (a network that
            # went silent), holding the buffered reader that close() must lock; the shutdown ends that
            # read at once, where close() alone waited for data that may never come.
            sock = getattr(getattr(self.stream, "_stream_connection", None), "_sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # not connected (any more)
            try:
                self.stream.close()
            except Exception:  # closing a dead socket must not hide the real error
                pass
            self.stream = None

    def __iter__(self) -> Iterator[Transaction | Heartbeat]:
        self.stream = stream = self._open()
        current_file = self.position.file
        txn = Transaction()
        in_txn = False  # pieces of a big transaction were handed over, its end not seen yet
        in_xa = False  # the rows being read belong to an XA transaction (held whole until PREPARE)
        schema_wanted: dict[str, bool] = {}  # wants_schema() per schema name, asked once
        try:
            while not self.stop.is_set():
                try:
                    event = stream.fetchone()
                except (AttributeError, ValueError, struct.error, IndexError) as exc:
                    if _socket_gone(stream):
                        raise StreamDropped(f"the binlog connection dropped mid-packet ({type(exc).__name__}: {exc})") from exc
                    raise  # read on a live socket: a whole packet we failed to parse (a bug)
                except pymysql.err.MySQLError as exc:
                    if exc.args and exc.args[0] in ACCESS_DENIED:
                        raise _access_denied(self.source, exc) from None
                    raise
                if event is None:
                    continue
                # the three events of every transaction first, by exact type (cheaper than isinstance)
                event_class = type(event)
                if event_class is FastXid:
                    txn.timestamp = event.timestamp
                    self.position = txn.end = BinlogPosition(current_file, stream.log_pos, txn.gtid)
                    yield txn
                    txn, in_txn = Transaction(), False
                    continue
                if event_class is FastGtid:
                    txn.gtid = event.gtid
                    in_xa = event.xa
                    continue
                if event_class is FastRows:
                    table = stream.table_map.get(event.table_id)
                    if table is None:
                        # every rows event follows its table map in the same transaction: a missing
                        # one means rows we cannot place; never drop them in silence
                        raise Unreplicable(
                            f"a rows event at {current_file}:{stream.log_pos} names table id {event.table_id}, "
                            "which no table map event before it described; the binlog cannot be replayed from here"
                        )
                    wanted = schema_wanted.get(table.schema)
                    if wanted is None:
                        wanted = schema_wanted[table.schema] = self.wants_schema(table.schema)
                    if not wanted:
                        continue
                    rows = rowdecode.decode_table_rows(
                        table, event.data, event.offset, event.end, event.bitmap1, event.bitmap2, event.kind
                    )
                    self._add_rows(txn, event.kind, table.schema, table.table, rows, event.timestamp, bool(event.flags & NO_FK_CHECKS_F))
                    if txn.rows >= PARTIAL_ROWS:
                        if in_xa:
                            self._check_xa_size(txn)
                        else:
                            in_txn = True
                            yield self._piece(txn)
                    continue
                if isinstance(event, TableMapEvent):
                    continue
                if isinstance(event, FormatDescriptionEvent):
                    # a new binlog file, maybe of a restarted server: table ids start over there
                    stream.table_map.clear()
                    version = getattr(event, "mysql_version_str", "") or ""
                    version = version.decode("ascii", "replace") if isinstance(version, bytes) else str(version)
                    self.vendor = "mariadb" if "mariadb" in version.lower() else "mysql"
                    continue
                if isinstance(event, RotateEvent):
                    stream.table_map.clear()
                    current_file = event.next_binlog
                    if not txn.changes:
                        self.position = BinlogPosition(current_file, event.position, self.position.gtid)
                    continue
                if isinstance(event, HeartbeatLogEvent | FastHeartbeat):
                    if not txn.changes and txn.gtid is None and not in_txn:
                        # Sent only when the source has nothing more to send: every event before
                        # this position has been read, so it is a safe checkpoint too.
                        if stream.log_pos and stream.log_pos > self.position.pos and current_file == self.position.file:
                            self.position = BinlogPosition(current_file, stream.log_pos, self.position.gtid)
                        yield Heartbeat(self.position, time.monotonic())
                    continue
                end = BinlogPosition(current_file, stream.log_pos, None)
                if isinstance(event, MariadbGtidEvent | GtidEvent | FastGtid):
                    txn.gtid = event.gtid
                    in_xa = bool(getattr(event, "xa", False) or (getattr(event, "flags", 0) & FL_PREPARED_XA and isinstance(event, MariadbGtidEvent)))
                    continue
                if isinstance(event, XAPrepareEvent):
                    txn.timestamp = event.timestamp
                    self.position = BinlogPosition(end.file, end.pos, txn.gtid)
                    txn.end = self.position
                    if not event.one_phase:  # XA COMMIT ... ONE PHASE (MySQL) commits here, like an XID
                        txn.xa = ("prepare", xid_text(event.xid_gtrid, event.xid_bqual, event.xid_format_id))
                    yield txn
                    txn, in_txn, in_xa = Transaction(), False, False
                    continue
                if isinstance(event, WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent):
                    if self.wants_schema(event.schema):
                        kind = "insert" if isinstance(event, WriteRowsEvent) else "update" if isinstance(event, UpdateRowsEvent) else "delete"
                        self._add_rows(txn, kind, event.schema, event.table, event.rows, event.timestamp, bool(event.flags & NO_FK_CHECKS_F))
                        if txn.rows >= PARTIAL_ROWS:
                            if in_xa:
                                self._check_xa_size(txn)
                            else:
                                in_txn = True
                                yield self._piece(txn)
                    continue
                if isinstance(event, XidEvent | FastXid):
                    txn.timestamp = event.timestamp
                    self.position = BinlogPosition(end.file, end.pos, txn.gtid)
                    txn.end = self.position
                    yield txn
                    txn, in_txn = Transaction(), False
                    continue
                if isinstance(event, QueryEvent | FastQuery):
                    query = event.query.strip()
                    xa = _XA_STATEMENT.match(query)
                    if xa:
                        verb = xa.group(1).upper()
                        if verb in ("START", "BEGIN"):
                            in_xa = True  # MySQL writes XA START as a statement (MariaDB flags its GTID)
                        elif verb in ("COMMIT", "ROLLBACK"):
                            # the source's decision on a transaction prepared earlier (its own group)
                            done = Transaction(gtid=txn.gtid, timestamp=event.timestamp, xa=(verb.lower(), _xid_of(xa.group(2))))
                            self.position = BinlogPosition(end.file, end.pos, txn.gtid)
                            done.end = self.position
                            txn, in_xa = Transaction(), False
                            yield done
                        continue
                    match = _TXN_CONTROL.match(query)
                    if match:
                        word = match.group(1).upper()
                        if word == "COMMIT" or (word == "ROLLBACK" and not txn.changes):
                            txn.timestamp = event.timestamp
                            self.position = BinlogPosition(end.file, end.pos, txn.gtid)
                            txn.end = self.position
                            yield txn
                            txn, in_txn = Transaction(), False
                        continue
                    schema = event.schema.decode() if isinstance(event.schema, bytes) else (event.schema or "")
                    # DDL changes table definitions: table ids may be reused with new columns.
                    stream.table_map.clear()
                    context = event.context(self.vendor) if isinstance(event, FastQuery) else None
                    if context is not None:
                        query = event.text(context).strip()  # type: ignore[union-attr]
                    ddl = Transaction(changes=[DdlChange(schema, query, context)], gtid=txn.gtid, timestamp=event.timestamp)
                    self.position = BinlogPosition(end.file, end.pos, txn.gtid)
                    ddl.end = self.position
                    txn = Transaction()
                    yield ddl
        finally:
            self.close()

    @staticmethod
    def _check_xa_size(txn: Transaction) -> None:
        if txn.rows > XA_MAX_ROWS:
            raise Unreplicable(
                f"an XA transaction on the service database changes more than {XA_MAX_ROWS:,} rows before "
                "its XA PREPARE; DRS Desktop holds an XA transaction whole until the source commits or rolls "
                "it back and cannot hold one this big. Split the transaction, or start the task after it"
            )

    @staticmethod
    def _piece(txn: Transaction) -> Transaction:
        piece = Transaction(changes=txn.changes, gtid=txn.gtid, timestamp=txn.timestamp, rows=txn.rows, partial=True)
        txn.changes, txn.rows = [], 0
        return piece

    @staticmethod
    def _add_rows(
        txn: Transaction, kind: str, schema: str, table: str, rows: list, timestamp: int, fk_off: bool = False
    ) -> None:
        changes = txn.changes
        last = changes[-1] if changes else None
        # field by field, no tuples built: this runs for every rows event
        if (
            isinstance(last, RowChange)
            and last.kind == kind
            and last.table == table
            and last.schema == schema
            and last.fk_checks_off == fk_off
        ):
            last.rows.extend(rows)
        else:
            # the fast path decodes into a fresh list per event: kept as it is, not copied
            changes.append(RowChange(kind, schema, table, rows if type(rows) is list else list(rows), fk_off))
        txn.rows += len(rows)
        txn.timestamp = timestamp
