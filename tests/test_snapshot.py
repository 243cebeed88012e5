"""Initial copy on real servers: every type byte for byte, schema objects, a consistent binlog position,
definers, flow control, stop and progress.
"""

from __future__ import annotations

import struct
import threading
import time
from datetime import datetime

import pytest

from engine import chunks, copier, snapshot, snapshot_lock
from engine.connect import quote_ident
from engine.errors import ReplicationError
from engine.schema import create_deferred_trigger
from engine.snapshot import CopyInterrupted, SnapshotResult, run_initial_copy
from engine.spec import FlowControl, parse_spec
from engine.throttle import BURST_SECONDS, Throttle
from tests.conftest import make_spec
from tests.dr_helpers import assert_databases_identical
from tests.test_throttle import FakeClock

ODD_DB = "odd db"
ODD_TABLE = "sel`ect"
ALL_BYTES = bytes(range(256))

TYPE_MATRIX = f"""
CREATE TABLE {quote_ident(ODD_DB)}.{quote_ident(ODD_TABLE)} (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  dec65 DECIMAL(65,30), f FLOAT, d DOUBLE,
  dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), yr YEAR,
  `the "col"` VARCHAR(50) CHARACTER SET utf8mb4, l1 TEXT CHARACTER SET latin1, ch CHAR(10),
  bin BINARY(4), vb VARBINARY(300), bl BLOB,
  js JSON, en ENUM('a','b','c'), st SET('x','y','z'), b1 BIT(1), b64 BIT(64),
  `order` INT,
  gen_v BIGINT AS (id * 2) VIRTUAL,
  gen_s VARCHAR(80) AS (CONCAT('#', id, '!')) STORED
) DEFAULT CHARSET=utf8mb4
"""
MATRIX_COLUMNS = (
    'id, ti, tiu, si, mi, bi, biu, dec65, f, d, dt, dtm, ts, tm, yr, `the "col"`, l1, ch, bin, vb, bl, js, en, st, b1, '
    "b64, `order`"
)


def float32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


MATRIX_ROWS = [
    (1, 127, 255, 32767, 16777215, 9223372036854775807, 18446744073709551615,
     "99999999999999999999999999999999999.999999999999999999999999999999", repr(float32(3.4028234663852886e38)),
     "1.7976931348623157e308", "9999-12-31", "9999-12-31 23:59:59.999999", "2038-01-19 03:14:07.999999",
     "838:59:59.000000", 2155, "emoji 😀 ü 中文 'q' \"dq\" \\ back", "café Ÿ", "x", b"\x00\xff\x00\x01", ALL_BYTES,
     ALL_BYTES * 3, '{"a": [1, 2.5, "ü"], "b": null}', "c", "x,z", 1, 0xFFFFFFFFFFFFFFFF, 7),
    (2, -128, 0, -32768, 0, -9223372036854775808, 0,
     "-99999999999999999999999999999999999.999999999999999999999999999999", repr(float32(-1.401298464324817e-45)),
     "-5e-324", "1000-01-01", "1000-01-01 00:00:00.000000", "1970-01-01 00:00:01.000000", "-838:59:59.000000",
     1901, "", "", "", b"", b"", b"", "[]", "a", "", 0, 0, -1),
    (3, *([None] * 26)),
    (4, 0, 1, 0, 1, 0, 1, "0.000000000000000000000000000001", repr(float32(0.1)), "0.1", "0000-00-00",
     "0000-00-00 00:00:00.000000", "0000-00-00 00:00:00.000000", "-00:00:00.500000", 0, "tab\tnl\nnul\x00end",
     "\x00\x01\x7f", " pad ", b"\x27\x5c\x00\x22", b"'\\\x00\"\x1a", bytes(reversed(ALL_BYTES)), '"just a string"',
     "b", "x,y,z", 0, 1 << 63, 0),
    (5, 1, 2, 3, 4, 5, 6, "3.141592653589793238462643383279502884197", repr(float32(3.3e-38)),
     "2.2250738585072014e-308", "2024-02-29", "2024-02-29 12:34:56.000001", "2024-02-29 12:34:56.123456",
     "-01:02:03.000004", 1999, "𝄞 music", "Ä", "ü", b"abcd", b"\x80\x81", b"", "{}", "b", "y", 1, 12345, 42),
]  # fmt: skip


