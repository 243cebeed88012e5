"""Object-level compare: databases, tables, columns, indexes, views, routines, triggers and events.

Read from information_schema on both sides. Triggers are held back on a standby (promote creates
them), so there they are compared with what promote will create; events run disabled on a standby.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pymysql

from engine.connect import META_DATABASE, qualified, quote_ident
from engine.schema import fetch

# Event statuses that stand for "enabled on the service side" while the DR side is a standby
STANDBY_EVENT_STATUSES = {"SLAVESIDE_DISABLED", "DISABLED"}


@dataclass(frozen=True)
class ObjectItem:
    """One object of the object-level compare: consistent, inconsistent, missing (on DR) or extra."""

    object_type: str  # database | table | column | index | view | procedure | function | trigger | event
    name: str  # "db", "db.table", "db.view", ...
    status: str  # consistent | inconsistent | missing | extra
    detail: str = ""
    source_value: str | None = None  # the service side's CREATE statement where one exists
    target_value: str | None = None


Conn = pymysql.connections.Connection


def _by_name(rows: Sequence[tuple]) -> dict[str, tuple]:
    return {r[0]: tuple(r[1:]) for r in rows}


def _show_create(conn: Conn, kind: str, db: str, name: str | None = None) -> str | None:
    try:
        target = quote_ident(db) if name is None else qualified(db, name)
        row = fetch(conn, f"SHOW CREATE {kind} {target}")[0]
    except (pymysql.err.MySQLError, IndexError):
        return None
    index = {"DATABASE": 1, "TABLE": 1, "VIEW": 1, "PROCEDURE": 2, "FUNCTION": 2, "TRIGGER": 2, "EVENT": 3}[kind]
    return row[index] if len(row) > index else None


def compare_databases(
    src: Conn,
    dr: Conn,
    databases: Sequence[str],
    *,
    task: str,
    promoted: bool = False,
    tables: Sequence[tuple[str, str]] | None = None,
    migrate_definer: bool = True,
    on_database: Callable[[str], None] | None = None,
) -> list[ObjectItem]:
    items: list[ObjectItem] = []
    deferred = _deferred_triggers(dr, task) if not promoted else {}
    for db in databases:
        only = None if tables is None else {t for d, t in tables if d == db}
        items.extend(_compare_database(src, dr, db, only, promoted, deferred, migrate_definer))
        if on_database:
            on_database(db)
    return items


def _schema_row(conn: Conn, db: str) -> tuple | None:
    rows = fetch(
        conn,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
        [db],
    )
    return rows[0] if rows else None


def _compare_database(
    src: Conn, dr: Conn, db: str, only: set[str] | None, promoted: bool, deferred: dict, migrate_definer: bool
) -> list[ObjectItem]:
    items: list[ObjectItem] = []
    s_schema, d_schema = _schema_row(src, db), _schema_row(dr, db)
    if s_schema is None and d_schema is None:
        return items
    if d_schema is None:
        return [ObjectItem("database", db, "missing", "database missing on the DR side", _show_create(src, "DATABASE", db))]
    if s_schema is None:
        return [ObjectItem("database", db, "extra", "database only on the DR side")]
    if only is None:
        if s_schema != d_schema:
            items.append(ObjectItem("database", db, "inconsistent",
                                    f"character set/collation {'/'.join(s_schema)} on the service side, "
                                    f"{'/'.join(d_schema)} on the DR side"))  # fmt: skip
        else:
            items.append(ObjectItem("database", db, "consistent"))
    items.extend(_compare_tables(src, dr, db, only))
    if only is not None:
        return items
    items.extend(_compare_views(src, dr, db, migrate_definer))
    items.extend(_compare_routines(src, dr, db, migrate_definer))
    items.extend(_compare_triggers(src, dr, db, promoted, deferred))
    items.extend(_compare_events(src, dr, db, promoted))
    return items


# ---- tables, columns, indexes ---------------------------------------------------------------------


def _tables(conn: Conn, db: str) -> dict[str, tuple]:
    return _by_name(
        fetch(
            conn,
            "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE', 'SYSTEM VERSIONED')",
            [db],
        )
    )


def _columns(conn: Conn, db: str) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for row in fetch(
        conn,
        "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, CHARACTER_SET_NAME, "
        "COLLATION_NAME, EXTRA, GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "ORDER BY TABLE_NAME, ORDINAL_POSITION",
        [db],
    ):
        out.setdefault(row[0], []).append(tuple(row[1:]))
    return out


def _indexes(conn: Conn, db: str) -> dict[str, dict[str, tuple]]:
    out: dict[str, dict[str, list]] = {}
    meta: dict[tuple[str, str], tuple] = {}
    for table, index, non_unique, column, sub_part, index_type in fetch(
        conn,
        "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE FROM information_schema.STATISTICS "
        "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        [db],
    ):
        out.setdefault(table, {}).setdefault(index, []).append(f"{column}({sub_part})" if sub_part else column)
        meta[(table, index)] = ("unique" if str(non_unique) == "0" else "non-unique", index_type)
    return {
        t: {i: (*meta[(t, i)], ", ".join(cols)) for i, cols in idx.items()} for t, idx in out.items()
    }


_COLUMN_FIELDS = ("type", "nullable", "default", "character set", "collation", "extra", "generated as")


def _describe_index(spec: tuple) -> str:
    kind, index_type, cols = spec
    return f"{kind} {index_type} ({cols})"


def _compare_tables(src: Conn, dr: Conn, db: str, only: set[str] | None) -> list[ObjectItem]:
    items: list[ObjectItem] = []
    s_tables, d_tables = _tables(src, db), _tables(dr, db)
    s_cols, d_cols = _columns(src, db), _columns(dr, db)
    s_idx, d_idx = _indexes(src, db), _indexes(dr, db)
    names = sorted(set(s_tables) | set(d_tables))
    for t in names:
        if only is not None and t not in only:
            continue
        name = f"{db}.{t}"
        if t not in d_tables:
            items.append(ObjectItem("table", name, "missing", "table missing on the DR side", _show_create(src, "TABLE", db, t)))
            continue
        if t not in s_tables:
            items.append(ObjectItem("table", name, "extra", "table only on the DR side"))
            continue
        problems: list[ObjectItem] = []
        s_type, s_engine, s_coll = s_tables[t]
        d_type, d_engine, d_coll = d_tables[t]
        if (s_type, s_engine, s_coll) != (d_type, d_engine, d_coll):
            problems.append(ObjectItem("table", name, "inconsistent",
                                       f"table options: {s_type} {s_engine} {s_coll} on the service side, "
                                       f"{d_type} {d_engine} {d_coll} on the DR side"))  # fmt: skip
        sc = {c[0]: c for c in s_cols.get(t, [])}
        dc = {c[0]: c for c in d_cols.get(t, [])}
        for col in sc:
            if col not in dc:
                problems.append(ObjectItem("column", name, "missing", f"column {col} missing on the DR side"))
                continue
            diffs = [
                f"{label} {a!r} on the service side, {b!r} on the DR side"
                for label, a, b in zip(_COLUMN_FIELDS, sc[col][1:], dc[col][1:], strict=True)
                if a != b
            ]
            if diffs:
                problems.append(ObjectItem("column", name, "inconsistent", f"column {col}: " + "; ".join(diffs)))
        for col in dc:
            if col not in sc:
                problems.append(ObjectItem("column", name, "extra", f"column {col} only on the DR side"))
        if [c for c in sc if c in dc] != [c for c in dc if c in sc]:
            problems.append(ObjectItem("column", name, "inconsistent", "columns are in a different order"))
        si, di = s_idx.get(t, {}), d_idx.get(t, {})
        for index in sorted(set(si) | set(di)):
            if index not in di:
                problems.append(ObjectItem("index", name, "missing", f"index {index} {_describe_index(si[index])} missing on the DR side"))
            elif index not in si:
                problems.append(ObjectItem("index", name, "extra", f"index {index} {_describe_index(di[index])} only on the DR side"))
            elif si[index] != di[index]:
                problems.append(ObjectItem("index", name, "inconsistent",
                                           f"index {index}: {_describe_index(si[index])} on the service side, "
                                           f"{_describe_index(di[index])} on the DR side"))  # fmt: skip
        items.extend(problems or [ObjectItem("table", name, "consistent", f"{len(sc)} columns, {len(si)} indexes")])
    return items


# ---- views, routines -------------------------------------------------------------------------------


def _compare_named(
    kind: str, db: str, s: dict[str, tuple], d: dict[str, tuple], labels: Sequence[str], create: Callable[[str], str | None]
) -> list[ObjectItem]:
    items = []
    for n in sorted(set(s) | set(d)):
        name = f"{db}.{n}"
        if n not in d:
            items.append(ObjectItem(kind, name, "missing", f"{kind} missing on the DR side", create(n)))
        elif n not in s:
            items.append(ObjectItem(kind, name, "extra", f"{kind} only on the DR side"))
        else:
            diffs = [label for label, a, b in zip(labels, s[n], d[n], strict=False) if a != b]
            if diffs:
                items.append(ObjectItem(kind, name, "inconsistent", "differs in: " + ", ".join(diffs), create(n)))
            else:
                items.append(ObjectItem(kind, name, "consistent"))
    return items


def _compare_views(src: Conn, dr: Conn, db: str, migrate_definer: bool) -> list[ObjectItem]:
    sql = (
        "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE, DEFINER FROM information_schema.VIEWS "
        "WHERE TABLE_SCHEMA = %s"
    )
    s, d = _by_name(fetch(src, sql, [db])), _by_name(fetch(dr, sql, [db]))
    if migrate_definer:  # definers were rewritten to the task's user on purpose
        s = {k: v[:-1] for k, v in s.items()}
        d = {k: v[:-1] for k, v in d.items()}
    return _compare_named("view", db, s, d, ("definition", "check option", "security", "definer"),
                          lambda n: _show_create(src, "VIEW", db, n))  # fmt: skip


def _compare_routines(src: Conn, dr: Conn, db: str, migrate_definer: bool) -> list[ObjectItem]:
    items = []
    for kind in ("PROCEDURE", "FUNCTION"):
        sql = (
            "SELECT r.ROUTINE_NAME, r.ROUTINE_DEFINITION, r.DTD_IDENTIFIER, r.IS_DETERMINISTIC, r.SQL_DATA_ACCESS, "
            "r.SECURITY_TYPE, r.SQL_MODE, (SELECT GROUP_CONCAT(CONCAT_WS(' ', p.PARAMETER_MODE, p.PARAMETER_NAME, "
            "p.DTD_IDENTIFIER) ORDER BY p.ORDINAL_POSITION SEPARATOR ', ') FROM information_schema.PARAMETERS p "
            "WHERE p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA AND p.SPECIFIC_NAME = r.ROUTINE_NAME AND p.ROUTINE_TYPE = "
            "r.ROUTINE_TYPE AND p.ORDINAL_POSITION > 0), r.DEFINER FROM information_schema.ROUTINES r "
            "WHERE r.ROUTINE_SCHEMA = %s AND r.ROUTINE_TYPE = %s"
        )
        s, d = _by_name(fetch(src, sql, [db, kind])), _by_name(fetch(dr, sql, [db, kind]))
        if migrate_definer:
            s = {k: v[:-1] for k, v in s.items()}
            d = {k: v[:-1] for k, v in d.items()}
        labels = ("body", "returns", "deterministic", "data access", "security", "sql_mode", "parameters", "definer")
        items.extend(_compare_named(kind.lower(), db, s, d, labels, lambda n, k=kind: _show_create(src, k, db, n)))
    return items


# ---- triggers (held back on a standby), events (disabled on a standby) ------------------------------


def _deferred_triggers(dr: Conn, task: str) -> dict[tuple[str, str], str]:
    try:
        rows = fetch(
            dr,
            f"SELECT db, name, definition FROM {quote_ident(META_DATABASE)}.`deferred_object` WHERE task = %s AND kind = 'trigger'",
            [task],
        )
    except pymysql.err.MySQLError:
        return {}
    return {(db, name): definition for db, name, definition in rows}


def _squash(text: str | None) -> str:
    return " ".join((text or "").split())


def _compare_triggers(src: Conn, dr: Conn, db: str, promoted: bool, deferred: dict) -> list[ObjectItem]:
    sql = (
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT "
        "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s"
    )
    s, d = _by_name(fetch(src, sql, [db])), _by_name(fetch(dr, sql, [db]))
    if promoted:
        return _compare_named("trigger", db, s, d, ("table", "timing", "event", "body"),
                              lambda n: _show_create(src, "TRIGGER", db, n))  # fmt: skip
    items = []
    for n in sorted(set(s) | {name for (tdb, name) in deferred if tdb == db} | set(d)):
        name = f"{db}.{n}"
        if n in d:
            # a trigger active on the standby fires on every applied row: its effect arrives twice
            items.append(ObjectItem("trigger", name, "extra", "trigger is active on the DR side while it is a standby "
                                    "(promote creates triggers; an active one applies its effect twice)"))  # fmt: skip
            continue
        held = deferred.get((db, n))
        if n not in s:
            items.append(ObjectItem("trigger", name, "extra", "promote would create a trigger the service side no longer has"))
        elif held is None:
            items.append(ObjectItem("trigger", name, "missing",
                                    "trigger not held for promote on the DR side (promote would not create it)",
                                    _show_create(src, "TRIGGER", db, n)))  # fmt: skip
        elif _squash(s[n][3]) not in _squash(held) or _squash(s[n][0]) not in _squash(held):
            items.append(ObjectItem("trigger", name, "inconsistent",
                                    "the trigger promote would create differs from the service side's",
                                    _show_create(src, "TRIGGER", db, n), held))  # fmt: skip
        else:
            items.append(ObjectItem("trigger", name, "consistent", "held back on the standby; promote creates it"))
    return items


def _compare_events(src: Conn, dr: Conn, db: str, promoted: bool) -> list[ObjectItem]:
    sql = (
        "SELECT EVENT_NAME, EVENT_DEFINITION, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, STARTS, ENDS, "
        "ON_COMPLETION, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s"
    )
    s, d = _by_name(fetch(src, sql, [db])), _by_name(fetch(dr, sql, [db]))
    labels = ("body", "type", "execute at", "interval", "interval unit", "starts", "ends", "on completion", "status")
    items = []
    for n in sorted(set(s) | set(d)):
        name = f"{db}.{n}"
        if n not in d:
            items.append(ObjectItem("event", name, "missing", "event missing on the DR side", _show_create(src, "EVENT", db, n)))
            continue
        if n not in s:
            items.append(ObjectItem("event", name, "extra", "event only on the DR side"))
            continue
        diffs = [label for label, a, b in zip(labels[:-1], s[n][:-1], d[n][:-1], strict=True) if a != b]
        s_status, d_status = s[n][-1], d[n][-1]
        if promoted or s_status != "ENABLED":
            if s_status != d_status:
                diffs.append(f"status ({s_status} on the service side, {d_status} on the DR side)")
        elif d_status not in STANDBY_EVENT_STATUSES:
            diffs.append(f"status {d_status} on the standby (it should run disabled until promote)")
        items.append(ObjectItem("event", name, "inconsistent" if diffs else "consistent",
                                "differs in: " + ", ".join(diffs) if diffs else ""))  # fmt: skip
    return items


# ---- fix statements ---------------------------------------------------------------------------------


def fix_statements(item: ObjectItem) -> tuple[str, ...]:
    """Statements that would make the DR side match, where they are certain; () where a DBA must decide."""
    db, _, rest = item.name.partition(".")
    kind = item.object_type
    create = (item.source_value.rstrip().rstrip(";"),) if item.source_value else ()
    if item.status == "missing" and kind in ("database", "table", "view", "event", "procedure", "function"):
        return create
    if item.status == "extra" and kind in ("table", "view", "event", "procedure", "function") and rest:
        return (f"DROP {kind.upper()} {qualified(db, rest)}",)
    if item.status == "extra" and kind == "database":
        return (f"DROP DATABASE {quote_ident(db)}",)
    if item.status == "inconsistent" and kind in ("view", "procedure", "function", "event") and create and rest:
        return (f"DROP {kind.upper()} IF EXISTS {qualified(db, rest)}", *create)
    return ()
