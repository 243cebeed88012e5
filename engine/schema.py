"""Database objects for the initial copy: read their DDL from the service side, rewrite definers,
and create them on the DR side in an order that works (databases, tables; later views, routines, events).

Triggers are read but never created here: the applier writes rows with plain SQL, so a trigger on the
DR side would apply its effect a second time. Their statements are handed back for promote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pymysql

from engine.connect import ServerInfo, qualified, quote_ident
from engine.ddl import definer_of, rewrite_definer
from engine.errors import ReplicationError
from engine.progress import LogFn

# An identifier or account part as the server prints it in SHOW CREATE (any quoting, or bare).
_QUOTED = r"(?:`(?:[^`]|``)*`|\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*'|[\w$]+)"
_NAME = rf"{_QUOTED}(?:\s*\.\s*{_QUOTED})?"
_TRIGGER_HEAD_RE = re.compile(
    rf"(\bTRIGGER\s+)(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})(\s+(?:BEFORE|AFTER)\s+(?:INSERT|UPDATE|DELETE)"
    rf"(?:\s+OR\s+(?:INSERT|UPDATE|DELETE))*\s+ON\s+)({_NAME})",
    re.I,
)
_EVENT_STATUS_RE = re.compile(
    r"(\bON\s+COMPLETION\s+(?:NOT\s+)?PRESERVE\s+)(ENABLE|DISABLE\s+ON\s+(?:SLAVE|REPLICA)|DISABLE)\b", re.I
)


# ---- what we read --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableDef:
    database: str
    name: str
    create_sql: str
    kind: str  # "BASE TABLE" or "SEQUENCE"
    engine: str
    rows_estimate: int
    data_length: int


@dataclass(frozen=True)
class ViewDef:
    database: str
    name: str
    create_sql: str
    collation_connection: str
    definer: str


@dataclass(frozen=True)
class RoutineDef:
    database: str
    name: str
    kind: str  # "PROCEDURE" or "FUNCTION"
    create_sql: str
    sql_mode: str
    collation_connection: str
    definer: str


@dataclass(frozen=True)
class TriggerDef:
    database: str
    name: str
    table: str
    create_sql: str
    sql_mode: str
    definer: str


@dataclass(frozen=True)
class EventDef:
    database: str
    name: str
    create_sql: str
    sql_mode: str
    time_zone: str
    status: str  # ENABLED, DISABLED, SLAVESIDE_DISABLED
    definer: str


@dataclass(frozen=True)
class DatabaseSchema:
    name: str
    charset: str
    collation: str
    tables: tuple[TableDef, ...]
    views: tuple[ViewDef, ...]
    routines: tuple[RoutineDef, ...]
    triggers: tuple[TriggerDef, ...]
    events: tuple[EventDef, ...]

    @property
    def definers(self) -> set[str]:
        objs: Iterable[Any] = (*self.views, *self.routines, *self.triggers, *self.events)
        return {o.definer for o in objs if o.definer}


def text(value: Any) -> Any:
    """Server values as str whether the connection is raw (bytes) or not."""
    return value.decode("utf-8") if isinstance(value, bytes | bytearray) else value


def fetch(conn: pymysql.connections.Connection, sql: str, args: Sequence[str] | None = None) -> list[tuple]:
    """Rows with every value as str/None: works on raw (snapshot) connections too."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return [tuple(text(v) for v in row) for row in cur.fetchall()]


def fetch_dicts(conn: pymysql.connections.Connection, sql: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, (text(v) for v in row), strict=True)) for row in cur.fetchall()]


