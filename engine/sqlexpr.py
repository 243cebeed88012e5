"""SQL expressions whose spelling depends on the server version.

`CAST(x AS DOUBLE)` exists only from MySQL 8.0.17 (WL#529) and MariaDB 10.4 (its manual lists DOUBLE
among CAST's types; FLOAT came in 10.4.5). On older servers a FLOAT copied or compared through it fails
with a syntax error; `(x * 1e0)` is the same exact widening everywhere: a FLOAT times the DOUBLE literal
1e0 is computed in double precision, where the product by one is exact and keeps the sign of zero
(`x + 0e0` would turn -0 into 0), and both forms print the shortest text that reads back as that
double (tests/test_mysql8_events.py compares them value by value on a MariaDB server).
"""

from __future__ import annotations

import re

from engine.connect import ServerInfo

MYSQL_CAST_DOUBLE = (8, 0, 17)
MARIADB_CAST_DOUBLE = (10, 4, 0)


def _version(info: ServerInfo) -> tuple[int, int, int]:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", info.version)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else (0, 0, 0)


def supports_cast_double(info: ServerInfo | None) -> bool:
    if info is None:
        return False
    return _version(info) >= (MARIADB_CAST_DOUBLE if info.is_mariadb else MYSQL_CAST_DOUBLE)


def float_as_double_sql(expr: str, info: ServerInfo | None) -> str:
    """`expr` (a FLOAT value) widened exactly to DOUBLE, on the server `info` describes.

    A FLOAT prints with 6 significant digits; as a DOUBLE it prints every digit that tells it apart.
    Unknown server (None): the form every version accepts.
    """
    if supports_cast_double(info):
        return f"CAST({expr} AS DOUBLE)"
    return f"({expr} * 1e0)"
