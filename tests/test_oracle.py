"""The suite's oracle (dr_helpers.table_fingerprint) tells apart values HEX() took for equal."""

from __future__ import annotations

from dr_helpers import table_fingerprint

PAIRS = [
    # (column type, a value, a different value that HEX() of the number could not tell apart)
    ("FLOAT", "1.0000001", "1.0000002"),  # one ulp apart: FLOAT's own text prints both as "1"
    ("DOUBLE", "0.30000000000000004", "0.3"),
    ("DECIMAL(65,30)", "'1.000000000000000000000000000001'", "'1.000000000000000000000000000002'"),
    ("DECIMAL(5,2)", "1.25", "1.26"),
    ("VARCHAR(10)", "''", "NULL"),
    ("VARCHAR(10)", "'a'", "'A'"),  # equal under the column's collation, not as stored
    ("VARBINARY(10)", "X'00'", "X'0000'"),
    ("TIME(6)", "'00:00:00.000001'", "'00:00:00.000002'"),
]


def test_the_fingerprint_tells_apart_what_hex_did_not(dbs):
    src = dbs.source
    src.sql("CREATE DATABASE oracle")
    for i, (col_type, a, b) in enumerate(PAIRS):
        for side, value in (("a", a), ("b", b)):
            src.sql(f"CREATE TABLE oracle.{side}{i} (v {col_type})", f"INSERT INTO oracle.{side}{i} VALUES ({value})")
        assert table_fingerprint(src, "oracle", f"a{i}") != table_fingerprint(src, "oracle", f"b{i}"), (col_type, a, b)
        assert table_fingerprint(src, "oracle", f"a{i}") == table_fingerprint(src, "oracle", f"a{i}")


def test_row_order_does_not_depend_on_collation_ties(dbs):
    src = dbs.source
    src.sql("CREATE DATABASE oracle", "CREATE TABLE oracle.x (v VARCHAR(5))", "CREATE TABLE oracle.y (v VARCHAR(5))",
            "INSERT INTO oracle.x VALUES ('a'), ('A'), (NULL), ('')", "INSERT INTO oracle.y VALUES (''), ('A'), (NULL), ('a')")  # fmt: skip
    assert table_fingerprint(src, "oracle", "x") == table_fingerprint(src, "oracle", "y")