def source_setup(src) -> None:
    db = quote_ident(ODD_DB)
    src.sql(
        f"CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        "CREATE DATABASE plain CHARACTER SET latin1 COLLATE latin1_swedish_ci",
        TYPE_MATRIX,
        # composite key: a number and a unicode string, several chunks
        f"CREATE TABLE {db}.`order items` (order_id INT NOT NULL, line VARCHAR(20) CHARACTER SET utf8mb4 NOT NULL, "
        "qty INT, note VARCHAR(40), PRIMARY KEY (order_id, line)) DEFAULT CHARSET=utf8mb4",
        # no key at all, with duplicate rows
        f"CREATE TABLE {db}.`no key` (a INT, b VARCHAR(10))",
        # unique NOT NULL key but no primary key
        f"CREATE TABLE {db}.`täble ü` (code CHAR(3) NOT NULL, val INT, UNIQUE KEY uk (code))",
        # AUTO_INCREMENT kept beyond the highest row
        "CREATE TABLE plain.counters (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(20), KEY (label)) "
        "AUTO_INCREMENT=1000",
        "CREATE TABLE plain.big (id BIGINT UNSIGNED PRIMARY KEY, payload VARCHAR(100), code INT, KEY by_payload "
        "(payload(20)), UNIQUE KEY by_code (code), CONSTRAINT positive CHECK (id > 0)) COMMENT 'big, many indexes'",
        "CREATE TABLE plain.audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40))",
        "CREATE TABLE plain.empty_one (id INT PRIMARY KEY)",
    )
    conn = src.root()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'")
            cur.executemany(
                f"INSERT INTO {db}.{quote_ident(ODD_TABLE)} ({MATRIX_COLUMNS}) VALUES ({','.join(['%s'] * 27)})",
                MATRIX_ROWS,
            )
            cur.executemany(
                f"INSERT INTO {db}.`order items` VALUES (%s, %s, %s, %s)",
                [(o, f"l-{n}-{'é' * (n % 3)}", n, f"note {o}/{n}") for o in range(1, 41) for n in range(6)],
            )
            cur.executemany(
                f"INSERT INTO {db}.`no key` VALUES (%s, %s)", [(1, "dup"), (1, "dup"), (2, None), (None, "x")]
            )
            cur.executemany(
                f"INSERT INTO {db}.`täble ü` VALUES (%s, %s)", [(f"c{i:02d}", i) for i in range(60)]
            )
            cur.executemany("INSERT INTO plain.counters (label) VALUES (%s)", [("a",), ("b",), ("c",)])
            cur.execute("DELETE FROM plain.counters WHERE id = 1002")
            cur.executemany(
                "INSERT INTO plain.big VALUES (%s, %s, %s)",
                [(18446744073700000000 + i * 7919, f"payload {i} " + "x" * (i % 50), i) for i in range(400)],
            )
            cur.execute("ANALYZE TABLE plain.big, plain.counters")
            cur.fetchall()
    finally:
        conn.close()
    src.sql(
        f'CREATE VIEW {db}.v_base AS SELECT id, `the "col"` AS c FROM {db}.{quote_ident(ODD_TABLE)}',
        f"CREATE VIEW {db}.`v on v` AS SELECT id FROM {db}.v_base WHERE id > 1",
        f"CREATE VIEW plain.v_cross AS SELECT COUNT(*) AS n FROM {db}.`v on v`",
        "CREATE PROCEDURE plain.add_counter(IN l VARCHAR(20)) BEGIN INSERT INTO counters (label) VALUES (l); END",
        "CREATE FUNCTION plain.twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
        "CREATE TRIGGER plain.trg_audit AFTER INSERT ON plain.counters FOR EACH ROW "
        "INSERT INTO audit (what) VALUES (CONCAT('counter ', NEW.id))",
        "CREATE EVENT plain.ev_cleanup ON SCHEDULE EVERY 1 HOUR DO DELETE FROM audit WHERE id < 0",
        "CREATE EVENT plain.ev_off ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE id < 0",
        "INSERT INTO plain.counters (label) VALUES ('via trigger')",
        "CREATE SEQUENCE plain.order_no START WITH 100 INCREMENT BY 1",
        "SELECT NEXTVAL(plain.order_no)",
    )
    # a trigger defined under ANSI_QUOTES, on a table with an odd name
    src.sql(
        "SET SESSION sql_mode = 'ANSI_QUOTES'",
        'CREATE TRIGGER "odd db"."trg ansi" BEFORE INSERT ON "odd db"."täble ü" FOR EACH ROW '
        'SET NEW."val" = NEW."val" + 1',
    )


