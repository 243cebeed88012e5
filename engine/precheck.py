"""Pre-check items of a DR task: can this service database be protected on this DR database?

Each item is one named function over a shared CheckContext (both connections and the facts gathered
once); `run_prechecks` runs the registry in order and `drs task check` prints the results.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pymysql

from engine.connect import (
    META_DATABASE,
    ServerInfo,
    connect,
    quote_ident,
    server_info,
    user_databases,
    variables,
)
from engine.errors import ConnectError
from engine.spec import Endpoint, TaskSpec, load_spec_file

PASSED, FAILED, CONFIRM = "passed", "failed", "confirm"
ONE_DAY = 86400
LIST_LIMIT = 12  # names listed in a reason before "... and N more"


@dataclass(frozen=True)
class PrecheckResult:
    item: str  # stable, human name of the item
    result: str  # "passed" | "failed" | "confirm"
    reason: str  # why: the value found, the account, the tables...
    fix: str  # how to fix it (empty when passed)
    key: str = ""  # short stable id, e.g. "source_binlog_format"

    def to_json(self) -> dict[str, str]:
        return {
            "item": self.item,
            "result": self.result,
            "reason": self.reason,
            "fix": self.fix,
            "key": self.key,
        }


# ---- facts gathered once ---------------------------------------------------------------------------


@dataclass
class Side:
    """One server as seen by the checks: its connection (or why there is none) and its variables."""

    label: str  # "service database" | "DR database"
    endpoint: Endpoint
    conn: pymysql.connections.Connection | None = None
    error: str | None = None
    info: ServerInfo | None = None
    vars: dict[str, str | None] = field(default_factory=dict)

    def var(self, name: str) -> str | None:
        return self.vars.get(name.lower())

    def rows(self, sql: str, args: Any = None) -> list[tuple]:
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return [tuple(_text(v) for v in row) for row in cur.fetchall()]


def _text(v: Any) -> Any:
    return v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else v


def _open(side: Side) -> None:
    try:
        side.conn = connect(side.endpoint, connect_timeout=10, read_timeout=120)
        side.info = server_info(side.conn)
        side.vars = variables(side.conn)
    except ConnectError as exc:  # the typed message never carries the password
        side.error = str(exc)
        side.conn = None
    except pymysql.err.MySQLError as exc:
        side.error = f"{side.endpoint.user}@{side.endpoint.address}: {_mysql_error(exc)}"
        side.conn = None


def _mysql_error(exc: BaseException) -> str:
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) > 1:
        return f"error {exc.args[0]}: {exc.args[1]}"
    return str(exc)


class CheckContext:
    """Both sides and the facts several items share, each read at most once."""

    def __init__(self, spec: TaskSpec, source: Side, target: Side, other_tasks: Sequence[TaskSpec] = ()):
        self.spec = spec
        self.source = source
        self.target = target
        self.other_tasks = tuple(other_tasks)  # specs of the other tasks in the store, to name who shares a server

    @functools.cached_property
    def source_schemata(self) -> list[str]:
        return [r[0] for r in self.source.rows("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")]

    @functools.cached_property
    def missing_databases(self) -> list[str]:
        if self.spec.databases is None:
            return []
        present = set(self.source_schemata)
        return [d for d in self.spec.databases if d not in present]

    @functools.cached_property
    def databases(self) -> list[str]:
        """The databases the task protects that exist on the service side."""
        if self.spec.databases is None:
            assert self.source.conn is not None
            return user_databases(self.source.conn)
        missing = set(self.missing_databases)
        return [d for d in self.spec.databases if d not in missing]

    def in_dbs(self, column: str) -> tuple[str, list[str]]:
        """A `column IN (...)` condition over the protected databases, with its parameters."""
        if not self.databases:
            return "FALSE", []
        return f"{column} IN ({','.join(['%s'] * len(self.databases))})", list(self.databases)

    @functools.cached_property
    def source_tables(self) -> list[tuple[str, str, str | None]]:
        """(db, table, engine) of every base table in the protected databases."""
        cond, args = self.in_dbs("TABLE_SCHEMA")
        return self.source.rows(
            "SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE FROM information_schema.TABLES "
            f"WHERE TABLE_TYPE = 'BASE TABLE' AND {cond} ORDER BY TABLE_SCHEMA, TABLE_NAME",
            args,
        )

    @functools.cached_property
    def source_grants(self) -> Grants:
        return Grants.parse(r[0] for r in self.source.rows("SHOW GRANTS"))

    @functools.cached_property
    def target_grants(self) -> Grants:
        return Grants.parse(r[0] for r in self.target.rows("SHOW GRANTS"))

    def account(self, side: Side) -> str:
        user = side.rows("SELECT CURRENT_USER()")[0][0]
        name, _, host = str(user).rpartition("@")
        return f"{_sql_string(name)}@{_sql_string(host)}"


def _sql_string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"


def _names(items: Sequence[str], limit: int = LIST_LIMIT) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" ... and {len(items) - limit} more" if len(items) > limit else "")


def _on(value: str | None) -> bool:
    return str(value).strip().upper() in ("ON", "1", "YES", "TRUE", "FORCE")


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(float(value)) if value not in (None, "") else default
    except ValueError:
        return default


def _db_table(db: str, table: str) -> str:
    return f"{db}.{table}"


# ---- privileges: SHOW GRANTS parsed once -----------------------------------------------------------


def _norm_priv(p: str) -> str:
    # MariaDB writes "READ_ONLY ADMIN", MySQL "CONNECTION_ADMIN": compare with spaces only
    p = re.sub(r"\s*\(.*\)\s*$", "", p.strip())  # column list: "SELECT (`a`)"
    p = " ".join(p.replace("_", " ").upper().split())
    return "ALL" if p in ("ALL", "ALL PRIVILEGES") else p


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside backticks, quotes and parentheses."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "`'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


_IDENT = r"(\*|`(?:[^`]|``)*`|[^\s.`]+)"
_OBJECT_RE = re.compile(_IDENT + r"\." + _IDENT)


def _unquote(ident: str) -> str:
    return ident[1:-1].replace("``", "`") if ident.startswith("`") else ident


def _like_regex(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    """A db-level grant's name is a LIKE pattern: `_` and `%` are wildcards unless escaped by `\\`."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append("." if c == "_" else ".*" if c == "%" else re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", 0 if case_sensitive else re.IGNORECASE)


