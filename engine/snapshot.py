"""The initial DR phase: a consistent snapshot of the service databases copied to the DR server.

FTWRL + one consistent-snapshot transaction per reader (as mydumper does) pins the binlog position;
schema first, then data in primary-key chunks by several readers and writers, then views, routines
and events. The service server formats each chunk as ready SQL tuples (hex for every string, so every
byte survives), so Python only moves bytes; bounded queues keep memory flat.

DDL racing the copy. information_schema and SHOW CREATE are not MVCC, and a table's SELECT is parsed
against its current definition: a DDL committed after the snapshot began either changes the schema
read (the DR table then already has the change and the stream's replay of the DDL fails, e.g. 1060
duplicate column) or breaks the read of the old rows (1412 "Table definition has changed" after a
rebuild, 1054 after DROP COLUMN, 1146 after RENAME), and the whole copy starts over. So while the copy
reads, DDL waits, DML does not: MariaDB `BACKUP STAGE START` + `BACKUP STAGE BLOCK_DDL` (MySQL 8:
`LOCK INSTANCE FOR BACKUP`), taken while FTWRL is held and released as soon as the readers are done.
Measured on MariaDB 10.11:
- an ALTER/CREATE INDEX/RENAME/TRUNCATE/DROP waiting for BLOCK_DDL waits "for backup lock" holding no
  table lock: INSERT/UPDATE/DELETE/SELECT on the very table go on;
- but an online ALTER already *running* when BLOCK_DDL is taken reaches its commit, takes its exclusive
  table lock and only then waits for the backup lock, so DML on that table waits with it. Hence
  BLOCK_DDL is taken only under FTWRL, which is granted only when no DDL runs (it waits for them);
- BLOCK_DDL also holds up writes to non-transactional tables (MyISAM, CSV, Aria TRANSACTIONAL=0) on the
  whole server: with any of those outside the system schemas, DDL is left unblocked (DR log warning).
The schema is read after UNLOCK TABLES (not under FTWRL, which would hold writes up for the length of
the schema read): with DDL blocked since before the position, it is the snapshot's schema, and every
later DDL lies after the position in the binlog, so the stream applies it exactly once. Without the
block (no RELOAD, MariaDB < 10.4, MySQL without BACKUP_ADMIN, non-transactional tables) the behaviour
is as before: a racing DDL may make the copy start over (automatic retry) or fail the stream.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pymysql
import pymysql.cursors

from engine import schema as sch
from engine.connect import (
    META_DATABASE,
    BinlogPosition,
    binlog_position,
    connect,
    qualified,
    quote_ident,
    server_info,
    user_databases,
    variables,
)
from engine.errors import ReplicationError
from engine.progress import CopyProgress, LogFn, TableProgress
from engine.schema import fetch, server_error, text
from engine.spec import SYSTEM_DATABASES, TaskSpec
from engine.throttle import Throttle

CHUNK_BYTES = 4 * 1024 * 1024  # SQL text per chunk read from the source (and per INSERT batch)
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 100, 200_000
SPLIT_MIN_ROWS = 200_000  # tables larger than this are read as several key ranges
SPLIT_RANGE_ROWS = 100_000
INDEX_LATER_MIN_ROWS = 100_000  # tables this big get their secondary indexes after the load
PROGRESS_INTERVAL = 0.25
QUEUE_PER_WRITER = 2
# FLUSH TABLES WITH READ LOCK waits for running statements, and while it waits the source's writes
# wait behind it. So: no attempt while a long statement runs (as mydumper's long-query guard), and
# each attempt gives up after a few seconds (writes blocked at most that long), then tries again.
LOCK_WAIT_TIMEOUT = 5
LOCK_ATTEMPTS = 12
LONG_QUERY_SECONDS = 30
LONG_QUERY_WAIT = 300  # seconds to wait for long statements to end before giving up
# Storage engines whose writes BACKUP STAGE BLOCK_DDL does not hold up (Aria only when transactional).
DDL_BLOCK_SAFE_ENGINES = ("InnoDB", "MEMORY")
DDL_BLOCK_IDLE = 600  # seconds the server keeps the DDL block of a silent client (see _start_ddl_block)
DDL_BLOCK_PING = 60

INT_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
NUMBER_TYPES = INT_TYPES | {"decimal", "numeric", "double", "real", "year"}
TEMPORAL_TYPES = {"date", "datetime", "timestamp", "time"}
TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
GEOMETRY_TYPES = {
    "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
    "geometrycollection", "geomcollection",
}  # fmt: skip
KEYSET_TYPES = (
    NUMBER_TYPES - {"double", "real"} | TEMPORAL_TYPES | {"char", "varchar", "binary", "varbinary", "bit"}
)


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


# ---- how each column travels -------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    charset: str | None
    max_octets: int
    generated: bool = False

    @property
    def kind(self) -> str:
        t = self.data_type
        if t in NUMBER_TYPES:
            return "number"
        if t == "float":
            return "float"
        if t == "bit":
            return "bit"
        if t in TEMPORAL_TYPES:
            return "temporal"
        if t in TEXT_TYPES or (self.charset and self.charset != "binary" and t not in GEOMETRY_TYPES):
            return "text"
        if t in GEOMETRY_TYPES:
            return "geometry"
        if t in BINARY_TYPES:
            return "binary"
        return "quoted"  # uuid, inet4, inet6 and other types with a plain text form

    @property
    def literal_sql(self) -> str:
        """Server-side expression: this column's value as an SQL literal, 'NULL' for NULL.

        Never IFNULL around a function: HEX() of a value over max_allowed_packet returns NULL, which
        must stay NULL (so the row is re-read raw) instead of turning into the literal NULL.
        """
        c = quote_ident(self.name)
        kind = self.kind
        if kind == "number":  # exact in text form (DOUBLE prints the shortest round-trip digits)
            return f"IFNULL({c},'NULL')"
        if kind == "float":  # FLOAT's own text form keeps 6 digits; as DOUBLE it is exact
            return f"IFNULL(CAST({c} AS DOUBLE),'NULL')"
        if kind == "bit":
            return f"IFNULL({c}+0,'NULL')"
        if kind in ("temporal", "quoted"):
            return f"IF({c} IS NULL,'NULL',CONCAT('''',{c},''''))"
        if kind == "text":
            return f"IF({c} IS NULL,'NULL',CONCAT('_{self.charset or 'utf8mb4'} X''',HEX({c}),''''))"
        if kind == "geometry":
            return f"IF({c} IS NULL,'NULL',CONCAT('ST_GeomFromWKB(X''',HEX(ST_AsWKB({c})),''',',ST_SRID({c}),')'))"
        return f"IF({c} IS NULL,'NULL',CONCAT('X''',HEX({c}),''''))"

    @property
    def raw_sql(self) -> str:
        """For rows formatted in Python: long values raw (hexed here), the rest as literals."""
        return quote_ident(self.name) if self.kind in ("text", "binary") else self.literal_sql

    def py_literal(self, value: bytes | None) -> bytes:
        if value is None:
            return b"NULL"
        if self.kind == "text":
            return b"_" + (self.charset or "utf8mb4").encode() + b" X'" + value.hex().encode() + b"'"
        if self.kind == "binary":
            return b"X'" + value.hex().encode() + b"'"
        return value


@dataclass
class TableState:
    """One table being copied: its plan, and progress the workers update under `lock`."""

    db: str
    name: str
    columns: tuple[Column, ...]
    key_columns: tuple[Column, ...]
    key: tuple[str, ...]  # chunking key columns; () when the table has none (one stream)
    key_index: str
    rows_estimate: int
    bytes_estimate: int
    server_format: bool  # rows formatted by the server (False: some value may exceed its packet)
    ranges: list[tuple[int | None, int | None]] = field(default_factory=lambda: [(None, None)])
    lock: threading.Lock = field(default_factory=threading.Lock)
    rows_done: int = 0
    bytes_done: int = 0
    ranges_left: int = 0
    batches_pending: int = 0
    started: float | None = None
    finished: float | None = None
    warned: bool = False

    @property
    def label(self) -> str:
        return f"{self.db}.{self.name}"

    @property
    def insert_prefix(self) -> bytes:
        cols = ",".join(quote_ident(c.name) for c in self.columns)
        return f"INSERT INTO {qualified(self.db, self.name)} ({cols}) VALUES ".encode()


@dataclass(frozen=True)
class Batch:
    table: TableState
    sql: bytes
    rows: int


class _Abort(Exception):
    """Another worker failed or stop was asked: leave quietly."""


# ---- the snapshot --------------------------------------------------------------------------------


class _Snapshot:
    """Reader connections that all see the source at one binlog position."""

    def __init__(self, spec: TaskSpec, parallel: int, log: LogFn):
        self.readers: list[pymysql.connections.Connection] = []
        self.position: BinlogPosition | None = None
        self.spec = spec
        self.parallel = max(1, parallel)
        self.log = log
        # The connection holding DDL back while the copy reads (None: DDL is not blocked), and how.
        self.ddl_block: pymysql.connections.Connection | None = None
        self.ddl_block_how = ""
        self.ddl_unblocked_why: str | None = None
        self.ddl_block_pinged = time.monotonic()

    def open(self) -> None:
        spec = self.spec
        lock_conn = connect(spec.source)
        try:
            info = server_info(lock_conn)
            self.info = info
            readers = [self._reader() for _ in range(self.parallel)]
            self.readers = readers
            self._start_ddl_block(lock_conn)
            try:
                self._lock(lock_conn)
            except pymysql.err.MySQLError as exc:
                if exc.args and exc.args[0] in (1227, 1044, 1045, 1142) and info.is_mariadb:
                    self.release_ddl_block(quiet=True)
                    self.ddl_unblocked_why = None  # the no-RELOAD warning says it
                    self._open_without_lock()
                    return
                raise ReplicationError(
                    f"cannot lock the service database for a consistent snapshot (FLUSH TABLES WITH READ "
                    f"LOCK): {server_error(exc)}"
                ) from None
            try:
                # Under FTWRL no DDL is running (FTWRL waited for them), so the block is granted at
                # once and never catches an online ALTER half-way (see the module docstring).
                self._block_ddl()
                for r in readers:
                    with r.cursor() as cur:
                        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                self.position = binlog_position(lock_conn, info)
            finally:
                with lock_conn.cursor() as cur:
                    cur.execute("UNLOCK TABLES")
        finally:
            lock_conn.close()

    # -- holding DDL back during the copy -----------------------------------------------------------

    def _start_ddl_block(self, conn: pymysql.connections.Connection) -> None:
        """First half of the DDL block, before FTWRL: the checks, and MariaDB's BACKUP STAGE START
        (blocks nothing; fails here, not inside the FTWRL window, if another backup holds it)."""
        info = self.info
        if info.major_minor < ((10, 4) if info.is_mariadb else (8, 0)):
            self._ddl_not_blocked(f"{info.label} has no backup lock")
            return
        if info.is_mariadb:
            risky = fetch(
                conn,
                "SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_TYPE <> 'VIEW' "
                "AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') "
                "AND ENGINE IS NOT NULL AND ENGINE NOT IN %s "
                "AND NOT (ENGINE = 'Aria' AND CREATE_OPTIONS LIKE '%%transactional=1%%') LIMIT 6",
                [DDL_BLOCK_SAFE_ENGINES],
            )
            if risky:
                names = ", ".join(f"{text(db)}.{text(t)} ({text(e)})" for db, t, e in risky[:5])
                more = " and more" if len(risky) > 5 else ""
                self._ddl_not_blocked(
                    f"the backup lock would also hold up writes to the non-transactional tables {names}{more}"
                )
                return
        try:
            block = connect(self.spec.source)
        except Exception as exc:  # noqa: BLE001 - the block is an improvement; the copy goes on without it
            self._ddl_not_blocked(f"no connection for it ({exc})")
            return
        try:
            with block.cursor() as cur:
                # If this process hangs or loses the network, the server drops the block after
                # DDL_BLOCK_IDLE instead of wait_timeout (8 h by default); the copy pings it meanwhile.
                cur.execute(
                    f"SET SESSION lock_wait_timeout = {LOCK_WAIT_TIMEOUT}, wait_timeout = {DDL_BLOCK_IDLE}"
                )
                if info.is_mariadb:
                    cur.execute("BACKUP STAGE START")
        except pymysql.err.MySQLError as exc:
            block.close()
            self._ddl_not_blocked(self._block_failure(exc))
            return
        self.ddl_block = block

    def _block_ddl(self) -> None:
        block = self.ddl_block
        if block is None:
            return
        mariadb = self.info.is_mariadb
        try:
            with block.cursor() as cur:
                cur.execute("BACKUP STAGE BLOCK_DDL" if mariadb else "LOCK INSTANCE FOR BACKUP")
        except pymysql.err.MySQLError as exc:
            self.release_ddl_block(quiet=True)
            self._ddl_not_blocked(self._block_failure(exc))
            return
        self.ddl_block_how = "BACKUP STAGE BLOCK_DDL" if mariadb else "LOCK INSTANCE FOR BACKUP"

    def _block_failure(self, exc: pymysql.err.MySQLError) -> str:
        code = exc.args[0] if exc.args else None
        if code in (1227, 1044, 1045, 1142):
            return "the account lacks the privilege for the backup lock (" + (
                "RELOAD)" if self.info.is_mariadb else "BACKUP_ADMIN)"
            )
        if code == 1205:
            return "another backup holds the backup lock"
        return server_error(exc)

    def _ddl_not_blocked(self, why: str) -> None:
        self.ddl_unblocked_why = why  # told in the DR log once the copy starts

    def keep_ddl_block(self) -> None:
        """Called now and then while the copy reads: keeps the idle block connection alive."""
        block = self.ddl_block
        if block is None or time.monotonic() - self.ddl_block_pinged < DDL_BLOCK_PING:
            return
        self.ddl_block_pinged = time.monotonic()
        try:
            block.ping(reconnect=False)
        except Exception as exc:  # noqa: BLE001 - the copy goes on without the block
            self.ddl_block = None
            with contextlib.suppress(Exception):
                block.close()
            self.log("warning", "snapshot", f"DDL on the service databases is no longer held back during the "
                     f"initial copy: its connection was lost ({exc}); a DDL on a table not yet copied makes the "
                     "copy start over")  # fmt: skip

    def release_ddl_block(self, quiet: bool = False) -> None:
        """Let DDL go on: as soon as the copy's reads are done, and on every error path and stop."""
        block, self.ddl_block = self.ddl_block, None
        if block is None:
            return
        # a lost connection released the lock already
        with contextlib.suppress(Exception), block.cursor() as cur:
            cur.execute("BACKUP STAGE END" if self.info.is_mariadb else "UNLOCK INSTANCE")
        with contextlib.suppress(Exception):
            block.close()
        if self.ddl_block_how and not quiet:
            self.log(
                "info",
                "snapshot",
                "DDL on the service databases goes on again (the initial copy's reads are done)",
            )

    def _long_statements(self, conn: pymysql.connections.Connection) -> list[tuple]:
        return fetch(
            conn,
            "SELECT ID, USER, TIME, LEFT(INFO, 80) FROM information_schema.PROCESSLIST "
            "WHERE COMMAND NOT IN ('Sleep', 'Binlog Dump', 'Binlog Dump GTID', 'Daemon') AND TIME >= %s "
            "AND ID <> CONNECTION_ID() AND INFO IS NOT NULL",
            [LONG_QUERY_SECONDS],
        )

    def _lock(self, conn: pymysql.connections.Connection) -> None:
        """FLUSH TABLES WITH READ LOCK without holding the source's writes up for long."""
        deadline = time.monotonic() + LONG_QUERY_WAIT
        attempt = 0
        while True:
            long_running = self._long_statements(conn)
            if long_running:
                if time.monotonic() > deadline:
                    ids = ", ".join(f"{r[0]} ({text(r[1])}, {r[2]} s)" for r in long_running)
                    raise ReplicationError(
                        f"statements running longer than {LONG_QUERY_SECONDS} s on the service database keep the "
                        f"consistent snapshot from starting (ids {ids}); let them finish or stop them, then retry"
                    )
                self.log("warning", "snapshot", f"waiting for {len(long_running)} long-running statement(s) on the "
                         f"service database before locking it for the snapshot (longest {max(int(r[2]) for r in long_running)} s)")  # fmt: skip
                time.sleep(min(5.0, max(0.5, LONG_QUERY_SECONDS / 6)))
                continue
            attempt += 1
            try:
                with conn.cursor() as cur:
                    cur.execute(f"SET SESSION lock_wait_timeout = {LOCK_WAIT_TIMEOUT}")
                    cur.execute("FLUSH TABLES WITH READ LOCK")
                return
            except pymysql.err.OperationalError as exc:
                if not (exc.args and exc.args[0] == 1205) or attempt >= LOCK_ATTEMPTS:
                    raise
                self.log("warning", "snapshot", f"the snapshot lock waited {LOCK_WAIT_TIMEOUT} s and was released; "
                         f"trying again (attempt {attempt + 1} of {LOCK_ATTEMPTS})")  # fmt: skip
                time.sleep(1.0)

    def _reader(self) -> pymysql.connections.Connection:
        conn = connect(self.spec.source, raw=True, max_allowed_packet=1 << 30)
        with conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.max_allowed_packet")
            self.max_packet = int(cur.fetchone()[0])
            # A chunk longer than this comes back truncated (detected, re-read), never over the packet.
            cur.execute(f"SET SESSION group_concat_max_len = {self.max_packet - 1024}")
        return conn

    def _open_without_lock(self) -> None:
        """MariaDB without RELOAD: one transaction whose snapshot knows its own binlog position."""
        self.log(
            "warning",
            "snapshot",
            "no RELOAD privilege for FLUSH TABLES WITH READ LOCK on the service database: copying with "
            "one reader (serial, slower), and DDL on the service databases is not held back during the copy "
            "(a DDL on a table not yet copied makes the copy start over); grant RELOAD to copy in parallel "
            "with DDL held back",
        )
        for extra in self.readers[1:]:
            extra.close()
        self.readers = self.readers[:1]
        r = self.readers[0]
        with r.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        status = dict(fetch(r, "SHOW STATUS LIKE 'binlog_snapshot_%'"))
        file, pos = status.get("Binlog_snapshot_file"), status.get("Binlog_snapshot_position")
        if not file or not pos:
            raise ReplicationError("binary logging is off on the service database (log_bin)")
        gtid = fetch(r, "SELECT BINLOG_GTID_POS(%s, %s)", [file, pos])[0][0] or None
        self.position = BinlogPosition(file, int(pos), gtid)

    def end_reads(self) -> None:
        """Nothing more is read from the snapshot (the reader threads are gone): end the snapshot
        transactions, whose table metadata locks would make a waiting ALTER (and all DML queued behind
        its exclusive lock) wait until the copy ends, then let DDL go on; it lands after the
        snapshot's position, so the stream applies it."""
        for r in self.readers:
            with contextlib.suppress(Exception):  # a reader that failed may have lost its connection
                r.close()
        self.readers = []
        self.release_ddl_block()

    def close(self) -> None:
        self.release_ddl_block()
        for r in self.readers:
            with contextlib.suppress(Exception):  # closing after a failure; nothing left to save
                r.close()
        self.readers = []


