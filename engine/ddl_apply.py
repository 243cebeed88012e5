"""Applies replicated DDL on the DR database: which statements concern the task, the session they run
under, their definer, and how a DDL interrupted by a crash is replayed.

engine.ddl says what a statement is (its tokens, scope and session context); this module decides what
to do with it. It shares the row applier's DR connection (engine.apply.Applier owns one DdlApplier),
so a DDL is ordered with the row changes around it and its checkpoint commits in the same session.

A DDL cannot run inside a transaction, so it is bracketed by checkpoints: the DDL is first marked in
flight (committed), then run, then the checkpoint moves past it. After a crash, the mark says that the
statement may already be applied: only then may an "already exists/does not exist" error pass.
"""

from __future__ import annotations

import re

import pymysql

from engine import checkpoint as cp
from engine import ddl
from engine.connect import META_DATABASE, BinlogPosition, ServerInfo, quote_ident, server_info
from engine.errors import ReplicationError, Unreplicable
from engine.progress import LogFn
from engine.schema import event_keyword
from engine.server_errors import connection_lost, mysql_message
from engine.spec import SYSTEM_DATABASES
from engine.stream import DdlChange, Transaction

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

# Statements a task never applies: accounts and privileges, server administration, table
# maintenance, session settings. Matched on the statement after any `SET STATEMENT ... FOR`.
_SKIP_DDL = re.compile(
    r"^\s*(GRANT|REVOKE|CREATE\s+USER|ALTER\s+USER|DROP\s+USER|RENAME\s+USER|SET\s+PASSWORD|CREATE\s+ROLE|DROP\s+ROLE|"
    r"FLUSH|ANALYZE|OPTIMIZE|REPAIR|CHECK|INSTALL|UNINSTALL|CREATE\s+SERVER|ALTER\s+SERVER|DROP\s+SERVER|SET\s+)",
    re.I,
)

# The apply session's own settings, put back after a DDL ran under the source session's.
_SESSION_SETTINGS = (
    "sql_mode",
    "time_zone",
    "foreign_key_checks",
    "unique_checks",
    "collation_connection",
    "collation_server",
    "auto_increment_increment",
    "auto_increment_offset",
    "sql_auto_is_null",
    "character_set_client",
)
_MARIADB_SESSION_SETTINGS = ("explicit_defaults_for_timestamp", "check_constraint_checks")