@dataclass
class Grants:
    """What SHOW GRANTS says an account holds: global and per-database privileges (roles included)."""

    global_privs: set[str] = field(default_factory=set)
    db_privs: list[tuple[str, set[str]]] = field(default_factory=list)  # (LIKE pattern, privileges)
    db_revoked: dict[str, set[str]] = field(default_factory=dict)  # MySQL partial revokes

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Grants:
        grants = cls()
        for line in lines:
            grants.add_line(str(line))
        return grants

    def add_line(self, line: str) -> None:
        m = re.match(r"\s*(GRANT|REVOKE)\s+", line, re.IGNORECASE)
        if not m:
            return
        verb, rest = m.group(1).upper(), line[m.end() :]
        parts = _split_top(rest, " ON ")
        if len(parts) < 2:  # "GRANT `role` TO user": the role's own lines follow in SHOW GRANTS
            return
        privs = {_norm_priv(p) for p in _split_top(parts[0], ",") if p.strip()} - {"USAGE"}
        obj = " ON ".join(parts[1:]).lstrip()
        if re.match(r"(FUNCTION|PROCEDURE|PACKAGE|PACKAGE BODY)\s", obj, re.IGNORECASE):
            return
        om = _OBJECT_RE.match(obj)
        if not om:
            return  # PROXY grants and the like
        db, table = om.group(1), om.group(2)
        if table != "*":
            return  # table- and column-level grants do not cover creating a whole database copy
        if verb == "REVOKE":
            self.db_revoked.setdefault(_unquote(db), set()).update(privs)
        elif db == "*":
            self.global_privs |= privs
        else:
            self.db_privs.append((_unquote(db), privs))

    def has_global(self, alternatives: Sequence[str]) -> bool:
        return "ALL" in self.global_privs or any(_norm_priv(a) in self.global_privs for a in alternatives)

    def has_on_db(self, alternatives: Sequence[str], db: str, case_sensitive: bool = True) -> bool:
        alts = {_norm_priv(a) for a in alternatives}
        if alts & self.db_revoked.get(db, set()):
            return False
        if self.has_global(alternatives):
            return True
        for pattern, privs in self.db_privs:
            if ("ALL" in privs or alts & privs) and _like_regex(pattern, case_sensitive).match(db):
                return True
        return False


@dataclass(frozen=True)
class Privilege:
    name: str  # as written in a GRANT statement
    alternatives: tuple[str, ...]  # any of these satisfies it
    scope: str  # "db" | "global"
    why: str = ""


def _db_privileges(*names: str) -> list[Privilege]:
    return [Privilege(n, (n,), "db") for n in names]


def source_privileges_needed(info: ServerInfo) -> list[Privilege]:
    needed = _db_privileges("SELECT", "SHOW VIEW", "TRIGGER", "EVENT")
    needed.append(Privilege("REPLICATION SLAVE", ("REPLICATION SLAVE",), "global", "read the binlog"))
    if info.is_mariadb and info.major_minor >= (10, 5):
        # 10.5 renamed REPLICATION CLIENT to BINLOG MONITOR; SHOW GRANTS prints the new name
        needed.append(
            Privilege("BINLOG MONITOR", ("BINLOG MONITOR", "REPLICATION CLIENT"), "global", "binlog position")
        )
    else:
        needed.append(Privilege("REPLICATION CLIENT", ("REPLICATION CLIENT",), "global", "binlog position"))
    needed.append(Privilege("RELOAD", ("RELOAD",), "global", "consistent snapshot lock"))
    return needed


def target_privileges_needed(info: ServerInfo) -> list[Privilege]:
    needed = _db_privileges(
        "CREATE", "DROP", "ALTER", "INDEX", "INSERT", "UPDATE", "DELETE", "SELECT", "CREATE VIEW",
        "CREATE ROUTINE", "ALTER ROUTINE", "TRIGGER", "EVENT", "REFERENCES",
    )  # fmt: skip
    why = "write while read_only is ON and set read_only"
    if info.is_mariadb and info.major_minor >= (10, 11):
        # 10.11 split READ_ONLY ADMIN from SUPER: SUPER alone can neither write under read_only nor set it
        needed.append(Privilege("READ_ONLY ADMIN", ("READ_ONLY ADMIN",), "global", why))
    elif info.is_mariadb and info.major_minor >= (10, 5):
        needed.append(Privilege("READ_ONLY ADMIN", ("READ_ONLY ADMIN", "SUPER"), "global", why))
    elif not info.is_mariadb and info.major_minor >= (8, 0):
        needed.append(
            Privilege(
                "CONNECTION_ADMIN", ("CONNECTION_ADMIN", "SUPER"), "global", "write while read_only is ON"
            )
        )
        needed.append(
            Privilege(
                "SYSTEM_VARIABLES_ADMIN", ("SYSTEM_VARIABLES_ADMIN", "SUPER"), "global", "set read_only"
            )
        )
    else:
        needed.append(Privilege("SUPER", ("SUPER",), "global", why))
    return needed