def table_dump(server, db: str, table: str) -> list[tuple]:
    """Every row as text a DBA would compare: HEX of strings/binaries, exact floats; sorted."""
    cols = server.sql(
        f"SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db!r} "
        f"AND TABLE_NAME = {table!r} ORDER BY ORDINAL_POSITION"
    )
    exprs = []
    for name, data_type in cols:
        c = quote_ident(name)
        if data_type == "float":
            exprs.append(f"CAST({c} AS DOUBLE)")
        elif data_type in ("double", "decimal") or data_type.endswith("int"):
            exprs.append(f"CAST({c} AS CHAR)")
        else:
            exprs.append(f"HEX({c})")
    conn = server.root()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00'")
            cur.execute(f"SELECT {', '.join(exprs)} FROM {quote_ident(db)}.{quote_ident(table)}")
            return sorted(cur.fetchall(), key=repr)
    finally:
        conn.close()


def base_tables(server, db: str) -> list[str]:
    return [
        r[0]
        for r in server.sql(
            f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db!r} "
            "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
        )
    ]


def master_position(server) -> tuple[str, int]:
    row = server.sql("SHOW MASTER STATUS")[0]
    return row[0], int(row[1])


def wait_until(condition, timeout: float = 10.0) -> bool:
    """Poll a server-side condition (connections going away) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.05)
    return True


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few rows and key-range splitting on small tables, so boundaries are exercised."""
    monkeypatch.setattr(copier, "CHUNK_BYTES", 2048)
    monkeypatch.setattr(copier, "MIN_CHUNK_ROWS", 7)
    monkeypatch.setattr(chunks, "SPLIT_MIN_ROWS", 100)
    monkeypatch.setattr(chunks, "SPLIT_RANGE_ROWS", 50)
    monkeypatch.setattr(snapshot, "INDEX_LATER_MIN_ROWS", 300)  # plain.big gets its indexes after the load


