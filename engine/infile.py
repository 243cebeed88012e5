"""LOAD DATA LOCAL INFILE fed from memory: the initial copy's rows reach the DR server as a tab-separated
chunk instead of a multi-row INSERT, which the server parses for about a third less CPU.

pymysql reads a LOCAL file by the name the server asks for; here a connection marked as ours sends the
chunk it holds and never opens a file, whatever name a server asks for.
"""

from __future__ import annotations

import threading
from typing import Any

import pymysql
import pymysql.connections

PACKET_BYTES = 1 << 20  # the chunk goes out in packets of this size (pymysql's own reader uses 16 KB)
_installed = threading.Lock()
_original_send: Any = None


def _send_from_memory(filename: str, conn: pymysql.connections.Connection) -> None:
    if not getattr(conn, "drs_infile_only", False):
        _original_send(filename, conn)
        return
    data = memoryview(conn.drs_infile or b"")  # type: ignore[attr-defined]
    # every packet within the server's max_allowed_packet (the connection was opened with it)
    size = max(1024, min(PACKET_BYTES, conn.max_allowed_packet // 2))
    for at in range(0, len(data), size):
        conn.write_packet(data[at : at + size])


def available() -> bool:
    """pymysql has the one hook this needs (`_send_local_file`, pymysql 1.1.1 and newer); without it the
    copy keeps its INSERT path."""
    return callable(getattr(pymysql.connections, "_send_local_file", None))


def install() -> None:
    """Route LOCAL INFILE requests on marked connections to memory (once per process)."""
    global _original_send
    with _installed:
        if _original_send is None:
            _original_send = pymysql.connections._send_local_file  # noqa: SLF001 - the one hook pymysql has
            pymysql.connections._send_local_file = _send_from_memory  # noqa: SLF001


def mark(conn: pymysql.connections.Connection) -> None:
    """This connection answers LOCAL INFILE requests from memory only (see `load`)."""
    install()
    conn.drs_infile_only = True  # type: ignore[attr-defined]
    conn.drs_infile = None  # type: ignore[attr-defined]


def load(conn: pymysql.connections.Connection, statement: bytes | str, data: bytes) -> int:
    """Run a `LOAD DATA LOCAL INFILE` statement whose file is `data`; the rows the server took."""
    conn.drs_infile = data  # type: ignore[attr-defined]
    try:
        return conn.query(statement)
    finally:
        conn.drs_infile = None  # type: ignore[attr-defined]