class DdlApplier:
    """The DDL side of one task's apply session on the DR database."""

    def __init__(
        self,
        task: str,
        *,
        databases: tuple[str, ...] | None,
        migrate_definer: bool,
        log: LogFn | None = None,
    ):
        self.task = task
        self.databases = databases
        self.migrate_definer = migrate_definer
        self.log = log or (lambda level, component, message: None)
        self.conn: pymysql.connections.Connection | None = None
        # the DR user (user@host): the definer of migrated views, routines, triggers and events
        self.account: str | None = None
        self.server_info: ServerInfo | None = None
        self.session_defaults: tuple | None = None
        self.session_names: tuple[str, ...] = _SESSION_SETTINGS

    def attach(self, conn: pymysql.connections.Connection) -> None:
        """Use the apply session `conn` (just opened): note its user, server and own settings."""
        self.conn = conn
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            self.account = cur.fetchone()[0]
            self.server_info = server_info(conn)
            self.session_names = _SESSION_SETTINGS + (_MARIADB_SESSION_SETTINGS if self.server_info.is_mariadb else ())
            cur.execute("SELECT " + ", ".join(f"@@SESSION.{name}" for name in self.session_names))
            self.session_defaults = cur.fetchone()

    def detach(self) -> None:
        self.conn = None

    # -- scope ----------------------------------------------------------------------------------
    def wants(self, db: str) -> bool:
        if not db:
            return False
        if self.databases is not None:
            return db in self.databases
        return db.lower() not in SYSTEM_DATABASES and db != META_DATABASE

    def ddl_database(self, change: DdlChange) -> str | None:
        """The database a DDL statement acts on, or None when it does not concern this task.

        Raises ReplicationError for a statement that touches this task's databases and others too:
        applying it would change DR-side data the task does not own, skipping it would lose a change.
        """
        if _SKIP_DDL.match(ddl.body_of(change.statement, change.context)):
            return None
        scope = ddl.analyze(change.statement, change.schema, change.context)
        inside = sorted(db for db in scope.databases if self.wants(db))
        outside = sorted(db for db in scope.databases if not self.wants(db))
        if not inside:
            self.log(
                "info", "apply",
                f"DDL on other databases skipped: {', '.join(outside) or '(none)'}: {' '.join(change.statement.split())[:200]}",
            )  # fmt: skip
            return None
        if outside:
            raise Unreplicable(
                f"a DDL statement touches databases of this task ({', '.join(inside)}) and others "
                f"({', '.join(outside)}); it can be neither applied nor skipped safely: "
                f"{' '.join(change.statement.split())[:300]}"
            )
        target = scope.target[0] if scope.target else ""
        return target if target in inside else inside[0]

    # -- apply ----------------------------------------------------------------------------------
    def apply(self, txn: Transaction, previous: BinlogPosition | None, *, replaying: bool) -> bool:
        """Apply one DDL transaction; returns False when the statement does not concern this task.

        `replaying`: this is the very DDL a crash left marked in flight; only then may an "already
        exists/does not exist" error mean that it was applied before the crash.
        """
        assert self.conn is not None
        change = txn.changes[0]
        assert isinstance(change, DdlChange)
        db = self.ddl_database(change)
        with self.conn.cursor() as cur:
            if db is None:
                cp.write_checkpoint(cur, self.task, "incremental", txn.end, source_ts=txn.timestamp)
                self.conn.commit()
                return False
            scope = ddl.analyze(change.statement, change.schema, change.context)
            _refuse_versioning(scope, change.statement)
            statement = change.statement
            if self.migrate_definer and self.account:
                statement = ddl.rewrite_definer(statement, self.account, change.context)
            # Mark the DDL as in flight (committed), then run it: after a crash the mark tells that
            # it may already be applied.
            cp.write_checkpoint(
                cur, self.task, "incremental", previous, ddl_pending=True, source_ts=txn.timestamp
            )
            self.conn.commit()
            target = scope.target or (change.schema, "")
            trigger = scope.kind == "TRIGGER" and scope.verb == "CREATE"
            drop_trigger = scope.kind == "TRIGGER" and scope.verb == "DROP"
            event = scope.kind == "EVENT" and scope.verb in ("CREATE", "ALTER")
            drop_event = scope.kind == "EVENT" and scope.verb == "DROP"
            try:
                if change.schema and _db_exists(cur, change.schema):
                    cur.execute(f"USE {quote_ident(change.schema)}")
                if trigger:
                    # Held back: a trigger on the standby would fire on applied rows (see engine.schema);
                    # promote creates it under the sql_mode it was defined with (as the copy does)
                    cp.save_deferred(cur, self.task, "trigger", target[0], target[1], _with_sql_mode(statement, change.context))
                    self.log(
                        "info",
                        "apply",
                        f"trigger {target[0]}.{target[1]} recorded; it is created on the DR database at promote",
                    )
                elif drop_trigger:
                    cp.drop_deferred(cur, self.task, "trigger", target[0], target[1])
                    cur.execute(f"DROP TRIGGER IF EXISTS {quote_ident(target[0])}.{quote_ident(target[1])}")
                else:
                    encoding = self._enter_context(cur, change.context, txn.timestamp)
                    try:
                        # autocommit for the statement itself: EXCHANGE PARTITION under autocommit=0
                        # waits on its own implicit transaction's locks ("Verifying data with
                        # partition", deaf to KILL)
                        self.conn.autocommit(True)
                        cur.execute(_encoded(statement, encoding))
                    except pymysql.err.MySQLError as exc:
                        code = exc.args[0] if exc.args else None
                        if connection_lost(exc) or not (replaying and code in ALREADY_APPLIED):
                            raise
                        # applied before the crash; the steps after it (below) may not have been
                        self.log("info", "apply", f"DDL already applied before the restart: {mysql_message(exc)}")
                    finally:
                        if not _lost(cur):
                            self.conn.autocommit(False)
                            self._own_session(cur)
                    if event:
                        self._keep_event_off(cur, target, statement, created=scope.verb == "CREATE")
                    elif drop_event:
                        cp.drop_deferred(cur, self.task, "event", target[0], target[1])
            except pymysql.err.MySQLError as exc:
                if connection_lost(exc):
                    raise
                self.conn.rollback()
                # The statement failed for real (it is not in flight any more): clear the mark,
                # or the retry would take this very error for "already applied by a crash".
                cp.write_checkpoint(cur, self.task, "incremental", previous, ddl_pending=False, source_ts=txn.timestamp)
                self.conn.commit()
                raise ReplicationError(
                    f"DDL failed on the DR database: {mysql_message(exc)}; statement: {change.statement[:300]}"
                ) from None
            cp.write_checkpoint(cur, self.task, "incremental", txn.end, source_ts=txn.timestamp)
            cur.execute("USE mysql")
        self.conn.commit()
        self.log("info", "apply", f"DDL applied on {db}: {' '.join(change.statement.split())[:200]}")
        return True

    def _keep_event_off(
        self, cur: pymysql.cursors.Cursor, target: tuple[str, str], statement: str, *, created: bool
    ) -> None:
        """An event never runs on the standby; one enabled on the service side is enabled at promote."""
        assert self.server_info is not None
        edb, ename = target
        cur.execute(f"ALTER EVENT {quote_ident(edb)}.{quote_ident(ename)} {event_keyword(self.server_info)}")
        if re.search(r"\bDISABLE\b", statement, re.I):
            cp.drop_deferred(cur, self.task, "event", edb, ename)
        elif created or re.search(r"\bENABLE\b", statement, re.I):
            cp.save_deferred(cur, self.task, "event", edb, ename, "ENABLE")

    # -- session context ------------------------------------------------------------------------
    def _enter_context(self, cur: pymysql.cursors.Cursor, context: ddl.SessionContext | None, timestamp: int = 0) -> str | None:
        """Run the next statement under the source session's settings, as a native replica does.

        Returns the Python codec to send the statement in (its client's character set), None: utf-8.
        """
        if context is None:
            return None
        sets: list[str] = []
        args: list[object] = []
        encoding: str | None = None
        if context.sql_auto_is_null is not None:
            sets.append(f"SESSION sql_auto_is_null = {context.sql_auto_is_null}")
        if self.server_info is not None and self.server_info.is_mariadb:
            sets += [f"SESSION {name} = {value}" for name, value in context.mariadb_flags.items()]
        if timestamp:
            # NOW(), CURRENT_TIMESTAMP defaults filled into existing rows, system versioning: the
            # statement's own start time, not the moment the DR side applies it
            sets.append(f"SESSION timestamp = {int(timestamp)}.{int(context.microseconds or 0):06d}")
        if context.time_zone is not None:
            sets.append("SESSION time_zone = %s")
            args.append(context.time_zone)
        if context.foreign_key_checks is not None:
            sets += [f"SESSION foreign_key_checks = {context.foreign_key_checks}", f"SESSION unique_checks = {context.unique_checks}"]
        if context.auto_increment is not None:
            sets += [f"SESSION auto_increment_increment = {int(context.auto_increment[0])}",
                     f"SESSION auto_increment_offset = {int(context.auto_increment[1])}"]  # fmt: skip
        if context.charset is not None:
            # the text is sent as utf8mb4 (character_set_client stays); literals and new databases
            # take the source's collations
            names = _collations(cur, context.charset[1:])
            for var, name in zip(("collation_connection", "collation_server"), names, strict=True):
                if name:
                    sets.append(f"SESSION {var} = %s")
                    args.append(name)
            # the statement goes in the client's own character set: routines and views keep it as
            # their character_set_client, as on a native replica
            client = _charset_of_collation(cur, context.charset[0])
            codec = context.encoding()
            if client and codec != "utf-8" and client not in ("utf8mb4", "utf8mb3", "utf8"):
                sets.append("SESSION character_set_client = %s")
                args.append(client)
                encoding = codec
        if sets:
            try:
                cur.execute("SET " + ", ".join(sets), args)
            except pymysql.err.MySQLError as exc:
                if connection_lost(exc):
                    raise
                raise ReplicationError(f"cannot take the service session's settings for a DDL: {mysql_message(exc)}") from None
        if context.sql_mode is not None:
            try:
                cur.execute("SET SESSION sql_mode = %s", (context.sql_mode_text(),))
            except pymysql.err.MySQLError as exc:
                if connection_lost(exc):
                    raise
                # a mode only the source's vendor knows: the portable part still parses the statement
                cur.execute("SET SESSION sql_mode = %s", (context.sql_mode_text(portable=True),))
        return encoding

    def _own_session(self, cur: pymysql.cursors.Cursor) -> None:
        """Back to the apply session's own settings (noted at attach)."""
        if self.session_defaults:
            cur.execute(
                "SET SESSION timestamp = DEFAULT, " + ", ".join(f"SESSION {name} = %s" for name in self.session_names),
                self.session_defaults,
            )


