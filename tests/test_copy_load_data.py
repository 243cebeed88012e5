"""The initial copy's two ways of loading rows on the DR side give the same bytes: LOAD DATA LOCAL
INFILE fed from memory (when the DR server allows local_infile) and multi-row INSERTs (when it does not).
"""

from __future__ import annotations

import pytest

from engine.snapshot import run_initial_copy
from engine.spec import parse_spec
from tests.conftest import make_spec
from tests.test_snapshot import ODD_DB, base_tables, small_chunks, source_setup, table_dump

__all__ = ["small_chunks"]  # the fixture, used by name below


def loads_run(server) -> int:
    return int(server.sql("SHOW GLOBAL STATUS LIKE 'Com_load'")[0][1])


@pytest.mark.parametrize("local_infile", ["ON", "OFF"])
def test_every_type_arrives_byte_for_byte_with_and_without_local_infile(dbs, small_chunks, local_infile):
    src, tgt = dbs.source, dbs.target
    source_setup(src)
    tgt.sql(f"SET GLOBAL local_infile = {local_infile}")
    loads_before = loads_run(tgt)
    try:
        result = run_initial_copy(parse_spec(make_spec(dbs, databases=[ODD_DB, "plain"])), parallel=3)
    finally:
        tgt.sql("SET GLOBAL local_infile = ON")
    rows = 0
    for db in (ODD_DB, "plain"):
        assert base_tables(tgt, db) == base_tables(src, db)
        for table in base_tables(src, db):
            expected = table_dump(src, db, table)
            assert table_dump(tgt, db, table) == expected, f"{db}.{table} differs ({local_infile=})"
            rows += len(expected)
    assert result.rows == rows
    # the DR server says which way the rows came: LOAD DATA statements only where it allows them
    loads = loads_run(tgt) - loads_before
    assert (loads > 0) == (local_infile == "ON"), loads