# ---- planning --------------------------------------------------------------------------------------


def table_columns(conn: pymysql.connections.Connection, db: str, table: str) -> tuple[Column, ...]:
    rows = fetch(
        conn,
        "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME, CHARACTER_OCTET_LENGTH, EXTRA, "
        "GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "ORDER BY ORDINAL_POSITION",
        [db, table],
    )
    columns = []
    for name, data_type, charset, octets, extra, generation in rows:
        extra_u = (extra or "").upper()
        # Generated columns (VIRTUAL / STORED / PERSISTENT, system-versioning ROW START/END) are computed
        # by the DR server itself; writing them is an error.
        generated = bool(generation) or any(
            w in extra_u for w in ("GENERATED", "VIRTUAL", "PERSISTENT", "ROW ")
        )
        columns.append(Column(name, data_type.lower(), charset, int(octets or 0), generated))
    return tuple(columns)


def chunk_key(
    conn: pymysql.connections.Connection, db: str, table: str, columns: Sequence[Column]
) -> tuple[str, tuple[str, ...]]:
    """The primary key, else the narrowest non-null unique key whose order the server can seek by."""
    types = {c.name.lower(): c.data_type for c in columns}
    rows = fetch(
        conn,
        "SELECT s.INDEX_NAME, s.COLUMN_NAME, s.SUB_PART, c.IS_NULLABLE FROM information_schema.STATISTICS s "
        "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME "
        "AND c.COLUMN_NAME = s.COLUMN_NAME WHERE s.TABLE_SCHEMA = %s AND s.TABLE_NAME = %s AND s.NON_UNIQUE = 0 "
        "ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX",
        [db, table],
    )
    keys: dict[str, list[tuple[str, Any, str]]] = {}
    for index, col, sub_part, nullable in rows:
        keys.setdefault(index, []).append((col, sub_part, nullable))
    usable = [
        (index, tuple(c for c, _, _ in cols))
        for index, cols in keys.items()
        if all(
            sub is None and nullable == "NO" and types.get(c.lower()) in KEYSET_TYPES
            for c, sub, nullable in cols
        )
    ]
    usable.sort(key=lambda k: (k[0] != "PRIMARY", len(k[1]), k[0]))
    return usable[0] if usable else ("", ())