def test_initial_copy_is_exact_and_complete(dbs, small_chunks):
    src, tgt = dbs.source, dbs.target
    source_setup(src)
    tgt.sql("SET GLOBAL read_only = ON")  # the DR side is already read-only: the task's user writes anyway
    before = master_position(src)
    spec = parse_spec(make_spec(dbs, databases=[ODD_DB, "plain"]))
    events: list = []
    logs: list[tuple[str, str, str]] = []

    result = run_initial_copy(spec, parallel=3, on_progress=events.append, log=lambda *a: logs.append(a))

    assert isinstance(result, SnapshotResult)
    assert (result.position.file, result.position.pos) == before == master_position(src)
    assert result.position.gtid == src.sql("SELECT @@GLOBAL.gtid_binlog_pos")[0][0]
    assert set(result.databases) == {ODD_DB, "plain"}
    # data: every table row by row, byte for byte
    total_rows = 0
    for db in (ODD_DB, "plain"):
        assert base_tables(tgt, db) == base_tables(src, db)
        for table in base_tables(src, db):
            expected = table_dump(src, db, table)
            assert table_dump(tgt, db, table) == expected, f"{db}.{table} differs"
            total_rows += len(expected)
    assert result.tables == 8 and result.rows == total_rows
    # the generated columns were computed by the DR side (and equal, as compared above)
    assert tgt.sql(
        f"SELECT gen_v, gen_s FROM {quote_ident(ODD_DB)}.{quote_ident(ODD_TABLE)} WHERE id = 1"
    ) == [(2, "#1!")]
    # schema: charsets, AUTO_INCREMENT, indexes
    assert tgt.sql(
        f"SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
        f"WHERE SCHEMA_NAME IN ('{ODD_DB}', 'plain') ORDER BY SCHEMA_NAME"
    ) == [("utf8mb4", "utf8mb4_unicode_ci"), ("latin1", "latin1_swedish_ci")]
    for table in ("counters", "big"):
        assert (
            tgt.sql(f"SHOW CREATE TABLE plain.{table}")[0][1]
            == src.sql(f"SHOW CREATE TABLE plain.{table}")[0][1]
        )
    assert "AUTO_INCREMENT=1004" in tgt.sql("SHOW CREATE TABLE plain.counters")[0][1]
    # a sequence continues without handing out a number the service side may already have used
    assert tgt.sql("SELECT NEXTVAL(plain.order_no)")[0][0] >= src.sql("SELECT NEXTVAL(plain.order_no)")[0][0]
    # views (a view on a view, across databases), routines, definers migrated to the task's user
    assert tgt.sql("SELECT n FROM plain.v_cross") == src.sql("SELECT n FROM plain.v_cross")
    assert tgt.sql("SELECT plain.twice(21)") == [(42,)]
    definers = tgt.sql(
        "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN ('odd db', 'plain') UNION ALL "
        "SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'plain' UNION ALL "
        "SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'plain'"
    )
    assert len(definers) == 7 and {d for (d,) in definers} == {"drs@%"}
    # triggers: not on the DR side, handed back for promote, and they work from any database
    assert tgt.sql("SELECT COUNT(*) FROM information_schema.TRIGGERS") == [(0,)]
    assert len(result.deferred_triggers) == 2
    assert all("DEFINER=`drs`@`%`" in t for t in result.deferred_triggers)
    conn = tgt.root()
    try:
        for statement in result.deferred_triggers:
            create_deferred_trigger(conn, statement)
    finally:
        conn.close()
    assert tgt.sql(
        "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE, DEFINER, SQL_MODE FROM information_schema.TRIGGERS "
        "ORDER BY TRIGGER_SCHEMA"
    ) == [
        ("odd db", "trg ansi", "täble ü", "drs@%", "ANSI_QUOTES"),
        ("plain", "trg_audit", "counters", "drs@%", src.sql("SELECT @@GLOBAL.sql_mode")[0][0]),
    ]
    tgt.sql(f"INSERT INTO {quote_ident(ODD_DB)}.`täble ü` VALUES ('new', 1)")
    assert tgt.sql(f"SELECT val FROM {quote_ident(ODD_DB)}.`täble ü` WHERE code = 'new'") == [(2,)]
    # events: present, not running on the standby; the enabled one is listed for promote
    assert tgt.sql("SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS ORDER BY EVENT_NAME") == [
        ("ev_cleanup", "SLAVESIDE_DISABLED"),
        ("ev_off", "DISABLED"),
    ]
    assert result.disabled_events == (("plain", "ev_cleanup"),)
    # progress: at most a few a second, monotonic, ending at every row with every table done
    assert events
    rows_seen = [p.rows_done for p in events]
    assert rows_seen == sorted(rows_seen)
    last = events[-1]
    assert last.rows_done == total_rows == last.rows_estimated and last.bytes_done == result.bytes
    assert all(t.done for t in last.tables) and len(last.tables) == 8
    assert sum(t.rows_done for t in last.tables) == total_rows
    # log: start and end with the position, one line per table
    messages = [m for level, comp, m in logs if level == "info" and comp == "snapshot"]
    assert str(result.position) in messages[0] and str(result.position) in messages[-1]
    assert sum("copied:" in m for m in messages) == 8
    assert [m for m in messages if "secondary indexes built" in m] == [
        m for m in messages if "plain.big:" in m
    ]
    assert len([m for m in messages if "secondary indexes built" in m]) == 1
    assert not [entry for entry in logs if entry[0] != "info"]


