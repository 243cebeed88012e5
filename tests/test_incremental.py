"""Incremental DR: binlog changes of every type arrive byte-identical; checkpoint resume; DDL."""

from __future__ import annotations

import threading

import pytest
from conftest import make_spec
from dr_helpers import (
    ODD_DB,
    ODD_TABLE,
    TYPE_MATRIX_DDL,
    TYPE_ROWS,
    assert_databases_identical,
    table_fingerprint,
    wait_for,
)

from engine import checkpoint as cp
from engine.connect import binlog_position, connect
from engine.runner import TaskRunner, _startup_heap_frozen
from engine.spec import parse_spec
from engine.status import Status
from engine.tasks import TaskService


def seed_incremental(svc: TaskService, dbs, name: str) -> None:
    """Pretend the initial phase finished now: same schema both sides, checkpoint at the source's end."""
    spec = svc.spec_with_passwords(name)
    src = connect(spec.source)
    pos = binlog_position(src)
    src.close()
    tgt = connect(spec.target, autocommit=False)
    cp.ensure_meta(tgt)
    with tgt.cursor() as cur:
        cp.write_checkpoint(cur, name, "incremental", pos)
    tgt.commit()
    tgt.close()


class RunnerThread:
    def __init__(self, svc: TaskService, name: str):
        self.runner = TaskRunner(svc, name)
        self.result: Status | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.result = self.runner.run()

    def __enter__(self) -> RunnerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:  # show what the runner logged, to explain the failure
            for entry in self.runner.svc.store.logs(self.runner.name):
                print(f"DR log: {entry.level} {entry.component} {entry.message}")
        self.runner.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def task(dbs, home, memory_keyring):
    svc = TaskService(home)
    svc.create(parse_spec(make_spec(dbs, "inc-task", databases=["shop", ODD_DB])))
    return svc


def test_every_type_streams_byte_identical(dbs, task):
    svc = task
    for server in (dbs.source, dbs.target):
        server.sql("CREATE DATABASE shop")
        server.sql(TYPE_MATRIX_DDL, database="shop")
    seed_incremental(svc, dbs, "inc-task")
    with RunnerThread(svc, "inc-task") as rt:
        wait_for(lambda: svc.get("inc-task").status is Status.REPLICATING, what="replicating")
        create_type_matrix_rows(dbs)
        wait_for(lambda: table_fingerprint(dbs.source, "shop", "types") == table_fingerprint(dbs.target, "shop", "types"), what="inserts")
        # updates touching every column, and a primary key change
        dbs.source.sql(
            "UPDATE shop.types SET ti = ti - 1, vc = CONCAT(vc, '✓'), bl = REVERSE(bl), tm = '-01:02:03.4', dt = '0000-00-00', "
            "e = 'b', st = 'y,z', b64 = b'1', j = '{\"k\": 1}' WHERE id IN (2, 4, 5)"
        )
        dbs.source.sql("UPDATE shop.types SET id = 100 WHERE id = 1")
        dbs.source.sql("DELETE FROM shop.types WHERE id = 3")
        wait_for(lambda: table_fingerprint(dbs.source, "shop", "types") == table_fingerprint(dbs.target, "shop", "types"), what="updates")
        assert rt.thread.is_alive()
    record = svc.get("inc-task")
    assert record.status is Status.REPLICATING  # a stop leaves it to be resumed
    assert record.checkpoint.binlog_file and record.checkpoint.binlog_pos


def test_the_startup_heap_is_out_of_the_gc_only_while_tasks_run(dbs, task):
    """The app runs tasks in its own process: its objects go back to the cyclic GC when the last task
    of the process ends, not only when the process does."""
    import gc

    svc = task
    for server in (dbs.source, dbs.target):
        server.sql("CREATE DATABASE shop")
    seed_incremental(svc, dbs, "inc-task")
    before = gc.get_freeze_count()  # 0, unless a task of an earlier test in this process still runs
    with RunnerThread(svc, "inc-task"):
        wait_for(lambda: svc.get("inc-task").status is Status.REPLICATING, what="replicating")
        assert gc.get_freeze_count() > 1000  # the modules, classes and store held when the task started
        # another task of the process (the app runs several) starts and ends: the first still runs
        with _startup_heap_frozen():
            pass
        assert gc.get_freeze_count() > 1000
    assert gc.get_freeze_count() == before