def missing_privileges(
    grants: Grants, needed: list[Privilege], databases: Sequence[str], case_sensitive: bool = True
) -> tuple[list[str], dict[str, list[str]]]:
    """(missing privilege names in order, {privilege: databases it is missing on} for db-level ones)."""
    missing: list[str] = []
    where: dict[str, list[str]] = {}
    for p in needed:
        if p.scope == "global" or not databases:
            if not grants.has_global(p.alternatives):
                missing.append(p.name)
            continue
        lacking = [d for d in databases if not grants.has_on_db(p.alternatives, d, case_sensitive)]
        if lacking:
            missing.append(p.name)
            where[p.name] = lacking
    return missing, where


def _grant_fix(
    missing: list[str], where: dict[str, list[str]], needed: list[Privilege], account: str, per_db: bool
) -> str:
    scopes = {p.name: p.scope for p in needed}
    global_privs = [m for m in missing if scopes[m] == "global" or not per_db]
    statements = []
    if global_privs:
        statements.append(f"GRANT {', '.join(global_privs)} ON *.* TO {account};")
    by_db: dict[str, list[str]] = {}
    for m in missing:
        if m not in global_privs:
            for db in where.get(m, []):
                by_db.setdefault(db, []).append(m)
    statements += [
        f"GRANT {', '.join(privs)} ON {quote_ident(db)}.* TO {account};" for db, privs in by_db.items()
    ]
    return " ".join(statements)


# ---- the items -------------------------------------------------------------------------------------

CheckFn = Callable[[CheckContext], PrecheckResult]


@dataclass(frozen=True)
class CheckItem:
    key: str
    name: str
    needs: tuple[str, ...]  # "source" / "target": sides that must be connected
    fn: Callable[[CheckContext], tuple[str, str, str]]  # -> (result, reason, fix)


REGISTRY: list[CheckItem] = []


def item(key: str, name: str, *needs: str) -> Callable[[Callable[[CheckContext], tuple[str, str, str]]], Any]:
    def register(
        fn: Callable[[CheckContext], tuple[str, str, str]],
    ) -> Callable[[CheckContext], tuple[str, str, str]]:
        REGISTRY.append(CheckItem(key, name, needs, fn))
        return fn

    return register


def _connection(side: Side) -> tuple[str, str, str]:
    if side.error:
        return (
            FAILED,
            side.error,
            f"check the {side.label}'s address, port, account, password and TLS settings",
        )
    assert side.info is not None
    return PASSED, f"connected to {side.info.label} at {side.endpoint.address} as {side.endpoint.user}", ""


@item("source_connection", "Service database connection")
def check_source_connection(ctx: CheckContext) -> tuple[str, str, str]:
    return _connection(ctx.source)


@item("target_connection", "DR database connection")
def check_target_connection(ctx: CheckContext) -> tuple[str, str, str]:
    return _connection(ctx.target)


@item("source_binlog_enabled", "Service database binlog enabled", "source")
def check_binlog_enabled(ctx: CheckContext) -> tuple[str, str, str]:
    value = ctx.source.var("log_bin")
    if _on(value):
        return PASSED, "log_bin is ON", ""
    return (
        FAILED,
        f"log_bin is {value or 'OFF'}: without a binlog no change after the initial copy can be replicated",
        "add log_bin=mysql-bin (and a non-zero server_id) under [mysqld] in my.cnf and restart the "
        "service database (log_bin cannot be changed at run time)",
    )


@item("source_binlog_format", "Service database binlog format", "source")
def check_binlog_format(ctx: CheckContext) -> tuple[str, str, str]:
    value = (ctx.source.var("binlog_format") or "").upper()
    if value != "ROW":
        return (
            FAILED,
            f"binlog_format is {value or 'unknown'}; DR replay needs row events (ROW)",
            "SET GLOBAL binlog_format='ROW'; and binlog_format=ROW under [mysqld] in my.cnf "
            "(sessions already open keep the old format: reconnect the applications)",
        )
    # Compressed events (MySQL 8.0.20+ TRANSACTION_PAYLOAD, MariaDB's log_bin_compress) cannot be read:
    # the task would fail at the first one.
    compressed = [name for name in ("binlog_transaction_compression", "log_bin_compress") if _on(ctx.source.var(name))]
    if compressed:
        return (
            FAILED,
            f"binlog_format is ROW, but {' and '.join(f'{n} is ON' for n in compressed)}: DRS Desktop cannot "
            "read compressed binlog events (the task would fail at the first one)",
            " ".join(f"SET GLOBAL {n}=OFF; and {n}=OFF under [mysqld] in my.cnf." for n in compressed)
            + " (sessions already open keep the old setting: reconnect the applications)",
        )
    return PASSED, "binlog_format is ROW, uncompressed", ""


