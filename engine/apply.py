"""Writes source transactions to the DR database, strictly, with the checkpoint in the same commit.

Row changes arrive as SQL literals (engine.rowdecode). For a table whose only unique key is its
primary key and that takes part in no foreign key, a run of changes is reduced to its net effect per
key (one DELETE ... IN and one multi-row INSERT): the same final rows, far fewer statements. Other
tables get their changes one by one, in order.

Apply is strict, as a native replica (errors 1032/1062): an insert that meets an existing key, an
update or delete that finds no row (or, where the before-image carries more than the key, a row with
other values) raises ApplyConflict and the task fails: the DR side has drifted, and writing on would
hide it. Idempotent writes are not needed: each batch commits with its checkpoint, so a replay after a
crash starts from exactly the state the batch was first applied to. Tables in a non-transactional
engine (MyISAM, Aria) are the exception: a rolled-back batch leaves their rows written, so they keep
the replay-safe upserts and unchecked updates/deletes.

DDL statements go to engine.ddl_apply (DdlApplier), which shares this session's connection.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pymysql
from pymysql.constants import CLIENT, COMMAND

from engine import checkpoint as cp
from engine import literals, xa
from engine.connect import BinlogPosition, connect, quote_ident, set_read_only
from engine.ddl_apply import DdlApplier
from engine.errors import ApplyConflict, ReplicationError, Unreplicable
from engine.progress import LogFn
from engine.server_errors import connection_lost, mysql_message
from engine.spec import Endpoint
from engine.status import Status
from engine.stream import DdlChange, RowChange, Transaction

if TYPE_CHECKING:
    from engine.store import Store

MAX_STATEMENT_BYTES = 4 * 1024 * 1024


def _picker(indexes: tuple[int, ...]) -> Callable[[tuple], tuple]:
    """row -> tuple(row[i] for i in indexes), without building a generator for every row."""
    if len(indexes) >= 2:
        return operator.itemgetter(*indexes)  # a tuple for two or more indexes
    if len(indexes) == 1:
        only = indexes[0]
        return lambda row: (row[only],)
    return lambda row: ()


@dataclass(frozen=True)
class TableShape:
    """What the applier needs to know of a DR-side table."""

    columns: tuple[str, ...]  # every column, in ordinal order (= binlog column order)
    writable: tuple[int, ...]  # indexes of columns that are not generated
    key: tuple[int, ...]  # primary key (or first NOT NULL unique key) column indexes; () when none
    net_effect_ok: bool  # only one unique key and no foreign keys: runs can be reduced per key
    strict: bool = True  # transactional engine: changes are checked (see the module doc)
    # non-key columns whose before-image value can be compared exactly with `<=>` (no floats, JSON,
    # geometry); only used when a before-image carries them
    comparable: tuple[int, ...] = ()

    @property
    def quoted(self) -> list[str]:
        return [quote_ident(self.columns[i]) for i in self.writable]


def same_server(a: Endpoint, b: Endpoint) -> bool:
    return a.host.lower() == b.host.lower() and a.port == b.port


def promoted_onto(store: Store, server: Endpoint, task: str) -> list[str]:
    """Tasks (other than `task`) in the store that are Promoted with `server` as their DR side."""
    return [
        r.name for r in store.list_tasks()
        if r.name != task and r.status is Status.PROMOTED and same_server(r.spec.target, server)
    ]  # fmt: skip


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
        self.log = log or (lambda level, component, message: None)
        self.conn: pymysql.connections.Connection | None = None
        self.shapes: dict[tuple[str, str], TableShape] = {}
        # DDL policy (scope, session context, definer, replay), run in this same session
        self.ddl_applier = DdlApplier(task, databases=databases, migrate_definer=migrate_definer, log=self.log)

    # -- session --------------------------------------------------------------------------------
    def open(self) -> None:
        self.close()
        # FOUND_ROWS: an UPDATE's row count is the rows it matched, not the rows it changed, so an
        # update to identical values still proves that its row exists.
        self.conn = connect(
            # MULTI_STATEMENTS: a planned batch goes in one query (send_batch); a binlog query event,
            # which DDL replays, always holds a single statement
            self.target, autocommit=False, client_flag=CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS,
            max_allowed_packet=1 << 30,
            cursorclass=_FittingCursor,
        )  # fmt: skip
        with self.conn.cursor() as cur:
            # Keys, not FK checks, decide correctness here; cascades still run as on a replica.
            cur.execute("SET SESSION unique_checks = 1, SESSION innodb_lock_wait_timeout = 120")
            cur.execute(literals.WITHOUT_NO_BACKSLASH_ESCAPES)  # binary literals of big rows (engine.literals)
            cur.execute("SELECT @@SESSION.max_allowed_packet")
            packet = int(cur.fetchone()[0])
            self.conn.drs_statement_limit = packet - min(4096, packet // 8)  # type: ignore[attr-defined]
        self.ddl_applier.attach(self.conn)
        self.conn.commit()

    def close(self) -> None:
        self.ddl_applier.detach()
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # the connection may already be gone; nothing to save
                pass
            self.conn = None

    def ensure_ready(self, read_only: bool = True, *, store: Store | None = None) -> None:
        """Create the checkpoint tables and make the DR database read-only for everyone else.

        read_only is server-wide: when `store` holds another task promoted onto this same server, that
        server is now its primary, and read-only would stop its applications; it is left writable.
        """
        assert self.conn is not None
        cp.ensure_meta(self.conn)
        if read_only:
            primaries = promoted_onto(store, self.target, self.task) if store is not None else []
            if primaries:
                self.log(
                    "warning", "apply",
                    f"the DR server {self.target.address} is left writable: task(s) {', '.join(primaries)} "
                    "promoted it to primary, and read_only is server-wide; the databases of this task are "
                    "not protected against writes by others there",
                )  # fmt: skip
            else:
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
                "SELECT COLUMN_NAME, EXTRA, IFNULL(GENERATION_EXPRESSION, ''), DATA_TYPE FROM information_schema.COLUMNS "
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
            cur.execute(
                "SELECT e.TRANSACTIONS FROM information_schema.TABLES t JOIN information_schema.ENGINES e "
                "ON e.ENGINE = t.ENGINE WHERE t.TABLE_SCHEMA=%s AND t.TABLE_NAME=%s",
                key,
            )
            engine_row = cur.fetchone()
            strict = engine_row is None or engine_row[0] == "YES"
        comparable = tuple(i for i in writable if i not in key_cols and cols[i][3].lower() not in _INEXACT_TYPES)
        # no commit here: a batch may be half applied in this session, and it must commit only
        # together with its checkpoint
        shape = TableShape(
            names, writable, key_cols, bool(key_cols) and len(indexes) == 1 and not has_fk, strict, comparable
        )
        self.shapes[key] = shape
        return shape

    # -- row changes --------------------------------------------------------------------------------
    def apply_batch(self, txns: list[Transaction]) -> None:
        """Apply row transactions and their last checkpoint as ONE DR-side transaction."""
        assert self.conn is not None and txns
        last = txns[-1]
        try:
            with self.conn.cursor() as cur:
                changes: list = []
                for t in txns:
                    if t.xa is None:
                        changes.extend(t.changes)
                    elif t.xa[0] == "prepare":  # not a change yet: held until the source decides
                        xa.hold(cur, self.task, t)
                    else:
                        changes.extend(xa.release(cur, self.task, t))
                for run in self._batch_runs(changes):
                    self._apply_run(cur, run)
                cp.write_checkpoint(cur, self.task, "incremental", last.end, source_ts=last.timestamp)
            self.conn.commit()
        except BaseException:
            try:
                self.conn.rollback()
            except Exception:  # the rollback of a broken connection is implied
                pass
            raise

    def _batch_runs(self, changes: list) -> list[list[RowChange]]:
        """The runs of a batch, each table that may be reduced to its net effect gathered into ONE run.

        Such a table has a single unique key and takes part in no foreign key (and the DR side's
        triggers are held back until promote), so the order of its changes relative to other tables'
        cannot change any row: only the order among its own changes counts, and that is kept. Under
        an OLTP load whose transactions touch several tables in turn, the runs of consecutive changes
        are one or two statements long; gathered, a batch of thousands of transactions costs a few
        statements per table instead of a few per transaction (the round trips were the limit).
        """
        runs = _runs(changes)
        if len(runs) < 2:
            return runs
        gathered: list[list[RowChange]] = []
        by_table: dict[tuple[str, str], list[RowChange]] = {}
        for run in runs:
            first = run[0]
            key = (first.schema, first.table)
            if not self.shape(*key).net_effect_ok:
                gathered.append(run)
                continue
            bucket = by_table.get(key)
            if bucket is None:
                by_table[key] = bucket = list(run)
                gathered.append(bucket)  # at the place of the table's first change
            else:
                bucket.extend(run)
        return gathered

    # -- a batch in one round trip -------------------------------------------------------------------
    # The apply thread used to build a batch's SQL, then wait while the DR server ran it: one after the
    # other. A batch of net-effect tables whose shapes are known is sent whole, as one multi-statement
    # query, and read back later (finish_batch): the DR server runs it while the runner reads and plans
    # the next batch. Each statement's row count is checked as the careful path checks it; whatever it
    # does not prove (a count that is off, an error) rolls the batch back and hands it to that path,
    # which looks, names the conflict or applies it with the proof the look gave. No COMMIT is in the
    # query: the batch and its checkpoint commit only after every count has been read.

    def plan_batch(self, txns: list[Transaction]) -> list[tuple[str, int | None]] | None:
        """The statements of a batch with the affected-row count that proves each (None: any count),
        its checkpoint last; None when the batch needs the careful path (apply_batch): XA, tables that
        are applied in order or not looked up yet, keys inserted and deleted within the batch, a size
        past max_allowed_packet."""
        assert self.conn is not None and txns
        limit = getattr(self.conn, "drs_statement_limit", 0)
        changes: list = []
        for t in txns:  # (DDL never comes in a batch: the runner applies it on its own)
            if t.xa is not None:
                return None
            changes.extend(t.changes)
        steps: list[tuple[str, int | None]] = []
        shapes = self.shapes
        for table, run in _by_table(changes).items():
            shape = shapes.get(table)
            if shape is None or not shape.net_effect_ok:
                return None  # not looked up yet, or applied in order: the careful path
            name = f"{quote_ident(run[0].schema)}.{quote_ident(run[0].table)}"
            final, born = _net_effect(run, shape.key)
            if (None,) in final or (len(shape.key) > 1 and any(None in k for k in final)):
                return None  # the careful path reports it
            if not shape.strict:  # replay-safe, unchecked (see the module doc)
                gone = [k for k, v in final.items() if v is None]
                steps += [(f"DELETE FROM {name} WHERE {self._keys_where(shape, c)}", None) for c in _chunks(gone, 1000)]
                steps += [(sql, None) for sql, _ in self._upsert_statements(name, shape, [v for v in final.values() if v is not None])]
                continue
            gone, kept, transient, new_rows = _partition(final, born)
            if transient:
                return None  # the careful path looks for them first
            steps += [(f"DELETE FROM {name} WHERE {self._keys_where(shape, c)}", len(c)) for c in _chunks(gone, 1000)]
            head = f"INSERT INTO {name} ({','.join(shape.quoted)}) VALUES "
            steps += [(head + values, len(rows)) for values, rows in self._insert_statements(shape, new_rows)]
            steps += [(sql, 2 * n) for sql, n in self._upsert_statements(name, shape, kept)]
        last = txns[-1]
        steps.append((cp.checkpoint_sql(self.conn, self.task, "incremental", last.end, source_ts=last.timestamp), None))
        if limit and sum(len(sql) + 2 for sql, _ in steps) > limit:
            return None
        return steps

    def send_batch(self, steps: list[tuple[str, int | None]]) -> list[int | None]:
        """Send planned statements in one query and return at once; finish_batch reads the answers."""
        assert self.conn is not None
        self.conn._execute_command(COMMAND.COM_QUERY, ";\n".join(sql for sql, _ in steps).encode("utf-8"))
        return [expected for _, expected in steps]

    def finish_batch(self, checks: list[int | None]) -> bool:
        """Read the answers of a sent batch. Every count as expected: commit, True. Otherwise roll
        back, False: the caller applies the batch by apply_batch. A lost connection raises."""
        conn = self.conn
        assert conn is not None
        proven = True
        try:
            for expected in checks:  # one answer per statement; the server stops at an error
                affected = conn._read_query_result()
                if expected is not None and affected != expected:
                    proven = False
        except pymysql.err.MySQLError as exc:
            conn._result = None  # the error ended the answers: none is left to read
            if connection_lost(exc):
                raise
            proven = False
        if proven:
            conn.commit()
            return True
        conn.rollback()
        return False

    def apply_piece(self, txn: Transaction) -> None:
        """Apply a piece of a big source transaction inside the open DR-side transaction (no commit)."""
        assert self.conn is not None and txn.partial
        try:
            with self.conn.cursor() as cur:
                for run in self._batch_runs(txn.changes):
                    self._apply_run(cur, run)
        except BaseException:
            try:
                self.conn.rollback()
            except Exception:  # the rollback of a broken connection is implied
                pass
            raise

    def _apply_run(self, cur: pymysql.cursors.Cursor, run: list[RowChange]) -> None:
        if not run[0].fk_checks_off:
            self._apply_checked_run(cur, run)
            return
        # written with foreign_key_checks=0 on the source: a replica applies it so too
        cur.execute("SET SESSION foreign_key_checks = 0")
        try:
            self._apply_checked_run(cur, run)
        finally:
            if getattr(cur.connection, "_sock", None) is not None:
                cur.execute("SET SESSION foreign_key_checks = 1")

    def _apply_checked_run(self, cur: pymysql.cursors.Cursor, run: list[RowChange]) -> None:
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
            code = exc.args[0] if exc.args else None
            if shape.strict and code in _CONFLICT_CODES:
                # a duplicate on another unique key, a missing parent row, ...: drift all the same
                dup = _DUPLICATE.search(str(exc.args[1]) if len(exc.args) > 1 else "")
                key = f"{dup.group(2)}={dup.group(1)!r}" if dup else "?"
                raise ApplyConflict(
                    self.task, f"{schema}.{table}", "a change", key, f"was refused: {mysql_message(exc)}"
                ) from None
            raise ReplicationError(
                f"applying changes to {schema}.{table} failed: {mysql_message(exc)}"
            ) from None

    def _conflict(self, name: str, operation: str, shape: TableShape, key: tuple, found: str) -> ApplyConflict:
        """`key` holds the literals of shape.key (or of every writable column for a keyless table)."""
        idx = shape.key or shape.writable
        text = ", ".join(f"{shape.columns[i]}={_readable(v)}" for i, v in zip(idx, key, strict=True))
        return ApplyConflict(self.task, _plain_name(name), operation, text, found)

    # -- net effect (one unique key, no foreign keys) -------------------------------------------------
    def _apply_net_effect(
        self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, run: list[RowChange]
    ) -> None:
        final, born = _net_effect(run, shape.key)
        if (None,) in final or (len(shape.key) > 1 and any(None in k for k in final)):
            raise ReplicationError(_KEY_MISMATCH)
        if not shape.strict:
            deletes = [k for k, v in final.items() if v is None]
            upserts = [v for v in final.values() if v is not None]
            if deletes:
                self._delete_keys(cur, name, shape, deletes)
            if upserts:
                self._upsert(cur, name, shape, upserts)
            return
        # Strict, in three statements (plus a savepoint to look back on a failure; plan_batch sends the
        # same three, and the same counts prove them):
        # - keys that existed and are gone: DELETE, the count proves each was there;
        # - keys that are new: plain INSERT, a duplicate proves one was there already;
        # - keys that existed and still exist: upsert, as fast as before. With FOUND_ROWS each row
        #   counts 2 when it met its key and changed, 1 when it met its key unchanged or was
        #   inserted: 2 per row proves every key was there. Less (a row whose net change is none,
        #   or a missing key): back to the savepoint, look, and either report the missing key or
        #   apply again without the proof that the look just gave.
        gone, kept, transient, new_rows = _partition(final, born)
        key = shape.key

        def first(k: tuple) -> str:
            return _first_change(run, key, k)

        if transient:
            # inserted and deleted again within the run: the DR side must not hold the key either
            for chunk in _chunks(transient, 1000):
                cur.execute(f"SELECT 1 FROM {name} WHERE {self._keys_where(shape, chunk)} LIMIT 1")
                if cur.fetchone() is not None:
                    present = self._first_present(cur, name, shape, chunk) or chunk[0]
                    raise self._conflict(name, first(present), shape, present, "found an existing row")
        if gone or kept:
            cur.execute("SAVEPOINT drs_net_effect")
        for chunk in _chunks(gone, 1000):
            cur.execute(f"DELETE FROM {name} WHERE {self._keys_where(shape, chunk)}")
            if cur.rowcount != len(chunk):
                cur.execute("ROLLBACK TO SAVEPOINT drs_net_effect")
                missing = self._first_missing(cur, name, shape, gone)
                raise self._conflict(name, first(missing), shape, missing, "found no row")
        for values, chunk_rows in self._insert_statements(shape, new_rows):
            try:
                cur.execute(f"INSERT INTO {name} ({','.join(shape.quoted)}) VALUES {values}")
            except pymysql.err.IntegrityError as exc:
                if not (exc.args and exc.args[0] == 1062):
                    raise
                # the failed statement is undone whole: what is there now was there before it
                keys = [tuple(r[i] for i in key) for r in chunk_rows]
                present = self._first_present(cur, name, shape, keys)
                if present is None:
                    raise
                raise self._conflict(name, first(present), shape, present, "found an existing row") from None
        if kept and not self._upsert(cur, name, shape, kept, proven=True):
            cur.execute("ROLLBACK TO SAVEPOINT drs_net_effect")
            kept_keys = [tuple(r[i] for i in key) for r in kept]
            missing = self._first_missing(cur, name, shape, kept_keys, none_ok=True)
            if missing is not None:
                raise self._conflict(name, first(missing), shape, missing, "found no row")
            # every key is there: some rows just end as they were; apply again, now proven
            for chunk in _chunks(gone, 1000):
                cur.execute(f"DELETE FROM {name} WHERE {self._keys_where(shape, chunk)}")
            for values, _ in self._insert_statements(shape, new_rows):
                cur.execute(f"INSERT INTO {name} ({','.join(shape.quoted)}) VALUES {values}")
            self._upsert(cur, name, shape, kept)

    @staticmethod
    def _keys_where(shape: TableShape, keys: list[tuple]) -> str:
        key_names = [quote_ident(shape.columns[i]) for i in shape.key]
        if len(key_names) == 1:
            return f"{key_names[0]} IN ({','.join(k[0] for k in keys)})"
        return " OR ".join(
            "(" + " AND ".join(f"{c}={v}" for c, v in zip(key_names, k, strict=True)) + ")" for k in keys
        )

    def _present_keys(self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, keys: list[tuple]) -> list[bool]:
        """Which of `keys` the DR side holds (one query per key: only run on a failure path, where
        literal text comparison would be unreliable)."""
        found = []
        for k in keys:
            where = " AND ".join(f"{quote_ident(shape.columns[i])}={v}" for i, v in zip(shape.key, k, strict=True))
            cur.execute(f"SELECT 1 FROM {name} WHERE {where} LIMIT 1")
            found.append(cur.fetchone() is not None)
        return found

    def _first_missing(
        self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, keys: list[tuple], *, none_ok: bool = False
    ) -> tuple | None:
        """The first of `keys` the DR side does not hold (failure paths only)."""
        for chunk in _chunks(keys, 1000):
            cur.execute(f"SELECT COUNT(*) FROM {name} WHERE {self._keys_where(shape, chunk)}")
            if cur.fetchone()[0] != len(chunk):
                return next(k for k, there in zip(chunk, self._present_keys(cur, name, shape, chunk), strict=True) if not there)
        if none_ok:
            return None
        raise ReplicationError(f"a DELETE on {_plain_name(name)} found fewer rows than a count of the same keys")

    def _first_present(
        self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, keys: list[tuple]
    ) -> tuple | None:
        return next((k for k, there in zip(keys, self._present_keys(cur, name, shape, keys), strict=True) if there), None)

    def _delete_keys(
        self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, keys: list[tuple]
    ) -> None:
        for chunk in _chunks(keys, 1000):
            cur.execute(f"DELETE FROM {name} WHERE {self._keys_where(shape, chunk)}")

    @staticmethod
    def _insert_statements(shape: TableShape, rows: list[tuple]):
        """VALUES lists of at most MAX_STATEMENT_BYTES, each with its rows."""
        if not rows:
            return
        join = ",".join
        if len(shape.writable) == len(shape.columns):  # no generated column: every value, in order
            texts = list(map(join, rows))
        else:
            writable_of = _picker(shape.writable)
            texts = [join(writable_of(row)) for row in rows]
        text = "(" + "),(".join(texts) + ")"
        if len(text) < MAX_STATEMENT_BYTES:  # the usual case: one statement
            yield text, rows
            return
        texts = ["(" + t + ")" for t in texts]
        start = size = 0
        for i, text in enumerate(texts):
            size += len(text) + 1
            if size >= MAX_STATEMENT_BYTES:
                yield join(texts[start : i + 1]), rows[start : i + 1]
                start, size = i + 1, 0
        if start < len(texts):
            yield join(texts[start:]), rows[start:]

    def _upsert(
        self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, rows: list[tuple], *, proven: bool = False
    ) -> bool:
        """INSERT ... ON DUPLICATE KEY UPDATE. With `proven`, stops and returns False unless every row
        met its key and changed (2 affected rows each); without, returns True."""
        for sql, n in self._upsert_statements(name, shape, rows):
            cur.execute(sql)
            if proven and cur.rowcount != 2 * n:
                return False
        return True

    def _upsert_statements(self, name: str, shape: TableShape, rows: list[tuple]):
        """(INSERT ... ON DUPLICATE KEY UPDATE, rows in it) for `rows`."""
        cols = shape.quoted
        head = f"INSERT INTO {name} ({','.join(cols)}) VALUES "
        non_key = [quote_ident(shape.columns[i]) for i in shape.writable if i not in shape.key] or cols[:1]
        tail = " ON DUPLICATE KEY UPDATE " + ",".join(f"{c}=VALUES({c})" for c in non_key)
        for values, chunk_rows in self._insert_statements(shape, rows):
            yield head + values + tail, len(chunk_rows)

    # -- in order (several unique keys, foreign keys, no key) -------------------------------------------
    def _apply_in_order(
        self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, change: RowChange
    ) -> None:
        cols = shape.quoted
        writable = shape.writable
        if change.kind == "insert":
            if shape.key and not shape.strict:
                self._upsert(cur, name, shape, change.rows)
                return
            head = f"INSERT INTO {name} ({','.join(cols)}) VALUES "
            for values, chunk_rows in self._insert_statements(shape, change.rows):
                try:
                    cur.execute(head + values)
                except pymysql.err.IntegrityError as exc:
                    if not (shape.key and shape.strict and exc.args and exc.args[0] == 1062):
                        raise  # a duplicate on another unique key: reported by _apply_run
                    keys = [tuple(r[i] for i in shape.key) for r in chunk_rows]
                    present = self._first_present(cur, name, shape, keys)
                    if present is None:
                        raise
                    raise self._conflict(name, "INSERT", shape, present, "found an existing row") from None
            return
        if change.kind == "delete":
            for row in change.rows:
                where, verified = self._match(shape, row)
                cur.execute(f"DELETE FROM {name} WHERE {where} LIMIT 1")
                if shape.strict and cur.rowcount != 1:
                    raise self._missing(cur, name, shape, "DELETE", row, verified)
            return
        for before, after in change.rows:
            assignments = ",".join(f"{quote_ident(shape.columns[i])}={after[i]}" for i in writable)
            where, verified = self._match(shape, before)
            cur.execute(f"UPDATE {name} SET {assignments} WHERE {where} LIMIT 1")
            if shape.strict and cur.rowcount != 1:  # rows matched (FOUND_ROWS), changed or not
                raise self._missing(cur, name, shape, "UPDATE", before, verified)

    def _match(self, shape: TableShape, row: tuple) -> tuple[str, bool]:
        """WHERE clause addressing the row of a before-image, and whether it also compares non-key
        columns. A keyed table is addressed by its key; the other columns the image carries are
        compared too (strict tables), so a row that differs on the DR side is not overwritten."""
        idx = shape.key or shape.writable
        if any(row[i] is None for i in idx):
            raise ReplicationError(_KEY_MISMATCH)
        where = " AND ".join(f"{quote_ident(shape.columns[i])}<=>{row[i]}" for i in idx)
        if not (shape.key and shape.strict):
            return where, False
        # key-only before-images (the fast decoder's, for source tables with a primary key) carry
        # None in the other columns: nothing more to compare, at no cost
        extra = [f"{quote_ident(shape.columns[i])}<=>{row[i]}" for i in shape.comparable if row[i] is not None]
        if not extra:
            return where, False
        return where + " AND " + " AND ".join(extra), True

    def _missing(
        self, cur: pymysql.cursors.Cursor, name: str, shape: TableShape, operation: str, row: tuple, verified: bool
    ) -> ApplyConflict:
        """The conflict for an update/delete that matched no row: no row at all, or one that differs."""
        if not shape.key:
            key = tuple(row[i] for i in shape.writable)
            return self._conflict(name, operation, shape, key, "found no row equal to the service side's before-image")
        key = tuple(row[i] for i in shape.key)
        if verified and self._first_present(cur, name, shape, [key]) is not None:
            return self._conflict(
                name, operation, shape, key, "found a row whose values differ from the service side's before-image"
            )
        return self._conflict(name, operation, shape, key, "found no row")

    # -- DDL (engine.ddl_apply) ---------------------------------------------------------------------
    def wants(self, db: str) -> bool:
        return self.ddl_applier.wants(db)

    def ddl_database(self, change: DdlChange) -> str | None:
        return self.ddl_applier.ddl_database(change)

    def apply_ddl(self, txn: Transaction, previous: BinlogPosition | None, *, replaying: bool) -> bool:
        """Apply one DDL transaction (see DdlApplier.apply); False when it does not concern this task."""
        try:
            applied = self.ddl_applier.apply(txn, previous, replaying=replaying)
        except BaseException:
            self.shapes.clear()  # the statement may have run before the failure
            raise
        if applied:
            self.shapes.clear()  # any table's columns or keys may have changed
        return applied


# Column types whose text form may not compare equal to the stored value: never used to verify a
# before-image (the key still addresses the row).
_INEXACT_TYPES = {"float", "double", "real", "json", "geometry", "point", "linestring", "polygon", "multipoint",
                  "multilinestring", "multipolygon", "geometrycollection"}  # fmt: skip
# Server errors that mean the change does not fit the DR side's rows: drift, not a passing fault.
_CONFLICT_CODES = {1062, 1451, 1452}
_DUPLICATE = re.compile(r"Duplicate entry '(.*)' for key '([^']*)'", re.S)
_HEX_LITERAL = re.compile(r"^(?:_(\w+) )?X'([0-9a-fA-F]*)'$")
_CODECS = {"utf8mb4": "utf-8", "utf8mb3": "utf-8", "utf8": "utf-8", "latin1": "cp1252", "ascii": "ascii", "binary": ""}


def _plain_name(quoted: str) -> str:
    db, table = _split_name(quoted, "")
    return f"{db}.{table}"


def _readable(literal: str) -> str:
    """A key value for a message: strings as text rather than the hex literal the applier writes."""
    m = _HEX_LITERAL.match(literal)
    if not m:
        return literal if len(literal) <= 64 else literal[:61] + "..."
    raw = bytes.fromhex(m.group(2))
    codec = _CODECS.get((m.group(1) or "binary").lower(), "")
    text = None
    if codec:
        try:
            text = "'" + raw.decode(codec).replace("'", "''") + "'"
        except UnicodeDecodeError:
            text = None
    if text is None:
        text = "0x" + raw.hex()
    return text if len(text) <= 64 else text[:61] + "..."


_KEY_MISMATCH = (
    "a row event does not carry the DR table's key columns: the primary key of the table differs "
    "between the service and the DR database; make them equal (or re-create the task)"
)


def _net_effect(run: list[RowChange], key: tuple[int, ...]) -> tuple[dict[tuple, tuple | None], dict[tuple, None]]:
    """Per key the final row (None: gone), and the keys whose first change says the DR side must
    NOT hold them yet (an INSERT, or an UPDATE moving a row to this key). Every other key's first
    change is an UPDATE or DELETE: the DR side must hold it. (Catch-up speed is bound by this loop.)"""
    # one key column (the usual primary key): the value itself is the dict key while the rows are
    # walked (no tuple and no call per row), made a 1-tuple once per key at the end
    single = len(key) == 1
    final: dict = {}
    born: dict = {}
    key_of = operator.itemgetter(key[0]) if single else _picker(key)
    for change in run:
        if change.kind == "insert":
            for row in change.rows:
                k = key_of(row)
                if k not in final:
                    born[k] = None
                final[k] = row
        elif change.kind == "delete":
            for row in change.rows:
                final[key_of(row)] = None
        else:
            for before, after in change.rows:
                old = key_of(before)
                new = key_of(after)
                if old != new:
                    final[old] = None
                    if new not in final:
                        born[new] = None
                final[new] = after
    if single:
        if None in final:  # a NULL key: the careful path reports it (_KEY_MISMATCH)
            return {(None,): None}, {}
        return {(k,): v for k, v in final.items()}, {(k,): None for k in born}
    return final, born


def _partition(
    final: dict[tuple, tuple | None], born: dict[tuple, None]
) -> tuple[list[tuple], list[tuple], list[tuple], list[tuple]]:
    """(gone keys, kept rows, transient keys, new rows): keys that existed and are gone, rows whose
    key existed and still exists, keys inserted and deleted again, rows whose key is new."""
    if not born:
        return [k for k, v in final.items() if v is None], [v for v in final.values() if v is not None], [], []
    gone = [k for k, v in final.items() if v is None and k not in born]
    kept = [v for k, v in final.items() if v is not None and k not in born]
    transient = [k for k in born if final[k] is None]
    new_rows = [v for v in (final[k] for k in born) if v is not None]
    return gone, kept, transient, new_rows


def _first_change(run: list[RowChange], key: tuple[int, ...], k: tuple) -> str:
    """The first change of a run that touches key `k` (for a conflict's message)."""
    for change in run:
        for row in change.rows:
            images = row if change.kind == "update" else (row,)
            if any(tuple(image[i] for i in key) == k for image in images):
                return change.kind.upper()
    return "INSERT"


class _FittingCursor(pymysql.cursors.Cursor):
    """A cursor that sends a statement bigger than the DR server's max_allowed_packet with its large
    values as binary literals (engine.literals), and refuses, clearly, one that still does not fit."""

    def execute(self, query, args=None):  # type: ignore[no-untyped-def]
        limit = getattr(self.connection, "drs_statement_limit", 0)
        if limit and args is None and len(query) > limit:
            query = literals.compact(query)
            if len(query) > limit:
                raise Unreplicable(
                    f"a row change of {len(query):,} bytes (as SQL, its large values as binary) does not fit "
                    f"max_allowed_packet on the DR database (about {limit:,} bytes usable); raise it there "
                    "(SET GLOBAL max_allowed_packet=1073741824; and under [mysqld] in my.cnf), then resume the task"
                )
        return super().execute(query, args)


def _by_table(changes: list[RowChange]) -> dict[tuple[str, str], list[RowChange]]:
    """A batch's row changes per table, each table's in order, the tables in the order of their first
    change: the runs of _batch_runs when every table is a net-effect table (one pass, for the
    pipelined path, where this loop runs once per row event)."""
    by_table: dict[tuple[str, str], list[RowChange]] = {}
    for change in changes:
        table = (change.schema, change.table)
        run = by_table.get(table)
        if run is None:
            by_table[table] = [change]
        else:
            run.append(change)
    return by_table


def _runs(changes: list[RowChange | DdlChange]) -> list[list[RowChange]]:
    """Consecutive row changes of the same table, in order."""
    runs: list[list[RowChange]] = []
    for change in changes:
        if not isinstance(change, RowChange):
            continue
        last = runs[-1][0] if runs else None
        if last and (last.schema, last.table, last.fk_checks_off) == (change.schema, change.table, change.fk_checks_off):
            runs[-1].append(change)
        else:
            runs.append([change])
    return runs


def _chunks(items: list, n: int) -> list[list]:
    return [items[i : i + n] for i in range(0, len(items), n)]
