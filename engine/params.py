"""Compare Parameters: server settings of the service and DR databases side by side, and applying the
service values to the DR side (SET GLOBAL, or a my.cnf line for the ones that need a restart).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal

import pymysql

from engine.connect import ServerInfo, connect, quote_ident, server_info, variables
from engine.errors import DrsError
from engine.spec import Endpoint, TaskSpec, load_spec_file

COMMON = (
    "character_set_server", "collation_server", "connect_timeout", "event_scheduler",
    "explicit_defaults_for_timestamp", "innodb_flush_log_at_trx_commit", "innodb_lock_wait_timeout",
    "max_allowed_packet", "max_connections", "net_read_timeout", "net_write_timeout", "sql_mode", "time_zone",
    "transaction_isolation", "wait_timeout", "interactive_timeout", "lower_case_table_names",
    "group_concat_max_len", "default_storage_engine", "autocommit", "innodb_autoinc_lock_mode",
    "innodb_file_per_table", "innodb_strict_mode", "div_precision_increment", "log_bin_trust_function_creators",
)  # fmt: skip
PERFORMANCE = (
    "innodb_buffer_pool_size", "binlog_cache_size", "bulk_insert_buffer_size", "key_buffer_size",
    "long_query_time", "tmp_table_size", "max_heap_table_size", "join_buffer_size", "sort_buffer_size",
    "read_buffer_size", "read_rnd_buffer_size", "innodb_log_buffer_size", "innodb_log_file_size",
    "table_open_cache", "table_definition_cache", "thread_cache_size", "innodb_io_capacity", "max_binlog_size",
)  # fmt: skip
ISOLATION_NAMES = ("transaction_isolation", "tx_isolation")  # MySQL 8 / MariaDB 11.1 vs older names
KNOWN_NAMES = frozenset(COMMON + PERFORMANCE + ISOLATION_NAMES)
BUFFER_POOL_SHARE = 0.70  # never give InnoDB more than this share of the DR server's memory
ER_READ_ONLY_VARIABLE = 1238
LOOPBACK_HOSTS = ("localhost", "::1", "[::1]")


class UnknownParameter(DrsError):
    exit_code = 2


@dataclass(frozen=True)
class ParamComparison:
    name: str
    category: str  # "common" | "performance"
    source_value: str | None
    target_value: str | None
    consistent: bool
    needs_restart: bool

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ParamApplyResult:
    name: str
    applied: bool
    value: str | None  # the DR value now (or the value the my.cnf line sets)
    message: str
    mycnf_line: str | None  # for restart-only parameters: the line to put under [mysqld]

    def to_json(self) -> dict:
        return asdict(self)


def needs_restart_known(name: str, info: ServerInfo) -> bool:
    """Variables known to be read-only at run time on this server (MySQL has no READ_ONLY column to ask)."""
    if name in (
        "lower_case_table_names",
        "innodb_autoinc_lock_mode",
        "open_files_limit",
        "performance_schema",
    ):
        return True
    if name == "innodb_log_buffer_size":
        return info.is_mariadb or info.major_minor < (8, 0)  # dynamic from MySQL 8.0
    if name == "innodb_log_file_size":
        return not info.is_mariadb or info.major_minor < (
            10,
            9,
        )  # MariaDB resizes the redo log online from 10.9
    return False


def same_value(a: str | None, b: str | None) -> bool:
    """Equal as a DBA would read them: case, 10 vs 10.000000, ON vs 1, set order do not matter."""
    if a is None or b is None:
        return a is b
    x, y = a.strip().upper(), b.strip().upper()
    if x == y:
        return True
    try:
        return float(x) == float(y)
    except ValueError:
        pass
    truth = {"ON": "1", "TRUE": "1", "YES": "1", "OFF": "0", "FALSE": "0", "NO": "0"}
    if truth.get(x, x) == truth.get(y, y):
        return True
    if "," in x or "," in y:
        return {p.strip() for p in x.split(",") if p.strip()} == {
            p.strip() for p in y.split(",") if p.strip()
        }
    return False


@dataclass
class _Server:
    conn: pymysql.connections.Connection
    info: ServerInfo
    vars: dict[str, str | None]
    read_only: set[str]  # from MariaDB's information_schema.SYSTEM_VARIABLES; empty on MySQL


def _open(endpoint: Endpoint) -> _Server:
    conn = connect(endpoint, connect_timeout=10, read_timeout=60)
    try:
        info = server_info(conn)
        names = list(COMMON + PERFORMANCE + ISOLATION_NAMES + ("innodb_buffer_pool_chunk_size",))
        vars_ = variables(conn, *names)
        read_only: set[str] = set()
        if info.is_mariadb:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT LOWER(VARIABLE_NAME) FROM information_schema.SYSTEM_VARIABLES WHERE READ_ONLY = 'YES'"
                )
                read_only = {_text(r[0]) for r in cur.fetchall()}
    except BaseException:
        conn.close()
        raise
    return _Server(conn, info, vars_, read_only)


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes | bytearray) else str(v)


def _isolation_names(source: _Server, target: _Server) -> tuple[str, str, str]:
    """(row name, source variable, target variable) for the transaction isolation level."""

    def present(s: _Server) -> str:
        return next((n for n in ISOLATION_NAMES if s.vars.get(n) is not None), ISOLATION_NAMES[0])

    t = present(target)
    return t, present(source), t


def _compare(source: _Server, target: _Server) -> list[ParamComparison]:
    rows = []
    for category, names in (("common", COMMON), ("performance", PERFORMANCE)):
        for name in names:
            row, s_name, t_name = (
                (name, name, name) if name != "transaction_isolation" else _isolation_names(source, target)
            )
            s, t = source.vars.get(s_name), target.vars.get(t_name)
            if s is None and t is None:
                continue  # neither server has it (e.g. a MySQL-only variable between two MariaDBs)
            restart = needs_restart_known(row, target.info) or t_name in target.read_only
            rows.append(ParamComparison(row, category, s, t, same_value(s, t), restart))
    return rows


def compare_params(spec: TaskSpec) -> list[ParamComparison]:
    """Every compared parameter with both values; raises a ConnectError when a side is unreachable."""
    source = _open(spec.source)
    try:
        target = _open(spec.target)
        try:
            return _compare(source, target)
        finally:
            target.conn.close()
    finally:
        source.conn.close()


def _sql_value(value: str) -> int | Decimal | str:
    # numbers go as numbers: SET GLOBAL on an integer variable rejects a quoted string
    if re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d+", value.strip()):
        return Decimal(value.strip())
    return value


def mycnf_line(name: str, value: str) -> str:
    shown = f'"{value}"' if value == "" or re.search(r"[\s#;\"']", value) else value
    return f"{name} = {shown}"


def _memory_bytes(endpoint: Endpoint) -> int | None:
    """Total memory of the DR host, known only when it is this machine (loopback address)."""
    host = endpoint.host.lower()
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _restart_result(name: str, value: str | None, info: ServerInfo) -> ParamApplyResult:
    message = "read-only at run time: add the line under [mysqld] in the DR database's my.cnf and restart it"
    if name == "lower_case_table_names" and not info.is_mariadb and info.major_minor >= (8, 0):
        message = "MySQL 8 only accepts lower_case_table_names when the data directory is initialized"
    return ParamApplyResult(name, False, value, message, mycnf_line(name, value or ""))


def apply_params(spec: TaskSpec, names: list[str]) -> list[ParamApplyResult]:
    """Set the service database's values on the DR database, one result per name asked for."""
    source = _open(spec.source)
    try:
        target = _open(spec.target)
        try:
            rows = {r.name: r for r in _compare(source, target)}
            iso_row = _isolation_names(source, target)[0]
            return [_apply_one(spec, target, rows, iso_row if n in ISOLATION_NAMES else n) for n in names]
        finally:
            target.conn.close()
    finally:
        source.conn.close()