def _with_sql_mode(statement: str, context: ddl.SessionContext | None) -> str:
    """A CREATE TRIGGER that carries the sql_mode of the session it came from (engine.schema's form)."""
    if context is None or context.sql_mode is None or ddl.body_of(statement, context) != statement:
        return statement
    mode = (context.sql_mode_text() or "").replace("\\", "\\\\").replace("'", "''")
    return f"SET STATEMENT sql_mode='{mode}' FOR {statement}"


def _encoded(statement: str, encoding: str | None) -> str | bytes:
    """The statement as its client sent it: bytes in `encoding` (None: text, sent as utf8mb4)."""
    if encoding is None:
        return statement
    try:
        return statement.encode(encoding)
    except UnicodeEncodeError:
        raise Unreplicable(
            f"a DDL statement cannot be sent back in its client's character set ({encoding}): "
            f"{' '.join(statement.split())[:200]}"
        ) from None


def _charset_of_collation(cur: pymysql.cursors.Cursor, collation_id: int) -> str | None:
    cur.execute("SELECT CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID = %s", (collation_id,))
    row = cur.fetchone()
    return row[0] if row else None


def _refuse_versioning(scope: ddl.DdlScope, statement: str) -> None:
    """System-versioned tables cannot be kept exact: the DR server stamps history rows with its own
    times (MariaDB writes ROW_START/ROW_END itself), so the history would differ from the source's."""
    if scope.kind == "TABLE" and scope.verb in ("CREATE", "ALTER") and re.search(
        r"\bWITH\s+SYSTEM\s+VERSIONING\b|\bADD\s+SYSTEM\s+VERSIONING\b|\bPERIOD\s+FOR\s+SYSTEM_TIME\b", statement, re.I
    ):
        raise Unreplicable(
            f"system-versioned table {'.'.join(p for p in (scope.target or ('', '')) if p)}: DRS Desktop "
            "cannot replicate a table WITH SYSTEM VERSIONING exactly (the DR server would write its own "
            "history times), so the task stops instead of letting the history differ. Exclude the "
            "table's database from the task, or drop versioning on the service side "
            "(ALTER TABLE ... DROP SYSTEM VERSIONING) and start the task again"
        )


def _collations(cur: pymysql.cursors.Cursor, ids: tuple[int, ...]) -> list[str | None]:
    names: list[str | None] = []
    for cid in ids:
        cur.execute("SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE ID = %s", (cid,))
        row = cur.fetchone()
        names.append(row[0] if row else None)  # unknown on the DR server: keep its own
    return names


def _lost(cur: pymysql.cursors.Cursor) -> bool:
    conn = cur.connection
    return conn is None or getattr(conn, "_sock", None) is None


def _db_exists(cur: pymysql.cursors.Cursor, db: str) -> bool:
    cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=%s", (db,))
    return cur.fetchone() is not None