def create_type_matrix_rows(dbs) -> None:
    dbs.source.sql(f"INSERT INTO `types` VALUES {','.join(TYPE_ROWS)}", database="shop")
    conn = dbs.source.root("shop")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO `types` (id, bl, vb, lb) VALUES (6, %s, %s, %s)", (bytes(range(256)), bytes(range(256)), bytes(range(256)) * 100))
    conn.close()


def test_odd_identifiers_keyless_tables_and_ddl(dbs, task):
    svc = task
    odd = ODD_DB.replace("`", "``")
    for server in (dbs.source, dbs.target):
        server.sql(f"CREATE DATABASE `{odd}`")
    seed_incremental(svc, dbs, "inc-task")
    with RunnerThread(svc, "inc-task"):
        wait_for(lambda: svc.get("inc-task").status is Status.REPLICATING, what="replicating")
        dbs.source.sql(
            f"CREATE TABLE `{odd}`.`{ODD_TABLE.replace('`', '``')}` (`the \"col\"` INT, `sp ace` VARCHAR(20), `select` DOUBLE) ENGINE=InnoDB",
            f"INSERT INTO `{odd}`.`{ODD_TABLE.replace('`', '``')}` VALUES (1, 'a', 1.5), (1, 'a', 1.5), (2, NULL, NULL), (3, 'ü', -0.5)",
            f"DELETE FROM `{odd}`.`{ODD_TABLE.replace('`', '``')}` WHERE `the \"col\"` = 1 LIMIT 1",
            f"UPDATE `{odd}`.`{ODD_TABLE.replace('`', '``')}` SET `sp ace` = 'null was here' WHERE `sp ace` IS NULL",
        )
        dbs.source.sql(
            "CREATE TABLE shop2_ignored (id INT PRIMARY KEY)",
            database=ODD_DB,
        )
        dbs.source.sql(f"ALTER TABLE `{odd}`.`shop2_ignored` ADD COLUMN v VARCHAR(10) DEFAULT 'x'")
        dbs.source.sql(f"INSERT INTO `{odd}`.`shop2_ignored` (id) VALUES (1), (2)")
        dbs.source.sql(f"RENAME TABLE `{odd}`.`shop2_ignored` TO `{odd}`.`renamed`")
        dbs.source.sql(f"TRUNCATE TABLE `{odd}`.`renamed`")
        dbs.source.sql(f"INSERT INTO `{odd}`.`renamed` VALUES (9, 'after')")
        # a database outside the task is not replicated
        dbs.source.sql("CREATE DATABASE outside", "CREATE TABLE outside.t (id INT PRIMARY KEY)", "INSERT INTO outside.t VALUES (1)")
        wait_for(lambda: dbs.target.sql(f"SELECT COUNT(*) FROM `{odd}`.`renamed`")[0][0] == 1, what="ddl chain")
        assert_databases_identical(dbs.source, dbs.target, [ODD_DB])
    assert "outside" not in dbs.target.user_databases()


def test_big_transactions_arrive_whole(dbs, task):
    """A source transaction larger than a piece is applied in pieces but committed once."""
    svc = task
    for server in (dbs.source, dbs.target):
        server.sql(
            "CREATE DATABASE shop",
            "CREATE TABLE shop.big (id INT PRIMARY KEY, v VARCHAR(30), n INT)",
            "CREATE TABLE shop.heap (v VARCHAR(30), n INT)",
        )
    seed_incremental(svc, dbs, "inc-task")
    with RunnerThread(svc, "inc-task"):
        wait_for(lambda: svc.get("inc-task").status is Status.REPLICATING, what="replicating")
        conn = dbs.source.root("shop")
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("INSERT INTO big SELECT seq, CONCAT('v', seq), seq % 97 FROM seq_1_to_50000")
            cur.execute("INSERT INTO heap SELECT CONCAT('h', seq % 1000), seq FROM seq_1_to_30000")
            cur.execute("UPDATE big SET n = n + 1 WHERE id % 3 = 0")
            cur.execute("DELETE FROM heap WHERE n % 7 = 0")
            cur.execute("COMMIT")
        conn.close()
        seen: set[int] = set()

        def arrived() -> bool:
            seen.add(dbs.target.sql("SELECT COUNT(*) FROM shop.big")[0][0])
            return dbs.target.sql("SELECT COUNT(*) FROM shop.heap") == dbs.source.sql("SELECT COUNT(*) FROM shop.heap")

        wait_for(arrived, 120, 0.05, "big transaction")
        assert seen <= {0, 50000}, f"a half-applied transaction was visible on the DR side: {sorted(seen)}"
        assert_databases_identical(dbs.source, dbs.target, ["shop"])