def _apply_one(
    spec: TaskSpec, target: _Server, rows: dict[str, ParamComparison], name: str
) -> ParamApplyResult:
    if name not in KNOWN_NAMES:
        return ParamApplyResult(
            name, False, None, f"{name} is not one of the compared parameters; nothing done", None
        )
    row = rows.get(name)
    if row is None:
        return ParamApplyResult(name, False, None, "neither server has this parameter; nothing done", None)
    if row.consistent:
        return ParamApplyResult(
            name, False, row.target_value, f"already consistent ({row.target_value}); nothing done", None
        )
    if row.source_value is None:
        return ParamApplyResult(
            name, False, row.target_value, "the service database has no such parameter; nothing done", None
        )
    if row.target_value is None:
        return ParamApplyResult(
            name, False, None, "the DR database has no such parameter (another server version)", None
        )
    if row.needs_restart:
        return _restart_result(name, row.source_value, target.info)
    value: int | Decimal | str = _sql_value(row.source_value)
    notes = []
    if name == "innodb_buffer_pool_size" and isinstance(value, int):
        memory = _memory_bytes(spec.target)
        if memory is None:
            notes.append("the DR host's memory is unknown (not this machine): make sure this size fits in it")
        elif value > memory * BUFFER_POOL_SHARE:
            chunk = int(target.vars.get("innodb_buffer_pool_chunk_size") or 0) or 1024 * 1024
            capped = max(chunk, int(memory * BUFFER_POOL_SHARE) // chunk * chunk)
            notes.append(
                f"capped at {capped} bytes, 70% of the DR host's {memory} bytes of memory (asked {value})"
            )
            value = capped
    if name == "event_scheduler" and str(value).upper() == "ON":
        notes.append("events now run on the DR database too; keep them idempotent or disable them there")
    try:
        with target.conn.cursor() as cur:
            cur.execute(f"SET GLOBAL {quote_ident(name)} = %s", (value,))
            cur.execute(f"SELECT @@GLOBAL.{quote_ident(name)}")
            now = _text(cur.fetchone()[0])
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args else None
        if code == ER_READ_ONLY_VARIABLE:
            return _restart_result(name, row.source_value, target.info)
        text = exc.args[1] if len(exc.args) > 1 else str(exc)
        return ParamApplyResult(
            name, False, row.target_value, f"SET GLOBAL failed: error {code}: {text}", None
        )
    if not same_value(now, str(value)):
        notes.append(f"the server adjusted it to {now}")
    if not notes and name in ("autocommit", "sql_mode", "time_zone", "transaction_isolation", "tx_isolation"):
        notes.append("new sessions get it; open sessions keep their own")
    return ParamApplyResult(name, True, now, "; ".join(notes), None)


# ---- drs task params -------------------------------------------------------------------------------


def _show(value: str | None) -> str:
    return "-" if value is None else (value if len(value) <= 24 else value[:21] + "...")


def cmd_task_params(args: argparse.Namespace) -> int:
    spec = load_spec_file(args.spec)
    names: Sequence[str] = args.apply or []
    unknown = [n for n in names if n not in KNOWN_NAMES]
    if unknown:
        raise UnknownParameter(
            f"--apply: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_NAMES))}"
        )
    applied = apply_params(spec, list(names)) if names else []
    comparisons = compare_params(spec)  # after applying: shows what the DR side has now
    if args.json:
        rows = [c.to_json() for c in comparisons]
        print(json.dumps({"comparisons": rows, "applied": [a.to_json() for a in applied]} if names else rows))
        return 0
    print(f"{'PARAMETER':<34} {'CATEGORY':<12} {'SERVICE':<24} {'DR':<24} {'SAME':<5} RESTART")
    for c in comparisons:
        print(
            f"{c.name:<34} {c.category:<12} {_show(c.source_value):<24} {_show(c.target_value):<24} "
            f"{'yes' if c.consistent else 'NO':<5} {'yes' if c.needs_restart else 'no'}"
        )
    for a in applied:
        state = "applied" if a.applied else "not applied"
        print(f"{a.name}: {state} ({a.value})" + (f": {a.message}" if a.message else ""))
        if a.mycnf_line:
            print(f"    under [mysqld]: {a.mycnf_line}")
    return 0