def test_copy_matches_the_binlog_position_while_the_source_is_written(dbs):
    """A writer commits single-row inserts during the copy: the DR side holds exactly those committed
    at or before the returned position."""
    src, tgt = dbs.source, dbs.target
    src.sql("CREATE DATABASE shop", "CREATE TABLE shop.ticks (id INT PRIMARY KEY, at VARCHAR(30))")
    src.sql(
        "CREATE TABLE shop.filler (id INT PRIMARY KEY, pad VARCHAR(200))",
        "INSERT INTO shop.filler SELECT seq, REPEAT('p', 200) FROM seq_1_to_20000",
        database="shop",
    )
    position_after: dict[int, tuple[str, int]] = {}
    written = threading.Condition()
    enough = threading.Event()

    def writer() -> None:
        conn = src.root("shop")
        try:
            with conn.cursor() as cur:
                i = 0
                while not enough.is_set():
                    i += 1
                    cur.execute("INSERT INTO ticks VALUES (%s, NOW(6))", (i,))
                    cur.execute("SHOW MASTER STATUS")
                    row = cur.fetchone()
                    with written:
                        position_after[i] = (row[0], int(row[1]))
                        written.notify_all()
        finally:
            conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with written:  # rows exist before the snapshot
            assert written.wait_for(lambda: len(position_after) >= 50, timeout=60)
        result = run_initial_copy(parse_spec(make_spec(dbs, databases=["shop"])), parallel=2)
        with written:  # and more are written after it
            n = len(position_after)
            assert written.wait_for(lambda: len(position_after) >= n + 20, timeout=60)
    finally:
        enough.set()
        thread.join()
    at = (result.position.file, result.position.pos)
    expected = sorted(i for i, pos in position_after.items() if pos <= at)
    on_target = [r[0] for r in tgt.sql("SELECT id FROM shop.ticks ORDER BY id")]
    assert len(expected) >= 50
    assert on_target == expected  # every row up to the position, none after it
    assert any(pos > at for pos in position_after.values())
    assert tgt.sql("SELECT COUNT(*) FROM shop.filler") == [(20000,)]


def test_definers_kept_warns_about_accounts_missing_on_the_dr_side(dbs):
    src, tgt = dbs.source, dbs.target
    src.sql(
        "CREATE DATABASE app",
        "CREATE TABLE app.t (id INT PRIMARY KEY)",
        "CREATE DEFINER=`ghost_admin`@`%` SQL SECURITY DEFINER VIEW app.v AS SELECT id FROM app.t",
        "CREATE DEFINER=`drs`@`%` PROCEDURE app.p() SELECT 1",
    )
    logs: list[tuple[str, str, str]] = []
    result = run_initial_copy(
        parse_spec(make_spec(dbs, databases=["app"], migrate_definer=False)), log=lambda *a: logs.append(a)
    )
    warnings = [m for level, comp, m in logs if level == "warning" and comp == "schema"]
    assert len(warnings) == 1 and "ghost_admin@%" in warnings[0] and "app.v" in warnings[0]
    assert tgt.sql("SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'app'") == [
        ("ghost_admin@%",)
    ]
    assert tgt.sql("SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'app'") == [
        ("drs@%",)
    ]
    assert result.tables == 1


def make_payload_db(src, rows: int = 3000) -> None:
    src.sql("CREATE DATABASE payload", "CREATE TABLE payload.docs (id INT PRIMARY KEY, body VARBINARY(1100))")
    src.sql(
        f"INSERT INTO payload.docs SELECT seq, RANDOM_BYTES(1000) FROM seq_1_to_{rows}", database="payload"
    )


def test_flow_control_holds_the_copy_to_max_mb_s(dbs):
    src, tgt = dbs.source, dbs.target
    make_payload_db(src)  # ~3 MB of data
    spec = parse_spec(make_spec(dbs, databases=["payload"], flow_control={"max_mb_s": 1}))
    clock = FakeClock(datetime(2026, 3, 1, 3, 0))
    throttle = Throttle(spec.flow_control, now=clock.now, sleep=clock.sleep)

    result = run_initial_copy(spec, throttle=throttle)

    assert throttle.bytes_consumed == result.bytes >= 3000 * 1000
    # at 1 MiB/s the copy was made to wait about as many seconds as MiB were read
    assert sum(clock.sleeps) >= result.bytes / (1024 * 1024) - BURST_SECONDS - 0.01
    assert max(clock.sleeps) <= 1.0  # chunks shrink under a low limit: no long stalls
    assert table_dump(tgt, "payload", "docs") == table_dump(src, "payload", "docs")