def _plan_table(
    conn: pymysql.connections.Connection, table: sch.TableDef, parallel: int, max_packet: int
) -> TableState:
    all_columns = table_columns(conn, table.database, table.name)
    columns = tuple(c for c in all_columns if not c.generated)
    index, key = chunk_key(conn, table.database, table.name, all_columns)
    # A row the server formats must fit its max_allowed_packet (hex doubles strings); otherwise CONCAT
    # gives NULL. Keyed tables re-read such chunks in Python; keyless ones are read raw up front.
    widest = sum(2 * c.max_octets + 64 for c in columns)
    state = TableState(
        db=table.database,
        name=table.name,
        columns=columns,
        key_columns=tuple(next(c for c in all_columns if c.name == k) for k in key),
        key=key,
        key_index=index,
        rows_estimate=table.rows_estimate,
        bytes_estimate=2 * table.data_length,
        server_format=bool(key) or widest < max_packet // 2,
    )
    if key and table.rows_estimate >= SPLIT_MIN_ROWS and state.key_columns[0].data_type in INT_TYPES:
        lo, hi = fetch(
            conn,
            f"SELECT MIN({quote_ident(key[0])}), MAX({quote_ident(key[0])}) FROM {qualified(table.database, table.name)}",
        )[0]
        if lo is not None and int(hi) > int(lo):
            n = max(2, min(4 * parallel, table.rows_estimate // SPLIT_RANGE_ROWS))
            lo_i, hi_i = int(lo), int(hi)
            step = max(1, (hi_i - lo_i + 1) // n)
            bounds = sorted({lo_i + i * step for i in range(1, n)} - {lo_i})
            edges: list[int | None] = [None, *bounds, None]
            state.ranges = list(zip(edges[:-1], edges[1:], strict=False))
    state.ranges_left = len(state.ranges)
    return state


# ---- reading ---------------------------------------------------------------------------------------


def key_compare(key: Sequence[str], values: Sequence[bytes], op: str) -> str:
    """(k1, k2, ...) > (v1, ...) or <= written out as ORs: MariaDB's range optimizer does not use an
    index for row-constructor comparisons, but does for this form."""
    cols = [quote_ident(k) for k in key]
    vals = [v.decode() for v in values]
    strict = op[0]  # ">" or "<"

    def rest(i: int) -> str:
        if i == len(cols) - 1:
            return f"{cols[i]} {op} {vals[i]}"
        return f"({cols[i]} {strict} {vals[i]} OR ({cols[i]} = {vals[i]} AND {rest(i + 1)}))"

    return f"{cols[0]} {strict}= {vals[0]} AND {rest(0)}"


def _tuple_sql(columns: Sequence[Column]) -> str:
    """The row as '(v1,v2,...)'. CONCAT, not CONCAT_WS: a value over the packet size comes back NULL
    and must make the whole row NULL (detected and re-read), never vanish from the tuple."""
    return "CONCAT('('," + ",',',".join(c.literal_sql for c in columns) + ",')')"


def _split_tuples(data: bytes, limit: int) -> list[bytes]:
    """Cut '(..),(..),..' into pieces under `limit` at tuple boundaries (no literal contains '),(')."""
    pieces = []
    while len(data) > limit:
        cut = data.rfind(b"),(", 0, limit)
        if cut < 0:
            cut = data.find(b"),(", limit)
            if cut < 0:
                break
        pieces.append(data[: cut + 1])
        data = data[cut + 2 :]
    pieces.append(data)
    return pieces


class _Copier:
    def __init__(
        self,
        spec: TaskSpec,
        snap: _Snapshot,
        tables: list[TableState],
        throttle: Throttle,
        stop: threading.Event,
        log: LogFn,
        target_packet: int,
    ):
        self.spec = spec
        self.snap = snap
        self.tables = tables
        self.throttle = throttle
        self.stop = stop
        self.log = log
        self.abort = threading.Event()
        self.wake = threading.Event()  # a worker ended: the coordinator looks at once
        # Workers never call `log` themselves: the caller's log (the task store) is called from the
        # caller's thread only, when the coordinator flushes these.
        self.messages: queue.SimpleQueue[tuple[str, str, str]] = queue.SimpleQueue()
        self.errors: list[BaseException] = []
        self.n_writers = max(1, len(snap.readers))
        self.batches: queue.Queue[Batch | None] = queue.Queue(maxsize=QUEUE_PER_WRITER * self.n_writers)
        self.work: queue.Queue[tuple[TableState, int | None, int | None]] = queue.Queue()
        flow_cap = max(64 * 1024, throttle.flow.max_mb_s * 1024 * 1024 // 4) if throttle.flow else CHUNK_BYTES
        # An INSERT batch must fit the DR side's packet; a chunk must fit the source's (GROUP_CONCAT).
        self.batch_limit = min(2 * CHUNK_BYTES, target_packet - min(4096, target_packet // 8))
        self.chunk_bytes = max(1024, min(CHUNK_BYTES, flow_cap, self.batch_limit, snap.max_packet // 4))
        self.target_packet = target_packet
        for t in sorted(tables, key=lambda t: -t.bytes_estimate):
            for lo, hi in t.ranges:
                self.work.put((t, lo, hi))

    # -- threads ------------------------------------------------------------------------------

    def run(self, on_tick: Callable[[], None]) -> None:
        readers = [threading.Thread(target=self._reader, args=(c,), name=f"drs-read-{i}", daemon=True)
                   for i, c in enumerate(self.snap.readers)]  # fmt: skip
        writers = [
            threading.Thread(target=self._writer, name=f"drs-write-{i}", daemon=True)
            for i in range(self.n_writers)
        ]
        for t in readers + writers:
            t.start()
        try:
            self._coordinate(readers, writers, on_tick)
        except BaseException:
            self.abort.set()  # e.g. the progress callback failed: stop the workers before leaving
            self._finish(readers, writers)
            raise
        self.flush_log()

    def _finish(self, readers: list[threading.Thread], writers: list[threading.Thread]) -> None:
        for t in readers:
            t.join()
        for _ in writers:
            self._put(None, force=True)
        for t in writers:
            t.join()

    def flush_log(self) -> None:
        while True:
            try:
                entry = self.messages.get_nowait()
            except queue.Empty:
                return
            self.log(*entry)

    def _coordinate(
        self, readers: list[threading.Thread], writers: list[threading.Thread], on_tick: Callable[[], None]
    ) -> None:
        sentinels_sent = False
        while True:
            if self.stop.is_set():
                self.abort.set()
            self.flush_log()
            on_tick()
            self.snap.keep_ddl_block()
            if not sentinels_sent and not any(t.is_alive() for t in readers):
                self.snap.end_reads()
                for _ in writers:
                    self._put(None, force=True)
                sentinels_sent = True
            if not any(t.is_alive() for t in writers):
                break
            self.wake.wait(PROGRESS_INTERVAL)
            self.wake.clear()
        for t in readers:
            t.join()

    def _fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.abort.set()

    def _put(self, batch: Batch | None, force: bool = False) -> None:
        while True:
            if self.abort.is_set() and not force:
                raise _Abort
            try:
                self.batches.put(batch, timeout=0.2)
                return
            except queue.Full:
                if force and self.abort.is_set():
                    # writers are leaving: drop queued work so every writer sees a sentinel
                    with contextlib.suppress(queue.Empty):
                        self.batches.get_nowait()

    def _reader(self, conn: pymysql.connections.Connection) -> None:
        try:
            self._read_all(conn)
        finally:
            self.wake.set()

    def _read_all(self, conn: pymysql.connections.Connection) -> None:
        while not self.abort.is_set():
            try:
                table, lo, hi = self.work.get_nowait()
            except queue.Empty:
                return
            try:
                with table.lock:
                    table.started = table.started or time.monotonic()
                if table.key:
                    self._read_keyset(conn, table, lo, hi)
                else:
                    self._read_stream(conn, table)
                self._range_done(table)
            except _Abort:
                return
            except pymysql.err.MySQLError as exc:
                self._fail(
                    ReplicationError(
                        f"copying table {table.label} failed reading the service database: {server_error(exc)}"
                    )
                )
                return
            except BaseException as exc:  # noqa: BLE001 - reported to the caller by run_initial_copy
                self._fail(exc)
                return

    def _emit(self, table: TableState, rows: list[bytes], nrows: int, source_bytes: int) -> None:
        """Hand rows (SQL tuples) to the writers as INSERT batches under the target's packet size."""
        self.throttle.consume(source_bytes)
        with table.lock:
            table.bytes_done += source_bytes
        prefix = table.insert_prefix
        start, size = 0, len(prefix)
        for i, r in enumerate(rows):
            if size + len(r) + 1 > self.batch_limit and i > start:
                self._send(table, prefix + b",".join(rows[start:i]), i - start)
                start, size = i, len(prefix)
            size += len(r) + 1
        if len(rows) > start:
            self._send(table, prefix + b",".join(rows[start:]), len(rows) - start)

    def _send(self, table: TableState, sql: bytes, nrows: int) -> None:
        if len(sql) > self.batch_limit:
            raise ReplicationError(
                f"copying table {table.label}: a row is larger than max_allowed_packet on the DR database "
                f"({len(sql)} bytes as SQL; raise max_allowed_packet there)"
            )
        with table.lock:
            table.batches_pending += 1
        self._put(Batch(table, sql, nrows))

    def _read_keyset(
        self, conn: pymysql.connections.Connection, table: TableState, lo: int | None, hi: int | None
    ) -> None:
        """One key range, chunk by chunk: find the chunk's last key by walking the index, then let the
        server format the rows up to it as one string (no temporary table on the source)."""
        k0 = quote_ident(table.key[0])
        bounds = ([f"{k0} >= {lo}"] if lo is not None else []) + ([f"{k0} < {hi}"] if hi is not None else [])
        order = ", ".join(quote_ident(k) for k in table.key)
        source = f"{qualified(table.db, table.name)} FORCE INDEX ({quote_ident(table.key_index)})"
        key_literal = "CONCAT(" + ",',',".join(c.literal_sql for c in table.key_columns) + ")"
        tuple_sql = _tuple_sql(table.columns)
        # information_schema's sizes can be far off (fresh tables): a small first chunk, then the
        # chunks adapt to the row size actually read.
        n = MIN_CHUNK_ROWS
        last: list[bytes] | None = None
        while True:
            if self.stop.is_set() or self.abort.is_set():
                raise _Abort
            where = " AND ".join(bounds + ([key_compare(table.key, last, ">")] if last else [])) or "1"
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT {key_literal} FROM {source} WHERE {where} ORDER BY {order} LIMIT 1 OFFSET {n - 1}"
                )
                found = cur.fetchone()
            upper = found[0].split(b",") if found else None
            chunk_where = where + (f" AND {key_compare(table.key, upper, '<=')}" if upper else "")
            rows: list[bytes] | None = None
            if table.server_format:
                with conn.cursor() as cur:
                    cur.execute(
                        f"SELECT GROUP_CONCAT({tuple_sql} SEPARATOR ','), COUNT(*) FROM {source} WHERE {chunk_where}"
                    )
                    data, count = cur.fetchone()
                count = int(count)
                if count == 0:
                    return
                # A row over the packet (NULL, skipped by GROUP_CONCAT) or a truncated result shows
                # as a tuple count that does not match.
                if data is not None and data.endswith(b")") and data.count(b"),(") + 1 == count:
                    rows = _split_tuples(data, self.batch_limit - len(table.insert_prefix))
                    nbytes = len(data)
            if rows is None:
                # Some value made a row bigger than the source's packet: this chunk read raw and
                # formatted here.
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT " + ", ".join(c.raw_sql for c in table.columns)
                        + f" FROM {source} WHERE {chunk_where} ORDER BY {order}"
                    )  # fmt: skip
                    raw = cur.fetchall()
                if not raw:
                    return
                count = len(raw)
                rows = [
                    b"(" + b",".join(c.py_literal(v) for c, v in zip(table.columns, r, strict=True)) + b")"
                    for r in raw
                ]
                nbytes = sum(len(v) for r in raw for v in r if v is not None)
            with table.lock:
                table.rows_done += count
            self._emit(table, rows, count, nbytes)
            if upper is None:  # fewer than n rows were left: the range is done
                return
            last = upper
            per_row = max(1, nbytes // count)
            n = max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, self.chunk_bytes // per_row))

    def _read_stream(self, conn: pymysql.connections.Connection, table: TableState) -> None:
        """A table without a usable key: one unordered scan, batched as it arrives."""
        if table.server_format:
            select = _tuple_sql(table.columns)
        else:
            select = ", ".join(c.raw_sql for c in table.columns)
        cur = conn.cursor(pymysql.cursors.SSCursor)
        try:
            cur.execute(f"SELECT {select} FROM {qualified(table.db, table.name)}")
            pending: list[bytes] = []
            size = 0
            while True:
                if self.stop.is_set() or self.abort.is_set():
                    raise _Abort
                got = cur.fetchmany(1000)
                if got:
                    if table.server_format:
                        if any(r[0] is None for r in got):
                            raise ReplicationError(
                                f"copying table {table.label}: a row exceeds max_allowed_packet on the service database"
                            )
                        new = [r[0] for r in got]
                        nbytes = sum(len(r) for r in new)
                    else:
                        new = [
                            b"("
                            + b",".join(c.py_literal(v) for c, v in zip(table.columns, r, strict=True))
                            + b")"
                            for r in got
                        ]
                        nbytes = sum(len(v) for r in got for v in r if v is not None)
                    pending.extend(new)
                    size += sum(len(r) for r in new)
                    with table.lock:
                        table.rows_done += len(got)
                    self.throttle.consume(nbytes)
                    with table.lock:
                        table.bytes_done += nbytes
                if pending and (size >= self.chunk_bytes or not got):
                    self._emit(table, pending, len(pending), 0)
                    pending, size = [], 0
                if not got:
                    return
        finally:
            if not self.abort.is_set() and not self.stop.is_set():
                cur.close()

    def _range_done(self, table: TableState) -> None:
        with table.lock:
            table.ranges_left -= 1
            done = table.ranges_left == 0 and table.batches_pending == 0
        if done:
            self._table_done(table)

    def _table_done(self, table: TableState) -> None:
        with table.lock:
            if table.finished is not None:
                return
            table.finished = time.monotonic()
            seconds = table.finished - (table.started or table.finished)
        self.messages.put(
            ("info", "snapshot", f"table {table.label} copied: {table.rows_done} rows in {seconds:.1f} s")
        )

    def _writer(self) -> None:
        try:
            self._write_all()
        finally:
            self.wake.set()

    def _write_all(self) -> None:
        try:
            conn = connect(self.spec.target, max_allowed_packet=self.target_packet)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
            self._drain()
            return
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
            while True:
                batch = self.batches.get()
                if batch is None:
                    return
                if self.abort.is_set():
                    continue
                table = batch.table
                try:
                    conn.query(batch.sql)
                    warnings = conn._result.warning_count if conn._result else 0  # noqa: SLF001 - pymysql keeps it there
                    if warnings and not table.warned:
                        table.warned = True
                        first = sch.fetch(conn, "SHOW WARNINGS LIMIT 1")
                        self.messages.put(("warning", "snapshot", f"table {table.label}: the DR database warned while loading: "
                                 f"{first[0][2] if first else ''} (error {first[0][1] if first else '?'})"))  # fmt: skip
                except pymysql.err.MySQLError as exc:
                    self._fail(
                        ReplicationError(
                            f"copying table {table.label} failed writing to the DR database: {server_error(exc)}"
                        )
                    )
                    continue
                except BaseException as exc:  # noqa: BLE001
                    self._fail(exc)
                    continue
                with table.lock:
                    table.batches_pending -= 1
                    done = table.ranges_left == 0 and table.batches_pending == 0
                if done:
                    self._table_done(table)
        finally:
            conn.close()

    def _drain(self) -> None:
        while True:
            if self.batches.get() is None:
                return


# ---- progress ----------------------------------------------------------------------------------


class _Progress:
    def __init__(self, tables: list[TableState], on_progress: Callable[[CopyProgress], None] | None):
        self.tables = tables
        self.on_progress = on_progress
        self.started = time.monotonic()
        self.last_emit = 0.0
        self.last_rows = -1

    def snapshot(self) -> CopyProgress:
        per = []
        rows = nbytes = rows_est = bytes_est = 0
        for t in self.tables:
            with t.lock:
                done = t.finished is not None
                r, b = t.rows_done, t.bytes_done
            # Estimates are corrected as tables go: a finished table counts what it really had, a
            # running one extrapolates from the bytes per row seen so far.
            r_est = r if done else max(r, t.rows_estimate)
            if done:
                b_est = b
            elif r:
                b_est = max(b, int(b / r * r_est))
            else:
                b_est = t.bytes_estimate
            per.append(TableProgress(t.db, t.name, r, r_est, b, done))
            rows, nbytes, rows_est, bytes_est = rows + r, nbytes + b, rows_est + r_est, bytes_est + b_est
        elapsed = max(1e-6, time.monotonic() - self.started)
        bps = nbytes / elapsed
        eta = (bytes_est - nbytes) / bps if bps > 0 else None
        return CopyProgress(rows, rows_est, nbytes, bytes_est, rows / elapsed, bps, eta, tuple(per))

    def tick(self, final: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if not final and now - self.last_emit < PROGRESS_INTERVAL:
            return
        p = self.snapshot()
        if final:
            p = replace(p, rows_estimated=p.rows_done, bytes_estimated=p.bytes_done, eta_seconds=0.0)
        self.last_emit = now
        self.on_progress(p)


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
    snap = _Snapshot(spec, parallel, log)
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
        plans = [_plan_table(reader0, t, len(snap.readers), max_packet) for t in data_tables]
        sequences = _sequence_values(reader0, [t for s in schemas for t in s.tables])

        target = connect(spec.target)
        tinfo = server_info(target)
        definer = sch.current_account(target) if spec.migrate_definer else None
        if not spec.migrate_definer:
            sch.log_missing_definers(target, schemas, log)
        target_packet = int(variables(target, "max_allowed_packet")["max_allowed_packet"] or 16 << 20)
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

        progress = _Progress(plans, on_progress)
        copier = _Copier(spec, snap, plans, throttle, stop, log, target_packet)
        copier.run(progress.tick)
        if copier.errors:
            raise copier.errors[0]
        if stop.is_set():
            raise CopyInterrupted("initial copy stopped; the DR databases must be copied again")
        for t in plans:  # safety net: every table is finished by its last range or batch
            if t.finished is None:
                copier._table_done(t)  # noqa: SLF001
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
        raise ReplicationError(f"initial copy failed: {server_error(exc)}") from None
    finally:
        snap.close()
        if target is not None:
            target.close()