def read_schema(conn: pymysql.connections.Connection, database: str) -> DatabaseSchema:
    """Every object of one database, as the service side defines it now (call inside the snapshot)."""
    found = fetch(
        conn,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
        "WHERE SCHEMA_NAME = %s",
        [database],
    )
    if not found:
        raise ReplicationError(f"database {database!r} does not exist on the service database")
    charset, collation = found[0]
    tables = []
    for name, kind, engine, rows, data_length in fetch(
        conn,
        "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS, DATA_LENGTH FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE') ORDER BY TABLE_NAME",
        [database],
    ):
        create = _show_create(conn, "TABLE", database, name)[1]
        tables.append(
            TableDef(database, name, create, kind, engine or "", int(rows or 0), int(data_length or 0))
        )
    views = []
    for (name,) in fetch(
        conn,
        "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
        [database],
    ):
        row = _show_create(conn, "VIEW", database, name)
        views.append(ViewDef(database, name, row[1], row[3], definer_of(row[1])))
    routines = []
    for name, kind in fetch(
        conn,
        "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s "
        "AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
        [database],
    ):
        row = _show_create(conn, kind, database, name)
        # Name, sql_mode, Create ..., character_set_client, collation_connection, Database Collation
        routines.append(RoutineDef(database, name, kind, row[2], row[1] or "", row[4], definer_of(row[2])))
    triggers = []
    for name, table in fetch(
        conn,
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
        "ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER, TRIGGER_NAME",
        [database],
    ):
        row = _show_create(conn, "TRIGGER", database, name)
        triggers.append(TriggerDef(database, name, table, row[2], row[1] or "", definer_of(row[2])))
    events = []
    for name, status in fetch(
        conn,
        "SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s ORDER BY EVENT_NAME",
        [database],
    ):
        row = _show_create(conn, "EVENT", database, name)
        # Event, sql_mode, time_zone, Create Event, ...
        events.append(EventDef(database, name, row[3], row[1] or "", row[2], status, definer_of(row[3])))
    return DatabaseSchema(
        database,
        charset,
        collation,
        tuple(tables),
        tuple(views),
        tuple(routines),
        tuple(triggers),
        tuple(events),
    )


def _show_create(conn: pymysql.connections.Connection, kind: str, database: str, name: str) -> tuple:
    try:
        rows = fetch(conn, f"SHOW CREATE {kind} {qualified(database, name)}")
    except pymysql.err.MySQLError as exc:
        raise ReplicationError(
            f"cannot read the definition of {kind.lower()} {database}.{name} on the service database: "
            f"{server_error(exc)}"
        ) from None
    if (
        not rows
        or any(v is None for v in rows[0][:2])
        or (kind not in ("TABLE", "VIEW") and rows[0][2] is None)
    ):
        raise ReplicationError(
            f"cannot read the definition of {kind.lower()} {database}.{name}: the service database user "
            "lacks the privilege to see it (SHOW CREATE returned nothing)"
        )
    return rows[0]


def server_error(exc: BaseException) -> str:
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        return f"{exc.args[1]} (error {exc.args[0]})"
    return str(exc)


# ---- definers ------------------------------------------------------------------------------------
# The DEFINER of a statement is read and rewritten by engine.ddl (definer_of, rewrite_definer): one
# rule, header only, for the initial copy and for streaming.


def current_account(conn: pymysql.connections.Connection) -> str:
    """The account the DR task's user is authenticated as (CURRENT_USER(), e.g. drs@%)."""
    return text(fetch(conn, "SELECT CURRENT_USER()")[0][0])


def missing_accounts(conn: pymysql.connections.Connection, accounts: Iterable[str]) -> list[str] | None:
    """Which of these definer accounts do not exist on the server (None: cannot tell, no privilege)."""
    missing = []
    for account in sorted(set(accounts)):
        user, host = account.rsplit("@", 1) if "@" in account else (account, "")
        try:
            if host:
                rows = fetch(conn, "SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", [user, host])
            else:
                rows = fetch(conn, "SELECT 1 FROM mysql.user WHERE User = %s AND is_role = 'Y'", [user])
        except pymysql.err.MySQLError:
            return None
        if not rows:
            missing.append(account)
    return missing


# ---- creating on the DR side ---------------------------------------------------------------------


def execute(conn: pymysql.connections.Connection, sql: str, what: str) -> None:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    except pymysql.err.MySQLError as exc:
        raise ReplicationError(f"cannot create {what} on the DR database: {server_error(exc)}") from None


def recreate_database(conn: pymysql.connections.Connection, schema: DatabaseSchema) -> None:
    db = quote_ident(schema.name)
    execute(conn, f"DROP DATABASE IF EXISTS {db}", f"database {schema.name} (drop)")
    execute(
        conn,
        f"CREATE DATABASE {db} CHARACTER SET {schema.charset} COLLATE {schema.collation}",
        f"database {schema.name}",
    )


_INDEX_LINE_RE = re.compile(r"^\s+(?:UNIQUE |FULLTEXT |SPATIAL )?(?:KEY|INDEX) ", re.I)