@item("source_binlog_row_image", "Service database binlog row image", "source")
def check_binlog_row_image(ctx: CheckContext) -> tuple[str, str, str]:
    value = (ctx.source.var("binlog_row_image") or "").upper()
    if value not in ("FULL", ""):  # MySQL 5.5 and older have no such variable: always full
        return (
            FAILED,
            f"binlog_row_image is {value}; updates and deletes must carry every column (FULL) to be replayed",
            "SET GLOBAL binlog_row_image='FULL'; and binlog_row_image=FULL under [mysqld] in my.cnf",
        )
    # MySQL 8: PARTIAL_JSON logs a JSON update as a diff (PARTIAL_UPDATE_ROWS events), not the full row
    options = (ctx.source.var("binlog_row_value_options") or "").upper()
    if "PARTIAL_JSON" in options:
        return (
            FAILED,
            f"binlog_row_image is {value or 'FULL (implicit)'}, but binlog_row_value_options is {options}: "
            "JSON updates are logged as partial diffs, which DRS Desktop cannot replay (the task would "
            "fail at the first one)",
            "SET GLOBAL binlog_row_value_options=''; and binlog_row_value_options='' under [mysqld] in "
            "my.cnf (sessions already open keep the old setting: reconnect the applications)",
        )
    return PASSED, f"binlog_row_image is {value or 'FULL (implicit)'}", ""


@item("source_binlog_row_metadata", "Service database binlog row metadata", "source")
def check_binlog_row_metadata(ctx: CheckContext) -> tuple[str, str, str]:
    value = ctx.source.var("binlog_row_metadata")
    # Without FULL metadata a row event does not say which integers are UNSIGNED nor the character
    # set of a string: the stream refuses to guess and fails at the first change (rowdecode).
    if value is None:
        return (
            FAILED,
            f"{ctx.source.info.label if ctx.source.info else 'the server'} has no binlog_row_metadata "
            "(MariaDB before 10.5, MySQL before 8.0.1): row events carry no column names, signedness or "
            "character sets, so changes could only be replayed by guessing them",
            "upgrade the service database to MySQL 8.0.1+ or MariaDB 10.5+ and set binlog_row_metadata=FULL",
        )
    if value.upper() == "FULL":
        return PASSED, "binlog_row_metadata is FULL", ""
    return (
        FAILED,
        f"binlog_row_metadata is {value.upper()}: row events then carry no column names, and DRS Desktop "
        "decodes UNSIGNED integers and character sets only from FULL metadata (it would have to guess "
        "them; the task fails at the first change instead)",
        "SET GLOBAL binlog_row_metadata='FULL'; and binlog_row_metadata=FULL under [mysqld] in my.cnf",
    )


def binlog_retention_seconds(vars_: dict[str, str | None]) -> int | None:
    """How long binlogs are kept; 0 = never purged automatically, None = unknown."""
    seconds = vars_.get("binlog_expire_logs_seconds")
    days = vars_.get("expire_logs_days")
    if seconds not in (None, "") and _int(seconds) > 0:
        return _int(seconds)
    if days not in (None, ""):
        return int(float(days) * ONE_DAY)
    if seconds not in (None, ""):
        return 0
    return None


@item("source_binlog_retention", "Service database binlog retention", "source")
def check_binlog_retention(ctx: CheckContext) -> tuple[str, str, str]:
    seconds = binlog_retention_seconds(ctx.source.vars)
    fix = "SET GLOBAL binlog_expire_logs_seconds=604800; (7 days; and the same under [mysqld] in my.cnf)"
    if seconds is None:
        return CONFIRM, "the binlog retention could not be read", fix
    if seconds == 0:
        return PASSED, "binlogs are never purged automatically (expire time 0)", ""
    shown = f"{seconds / ONE_DAY:g} days" if seconds >= ONE_DAY else f"{seconds / 3600:g} hours"
    if seconds < ONE_DAY:
        return (
            CONFIRM,
            f"binlogs are purged after {shown} ({seconds} s): a DR task paused or failed for longer "
            "cannot resume and needs a new full copy",
            fix,
        )
    return PASSED, f"binlogs are kept for {shown}", ""


@item("server_ids", "Server IDs differ", "source", "target")
def check_server_ids(ctx: CheckContext) -> tuple[str, str, str]:
    s, t = ctx.source.info, ctx.target.info
    assert s is not None and t is not None
    problems = []
    if s.server_id == 0:
        problems.append("the service database's server_id is 0 (binlog clients are refused)")
    if t.server_id == 0:
        problems.append("the DR database's server_id is 0")
    if s.server_id == t.server_id and s.server_id != 0:
        problems.append(f"both servers have server_id {s.server_id}")
    if s.server_uuid and t.server_uuid and s.server_uuid == t.server_uuid:
        problems.append(
            f"both servers have server_uuid {s.server_uuid} (a cloned data directory: delete auto.cnf)"
        )
    if problems:
        return (
            FAILED,
            "; ".join(problems),
            "give each server its own non-zero server_id: SET GLOBAL server_id=N; and server_id=N under [mysqld]",
        )
    uuid = f", server_uuid {s.server_uuid} / {t.server_uuid}" if s.server_uuid and t.server_uuid else ""
    return PASSED, f"server_id {s.server_id} (service) and {t.server_id} (DR){uuid}", ""


