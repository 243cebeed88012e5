"""Connections to the service and DR servers, and every MySQL-vs-MariaDB difference in one place.

pymysql with connect/read timeouts and the task's TLS settings; low-level errors become typed
ConnectError subclasses that say what went wrong, never with the password in them.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import pymysql
import pymysql.cursors

from engine.errors import AccessDenied, ConnectError, ConnectionRefused, ConnectTimeout, TlsError, UnknownHost
from engine.spec import Endpoint

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 600
WRITE_TIMEOUT = 600


def ssl_options(endpoint: Endpoint) -> dict[str, Any] | None:
    if endpoint.tls == "off":
        # pymysql would otherwise negotiate TLS opportunistically ("preferred"); off means off
        return {"ssl_disabled": True}
    if endpoint.tls == "required":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return {"ssl": ctx}
    ctx = ssl.create_default_context(cafile=endpoint.ca_file)
    ctx.check_hostname = False  # verify_ca: the chain, not the name (as MySQL's VERIFY_CA)
    return {"ssl": ctx}


def _classify(
    endpoint: Endpoint,
    exc: BaseException,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float | None = None,
) -> ConnectError:
    where = f"{endpoint.user}@{endpoint.address}"
    text = str(exc.args[1]) if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) > 1 else str(exc)
    text = text.replace(endpoint.password.reveal(), "********") if endpoint.password else text
    code = exc.args[0] if isinstance(exc, pymysql.err.MySQLError) and exc.args else None
    cause = exc.__cause__ or exc.__context__
    if "secure transport" in text.lower() or code == 3159:
        return TlsError(where, "the server accepts only encrypted connections (require_secure_transport); set TLS to required or verify CA")
    if code in (1045, 1044, 1698):
        hint = "; if the server accepts only encrypted connections, set TLS to required" if endpoint.tls == "off" else ""
        return AccessDenied(where, f"access denied for user {endpoint.user!r} (check the user name and password{hint})")
    if isinstance(cause, socket.gaierror) or "Name or service not known" in text or "getaddrinfo" in text:
        return UnknownHost(where, f"unknown host {endpoint.host!r} (the name does not resolve)")
    if isinstance(cause, ssl.SSLError) or "SSL" in text or "TLS" in text:
        return TlsError(where, f"TLS handshake failed: {text}")
    if isinstance(cause, ConnectionRefusedError) or "Connection refused" in text or (
        isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
    ):
        return ConnectionRefused(where, f"connection refused (is the server running and listening on port {endpoint.port}?)")
    if isinstance(cause, TimeoutError | socket.timeout) or "timed out" in text:
        # 2013: the TCP connection was made but the server's greeting never came (read timeout)
        waited = read_timeout if code == 2013 and read_timeout else connect_timeout
        return ConnectTimeout(
            where, f"timed out after {waited:g}s (firewall, wrong address or server overloaded)"
        )
    if code == 2003:
        return ConnectionRefused(where, f"cannot connect: {text}")
    return ConnectError(where, f"cannot connect: {text}")


def connect(
    endpoint: Endpoint,
    *,
    database: str | None = None,
    autocommit: bool = True,
    raw: bool = False,
    cursorclass: type = pymysql.cursors.Cursor,
    connect_timeout: int = CONNECT_TIMEOUT,
    read_timeout: int | None = READ_TIMEOUT,
    **kwargs: Any,
) -> pymysql.connections.Connection:
    """Open a connection; `raw=True` returns column values as the server's bytes (no conversion)."""
    options: dict[str, Any] = dict(
        host=endpoint.host,
        port=endpoint.port,
        user=endpoint.user,
        # UTF-8 bytes, as the mysql client sends what was typed: pymysql would encode a str as latin-1,
        # so "ü" would not match the server's hash and an emoji would raise UnicodeEncodeError
        password=endpoint.password.reveal().encode("utf-8"),
        database=database,
        charset="utf8mb4",
        autocommit=autocommit,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        write_timeout=WRITE_TIMEOUT,
        cursorclass=cursorclass,
        **(ssl_options(endpoint) or {}),
        **kwargs,
    )
    if raw:
        options["conv"] = {}
        options["use_unicode"] = False
    try:
        conn = pymysql.connect(**options)
    except pymysql.err.MySQLError as exc:
        raise _classify(endpoint, exc, connect_timeout, read_timeout) from None
    except (OSError, ssl.SSLError) as exc:
        raise _classify(endpoint, exc, connect_timeout, read_timeout) from None
    with conn.cursor() as cur:
        # UTC session time zone: TIMESTAMP values move between servers unshifted; no strict-mode
        # surprises for zero dates the source already holds.
        cur.execute("SET SESSION time_zone = '+00:00', SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'")
    return conn


