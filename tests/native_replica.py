"""Support for tests/test_differential.py: a native MariaDB replica (the oracle), statement scripts,
and an exact comparison of two servers' copies of a database.

The replica is a third private mariadbd (conftest.MariaDBServer, server id 303) that replicates the
suite's service server with the server's own replication (CHANGE MASTER TO ... START SLAVE). What it
ends up with after a script is, by definition, what a DR copy must hold.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from conftest import MariaDBServer

REPLICA_SERVER_ID = 303


def lit(text: str) -> str:
    """A quoted SQL string literal (the servers run with backslash escapes on)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def binlog_end(server: MariaDBServer) -> tuple[str, int]:
    """The end of the server's binlog (SHOW MASTER STATUS)."""
    file, pos = server.sql("SHOW MASTER STATUS")[0][:2]
    return file, int(pos)


def position_key(file: str, pos: int) -> tuple[int, int]:
    return int(file.rsplit(".", 1)[1]), pos


# ---- the native replica -----------------------------------------------------------------------


class NativeReplica:
    """A mariadbd replicating `source` natively, re-pointed at the source's binlog end per test."""

    def __init__(self, server: MariaDBServer, source: MariaDBServer):
        self.server = server
        self.source = source

    @classmethod
    def start(cls, base: Path, source: MariaDBServer) -> NativeReplica:
        server = MariaDBServer("replica", server_id=REPLICA_SERVER_ID)
        # the same arguments as the suite's two servers (conftest), nothing replica-specific: the
        # oracle must be a plain default replica
        server.start(base)
        return cls(server, source)

    def stop(self) -> None:
        try:
            self.server.sql("STOP SLAVE")
        except pymysql.err.MySQLError:
            pass  # a server that is going away anyway
        self.server.stop()

    def reset(self) -> None:
        """No replication, no user database: a clean slate, like conftest's reset of the other two."""
        self.server.sql("STOP SLAVE", "RESET SLAVE ALL")
        self.server.reset()

    def attach(self, position: tuple[str, int]) -> None:
        """Replicate the source from `position` on (its binlog end when the test starts)."""
        ep = self.source.endpoint
        file, pos = position
        self.server.sql(
            f"CHANGE MASTER TO MASTER_HOST={lit(ep.host)}, MASTER_PORT={ep.port}, MASTER_USER={lit(ep.user)}, "
            f"MASTER_PASSWORD={lit(ep.password.reveal())}, MASTER_LOG_FILE={lit(file)}, MASTER_LOG_POS={pos}, "
            "MASTER_USE_GTID=no, MASTER_CONNECT_RETRY=1",
            "START SLAVE",
        )

    def status(self) -> dict[str, object]:
        conn = self.server.root(cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW SLAVE STATUS")
                row = cur.fetchone()
        finally:
            conn.close()
        return dict(row or {})

    def wait_caught_up(self, position: tuple[str, int], timeout: float = 60.0) -> None:
        """Until the replica's SQL thread executed everything up to `position`; a replica that stopped
        on an error means the script itself is wrong (native replication is the oracle)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st.get("Last_SQL_Errno") or st.get("Last_IO_Errno"):
                raise AssertionError(
                    f"the native replica stopped: SQL error {st.get('Last_SQL_Errno')} {st.get('Last_SQL_Error')!r}; "
                    f"IO error {st.get('Last_IO_Errno')} {st.get('Last_IO_Error')!r}"
                )
            done = st.get("Relay_Master_Log_File"), st.get("Exec_Master_Log_Pos")
            if done[0] and position_key(str(done[0]), int(done[1] or 0)) >= position_key(*position):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the native replica did not reach {position} in {timeout:.0f}s (at {done})"
                )
            time.sleep(0.05)


# ---- statement scripts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int
    expect_error: int | None = None  # a statement the source must refuse with this error code


@dataclass(frozen=True)
class Directive:
    """`--@connect NAME [charset=X]`, `--@connection NAME`, `--@disconnect NAME`, `--@sync`
    (`--@error CODE` becomes the next Statement's expect_error)."""

    name: str
    args: tuple[str, ...]
    line: int


Step = Statement | Directive


def parse_script(text: str) -> list[Step]:
    """Statements of a script, as the mysql client splits them: `;` (or the `DELIMITER` set) outside
    quotes and comments ends one; a line `DELIMITER x` or `--@...` between statements is no SQL.
    (A backslash in a string escapes the next character: scripts under NO_BACKSLASH_ESCAPES must not
    end a string with one.)"""
    steps: list[Step] = []
    delimiter = ";"
    buf: list[str] = []
    start = 0
    quote: str | None = None
    block = False
    expect: int | None = None

    def emit(sql: str) -> None:
        nonlocal expect
        if sql.strip():
            steps.append(Statement(sql.strip(), start, expect))
            expect = None

    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not buf and quote is None and not block:
            if stripped.startswith("--@"):
                name, *args = stripped[3:].split()
                if name.lower() == "error":
                    expect = int(args[0])
                else:
                    steps.append(Directive(name.lower(), tuple(args), lineno))
                continue
            if not stripped or stripped.startswith(("--", "#")):
                continue
            if stripped.upper().startswith("DELIMITER "):
                delimiter = stripped.split(None, 1)[1]
                continue
        if not buf:
            start = lineno
        i, seg = 0, 0
        n = len(line)
        while i < n:
            c = line[i]
            if block:
                if line.startswith("*/", i):
                    block = False
                    i += 2
                else:
                    i += 1
            elif quote is not None:
                if c == "\\" and quote != "`":
                    i += 2
                elif c == quote:
                    if line.startswith(quote, i + 1):
                        i += 2
                    else:
                        quote = None
                        i += 1
                else:
                    i += 1
            elif c in "'\"`":
                quote = c
                i += 1
            elif line.startswith("/*", i):
                block = True
                i += 2
            elif c == "#" or (line.startswith("--", i) and (i + 2 == n or line[i + 2].isspace())):
                break  # the rest of the line is a comment
            elif line.startswith(delimiter, i):
                emit("\n".join([*buf, line[seg:i]]))
                buf = []
                i += len(delimiter)
                seg = i
                start = lineno
            else:
                i += 1
        rest = line[seg:]
        if buf or rest.strip() and not rest.strip().startswith(("--", "#")):
            buf.append(rest)
    if "".join(buf).strip():
        raise ValueError(f"script ends inside a statement begun on line {start}: {' '.join(buf)[:200]}")
    return steps


class ScriptError(AssertionError):
    pass


def run_script(
    server: MariaDBServer, database: str, steps: Sequence[Step], sync: Callable[[], None] | None = None
) -> None:
    """Run the steps on `server` as root, on named connections (`default` first), in order;
    `--@sync` calls `sync` (the caller waits there until the copies have caught up)."""
    conns: dict[str, pymysql.connections.Connection] = {"default": _connect(server, database, "utf8mb4", {})}
    current = "default"
    try:
        for step in steps:
            if isinstance(step, Directive):
                if step.name == "connect":
                    options = dict(a.split("=", 1) for a in step.args[1:])
                    charset = options.pop("charset", "utf8mb4")
                    conns[step.args[0]] = _connect(server, database, charset, options)
                    current = step.args[0]
                elif step.name == "connection":
                    current = step.args[0]
                elif step.name == "disconnect":
                    conns.pop(step.args[0]).close()
                    current = "default"
                elif step.name == "sync":
                    if sync is not None:
                        sync()
                else:
                    raise ScriptError(f"line {step.line}: unknown directive --@{step.name}")
                continue
            try:
                with conns[current].cursor() as cur:
                    cur.execute(step.sql)
                    while cur.nextset():  # a CALL returns several results
                        pass
            except pymysql.err.MySQLError as exc:
                if step.expect_error is not None and exc.args and exc.args[0] == step.expect_error:
                    continue
                raise ScriptError(
                    f"line {step.line}: the service server refused the script's statement: {exc}\n{step.sql[:500]}"
                ) from None
            if step.expect_error is not None:
                raise ScriptError(
                    f"line {step.line}: expected error {step.expect_error}, the statement succeeded:\n{step.sql[:500]}"
                )
    finally:
        for conn in conns.values():
            conn.close()


def _connect(
    server: MariaDBServer, database: str, charset: str, options: dict
) -> pymysql.connections.Connection:
    # MariaDBServer.root() fixes utf8mb4; a client in another character set sends its bytes as such
    return pymysql.connect(unix_socket=str(server.socket_path), user="root", database=database, autocommit=True,
                           charset=charset, **options)  # fmt: skip


# ---- exact snapshot of a database, and its differences ----------------------------------------------


@dataclass
class TableRows:
    columns: list[str]
    key: list[int]  # columns that identify a row (primary key, + row end of a versioned table)
    rows: list[tuple]


@dataclass
class Snapshot:
    """What one server holds of a database, as the exact bytes it prints."""

    items: dict[tuple[str, str], object] = field(default_factory=dict)  # (kind, name) -> value
    tables: dict[str, TableRows] = field(default_factory=dict)
    triggers: list[str] = field(default_factory=list)


def _raw(server: MariaDBServer, *, text: bool = False) -> pymysql.connections.Connection:
    """Values as bytes: as stored (rows), or (`text`) converted to utf8mb4, as a DBA's client reads a
    SHOW CREATE (a routine's text is kept in its creator's character set, named in its own column)."""
    conn = server.root(conv={}, use_unicode=False)
    with conn.cursor() as cur:
        cur.execute("SET SESSION character_set_results = " + ("utf8mb4" if text else "NULL"))
        cur.execute("SET SESSION time_zone = '+00:00'")  # TIMESTAMP text must not depend on the zone
    return conn


def _query(conn: pymysql.connections.Connection, sql: str) -> tuple[list[str], list[tuple]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        names = [d[0] for d in cur.description or ()]
        return names, list(cur.fetchall())


def _text(value: object) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


_DEFINER = re.compile(
    rb'DEFINER=(?:`((?:[^`]|``)*)`|"([^"]*)"|(\w+))@(?:`((?:[^`]|``)*)`|"([^"]*)"|([\w%.]+))'
)


def _definers(value: object, rewritten: tuple[bytes, bytes] | None) -> object:
    """DEFINER clauses in one quoting (ANSI_QUOTES objects print "u"@"h"); `rewritten`: the account
    DRS writes in their place (migrate_definer), read as the scripts' own root@localhost."""
    if not isinstance(value, bytes):
        return value

    def one(m: re.Match[bytes]) -> bytes:
        user = next(g for g in m.groups()[:3] if g is not None)
        host = next(g for g in m.groups()[3:] if g is not None)
        if rewritten and (user, host) == rewritten:
            user, host = b"root", b"localhost"
        return b"DEFINER=" + user + b"@" + host

    return _DEFINER.sub(one, value)


def snapshot(
    server: MariaDBServer, db: str, *, definer_from: tuple[str, str] | None = None, triggers: bool = True
) -> Snapshot:
    """Every table's SHOW CREATE and rows, and every view, routine, event (and trigger) as SHOW CREATE
    prints them, sql_mode and character set columns included. `definer_from`: the account DRS writes
    as definer (migrate_definer), read as the scripts' own root@localhost."""
    snap = Snapshot()
    rewritten = (definer_from[0].encode(), definer_from[1].encode()) if definer_from else None
    conn, show_conn = _raw(server), _raw(server, text=True)

    def shown(sql: str, drop: tuple[str, ...] = ()) -> tuple[tuple[str, object], ...]:
        cols, rows = _query(show_conn, sql)
        return tuple(
            (c, _definers(v, rewritten)) for c, v in zip(cols, rows[0], strict=True) if c not in drop
        )

    try:
        snap.items[("database", db)] = shown(f"SHOW CREATE DATABASE {ident(db)}")[1][1]
        _, tables = _query(
            conn,
            f"SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA={lit(db)} ORDER BY 1",
        )
        for raw_name, raw_type in tables:
            name, kind = _text(raw_name), _text(raw_type)
            q = f"{ident(db)}.{ident(name)}"
            if kind == "VIEW":
                snap.items[("view", name)] = shown(f"SHOW CREATE VIEW {q}")
                continue
            snap.items[("table type", name)] = kind
            create = shown(f"SHOW CREATE TABLE {q}")[1][1]
            snap.items[("SHOW CREATE TABLE", name)] = create
            if kind == "SEQUENCE":
                snap.items[("SHOW CREATE SEQUENCE", name)] = shown(f"SHOW CREATE SEQUENCE {q}")[1][1]
            period = re.search(rb"PERIOD FOR SYSTEM_TIME \(`((?:[^`]|``)+)`, `((?:[^`]|``)+)`\)", create)  # type: ignore[arg-type]
            explicit = period.group(2).decode().replace("``", "`") if period else None
            snap.tables[name] = _table_rows(
                conn, db, name, versioned=kind == "SYSTEM VERSIONED", row_end=explicit
            )
        for kind in ("PROCEDURE", "FUNCTION"):
            _, names = _query(
                conn,
                f"SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA={lit(db)} AND ROUTINE_TYPE={lit(kind)}",
            )
            for (raw_name,) in names:
                snap.items[(kind.lower(), _text(raw_name))] = shown(
                    f"SHOW CREATE {kind} {ident(db)}.{ident(_text(raw_name))}"
                )
        _, names = _query(
            conn, f"SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA={lit(db)}"
        )
        for (raw_name,) in names:
            # A copy keeps an event from running (DISABLE ON SLAVE) whether the source had it enabled
            # or disabled; which of the two it was is no difference of the copy (promote's business).
            snap.items[("event", _text(raw_name))] = tuple(
                (c, v.replace(b" DISABLE ON SLAVE ", b" DISABLE ") if isinstance(v, bytes) else v)
                for c, v in shown(f"SHOW CREATE EVENT {ident(db)}.{ident(_text(raw_name))}")
            )
        _, names = _query(
            conn,
            f"SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA={lit(db)}",
        )
        for raw_name, order in names:
            snap.triggers.append(_text(raw_name))
            if triggers:
                # `Created` is the server's clock when the trigger was made: differs on every copy
                made = shown(f"SHOW CREATE TRIGGER {ident(db)}.{ident(_text(raw_name))}", drop=("Created",))
                snap.items[("trigger", _text(raw_name))] = (*made, ("ACTION_ORDER", order))
    finally:
        conn.close()
        show_conn.close()
    return snap


def _table_rows(
    conn: pymysql.connections.Connection, db: str, table: str, *, versioned: bool, row_end: str | None
) -> TableRows:
    """Every row (every version of a system-versioned table's rows), sorted; `row_end`: the table's
    explicit ROW END column (None: implicit ROW_START/ROW_END, which information_schema omits)."""
    _, cols = _query(
        conn,
        f"SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA={lit(db)} "
        f"AND TABLE_NAME={lit(table)} ORDER BY ORDINAL_POSITION",
    )
    names = [_text(c[0]) for c in cols]
    # FLOAT's own text has 6 significant digits: widened to DOUBLE it prints exactly (dr_helpers)
    exprs = [
        f"CAST({ident(n)} AS DOUBLE)" if _text(c[1]).lower() == "float" else ident(n)
        for n, c in zip(names, cols, strict=True)
    ]
    end: int | None = names.index(row_end) if row_end in names else None
    if versioned and end is None:
        names += ["ROW_START", "ROW_END"]
        exprs += ["ROW_START", "ROW_END"]
        end = len(names) - 1
    _, pk = _query(
        conn,
        f"SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA={lit(db)} AND TABLE_NAME={lit(table)} "
        "AND INDEX_NAME='PRIMARY' ORDER BY SEQ_IN_INDEX",
    )
    key = [names.index(_text(r[0])) for r in pk if _text(r[0]) in names]
    if versioned and end is not None and key and end not in key:
        key.append(end)  # history rows share the primary key of their current row
    history = " FOR SYSTEM_TIME ALL" if versioned else ""
    _, rows = _query(conn, f"SELECT {','.join(exprs)} FROM {ident(db)}.{ident(table)}{history}")
    # sorted here, bytewise: ORDER BY sorts by collation, where ties ('a'/'A') come in any order
    rows.sort(key=lambda row: tuple((v is not None, v or b"") for v in row))
    return TableRows(names, key, rows)


def show(value: object) -> str:
    """A value for a difference report: text where it is text, else hex; big values by size and hash."""
    if value is None:
        return "NULL"
    if not isinstance(value, bytes):
        return repr(value)
    if len(value) > 64:
        return (
            f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:12]}, ends {value[-8:].hex()}>"
        )
    try:
        text = value.decode("utf-8")
        if text.isprintable():
            return repr(text)
    except UnicodeDecodeError:
        pass
    return "0x" + value.hex()


def differences(native: Snapshot, drs: Snapshot, *, limit: int = 8) -> list[str]:
    """Every difference between the native replica's copy and DRS's, readably."""
    out: list[str] = []
    for key in sorted(set(native.items) | set(drs.items)):
        a, b = native.items.get(key), drs.items.get(key)
        if a == b:
            continue
        kind, name = key
        if a is None or b is None:
            out.append(f"{kind} {name}: only on the {'DRS target' if a is None else 'native replica'}")
        elif isinstance(a, tuple) and isinstance(b, tuple):
            for (col, va), (_, vb) in zip(a, b, strict=False):
                if va != vb:
                    out.append(f"{kind} {name}: {col}: native {_shown_text(va)} | DRS {_shown_text(vb)}")
        else:
            out.append(f"{kind} {name}: native {_shown_text(a)} | DRS {_shown_text(b)}")
    for table in sorted(set(native.tables) & set(drs.tables)):
        out.extend(row_differences(table, native.tables[table], drs.tables[table], limit=limit))
    return out


def _shown_text(value: object) -> str:
    if isinstance(value, bytes) and len(value) > 64:
        return repr(value.decode("utf-8", "backslashreplace"))  # a CREATE statement: all of it
    return show(value)


def row_differences(table: str, native: TableRows, drs: TableRows, *, limit: int = 8) -> Iterator[str]:
    if native.columns != drs.columns:
        yield f"table {table}: columns native {native.columns} | DRS {drs.columns}"
        return
    if native.rows == drs.rows:
        return
    cols = native.columns
    shown = 0
    head = f"table {table}: {len(native.rows)} rows on the native replica, {len(drs.rows)} on the DRS target"
    yield head
    key = native.key

    def keyed(rows: list[tuple]) -> dict[tuple, list[tuple]]:
        out: dict[tuple, list[tuple]] = {}
        for r in rows:
            out.setdefault(tuple(r[i] for i in key), []).append(r)
        return out

    if key:
        na, nb = keyed(native.rows), keyed(drs.rows)
        for k in sorted(set(na) | set(nb), key=lambda t: tuple((v is not None, v or b"") for v in t)):
            ra, rb = na.get(k, []), nb.get(k, [])
            if ra == rb:
                continue
            label = ", ".join(f"{cols[i]}={show(v)}" for i, v in zip(key, k, strict=True))
            if len(ra) == 1 and len(rb) == 1:
                cells = [
                    f"{c}: native {show(x)} | DRS {show(y)}"
                    for c, x, y in zip(cols, ra[0], rb[0], strict=True)
                    if x != y
                ]
                yield f"  row ({label}): " + "; ".join(cells)
            else:
                for r in ra:
                    if r not in rb:
                        yield f"  row ({label}) only on the native replica: {_row(cols, r)}"
                for r in rb:
                    if r not in ra:
                        yield f"  row ({label}) only on the DRS target: {_row(cols, r)}"
            shown += 1
            if shown >= limit:
                yield "  ..."
                return
        return
    rest = list(drs.rows)
    only_native = []
    for r in native.rows:
        if r in rest:
            rest.remove(r)
        else:
            only_native.append(r)
    for side, rows in (("native replica", only_native), ("DRS target", rest)):
        for r in rows[:limit]:
            yield f"  row only on the {side}: {_row(cols, r)}"


def _row(cols: list[str], row: tuple) -> str:
    return "(" + ", ".join(f"{c}={show(v)}" for c, v in zip(cols, row, strict=True)) + ")"