def test_stop_interrupts_the_copy_and_releases_the_source(dbs):
    src = dbs.source
    make_payload_db(src)
    # sessions other tests left behind (the servers are shared) are not this copy's
    before = {r[0] for r in src.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'drs'")}
    ours = f"SELECT ID, COMMAND, TIME, STATE FROM information_schema.PROCESSLIST WHERE USER = 'drs' AND ID NOT IN ({','.join(map(str, before)) or '0'})"
    spec = parse_spec(make_spec(dbs, databases=["payload"], flow_control={"max_mb_s": 1}))
    stop = threading.Event()
    clock = FakeClock(datetime(2026, 3, 1, 3, 0))
    # the first time the copy has to wait for flow control, the user presses stop
    throttle = Throttle(spec.flow_control, now=clock.now, sleep=lambda s: stop.set())

    with pytest.raises(CopyInterrupted):
        run_initial_copy(spec, stop=stop, throttle=throttle, parallel=2)

    assert throttle.bytes_consumed < 3000 * 1000 * 2  # it did not go on to the end
    # no FTWRL left behind and no reader connection left open on the service side
    src.sql("SET SESSION lock_wait_timeout = 5", "CREATE TABLE payload.after_stop (id INT)")
    assert wait_until(lambda: src.sql(ours) == []), src.sql(ours)


def test_serial_copy_without_reload_privilege(dbs):
    """MariaDB without RELOAD: one consistent-snapshot reader, exact position from binlog_snapshot_*."""
    src, tgt = dbs.source, dbs.target
    src.sql(
        "CREATE DATABASE inv",
        "CREATE TABLE inv.items (id INT PRIMARY KEY, name VARCHAR(20))",
        "INSERT INTO inv.items VALUES (1, 'bolt'), (2, 'nut')",
        "CREATE USER 'drs_t_noreload'@'%' IDENTIFIED BY 'Pw-noreload-1'",
        "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, BINLOG MONITOR ON *.* TO 'drs_t_noreload'@'%'",
    )
    raw = make_spec(dbs, databases=["inv"])
    raw["source"] = {**raw["source"], "user": "drs_t_noreload", "password": "Pw-noreload-1"}
    logs: list[tuple[str, str, str]] = []
    result = run_initial_copy(parse_spec(raw), log=lambda *a: logs.append(a))
    assert (result.position.file, result.position.pos) == master_position(src)
    assert any(level == "warning" and "serial" in m for level, _, m in logs)
    assert tgt.sql("SELECT id, name FROM inv.items ORDER BY id") == [(1, "bolt"), (2, "nut")]


def test_values_larger_than_the_source_packet_are_read_raw(dbs):
    """Rows the server cannot format within max_allowed_packet (hex doubles them) still copy exactly."""
    src, tgt = dbs.source, dbs.target
    old = src.sql("SELECT @@GLOBAL.max_allowed_packet")[0][0]
    src.sql(
        "CREATE DATABASE lobs",
        "CREATE TABLE lobs.keyed (id INT PRIMARY KEY, doc LONGBLOB, txt LONGTEXT CHARACTER SET utf8mb4)",
        "CREATE TABLE lobs.keyless (doc LONGBLOB)",
    )
    conn = src.root("lobs")
    try:
        with conn.cursor() as cur:
            for i in range(1, 7):
                big = bytes((i * j) % 256 for j in range(300_000)) if i % 2 else b"small"
                cur.execute("INSERT INTO keyed VALUES (%s, %s, %s)", (i, big, "ü😀" * (i * 1000)))
                cur.execute("INSERT INTO keyless VALUES (%s)", (big,))
    finally:
        conn.close()
    try:
        src.sql("SET GLOBAL max_allowed_packet = 524288")  # 300 kB values are 600 kB as hex
        result = run_initial_copy(parse_spec(make_spec(dbs, databases=["lobs"])))
    finally:
        src.sql(f"SET GLOBAL max_allowed_packet = {old}")
    assert result.rows == 12
    for table in ("keyed", "keyless"):
        assert table_dump(tgt, "lobs", table) == table_dump(src, "lobs", table)


def test_a_row_whose_hex_is_too_big_for_the_dr_side_is_sent_as_binary(dbs):
    """40 kB of every byte value is 80 kB as a hex literal, over a 64 kB max_allowed_packet: the
    copy sends it as an escaped binary literal instead (as mysqldump would), byte for byte."""
    src, tgt = dbs.source, dbs.target
    src.sql("CREATE DATABASE sales", "CREATE TABLE sales.orders (id INT PRIMARY KEY, doc BLOB, note TEXT)",
            "INSERT INTO sales.orders VALUES (1, 'a', 'x'), "
            "(2, CONCAT(REPEAT(UNHEX(SHA2('k', 512)), 600), 0x00275c1a), REPEAT('\u00fc''\\\\', 2000))")  # fmt: skip
    old = tgt.sql("SELECT @@GLOBAL.max_allowed_packet")[0][0]
    try:
        tgt.sql("SET GLOBAL max_allowed_packet = 65536")
        run_initial_copy(parse_spec(make_spec(dbs, databases=["sales"])))
    finally:
        tgt.sql(f"SET GLOBAL max_allowed_packet = {old}")
    assert_databases_identical(src, tgt, ["sales"])
    assert tgt.sql("SELECT LENGTH(doc) FROM sales.orders WHERE id = 2") == [(38404,)]


def test_a_row_too_big_for_the_dr_side_fails_naming_the_table(dbs):
    src, tgt = dbs.source, dbs.target
    src.sql("CREATE DATABASE sales", "CREATE TABLE sales.orders (id INT PRIMARY KEY, doc BLOB)",
            "INSERT INTO sales.orders VALUES (1, 'a'), (2, REPEAT('b', 65000))")  # fmt: skip
    old = tgt.sql("SELECT @@GLOBAL.max_allowed_packet")[0][0]
    try:
        tgt.sql("SET GLOBAL max_allowed_packet = 65536")  # 65 kB does not fit, even as binary
        with pytest.raises(ReplicationError) as info:
            run_initial_copy(parse_spec(make_spec(dbs, databases=["sales"])))
    finally:
        tgt.sql(f"SET GLOBAL max_allowed_packet = {old}")
    message = str(info.value)
    assert "sales.orders" in message and "max_allowed_packet" in message
    assert "Drs-test-pw" not in message


def test_flow_control_spec_limit_is_what_the_throttle_uses():
    spec_flow = FlowControl(max_mb_s=3)
    assert Throttle(spec_flow).limit_now() == 3 * 1024 * 1024
    assert Throttle(None).limit_now() is None


def test_definer_rewriting_handles_every_quoting():
    from engine.ddl import definer_of, rewrite_definer
    from engine.schema import split_secondary_indexes

    ansi = 'CREATE DEFINER="root"@"localhost" TRIGGER t1 BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1'
    assert definer_of(ansi) == "root@localhost"
    assert rewrite_definer(ansi, "drs@%").startswith("CREATE DEFINER=`drs`@`%` TRIGGER t1 ")
    odd = "CREATE ALGORITHM=UNDEFINED DEFINER=`we``ird@x`@`10.0.%` SQL SECURITY DEFINER VIEW `v` AS select 1"
    assert definer_of(odd) == "we`ird@x@10.0.%"
    assert rewrite_definer(odd, "a b@%") == (
        "CREATE ALGORITHM=UNDEFINED DEFINER=`a b`@`%` SQL SECURITY DEFINER VIEW `v` AS select 1"
    )
    # only the header's definer: a body mentioning DEFINER= is left alone
    body = "CREATE DEFINER=`u`@`h` PROCEDURE p() SELECT 'DEFINER=`x`@`y`'"
    assert rewrite_definer(body, "drs@%") == "CREATE DEFINER=`drs`@`%` PROCEDURE p() SELECT 'DEFINER=`x`@`y`'"

    create = (
        "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n"
        "  UNIQUE KEY `ua` (`a`),\n  KEY `x` (`a`,`id`),\n  CONSTRAINT `c` CHECK (`a` > 0)\n) ENGINE=InnoDB"
    )
    bare, indexes = split_secondary_indexes(create)
    assert bare == (
        "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n"
        "  CONSTRAINT `c` CHECK (`a` > 0)\n) ENGINE=InnoDB"
    )
    assert indexes == ("ADD UNIQUE KEY `ua` (`a`)", "ADD KEY `x` (`a`,`id`)")


def test_snapshot_lock_waits_for_long_statements_instead_of_blocking_writes(dbs, monkeypatch):
    """A long statement on the service side: no lock attempt (which would queue writes) until it ends."""
    monkeypatch.setattr(snapshot_lock, "LONG_QUERY_SECONDS", 1)
    src = dbs.source
    src.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)", "INSERT INTO shop.t VALUES (1), (2)")
    long_query = threading.Thread(target=lambda: src.sql("SELECT SLEEP(4)"), daemon=True)
    long_query.start()
    assert wait_until(lambda: src.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE TIME >= 1 AND INFO LIKE 'SELECT SLEEP%'")[0][0] == 1)
    messages: list[tuple[str, str]] = []
    result = run_initial_copy(parse_spec(make_spec(dbs, databases=["shop"])), log=lambda lvl, comp, msg: messages.append((lvl, msg)))
    long_query.join(10)
    assert result.rows == 2
    assert any(lvl == "warning" and "long-running statement" in msg for lvl, msg in messages)


def test_the_dr_log_says_why_an_auto_increment_table_loads_one_session_at_a_time(dbs, small_chunks):
    """Under the DR server's default innodb_autoinc_lock_mode=1, LOAD DATA into an AUTO_INCREMENT table
    takes turns: the DBA is told which tables and the server option that lets them load together."""
    src, tgt = dbs.source, dbs.target
    src.sql(
        "CREATE DATABASE ai",
        "CREATE TABLE ai.orders (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)) AUTO_INCREMENT=5",
        "CREATE TABLE ai.by_hand (id INT PRIMARY KEY, v VARCHAR(20)) AUTO_INCREMENT=7",  # a table option only
        "CREATE TABLE ai.few (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO ai.orders (v) SELECT CONCAT('o', seq) FROM ai.seq_1_to_400",
        "INSERT INTO ai.by_hand SELECT seq, CONCAT('h', seq) FROM ai.seq_1_to_400",
        "INSERT INTO ai.few (v) VALUES ('a'), ('b')",
        "ANALYZE TABLE ai.orders, ai.by_hand, ai.few",
    )
    assert tgt.sql("SELECT @@GLOBAL.innodb_autoinc_lock_mode") == [(1,)]
    logs: list[tuple[str, str, str]] = []
    run_initial_copy(parse_spec(make_spec(dbs, databases=["ai"])), parallel=3, log=lambda *a: logs.append(a))

    notes = [(level, m) for level, _, m in logs if "innodb_autoinc_lock_mode" in m]
    assert len(notes) == 1, logs
    level, note = notes[0]
    assert level == "info"
    # only the big AUTO_INCREMENT table (read as several key ranges): not the table option, not 2 rows
    assert note.startswith("ai.orders: the DR server's innodb_autoinc_lock_mode is 1") and "by_hand" not in note
    assert "few" not in note and "innodb_autoinc_lock_mode=2" in note
    assert_databases_identical(src, tgt, ["ai"])


def test_no_auto_inc_note_where_the_dr_server_loads_in_parallel():
    table = snapshot.sch.TableDef("d", "t", "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
                                  "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB", "BASE TABLE", "InnoDB", 10**6, 10**8)  # fmt: skip
    plan = chunks.TableState("d", "t", (), (), ("id",), "PRIMARY", 10**6, 10**8, True, ranges=[(None, 5), (5, None)])
    assert snapshot.autoinc_lock_note("1", [table], [plan]).startswith("d.t: ")
    assert snapshot.autoinc_lock_note("0", [table], [plan]).startswith("d.t: ")
    assert snapshot.autoinc_lock_note("2", [table], [plan]) is None  # interleaved: no table lock
    assert snapshot.autoinc_lock_note(None, [table], [plan]) is None  # a server without the variable