# ---- server facts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    version: str  # e.g. "10.11.19-MariaDB-0+deb12u1" or "8.0.36"
    family: str  # "mariadb" | "mysql"
    major_minor: tuple[int, int]
    server_id: int
    hostname: str
    port: int
    server_uuid: str | None

    @property
    def is_mariadb(self) -> bool:
        return self.family == "mariadb"

    @property
    def label(self) -> str:
        return f"{'MariaDB' if self.is_mariadb else 'MySQL'} {self.version.split('-')[0]}"


def query_one(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
    return None if row is None else row[0]


def variables(conn: pymysql.connections.Connection, *names: str) -> dict[str, str | None]:
    """Global variables by name (lower case); missing ones are None."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES "
            "WHERE LOWER(VARIABLE_NAME) IN (" + ",".join(["%s"] * len(names)) + ")"
            if names
            else "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES",
            [n.lower() for n in names] or None,
        )
        found = {_s(k): _s(v) for k, v in cur.fetchall()}
    if not names:
        return found
    return {n.lower(): found.get(n.lower()) for n in names}


def _s(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes | bytearray) else v


def server_info(conn: pymysql.connections.Connection) -> ServerInfo:
    version = _s(query_one(conn, "SELECT VERSION()"))
    m = re.match(r"(\d+)\.(\d+)", version)
    major_minor = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    v = variables(conn, "server_id", "hostname", "port", "server_uuid")
    return ServerInfo(
        version=version,
        family="mariadb" if "mariadb" in version.lower() else "mysql",
        major_minor=major_minor,
        server_id=int(v["server_id"] or 0),
        hostname=v["hostname"] or "",
        port=int(v["port"] or 0),
        server_uuid=v["server_uuid"],
    )


@dataclass(frozen=True)
class BinlogPosition:
    file: str
    pos: int
    gtid: str | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.pos}" + (f" (GTID {self.gtid})" if self.gtid else "")


def binlog_position(conn: pymysql.connections.Connection, info: ServerInfo | None = None) -> BinlogPosition:
    """Current end of the binlog (MySQL 8.4 renamed SHOW MASTER STATUS)."""
    info = info or server_info(conn)
    statement = "SHOW BINARY LOG STATUS" if (not info.is_mariadb and info.major_minor >= (8, 4)) else "SHOW MASTER STATUS"
    with conn.cursor() as cur:
        cur.execute(statement)
        row = cur.fetchone()
        if row is None:
            raise ConnectError(info.hostname, "binary logging is off on the service database (log_bin)")
        names = [d[0] for d in cur.description]
    data = dict(zip(names, row, strict=False))
    gtid = None
    if info.is_mariadb:
        gtid = _s(query_one(conn, "SELECT @@GLOBAL.gtid_binlog_pos")) or None
    else:
        gtid = _s(data.get("Executed_Gtid_Set")) or None
    return BinlogPosition(_s(data["File"]), int(data["Position"]), gtid)


def set_read_only(
    conn: pymysql.connections.Connection, on: bool, info: ServerInfo | None = None, *, super_read_only: bool = False
) -> None:
    """Make a server read-only for everyone without the admin privilege (or writable again).

    MySQL's super_read_only would also stop the DR task's own apply session (unlike a native
    replica's SQL thread), so the standby gets read_only only; `super_read_only=True` is for a
    demoted service database at switchover, which nobody should write to any more.
    """
    info = info or server_info(conn)
    with conn.cursor() as cur:
        if on:
            cur.execute("SET GLOBAL read_only = ON")
            if not info.is_mariadb:
                cur.execute(f"SET GLOBAL super_read_only = {'ON' if super_read_only else 'OFF'}")
        else:
            if not info.is_mariadb:
                cur.execute("SET GLOBAL super_read_only = OFF")
            cur.execute("SET GLOBAL read_only = OFF")


def is_read_only(conn: pymysql.connections.Connection) -> bool:
    return str(query_one(conn, "SELECT @@GLOBAL.read_only")) in ("1", "ON")


def quote_ident(name: str | bytes) -> str:
    """The one quoting function for identifiers: backticks, inner backticks doubled."""
    if isinstance(name, bytes | bytearray):
        name = name.decode("utf-8")
    return "`" + name.replace("`", "``") + "`"


def qualified(db: str, table: str) -> str:
    return f"{quote_ident(db)}.{quote_ident(table)}"


def user_databases(conn: pymysql.connections.Connection) -> list[str]:
    from engine.spec import SYSTEM_DATABASES

    with conn.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
        names = [_s(r[0]) for r in cur.fetchall()]
    return [n for n in names if n.lower() not in SYSTEM_DATABASES and n != META_DATABASE]


# Where the applier keeps its checkpoint on the DR server, in the same transaction as the data.
META_DATABASE = "drs_desktop_meta"