def split_secondary_indexes(create_sql: str) -> tuple[str, tuple[str, ...]]:
    """CREATE TABLE without its secondary indexes, and the `ADD ...` clauses that put them back.

    SHOW CREATE TABLE prints one column, key or constraint per line, so the lines are the items.
    """
    lines = create_sql.split("\n")
    close = max(i for i, line in enumerate(lines) if line.startswith(")"))
    body = lines[1:close]
    keep = [line.rstrip().rstrip(",") for line in body if not _INDEX_LINE_RE.match(line)]
    indexes = tuple("ADD " + line.strip().rstrip(",") for line in body if _INDEX_LINE_RE.match(line))
    if not indexes:
        return create_sql, ()
    return "\n".join([lines[0], ",\n".join(keep), *lines[close:]]), indexes


def create_tables(
    conn: pymysql.connections.Connection, schema: DatabaseSchema, defer_indexes: Iterable[str] = ()
) -> dict[str, str]:
    """Tables as SHOW CREATE TABLE gave them (indexes, charsets, AUTO_INCREMENT, partitions).

    Tables named in `defer_indexes` are created without their secondary indexes: building an index
    once over loaded rows is much faster than keeping it sorted row by row. Returns the ALTER TABLE
    that adds them back, per table name.
    """
    execute(conn, f"USE {quote_ident(schema.name)}", f"database {schema.name}")
    # Foreign keys may name tables created later in the loop.
    execute(conn, "SET SESSION foreign_key_checks = 0", "session settings")
    deferred = set(defer_indexes)
    later: dict[str, str] = {}
    for table in schema.tables:
        sql = table.create_sql
        if table.name in deferred:
            sql, indexes = split_secondary_indexes(sql)
            if indexes:
                later[table.name] = f"ALTER TABLE {qualified(schema.name, table.name)} " + ", ".join(indexes)
        execute(conn, sql, f"table {schema.name}.{table.name}")
    return later


class SessionSettings:
    """Sets session variables for one object's creation and puts the connection's values back."""

    def __init__(self, conn: pymysql.connections.Connection, **values: str | None):
        self.conn = conn
        self.values = {k: v for k, v in values.items() if v is not None}
        self.saved: dict[str, str] = {}

    def __enter__(self) -> SessionSettings:
        if self.values:
            names = ", ".join(f"@@SESSION.{k}" for k in self.values)
            row = fetch(self.conn, f"SELECT {names}")[0]
            self.saved = dict(zip(self.values, row, strict=True))
            self._set(self.values)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved:
            self._set(self.saved)

    def _set(self, values: dict[str, str]) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                "SET " + ", ".join(f"SESSION {k} = %s" for k in values),
                list(values.values()),
            )


def create_routines(
    conn: pymysql.connections.Connection, schema: DatabaseSchema, definer: str | None
) -> None:
    """Procedures and functions, each under the sql_mode it was defined with."""
    if not schema.routines:
        return
    execute(conn, f"USE {quote_ident(schema.name)}", f"database {schema.name}")
    for r in schema.routines:
        sql = rewrite_definer(r.create_sql, definer) if definer else r.create_sql
        with SessionSettings(conn, sql_mode=r.sql_mode, collation_connection=r.collation_connection):
            execute(conn, sql, f"{r.kind.lower()} {r.database}.{r.name}")


def create_views(
    conn: pymysql.connections.Connection, schemas: Sequence[DatabaseSchema], definer: str | None
) -> None:
    """Every view of every copied database; a view on another view waits until that one exists.

    information_schema.VIEW_TABLE_USAGE is missing on MariaDB, so we retry the failures until a
    round creates nothing more: at most one round per level of nesting.
    """
    pending = [v for s in schemas for v in s.views]
    last_error: dict[tuple[str, str], str] = {}
    while pending:
        failed = []
        for v in pending:
            sql = rewrite_definer(v.create_sql, definer) if definer else v.create_sql
            try:
                with conn.cursor() as cur:
                    cur.execute(f"USE {quote_ident(v.database)}")
                with SessionSettings(conn, collation_connection=v.collation_connection), conn.cursor() as cur:
                    cur.execute(sql)
            except pymysql.err.MySQLError as exc:
                failed.append(v)
                last_error[(v.database, v.name)] = server_error(exc)
        if len(failed) == len(pending):
            names = "; ".join(f"{v.database}.{v.name}: {last_error[(v.database, v.name)]}" for v in failed)
            raise ReplicationError(f"cannot create view(s) on the DR database: {names}")
        pending = failed