@item("distinct_servers", "Service and DR are different servers", "source", "target")
def check_distinct_servers(ctx: CheckContext) -> tuple[str, str, str]:
    s, t = ctx.source.info, ctx.target.info
    assert s is not None and t is not None
    same_identity = (
        (s.server_uuid == t.server_uuid) if (s.server_uuid and t.server_uuid) else s.server_id == t.server_id
    )
    if (s.hostname, s.port) == (t.hostname, t.port) and same_identity:
        return (
            FAILED,
            f"{ctx.source.endpoint.address} and {ctx.target.endpoint.address} reach the same server "
            f"(host {s.hostname}, port {s.port}, server_id {s.server_id})",
            "enter the address of a different server as the DR database",
        )
    return PASSED, f"service {s.hostname}:{s.port}, DR {t.hostname}:{t.port}", ""


def _privilege_item(
    ctx: CheckContext, side: Side, needed: list[Privilege], databases: list[str], grants: Grants
) -> tuple[str, str, str]:
    case_sensitive = _int(side.var("lower_case_table_names")) == 0
    missing, where = missing_privileges(grants, needed, databases, case_sensitive)
    account = ctx.account(side)
    if not missing:
        return PASSED, f"{account} has every privilege needed ({', '.join(p.name for p in needed)})", ""
    details = []
    for m in missing:
        dbs = where.get(m)
        details.append(
            f"{m} (on {_names([quote_ident(d) for d in dbs], 5)})" if dbs and len(dbs) < len(databases) else m
        )
    return (
        FAILED,
        f"{account} lacks: {', '.join(details)}",
        _grant_fix(missing, where, needed, account, per_db=ctx.spec.databases is not None),
    )


@item("source_privileges", "Service database account privileges", "source")
def check_source_privileges(ctx: CheckContext) -> tuple[str, str, str]:
    assert ctx.source.info is not None
    needed = source_privileges_needed(ctx.source.info)
    return _privilege_item(ctx, ctx.source, needed, list(ctx.databases), ctx.source_grants)


@item("target_privileges", "DR database account privileges", "target")
def check_target_privileges(ctx: CheckContext) -> tuple[str, str, str]:
    assert ctx.target.info is not None
    needed = target_privileges_needed(ctx.target.info)
    dbs = list(ctx.databases) + [META_DATABASE] if ctx.source.conn is not None else [META_DATABASE]
    return _privilege_item(ctx, ctx.target, needed, dbs, ctx.target_grants)


def version_tuple(version: str) -> tuple[int, int, int]:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else (0, 0, 0)


def version_verdict(source: ServerInfo, target: ServerInfo) -> tuple[str, str, str]:
    """Is this service -> DR version pair supported? (result, reason, fix)"""
    sv, tv = version_tuple(source.version), version_tuple(target.version)
    pair = f"{source.label} -> {target.label}"
    if source.is_mariadb and not target.is_mariadb:
        return (
            FAILED,
            f"{pair}: MariaDB to MySQL is not supported (binlog, GTID and collation differences)",
            "use a MariaDB DR database",
        )
    if not source.is_mariadb and target.is_mariadb:
        if sv[:2] <= (5, 7):
            return (
                CONFIRM,
                f"{pair}: MySQL 5.7 to MariaDB works for common schemas, but some types, functions and "
                "sql_mode values differ",
                "test the application against the DR database before relying on it",
            )
        return (
            FAILED,
            f"{pair}: MySQL {sv[0]}.{sv[1]} to MariaDB is not supported (collations and JSON differ)",
            "use a MySQL DR database of the same or a newer version",
        )
    shown = ".".join(map(str, sv)), ".".join(map(str, tv))
    if tv < sv:
        return (
            FAILED,
            f"{pair}: the DR database ({shown[1]}) is older than the service database ({shown[0]})",
            f"upgrade the DR database to {shown[0]} or newer",
        )
    if tv[:2] != sv[:2]:
        return (
            CONFIRM,
            f"{pair}: the DR database is a newer major version; defaults and reserved words may differ",
            "prefer the same major version on both sides",
        )
    return PASSED, f"{pair}", ""


@item("versions", "Database versions", "source", "target")
def check_versions(ctx: CheckContext) -> tuple[str, str, str]:
    assert ctx.source.info is not None and ctx.target.info is not None
    return version_verdict(ctx.source.info, ctx.target.info)


@item("lower_case_table_names", "lower_case_table_names consistency", "source", "target")
def check_lower_case_table_names(ctx: CheckContext) -> tuple[str, str, str]:
    s, t = ctx.source.var("lower_case_table_names"), ctx.target.var("lower_case_table_names")
    if s == t:
        return PASSED, f"lower_case_table_names is {s} on both", ""
    return (
        FAILED,
        f"lower_case_table_names is {s} on the service database and {t} on the DR database: table names "
        "would change case or collide",
        f"set lower_case_table_names={s} under [mysqld] on the DR database and restart it (MySQL 8: only "
        "when the data directory is initialized)",
    )


