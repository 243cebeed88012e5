"""Helpers for DR integration tests: a type-matrix schema, row-by-row comparison, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable

from conftest import MariaDBServer

ODD_DB = "odd db`\"x"
ODD_TABLE = "sel`ect"

TYPE_MATRIX_DDL = """
CREATE TABLE `types` (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d52 DECIMAL(5,2), f FLOAT, dbl DOUBLE,
  dt DATE, dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), tm0 TIME, tm3 TIME(3), y YEAR,
  c CHAR(10), vc VARCHAR(300) CHARACTER SET utf8mb4, txt TEXT CHARACTER SET utf8mb4, l1 VARCHAR(50) CHARACTER SET latin1,
  bn BINARY(4), vb VARBINARY(300), bl BLOB, lb LONGBLOB,
  j JSON, e ENUM('a','b','c d'), st SET('x','y','z'),
  b1 BIT(1), b7 BIT(7), b64 BIT(64),
  gen INT AS (ti + 1) VIRTUAL, gens VARCHAR(20) AS (CONCAT('g', id)) PERSISTENT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

ALL_BYTES = bytes(range(256))

TYPE_ROWS = [
    # minimums / negative values
    "(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,"
    " '-99999999999999999999999999999999999.999999999999999999999999999999', -999.99, -3.4028234e38, -1.7976931348623157e308,"
    " '1000-01-01', '1000-01-01 00:00:00.000000', '1000-01-01 00:00:00', '1970-01-01 00:00:01.000001', '-838:59:59.000000', '-00:00:01', '-00:30:00.500', 1901,"
    " '', '', '', '', '', '', '', '', '[]', 'a', '', b'0', b'0', b'0', DEFAULT, DEFAULT)",
    # maximums
    "(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,"
    " '99999999999999999999999999999999999.999999999999999999999999999999', 999.99, 3.4028234e38, 1.7976931348623157e308,"
    " '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59', '2038-01-19 03:14:07.999999', '838:59:59.000000', '23:59:59', '12:34:56.789', 2155,"
    " 'abcdefghij', 'héllo wörld 😀🚀 中文', REPEAT('ü😀', 200), 'café ÿ', X'00010203', X'FF00FE', X'00FF', X'DEADBEEF',"
    " '{\"a\": [1, 2.5, \"x\"], \"b\": null, \"c\": {\"d\": true}}', 'c d', 'x,y,z', b'1', b'1111111', b'1111111111111111111111111111111111111111111111111111111111111111', DEFAULT, DEFAULT)",
    # every NULL
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, DEFAULT, DEFAULT)",
    # zero dates and odd values
    "(4, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, '0.000000000000000000000000000001', 0.01, 1.17549435e-38, 2.2250738585072014e-308,"
    " '0000-00-00', '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '00:00:00', '00:00:00', '-00:00:00.001', 0,"
    " 'x', ' trailing ', 'line\\nbreak\\ttab\\\\ back', 'Ä', X'00', X'', X'00', X'', '\"just a string\"', 'b', 'y', b'0', b'1000000', b'1000000000000000000000000000000000000000000000000000000000000000', DEFAULT, DEFAULT)",
    # float oddities
    "(5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, '3.141592653589793238462643383279', 1.5, 3.1415927, 0.1,"
    " '2024-02-29', '2024-02-29 12:00:00.5', '2024-02-29 12:00:00', '2024-02-29 12:00:00.123456', '100:00:00.000001', '-838:59:59', '00:00:00.001', 2024,"
    " 'Q', 'O''Reilly \"quoted\" `bt`', '\\\\N', 'x', X'7F80', X'5C27', X'27', X'5C', '{}', 'a', 'x,z', b'1', b'0101010', b'10', DEFAULT, DEFAULT)",
]


def create_type_matrix(server: MariaDBServer, db: str = "shop") -> None:
    server.sql(f"CREATE DATABASE IF NOT EXISTS `{db}`")
    server.sql(TYPE_MATRIX_DDL, database=db)
    server.sql(f"INSERT INTO `types` VALUES {','.join(TYPE_ROWS)}", database=db)
    # every byte value, in a blob and a varbinary
    conn = server.root(db)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO `types` (id, bl, vb, lb) VALUES (6, %s, %s, %s)", (ALL_BYTES, ALL_BYTES, ALL_BYTES * 100))
    conn.close()


def table_fingerprint(server: MariaDBServer, db: str, table: str) -> list[tuple]:
    """Every row as the exact bytes the server stores or prints for each column, in a stable order.

    An oracle independent of the product: values are fetched raw (no client conversion, no charset
    conversion of results) so a DECIMAL, DOUBLE, date or string compares as the server's own text and
    a BLOB/BINARY/BIT as its bytes; NULL is None, distinct from b''. FLOAT is widened to DOUBLE first:
    its own text has 6 significant digits and prints two different floats alike ("1" for 1.0000001).
    (HEX() was not exact: for a number it is the hex of its integer value, so fractions were lost.)
    """
    columns = server.sql(
        f"SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='{_esc(db)}' "
        f"AND TABLE_NAME='{_esc(table)}' ORDER BY ORDINAL_POSITION"
    )
    exprs = []
    for name, data_type in columns:
        col = f"`{name.replace('`', '``')}`"
        exprs.append(f"CAST({col} AS DOUBLE)" if data_type.lower() == "float" else col)
    conn = server.root(conv={}, use_unicode=False)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION character_set_results = NULL")  # stored bytes, not converted text
            cur.execute("SET SESSION time_zone = '+00:00'")  # TIMESTAMP text must not depend on the server's zone
            cur.execute(f"SELECT {','.join(exprs)} FROM `{db.replace('`', '``')}`.`{table.replace('`', '``')}`")
            rows = list(cur.fetchall())
    finally:
        conn.close()
    # sorted here, bytewise: ORDER BY would sort by collation, where ties ('a'/'A') may come in any order
    return sorted(rows, key=lambda row: tuple((v is not None, v or b"") for v in row))


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace("'", "\\'")


def user_tables(server: MariaDBServer, db: str) -> list[str]:
    return [
        r[0]
        for r in server.sql(
            f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='{_esc(db)}' AND TABLE_TYPE='BASE TABLE' ORDER BY 1"
        )
    ]


def assert_databases_identical(source: MariaDBServer, target: MariaDBServer, databases: list[str]) -> None:
    for db in databases:
        tables = user_tables(source, db)
        assert tables == user_tables(target, db), f"tables differ in {db}"
        for table in tables:
            src = table_fingerprint(source, db, table)
            tgt = table_fingerprint(target, db, table)
            if src != tgt:
                diffs = [(i, a, b) for i, (a, b) in enumerate(zip(src, tgt, strict=False)) if a != b][:3]
                cols = [
                    [f"col{j}: {x!r} != {y!r}" for j, (x, y) in enumerate(zip(a, b, strict=False)) if x != y] for _, a, b in diffs
                ]
                raise AssertionError(f"{db}.{table}: {len(src)} rows on the service side, {len(tgt)} on the DR side; first differences: {cols}")


def wait_for(condition: Callable[[], object], timeout: float = 60.0, interval: float = 0.1, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the condition may query a server that is restarting
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))
