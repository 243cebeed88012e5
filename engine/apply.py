"""Writes source transactions to the DR database, replay-safe, with the checkpoint in the same commit.

Row changes arrive as SQL literals (engine.rowdecode). For a table whose only unique key is its
primary key and that takes part in no foreign key, a run of changes is reduced to its net effect per
key (one DELETE ... IN and one multi-row upsert): the same final rows, far fewer statements. Other
tables get their changes one by one, in order. Inserts are upserts and updates/deletes address the
key, so applying an event twice leaves the same result; tables without any key rely on the
checkpoint being committed atomically with the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pymysql

from engine import checkpoint as cp
from engine.connect import META_DATABASE, BinlogPosition, connect, quote_ident, server_info, set_read_only
from engine.errors import ReplicationError
from engine.progress import LogFn
from engine.schema import event_keyword
from engine.spec import SYSTEM_DATABASES, Endpoint
from engine.stream import DdlChange, RowChange, Transaction

MAX_STATEMENT_BYTES = 4 * 1024 * 1024

# Errors that mean "this DDL was already applied" when a DDL is replayed after a crash.
ALREADY_APPLIED = {
    1007,
    1008,
    1049,
    1050,
    1051,
    1054,
    1060,
    1061,
    1091,
    1146,
    1304,
    1305,
    1359,
    1360,
    1537,
    1539,
    4088,
}


@dataclass(frozen=True)
class TableShape:
    """What the applier needs to know of a DR-side table."""

    columns: tuple[str, ...]  # every column, in ordinal order (= binlog column order)
    writable: tuple[int, ...]  # indexes of columns that are not generated
    key: tuple[int, ...]  # primary key (or first NOT NULL unique key) column indexes; () when none
    net_effect_ok: bool  # only one unique key and no foreign keys: runs can be reduced per key

    @property
    def quoted(self) -> list[str]:
        return [quote_ident(self.columns[i]) for i in self.writable]


_DEFINER = re.compile(
    r"DEFINER\s*=\s*(?:`[^`]*`|'[^']*'|\"[^\"]*\"|[^\s@]+)\s*@\s*(?:`[^`]*`|'[^']*'|\"[^\"]*\"|[^\s]+)|DEFINER\s*=\s*CURRENT_USER(?:\s*\(\s*\))?",
    re.I,
)
_DB_STMT = re.compile(
    r"^\s*(CREATE|DROP|ALTER)\s+(DATABASE|SCHEMA)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(`(?:[^`]|``)+`|[^\s;]+)",
    re.I,
)
_QUALIFIED = re.compile(r"(`(?:[^`]|``)+`|[A-Za-z0-9_$]+)\s*\.\s*(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)")
_SKIP_DDL = re.compile(
    r"^\s*(GRANT|REVOKE|CREATE\s+USER|ALTER\s+USER|DROP\s+USER|RENAME\s+USER|SET\s+PASSWORD|CREATE\s+ROLE|DROP\s+ROLE|"
    r"FLUSH|ANALYZE|OPTIMIZE|REPAIR|CHECK|INSTALL|UNINSTALL|CREATE\s+SERVER|ALTER\s+SERVER|DROP\s+SERVER|SET\s+|CREATE\s+SEQUENCE)",
    re.I,
)
_TRIGGER = re.compile(
    r"^\s*(?:SET\s+STATEMENT\s+.*?\s+FOR\s+)?CREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:`(?:[^`]|``)+`|[^\s.`]+)(?:\s*\.\s*(?:`(?:[^`]|``)+`|[^\s.`]+))?)",
    re.I | re.S,
)
_DROP_TRIGGER = re.compile(
    r"^\s*DROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?((?:`(?:[^`]|``)+`|[^\s.`;]+)(?:\s*\.\s*(?:`(?:[^`]|``)+`|[^\s.`;]+))?)",
    re.I,
)
_DROP_EVENT = re.compile(r"^\s*DROP\s+EVENT\s+(?:IF\s+EXISTS\s+)?((?:`(?:[^`]|``)+`|[^\s.`;]+)(?:\s*\.\s*(?:`(?:[^`]|``)+`|[^\s.`;]+))?)", re.I)
_EVENT = re.compile(
    r"^\s*(?:CREATE|ALTER)\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?EVENT\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:`(?:[^`]|``)+`|[^\s.`]+)(?:\s*\.\s*(?:`(?:[^`]|``)+`|[^\s.`]+))?)",
    re.I,
)


def _unquote(name: str) -> str:
    name = name.strip()
    if name.startswith("`") and name.endswith("`"):
        return name[1:-1].replace("``", "`")
    return name


def _split_name(qualified: str, default_db: str) -> tuple[str, str]:
    parts = re.findall(r"`(?:[^`]|``)+`|[^\s.`]+", qualified)
    if len(parts) == 2:
        return _unquote(parts[0]), _unquote(parts[1])
    return default_db, _unquote(parts[0])


class Applier:
    """One apply session on the DR database for one task."""

    def __init__(
        self,
        target: Endpoint,
        task: str,
        *,
        databases: tuple[str, ...] | None,
        migrate_definer: bool,
        log: LogFn | None = None,
    ):
        self.target = target
        self.task = task
        self.databases = databases
        self.migrate_definer = migrate_definer
        self.log = log or (lambda level, component, message: None)
        self.conn: pymysql.connections.Connection | None = None
        self.shapes: dict[tuple[str, str], TableShape] = {}
        self.definer: str | None = None
        self.server_info = None

    # -- session --------------------------------------------------------------------------------
    def open(self) -> None:
        self.close()
        self.conn = connect(self.target, autocommit=False)
        with self.conn.cursor() as cur:
            # Keys, not FK checks, decide correctness here; cascades still run as on a replica.
            cur.execute("SET SESSION unique_checks = 1, SESSION innodb_lock_wait_timeout = 120")
            cur.execute("SELECT CURRENT_USER()")
            user, host = cur.fetchone()[0].rsplit("@", 1)
            self.definer = f"{quote_ident(user)}@{quote_ident(host)}"
        self.server_info = server_info(self.conn)
        self.conn.commit()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # the connection may already be gone; nothing to save
                pass
            self.conn = None

    def ensure_ready(self, read_only: bool = True) -> None:
        """Create the checkpoint tables and make the DR database read-only for everyone else."""
        assert self.conn is not None
        cp.ensure_meta(self.conn)
        if read_only:
            set_read_only(self.conn, True)
        self.conn.commit()

    def checkpoint(self) -> cp.TargetCheckpoint | None:
        assert self.conn is not None
        result = cp.read_checkpoint(self.conn, self.task)
        self.conn.commit()
        return result

    # -- table shapes -----------------------------------------------------------------------------
    def shape(self, schema: str, table: str) -> TableShape:
        key = (schema, table)
        found = self.shapes.get(key)
        if found is not None:
            return found
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT COLUMN_NAME, EXTRA, IFNULL(GENERATION_EXPRESSION, '') FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION",
                key,
            )
            cols = cur.fetchall()
            if not cols:
                raise ReplicationError(f"table {schema}.{table} does not exist on the DR database")
            names = tuple(c[0] for c in cols)
            writable = tuple(
                i
                for i, c in enumerate(cols)
                if not ("GENERATED" in c[1].upper() or c[1].upper() in ("VIRTUAL", "PERSISTENT", "STORED"))
            )
            cur.execute(
                "SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE, NULLABLE FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY INDEX_NAME='PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
                key,
            )
            indexes: dict[str, list[tuple[str, bool]]] = {}
            for index_name, column, non_unique, nullable in cur.fetchall():
                if int(non_unique) == 0:
                    indexes.setdefault(index_name, []).append((column, nullable == "YES"))
            unique = [cols_ for cols_ in indexes.values() if not any(n for _, n in cols_)]
            key_cols = tuple(names.index(c) for c, _ in unique[0]) if unique else ()
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_NAME IS NOT NULL AND "
                "((TABLE_SCHEMA=%s AND TABLE_NAME=%s) OR (REFERENCED_TABLE_SCHEMA=%s AND REFERENCED_TABLE_NAME=%s))",
                (schema, table, schema, table),
            )
            has_fk = cur.fetchone()[0] > 0
        # no commit here: a batch may be half applied in this session, and it must commit only
        # together with its checkpoint
        shape = TableShape(names, writable, key_cols, bool(key_cols) and len(indexes) == 1 and not has_fk)
        self.shapes[key] = shape
        return shape

    # -- row changes --------------------------------------------------------------------------------
    def apply_batch(self, txns: list[Transaction]) -> None:
        """Apply row transactions and their last checkpoint as ONE DR-side transaction."""
        assert self.conn is not None and txns
        changes = [c for t in txns for c in t.changes]
        last = txns[-1]
        try:
            with self.conn.cursor() as cur:
                for run in _runs(changes):
                    self._apply_run(cur, run)
                cp.write_checkpoint(cur, self.task, "incremental", last.end, source_ts=last.timestamp)
            self.conn.commit()
        except BaseException:
            try:
                self.conn.rollback()
            except Exception:  # the rollback of a broken connection is implied
                pass
            raise

    def apply_piece(self, txn: Transaction) -> None:
        """Apply a piece of a big source transaction inside the open DR-side transaction (no commit)."""
        assert self.conn is not None and txn.partial
        try:
            with self.conn.cursor() as cur:
                for run in _runs(txn.changes):
                    self._apply_run(cur, run)
        except BaseException:
            try:
                self.conn.rollback()
            except Exception:  # the rollback of a broken connection is implied
                pass
            raise

    def _apply_run(self, cur: pymysql.cursors.Cursor, run: list[RowChange]) -> None:
        schema, table = run[0].schema, run[0].table
        shape = self.shape(schema, table)
        name = f"{quote_ident(schema)}.{quote_ident(table)}"
        try:
            if shape.net_effect_ok:
                self._apply_net_effect(cur, name, shape, run)
            else:
                for change in run:
                    self._apply_in_order(cur, name, shape, change)
        except pymysql.err.MySQLError as exc:
            if connection_lost(exc):
                raise  # the runner reconnects
            raise ReplicationError(
                f"applying changes to {schema}.{table} failed: {_mysql_message(exc)}"
            ) from None

    def _apply_net_effect(
        self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, run: list[RowChange]
    ) -> None:
        final: dict[tuple, tuple | None] = {}
        key = shape.key
        for change in run:
            if change.kind == "insert":
                for row in change.rows:
                    final[tuple(row[i] for i in key)] = row
            elif change.kind == "delete":
                for row in change.rows:
                    final[tuple(row[i] for i in key)] = None
            else:
                for before, after in change.rows:
                    old = tuple(before[i] for i in key)
                    new = tuple(after[i] for i in key)
                    if old != new:
                        final[old] = None
                        final.pop(new, None)  # keep dict order = last writer
                    final[new] = after
        if any(None in k for k in final):
            raise ReplicationError(_KEY_MISMATCH)
        deletes = [k for k, v in final.items() if v is None]
        upserts = [v for v in final.values() if v is not None]
        if deletes:
            self._delete_keys(cur, name, shape, deletes)
        if upserts:
            self._upsert(cur, name, shape, upserts)

    def _delete_keys(
        self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, keys: list[tuple]
    ) -> None:
        key_names = [quote_ident(shape.columns[i]) for i in shape.key]
        for chunk in _chunks(keys, 1000):
            if len(key_names) == 1:
                where = f"{key_names[0]} IN ({','.join(k[0] for k in chunk)})"
            else:
                where = " OR ".join(
                    "(" + " AND ".join(f"{c}={v}" for c, v in zip(key_names, k, strict=True)) + ")"
                    for k in chunk
                )
            cur.execute(f"DELETE FROM {name} WHERE {where}")

    def _upsert(self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, rows: list[tuple]) -> None:
        cols = shape.quoted
        head = f"INSERT INTO {name} ({','.join(cols)}) VALUES "
        non_key = [quote_ident(shape.columns[i]) for i in shape.writable if i not in shape.key] or cols[:1]
        tail = " ON DUPLICATE KEY UPDATE " + ",".join(f"{c}=VALUES({c})" for c in non_key)
        writable = shape.writable
        values: list[str] = []
        size = 0
        for row in rows:
            text = "(" + ",".join(row[i] for i in writable) + ")"
            values.append(text)
            size += len(text) + 1
            if size >= MAX_STATEMENT_BYTES:
                cur.execute(head + ",".join(values) + tail)
                values, size = [], 0
        if values:
            cur.execute(head + ",".join(values) + tail)

    def _apply_in_order(
        self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, change: RowChange
    ) -> None:
        cols = shape.quoted
        writable = shape.writable
        if change.kind == "insert":
            if shape.key:
                self._upsert(cur, name, shape, change.rows)
            else:
                head = f"INSERT INTO {name} ({','.join(cols)}) VALUES "
                for chunk in _chunks(change.rows, 500):
                    cur.execute(head + ",".join("(" + ",".join(r[i] for i in writable) + ")" for r in chunk))
            return
        if change.kind == "delete":
            for row in change.rows:
                cur.execute(f"DELETE FROM {name} WHERE {self._match(shape, row)} LIMIT 1")
            return
        for before, after in change.rows:
            assignments = ",".join(f"{quote_ident(shape.columns[i])}={after[i]}" for i in writable)
            cur.execute(f"UPDATE {name} SET {assignments} WHERE {self._match(shape, before)} LIMIT 1")

    @staticmethod
    def _match(shape: TableShape, row: tuple) -> str:
        idx = shape.key or shape.writable
        if any(row[i] is None for i in idx):
            raise ReplicationError(_KEY_MISMATCH)
        return " AND ".join(f"{quote_ident(shape.columns[i])}<=>{row[i]}" for i in idx)

    # -- DDL ------------------------------------------------------------------------------------
    def wants(self, db: str) -> bool:
        if not db:
            return False
        if self.databases is not None:
            return db in self.databases
        return db.lower() not in SYSTEM_DATABASES and db != META_DATABASE

    def ddl_database(self, change: DdlChange) -> str | None:
        """The database a DDL statement acts on, or None when it does not concern this task."""
        statement = change.statement
        if _SKIP_DDL.match(statement):
            return None
        m = _DB_STMT.match(statement)
        if m:
            db = _unquote(m.group(3))
            return db if self.wants(db) else None
        m = _QUALIFIED.search(statement)
        candidates = [change.schema]
        if m:
            candidates.insert(0, _unquote(m.group(1)))
        for db in candidates:
            if self.wants(db):
                return db
        return None

    def apply_ddl(self, txn: Transaction, previous: BinlogPosition | None, *, replaying: bool) -> bool:
        """Apply one DDL transaction; returns False when the statement does not concern this task."""
        assert self.conn is not None
        change = txn.changes[0]
        assert isinstance(change, DdlChange)
        db = self.ddl_database(change)
        with self.conn.cursor() as cur:
            if db is None:
                cp.write_checkpoint(cur, self.task, "incremental", txn.end, source_ts=txn.timestamp)
                self.conn.commit()
                return False
            statement = change.statement
            if self.migrate_definer and self.definer:
                statement = _DEFINER.sub(f"DEFINER={self.definer}", statement)
            # Mark the DDL as in flight (committed), then run it: after a crash the mark tells that
            # it may already be applied.
            cp.write_checkpoint(
                cur, self.task, "incremental", previous, ddl_pending=True, source_ts=txn.timestamp
            )
            self.conn.commit()
            trigger = _TRIGGER.match(statement)
            drop_trigger = _DROP_TRIGGER.match(statement)
            try:
                if change.schema:
                    cur.execute(f"USE {quote_ident(change.schema)}") if self._db_exists(
                        cur, change.schema
                    ) else None
                if trigger:
                    # Held back: a trigger on the standby would fire on applied rows (see snapshot).
                    tdb, tname = _split_name(trigger.group(1), change.schema)
                    cp.save_deferred(cur, self.task, "trigger", tdb, tname, statement)
                    self.log(
                        "info",
                        "apply",
                        f"trigger {tdb}.{tname} recorded; it is created on the DR database at promote",
                    )
                elif drop_trigger:
                    tdb, tname = _split_name(drop_trigger.group(1), change.schema)
                    cp.drop_deferred(cur, self.task, "trigger", tdb, tname)
                    cur.execute(f"DROP TRIGGER IF EXISTS {quote_ident(tdb)}.{quote_ident(tname)}")
                else:
                    cur.execute(statement)
                    event = _EVENT.match(statement)
                    dropped = _DROP_EVENT.match(statement)
                    if event:
                        edb, ename = _split_name(event.group(1), change.schema)
                        cur.execute(f"ALTER EVENT {quote_ident(edb)}.{quote_ident(ename)} {event_keyword(self.server_info)}")
                        # enabled on the service side: promote enables it here too
                        if re.search(r"\bDISABLE\b", statement, re.I):
                            cp.drop_deferred(cur, self.task, "event", edb, ename)
                        elif statement.lstrip().upper().startswith("CREATE") or re.search(r"\bENABLE\b", statement, re.I):
                            cp.save_deferred(cur, self.task, "event", edb, ename, "ENABLE")
                    elif dropped:
                        edb, ename = _split_name(dropped.group(1), change.schema)
                        cp.drop_deferred(cur, self.task, "event", edb, ename)
            except pymysql.err.MySQLError as exc:
                code = exc.args[0] if exc.args else None
                if connection_lost(exc):
                    raise
                if not (replaying and code in ALREADY_APPLIED):
                    self.conn.rollback()
                    raise ReplicationError(
                        f"DDL failed on the DR database: {_mysql_message(exc)}; statement: {change.statement[:300]}"
                    ) from None
            self.shapes.clear()
            cp.write_checkpoint(cur, self.task, "incremental", txn.end, source_ts=txn.timestamp)
            cur.execute("USE mysql")
        self.conn.commit()
        self.log("info", "apply", f"DDL applied on {db}: {' '.join(change.statement.split())[:200]}")
        return True

    @staticmethod
    def _db_exists(cur: pymysql.cursors.Cursor, db: str) -> bool:
        cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=%s", (db,))
        return cur.fetchone() is not None


_KEY_MISMATCH = (
    "a row event does not carry the DR table's key columns: the primary key of the table differs "
    "between the service and the DR database; make them equal (or re-create the task)"
)


def _runs(changes: list[RowChange | DdlChange]) -> list[list[RowChange]]:
    """Consecutive row changes of the same table, in order."""
    runs: list[list[RowChange]] = []
    for change in changes:
        if not isinstance(change, RowChange):
            continue
        if runs and (runs[-1][0].schema, runs[-1][0].table) == (change.schema, change.table):
            runs[-1].append(change)
        else:
            runs.append([change])
    return runs


def _chunks(items: list, n: int) -> list[list]:
    return [items[i : i + n] for i in range(0, len(items), n)]


# Server errors that mean the session is gone rather than that the statement is wrong.
SESSION_GONE = {1053, 1077, 1152, 1153, 1159, 1160, 1161, 1927, 4031}


def connection_lost(exc: BaseException) -> bool:
    """Client-side errors (2xxx: lost, gone away) and server shutdown/kill: reconnect, don't fail."""
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    code = exc.args[0] if isinstance(exc, pymysql.err.MySQLError) and exc.args else None
    return isinstance(code, int) and (code >= 2000 or code in SESSION_GONE or code == 0)


def _mysql_message(exc: pymysql.err.MySQLError) -> str:
    if len(exc.args) >= 2:
        return f"({exc.args[0]}) {exc.args[1]}"
    return str(exc)