@item("collations", "Character sets and collations", "source", "target")
def check_collations(ctx: CheckContext) -> tuple[str, str, str]:
    cond_s, args = ctx.in_dbs("SCHEMA_NAME")
    cond_t, _ = ctx.in_dbs("TABLE_SCHEMA")
    used: dict[str, list[str]] = {}
    for coll, where in ctx.source.rows(
        f"SELECT DEFAULT_COLLATION_NAME, SCHEMA_NAME FROM information_schema.SCHEMATA WHERE {cond_s} "
        f"UNION ALL SELECT TABLE_COLLATION, CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES WHERE {cond_t} "
        f"UNION ALL SELECT COLLATION_NAME, CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, '.', COLUMN_NAME) "
        f"FROM information_schema.COLUMNS WHERE {cond_t}",
        args * 3,
    ):
        if coll:
            used.setdefault(coll, []).append(where)
    available = {r[0] for r in ctx.target.rows("SELECT COLLATION_NAME FROM information_schema.COLLATIONS")}
    missing = sorted(c for c in used if c not in available)
    if missing:
        examples = [f"{c} (used by {_names(used[c], 3)})" for c in missing]
        return (
            FAILED,
            f"the DR database has no collation {'; '.join(examples)}",
            "use a DR server version that has these collations, or convert those objects on the service "
            "side (ALTER TABLE ... CONVERT TO CHARACTER SET ... COLLATE ...)",
        )
    return (
        PASSED,
        f"every collation used exists on the DR database ({_names(sorted(used), 8) or 'none used'})",
        "",
    )


@item("max_allowed_packet", "DR max_allowed_packet", "source", "target")
def check_max_allowed_packet(ctx: CheckContext) -> tuple[str, str, str]:
    s, t = _int(ctx.source.var("max_allowed_packet")), _int(ctx.target.var("max_allowed_packet"))
    if t >= s:
        return PASSED, f"DR {t} bytes >= service {s} bytes", ""
    return (
        FAILED,
        f"max_allowed_packet is {t} bytes on the DR database, smaller than {s} on the service database: "
        "large rows or statements would be rejected",
        f"SET GLOBAL max_allowed_packet={s}; on the DR database (and max_allowed_packet={s} under [mysqld])",
    )


def _effective_zone(side: Side) -> str:
    tz = side.var("time_zone") or ""
    return (side.var("system_time_zone") or "") if tz.upper() == "SYSTEM" else tz


@item("time_zone", "Time zone consistency", "source", "target")
def check_time_zone(ctx: CheckContext) -> tuple[str, str, str]:
    s, t = ctx.source, ctx.target
    sz, tz = _effective_zone(s), _effective_zone(t)
    detail = (
        f"service time_zone={s.var('time_zone')} (system {s.var('system_time_zone')}), "
        f"DR time_zone={t.var('time_zone')} (system {t.var('system_time_zone')})"
    )
    if sz == tz:
        return PASSED, detail, ""
    return (
        CONFIRM,
        detail + ": data is copied unshifted (TIMESTAMP in UTC), but NOW(), CURRENT_TIMESTAMP defaults and "
        "events on the DR database will use another time zone after a switchover",
        f"SET GLOBAL time_zone='{s.var('time_zone')}'; on the DR database if the applications rely on it",
    )


def _modes(value: str | None) -> set[str]:
    return {m.strip().upper() for m in (value or "").split(",") if m.strip()}


@item("sql_mode", "sql_mode consistency", "source", "target")
def check_sql_mode(ctx: CheckContext) -> tuple[str, str, str]:
    s, t = _modes(ctx.source.var("sql_mode")), _modes(ctx.target.var("sql_mode"))
    if s == t:
        return PASSED, f"sql_mode is {','.join(sorted(s)) or '(empty)'} on both", ""
    parts = []
    if s - t:
        parts.append(f"only on the service database: {', '.join(sorted(s - t))}")
    if t - s:
        parts.append(f"only on the DR database: {', '.join(sorted(t - s))}")
    return (
        CONFIRM,
        "sql_mode differs (" + "; ".join(parts) + "): replay uses its own session sql_mode, but applications "
        "writing to the DR database after a switchover may behave differently",
        f"SET GLOBAL sql_mode='{ctx.source.var('sql_mode')}'; on the DR database",
    )


@item("function_creators", "DR log_bin_trust_function_creators", "source", "target")
def check_function_creators(ctx: CheckContext) -> tuple[str, str, str]:
    cond, args = ctx.in_dbs("ROUTINE_SCHEMA")
    routines = [
        f"{db}.{name}"
        for db, name in ctx.source.rows(
            f"SELECT ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES WHERE {cond} ORDER BY 1, 2",
            args,
        )
    ]
    trusted, binlog = _on(ctx.target.var("log_bin_trust_function_creators")), _on(ctx.target.var("log_bin"))
    if not routines:
        return PASSED, "the protected databases have no stored routines", ""
    if trusted or not binlog:
        why = "log_bin_trust_function_creators is ON" if trusted else "the DR binlog is off"
        return PASSED, f"{len(routines)} stored routine(s) can be created: {why}", ""
    return (
        FAILED,
        f"the DR binlog is on and log_bin_trust_function_creators is OFF, so stored routines "
        f"({_names(routines, 5)}) cannot be created there",
        "SET GLOBAL log_bin_trust_function_creators=ON; on the DR database (and under [mysqld] in my.cnf)",
    )