def event_keyword(info: ServerInfo) -> str:
    """How this server spells 'disabled on a replica' (MySQL 8.0.22+ renamed it)."""
    if not info.is_mariadb and info.major_minor >= (8, 0):
        return "DISABLE ON REPLICA" if _version_tuple(info.version) >= (8, 0, 22) else "DISABLE ON SLAVE"
    return "DISABLE ON SLAVE"


def _version_tuple(version: str) -> tuple[int, ...]:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def create_events(
    conn: pymysql.connections.Connection, schema: DatabaseSchema, definer: str | None, info: ServerInfo
) -> list[tuple[str, str]]:
    """Events, created so they do not run on the standby; returns those to enable at promote.

    The status is rewritten in the CREATE itself (no window in which the scheduler could run it);
    an event that was DISABLED on the service side stays plainly DISABLED.
    """
    to_enable = []
    if not schema.events:
        return to_enable
    execute(conn, f"USE {quote_ident(schema.name)}", f"database {schema.name}")
    off = event_keyword(info)
    for e in schema.events:
        sql = rewrite_definer(e.create_sql, definer) if definer else e.create_sql
        wanted = "DISABLE" if e.status == "DISABLED" else off
        sql, n = _EVENT_STATUS_RE.subn(lambda m, w=wanted: m.group(1) + w, sql, count=1)
        with SessionSettings(conn, sql_mode=e.sql_mode, time_zone=e.time_zone):
            execute(conn, sql, f"event {e.database}.{e.name}")
            if n == 0 and e.status != "DISABLED":
                execute(
                    conn, f"ALTER EVENT {qualified(e.database, e.name)} {off}", f"event {e.database}.{e.name}"
                )
        if e.status == "ENABLED":
            to_enable.append((e.database, e.name))
    return to_enable


def deferred_trigger_sql(trigger: TriggerDef, definer: str | None, info: ServerInfo) -> str:
    """A CREATE TRIGGER that works from any current database, definer rewritten if asked.

    On MariaDB it carries its sql_mode (SET STATEMENT ... FOR); run it with create_deferred_trigger,
    which also parses it under that mode.
    """
    sql = rewrite_definer(trigger.create_sql, definer) if definer else trigger.create_sql

    def qualify(m: re.Match[str]) -> str:
        return (
            m.group(1)
            + qualified(trigger.database, trigger.name)
            + m.group(3)
            + qualified(trigger.database, trigger.table)
        )

    sql, n = _TRIGGER_HEAD_RE.subn(qualify, sql, count=1)
    if n == 0:
        raise ReplicationError(f"cannot parse the definition of trigger {trigger.database}.{trigger.name}")
    if info.is_mariadb:
        mode = trigger.sql_mode.replace("\\", "\\\\").replace("'", "''")
        sql = f"SET STATEMENT sql_mode='{mode}' FOR {sql}"
    return sql


_SET_STATEMENT_RE = re.compile(r"^SET STATEMENT sql_mode='((?:[^'\\]|''|\\.)*)' FOR ", re.S)


def create_deferred_trigger(conn: pymysql.connections.Connection, statement: str) -> None:
    """Run one of SnapshotResult.deferred_triggers (promote uses this).

    SET STATEMENT gives the trigger its sql_mode, but the CREATE is parsed before that applies: a
    body written under e.g. ANSI_QUOTES needs the session in that mode too.
    """
    m = _SET_STATEMENT_RE.match(statement)
    mode = m.group(1).replace("''", "'").replace("\\\\", "\\") if m else None
    with SessionSettings(conn, sql_mode=mode):
        execute(conn, statement, "trigger")


def log_missing_definers(
    conn: pymysql.connections.Connection, schemas: Sequence[DatabaseSchema], log: LogFn
) -> None:
    """Definers kept as they are: say which accounts the DR side lacks (objects would fail to run)."""
    accounts = set().union(*(s.definers for s in schemas)) if schemas else set()
    if not accounts:
        return
    missing = missing_accounts(conn, accounts)
    if missing is None:
        log("warning", "schema", "cannot check whether the definer accounts exist on the DR database "
            "(no privilege to read mysql.user): " + ", ".join(sorted(accounts)))  # fmt: skip
        return
    for account in missing:
        users = [
            f"{o.database}.{o.name}"
            for s in schemas
            for o in (*s.views, *s.routines, *s.triggers, *s.events)
            if o.definer == account
        ]
        log(
            "warning",
            "schema",
            f"definer {account} does not exist on the DR database; objects defined by it will fail "
            f"when used until the account is created: {', '.join(users)}",
        )
