"""The consistent snapshot of the initial copy: reader connections that all see the service database
at one binlog position, and DDL held back while they read.

FTWRL + one consistent-snapshot transaction per reader (as mydumper does) pins the binlog position.
FLUSH TABLES WITH READ LOCK waits for running statements, and while it waits the source's writes wait
behind it: no attempt while a long statement runs, and each attempt gives up after a few seconds.

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
import time

import pymysql

from engine.connect import BinlogPosition, binlog_position, connect, server_info
from engine.errors import ReplicationError
from engine.progress import LogFn
from engine.schema import fetch, server_error, text
from engine.spec import TaskSpec

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


class SnapshotLock:
    """Reader connections that all see the source at one binlog position (`position`), and the
    connection holding DDL back until end_reads."""

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