@item("target_databases_empty", "DR database names not in use", "source", "target")
def check_target_databases(ctx: CheckContext) -> tuple[str, str, str]:
    if not ctx.databases:
        return PASSED, "no database to create on the DR side", ""
    fold = _int(ctx.target.var("lower_case_table_names")) != 0
    wanted = {(d.lower() if fold else d): d for d in ctx.databases}
    existing = [r[0] for r in ctx.target.rows("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")]
    clash = [e for e in existing if (e.lower() if fold else e) in wanted]
    non_empty = []
    for db in clash:
        objects = ctx.target.rows(
            "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s)"
            " + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s)"
            " + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s)",
            (db, db, db),
        )[0][0]
        if int(objects or 0):
            non_empty.append(f"{db} ({int(objects)} objects)")
    if non_empty:
        return (
            FAILED,
            f"the DR database already has non-empty database(s) of the same name: {_names(non_empty)}",
            "drop or rename them on the DR database, or leave those databases out of the task",
        )
    found = (
        f"empty database(s) of the same name exist and will be used: {_names(clash)}"
        if clash
        else f"none of the {len(ctx.databases)} database name(s) is in use on the DR database"
    )
    shared = _shared_dr_server(ctx, existing, set(wanted), fold)
    if shared:
        return (
            CONFIRM,
            f"{found}; but {shared}: read_only is server-wide, so while this task replicates they are read-only "
            "for applications too, and a promote of this task makes all of them writable",
            "give this task a DR server (instance) of its own, or confirm that those databases may be read-only "
            "now and writable after a promote",
        )
    return PASSED, found, ""


def _shared_dr_server(ctx: CheckContext, existing: list[str], wanted: set[str], fold: bool) -> str:
    """What else lives on the DR server (databases outside the task, other tasks replicating into it),
    as a phrase; empty when the task has the server to itself."""
    from engine.spec import SYSTEM_DATABASES

    def key(db: str) -> str:
        return db.lower() if fold else db

    others = [e for e in existing if key(e) not in wanted and e.lower() not in SYSTEM_DATABASES and e != META_DATABASE]
    target = ctx.spec.target
    tasks = [
        t for t in ctx.other_tasks
        if t.name != ctx.spec.name and t.target.host.lower() == target.host.lower() and t.target.port == target.port
    ]  # fmt: skip
    owners = {key(d): t.name for t in tasks for d in (t.databases or ())}
    named = [f"{d} (task {owners[key(d)]})" if key(d) in owners else d for d in sorted(others)]
    shown = {owners[key(d)] for d in others if key(d) in owners}
    unnamed = [t.name for t in tasks if t.name not in shown]
    parts = []
    if named:
        parts.append(f"the DR server also holds database(s) outside this task: {_names(named)}")
    if unnamed:
        parts.append(f"task(s) {_names(unnamed)} replicate into the same DR server")
    return "; ".join(parts)


@item("primary_keys", "Tables without a primary key", "source")
def check_primary_keys(ctx: CheckContext) -> tuple[str, str, str]:
    cond, args = ctx.in_dbs("t.TABLE_SCHEMA")
    rows = ctx.source.rows(
        "SELECT t.TABLE_SCHEMA, t.TABLE_NAME FROM information_schema.TABLES t "
        "LEFT JOIN information_schema.TABLE_CONSTRAINTS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA "
        "AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY' "
        f"WHERE t.TABLE_TYPE = 'BASE TABLE' AND c.CONSTRAINT_NAME IS NULL AND {cond} ORDER BY 1, 2",
        args,
    )
    if not rows:
        return PASSED, "every table has a primary key", ""
    names = [_db_table(db, t) for db, t in rows]
    return (
        CONFIRM,
        f"{len(names)} table(s) without a primary key: {_names(names)}; copying and comparing them is slower "
        "and replaying an update or delete must match on every column (duplicate rows need care)",
        "add a primary key to these tables (ALTER TABLE ... ADD PRIMARY KEY (...)) where possible",
    )


@item("storage_engines", "Non-InnoDB tables", "source")
def check_storage_engines(ctx: CheckContext) -> tuple[str, str, str]:
    cond, args = ctx.in_dbs("TABLE_SCHEMA")
    versioned = ctx.source.rows(
        f"SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'SYSTEM VERSIONED' AND {cond} ORDER BY 1, 2",
        args,
    )
    if versioned:
        names = [_db_table(db, t) for db, t in versioned]
        return (
            FAILED,
            f"{len(names)} system-versioned table(s): {_names(names)}; their history cannot be kept exact on the "
            "DR side (the DR server would stamp history rows with its own times)",
            "leave their databases out of the task, or drop versioning on the service side "
            "(ALTER TABLE ... DROP SYSTEM VERSIONING)",
        )
    others = [(db, t, e) for db, t, e in ctx.source_tables if (e or "").upper() != "INNODB" and e]
    if not others:
        return PASSED, f"all {len(ctx.source_tables)} table(s) use InnoDB", ""
    names = [f"{_db_table(db, t)} ({e})" for db, t, e in others]
    return (
        CONFIRM,
        f"{len(names)} non-transactional or non-InnoDB table(s): {_names(names)}; their initial copy is not "
        "transactionally consistent and a crash can leave them out of step",
        "convert them to InnoDB (ALTER TABLE ... ENGINE=InnoDB) where possible",
    )