def test_crash_between_a_ddl_and_its_checkpoint_replays_it_safely(dbs, task):
    """A crash after a DDL ran on the DR side but before its checkpoint: the DDL is replayed, once."""
    svc = task
    for server in (dbs.source, dbs.target):
        server.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    seed_incremental(svc, dbs, "inc-task")
    spec = svc.spec_with_passwords("inc-task")
    conn = connect(spec.target, autocommit=False)
    before = cp.read_checkpoint(conn, "inc-task").position
    dbs.source.sql(
        "ALTER TABLE shop.t ADD COLUMN note VARCHAR(20) DEFAULT 'x'",
        "CREATE TABLE shop.u (id INT PRIMARY KEY)",
        "INSERT INTO shop.t VALUES (1, 'after ddl')",
    )
    # what the applier leaves behind when killed right after the ALTER ran on the DR side
    with conn.cursor() as cur:
        cp.write_checkpoint(cur, "inc-task", "incremental", before, ddl_pending=True)
    conn.commit()
    dbs.target.sql("ALTER TABLE shop.t ADD COLUMN note VARCHAR(20) DEFAULT 'x'")
    conn.close()
    with RunnerThread(svc, "inc-task"):
        wait_for(lambda: dbs.target.sql("SELECT * FROM shop.t") == [(1, "after ddl")], 60, 0.2, "replay after the DDL")
        assert_databases_identical(dbs.source, dbs.target, ["shop"])
    logs = [e.message for e in svc.store.logs("inc-task")]
    assert not any("failed" in m for m in logs), logs


def test_events_and_triggers_created_while_streaming(dbs, task):
    """Events arrive disabled on the standby; triggers are held back for promote (no double effect)."""
    svc = task
    for server in (dbs.source, dbs.target):
        server.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    seed_incremental(svc, dbs, "inc-task")
    with RunnerThread(svc, "inc-task"):
        dbs.source.sql(
            "CREATE EVENT shop.nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM shop.t WHERE id < 0",
            "CREATE TRIGGER shop.t_upper BEFORE INSERT ON shop.t FOR EACH ROW SET NEW.v = UPPER(NEW.v)",
            "INSERT INTO shop.t VALUES (1, 'abc')",
        )
        wait_for(lambda: dbs.target.sql("SELECT v FROM shop.t") == [("ABC",)], 60, 0.2, "row through the trigger")
    assert dbs.target.sql("SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA='shop'") == [("SLAVESIDE_DISABLED",)]
    assert dbs.target.sql("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='shop'") == [(0,)]
    held = dbs.target.sql("SELECT kind, db, name FROM drs_desktop_meta.deferred_object WHERE task='inc-task'")
    assert ("trigger", "shop", "t_upper") in held
    assert ("event", "shop", "nightly") in held  # enabled again at promote


def test_purged_binlog_fails_the_task_with_what_to_do(dbs, task):
    svc = task
    for server in (dbs.source, dbs.target):
        server.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    seed_incremental(svc, dbs, "inc-task")
    first = dbs.source.sql("SHOW MASTER STATUS")[0][0]  # where the checkpoint points
    dbs.source.sql("INSERT INTO shop.t VALUES (1)")

    def purged() -> bool:
        # MariaDB keeps a binlog until its crash-recovery checkpoint has moved past it
        dbs.source.sql("FLUSH BINARY LOGS")
        current = dbs.source.sql("SHOW MASTER STATUS")[0][0]
        dbs.source.sql(f"PURGE BINARY LOGS TO '{current}'")
        return first not in [r[0] for r in dbs.source.sql("SHOW BINARY LOGS")]

    wait_for(purged, 30, 0.3, "the binlog to be purged")
    result = TaskRunner(svc, "inc-task").run()
    record = svc.get("inc-task")
    assert result is Status.FAILED and record.status is Status.FAILED
    assert "no longer has the binlog" in record.last_error and "create it again" in record.last_error
    assert not any("automatic retry" in e.message for e in svc.store.logs("inc-task"))