@item("definers", "Definer accounts on the DR side", "source", "target")
def check_definers(ctx: CheckContext) -> tuple[str, str, str]:
    if ctx.spec.migrate_definer:
        return (
            PASSED,
            "Migrate Definer to User is on: views, routines, triggers and events get the DR account as definer",
            "",
        )
    cond_v, args = ctx.in_dbs("TABLE_SCHEMA")
    cond_r, _ = ctx.in_dbs("ROUTINE_SCHEMA")
    cond_t, _ = ctx.in_dbs("TRIGGER_SCHEMA")
    cond_e, _ = ctx.in_dbs("EVENT_SCHEMA")
    definers = sorted(
        {
            r[0]
            for r in ctx.source.rows(
                f"SELECT DEFINER FROM information_schema.VIEWS WHERE {cond_v} "
                f"UNION SELECT DEFINER FROM information_schema.ROUTINES WHERE {cond_r} "
                f"UNION SELECT DEFINER FROM information_schema.TRIGGERS WHERE {cond_t} "
                f"UNION SELECT DEFINER FROM information_schema.EVENTS WHERE {cond_e}",
                args * 4,
            )
            if r[0]
        }
    )
    if not definers:
        return PASSED, "no view, routine, trigger or event with a definer in the protected databases", ""
    try:
        missing = []
        for definer in definers:
            user, _, host = definer.rpartition("@") if "@" in definer else (definer, "", "")
            found = ctx.target.rows(
                "SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = %s", (user, host)
            )
            if not int(found[0][0]):
                missing.append(definer)
    except pymysql.err.MySQLError as exc:
        return (
            CONFIRM,
            f"definers {_names(definers)} are kept, but the DR account cannot read mysql.user to see whether "
            f"they exist ({_mysql_error(exc)})",
            "create these accounts on the DR database, or turn Migrate Definer to User on",
        )
    if not missing:
        return PASSED, f"every definer exists on the DR database: {_names(definers)}", ""
    return (
        CONFIRM,
        f"definer account(s) missing on the DR database: {_names(missing)}; objects they define fail when used "
        "there until the accounts exist",
        "create these accounts on the DR database (CREATE USER ...), or turn Migrate Definer to User on",
    )


@item("source_databases_exist", "Selected databases exist on the service side", "source")
def check_databases_exist(ctx: CheckContext) -> tuple[str, str, str]:
    if ctx.missing_databases:
        return (
            FAILED,
            f"no such database on the service database: {_names(ctx.missing_databases)}",
            "correct the database names or create them on the service database",
        )
    if not ctx.databases:
        return (
            CONFIRM,
            "the service database has no user database yet: the task has nothing to copy",
            "choose a service database that holds the data to protect",
        )
    what = "every user database" if ctx.spec.databases is None else "selected"
    return PASSED, f"{what}: {_names(list(ctx.databases))}", ""


# ---- running them ----------------------------------------------------------------------------------


def run_prechecks(
    spec: TaskSpec,
    *,
    on_progress: Callable[[int, int, str], None] | None = None,
    stop: threading.Event | None = None,
    other_tasks: Sequence[TaskSpec] = (),
) -> list[PrecheckResult]:
    """Run every item in order; a stop request returns the items checked so far. `other_tasks` (the
    specs of the tasks already in the store) lets the checks name the tasks that share a server."""
    total = len(REGISTRY)
    if on_progress:
        on_progress(0, total, "connecting")
    source = Side("service database", spec.source)
    target = Side("DR database", spec.target)
    # Both sides at once: an unreachable address costs one connect timeout, not two
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(_open, (source, target)))
    ctx = CheckContext(spec, source, target, other_tasks)
    results: list[PrecheckResult] = []
    try:
        for i, check in enumerate(REGISTRY):
            if stop is not None and stop.is_set():
                break
            if on_progress:
                on_progress(i, total, check.name)
            results.append(_run_one(ctx, check))
        if on_progress and len(results) == total:
            on_progress(total, total, "")
    finally:
        for side in (source, target):
            if side.conn is not None:
                side.conn.close()
    return results


def _run_one(ctx: CheckContext, check: CheckItem) -> PrecheckResult:
    for side_name in check.needs:
        side = ctx.source if side_name == "source" else ctx.target
        if side.conn is None:
            return PrecheckResult(
                check.name, FAILED, f"skipped: cannot connect to the {side.label} ({side.endpoint.address})",
                f"fix the {side.label} connection first", check.key,
            )  # fmt: skip
    try:
        result, reason, fix = check.fn(ctx)
    except pymysql.err.MySQLError as exc:
        result, reason, fix = (
            FAILED,
            f"could not check: {_mysql_error(exc)}",
            "make sure the account can read information_schema",
        )
    return PrecheckResult(check.name, result, reason, fix, check.key)


# ---- drs task check --------------------------------------------------------------------------------


def cmd_task_check(args: argparse.Namespace) -> int:
    spec = load_spec_file(args.spec)  # SpecInvalid -> exit 2 with the field message
    results = run_prechecks(spec)
    if args.json:
        print(json.dumps([r.to_json() for r in results], ensure_ascii=False))
    else:
        for r in results:
            print(f"{r.result.upper():<8} {r.item}: {r.reason}")
            if r.result != PASSED and r.fix:
                print(f"         fix: {r.fix}")
        failed = sum(r.result == FAILED for r in results)
        confirm = sum(r.result == CONFIRM for r in results)
        print(
            f"{len(results)} items: {len(results) - failed - confirm} passed, {confirm} to confirm, {failed} failed",
            file=sys.stderr,
        )
    return 2 if any(r.result == FAILED for r in results) else 0
