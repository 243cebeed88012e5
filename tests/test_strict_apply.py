"""Strict apply: a DR side that drifted (someone wrote there) fails the task at once with the table,
the key and what was expected, as a native replica stops with 1032/1062; after the DBA's repair,
resuming continues exactly.

`orders` (one unique key, no foreign key) is applied as a net effect per key, `accounts` (two unique
keys) change by change, in order, `heap` has no key at all.
"""

from __future__ import annotations

import pytest
from conftest import make_spec
from dr_helpers import assert_databases_identical, wait_for
from test_incremental import RunnerThread, seed_incremental

from engine.apply import Applier
from engine.connect import BinlogPosition
from engine.errors import ApplyConflict
from engine.spec import parse_spec
from engine.status import Status
from engine.stream import RowChange, Transaction
from engine.tasks import TaskService

NAME = "strict-task"
SCHEMA = (
    "CREATE DATABASE shop",
    "CREATE TABLE shop.orders (id INT PRIMARY KEY, v VARCHAR(20), n INT)",
    "CREATE TABLE shop.accounts (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL, n INT, UNIQUE KEY (email))",
    "CREATE TABLE shop.heap (v VARCHAR(20), n INT)",
    "INSERT INTO shop.orders VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)",
    "INSERT INTO shop.accounts VALUES (1, 'a@x', 1), (2, 'b@x', 2), (3, 'c@x', 3)",
    "INSERT INTO shop.heap VALUES ('a', 1), ('a', 1), ('b', 2)",
)
ROW_2 = {"orders": "(2, 'b', 2)", "accounts": "(2, 'b@x', 2)"}
BOTH_MODES = pytest.mark.parametrize("table", ["orders", "accounts"], ids=["net-effect", "in-order"])


@pytest.fixture
def svc(dbs, home, memory_keyring):
    service = TaskService(home)
    service.create(parse_spec(make_spec(dbs, NAME, databases=["shop"])))
    for server in (dbs.source, dbs.target):
        server.sql(*SCHEMA)
    seed_incremental(service, dbs, NAME)
    yield service
    service.close()


def source_txn(dbs, *statements: str) -> None:
    """One source transaction (so its changes share one DR-side batch)."""
    conn = dbs.source.root("shop")
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        for statement in statements:
            cur.execute(statement)
        cur.execute("COMMIT")
    conn.close()


def fails_with(svc: TaskService, dbs, statements: tuple[str, ...], *fragments: str) -> str:
    """Run the task, make one source transaction, wait for the task to fail; its error."""
    with RunnerThread(svc, NAME):
        wait_for(lambda: svc.get(NAME).status is Status.REPLICATING, what="replicating")
        source_txn(dbs, *statements)
        wait_for(lambda: svc.get(NAME).status is Status.FAILED, what="the task to fail")
    error = svc.get(NAME).last_error
    for fragment in (*fragments, f"drs compare {NAME} --level values"):
        assert fragment in error, error
    logs = [e.message for e in svc.store.logs(NAME)]
    assert not any("automatic retry" in m for m in logs), logs  # a replay cannot help: no retries
    return error


def resumes_to_identical(svc: TaskService, dbs) -> None:
    svc.resume(NAME)
    with RunnerThread(svc, NAME) as rt:
        wait_for(lambda: svc.get(NAME).status is Status.REPLICATING, what="replicating")
        dbs.source.sql("INSERT INTO shop.orders VALUES (100, 'marker', 0)")  # proves the stream moves on
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.orders WHERE id = 100") == [(1,)], what="marker")
        assert_databases_identical(dbs.source, dbs.target, ["shop"])
        assert rt.thread.is_alive() and svc.get(NAME).status is Status.REPLICATING


@BOTH_MODES
def test_update_of_a_row_deleted_on_the_dr_side_fails_then_resumes_after_repair(dbs, svc, table):
    dbs.target.sql(f"DELETE FROM shop.{table} WHERE id = 2")  # someone wrote on the DR side
    fails_with(
        svc,
        dbs,
        (f"UPDATE shop.{table} SET n = 100 WHERE id = 1", f"UPDATE shop.{table} SET n = n + 10 WHERE id = 2"),
        f"apply conflict on shop.{table}: UPDATE of key (id=2) found no row",
    )
    # the failed batch was rolled back whole: the checkpoint is still before it
    assert dbs.target.sql(f"SELECT n FROM shop.{table} WHERE id = 1") == [(1,)]
    dbs.target.sql(f"INSERT INTO shop.{table} VALUES {ROW_2[table]}")  # the DBA's repair
    resumes_to_identical(svc, dbs)
    assert dbs.target.sql(f"SELECT n FROM shop.{table} WHERE id < 100 ORDER BY id") == [(100,), (12,), (3,)]


@BOTH_MODES
def test_delete_of_a_row_missing_on_the_dr_side_fails(dbs, svc, table):
    dbs.target.sql(f"DELETE FROM shop.{table} WHERE id = 2")
    fails_with(
        svc, dbs, (f"DELETE FROM shop.{table} WHERE id = 2",), f"shop.{table}: DELETE of key (id=2) found no row"
    )
    dbs.target.sql(f"INSERT INTO shop.{table} VALUES {ROW_2[table]}")
    resumes_to_identical(svc, dbs)


@BOTH_MODES
def test_insert_of_a_key_the_dr_side_already_has_fails(dbs, svc, table):
    row = "(9, 'z', 9)" if table == "orders" else "(9, 'z@x', 9)"
    dbs.target.sql(f"INSERT INTO shop.{table} VALUES {row}")
    fails_with(
        svc, dbs, (f"INSERT INTO shop.{table} VALUES {row}",), f"shop.{table}: INSERT of key (id=9) found an existing row"
    )
    dbs.target.sql(f"DELETE FROM shop.{table} WHERE id = 9")
    resumes_to_identical(svc, dbs)


def test_net_effect_checks_keys_that_come_and_go_within_a_batch(dbs, svc):
    """Inserted and deleted again, or a key moved by an update: the DR side must not hold the key."""
    dbs.target.sql("INSERT INTO shop.orders VALUES (20, 'drift', 0)")
    fails_with(
        svc,
        dbs,
        ("INSERT INTO shop.orders VALUES (7, 'x', 7)", "DELETE FROM shop.orders WHERE id = 7",
         "UPDATE shop.orders SET id = 20 WHERE id = 2"),
        "shop.orders: UPDATE of key (id=20) found an existing row",
    )  # fmt: skip
    dbs.target.sql("DELETE FROM shop.orders WHERE id = 20")
    resumes_to_identical(svc, dbs)
    assert dbs.target.sql("SELECT id FROM shop.orders ORDER BY id") == [(1,), (3,), (20,), (100,)]


def test_an_update_to_values_the_dr_row_already_has_is_not_a_conflict(dbs, svc):
    """FOUND_ROWS: an UPDATE that matches its row but changes nothing still counts that row."""
    dbs.target.sql("UPDATE shop.accounts SET n = 50 WHERE id = 1", "UPDATE shop.orders SET n = 50 WHERE id = 1")
    with RunnerThread(svc, NAME):
        wait_for(lambda: svc.get(NAME).status is Status.REPLICATING, what="replicating")
        source_txn(dbs, "UPDATE shop.accounts SET n = 50 WHERE id = 1", "UPDATE shop.orders SET n = 50 WHERE id = 1")
        dbs.source.sql("INSERT INTO shop.orders VALUES (100, 'marker', 0)")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.orders WHERE id = 100") == [(1,)], what="marker")
        assert svc.get(NAME).status is Status.REPLICATING
        assert_databases_identical(dbs.source, dbs.target, ["shop"])


def test_keyless_tables_delete_one_of_two_equal_rows_and_fail_on_a_missing_one(dbs, svc):
    with RunnerThread(svc, NAME):
        wait_for(lambda: svc.get(NAME).status is Status.REPLICATING, what="replicating")
        dbs.source.sql("DELETE FROM shop.heap WHERE v = 'a' LIMIT 1", "UPDATE shop.heap SET n = 5 WHERE v = 'a'")
        wait_for(lambda: dbs.target.sql("SELECT v, n FROM shop.heap ORDER BY v") == [("a", 5), ("b", 2)], what="heap")
        assert svc.get(NAME).status is Status.REPLICATING
    dbs.target.sql("DELETE FROM shop.heap WHERE v = 'b'")
    fails_with(
        svc,
        dbs,
        ("DELETE FROM shop.heap WHERE v = 'b'",),
        "shop.heap: DELETE of key (v='b', n=2) found no row equal to the service side's before-image",
    )
    dbs.target.sql("INSERT INTO shop.heap VALUES ('b', 2)")
    resumes_to_identical(svc, dbs)


def test_a_full_before_image_is_compared_where_the_stream_carries_one(dbs, svc):
    """Sources without primary-key metadata send full before-images: a DR row with other values is a
    conflict, not overwritten. (With primary-key metadata, before-images are key-only: no compare.)"""
    applier = Applier(svc.spec_with_passwords(NAME).target, NAME, databases=("shop",), migrate_definer=False)
    applier.open()
    applier.ensure_ready(read_only=False)
    end = BinlogPosition("binlog.000001", 4, None)

    def update(before: tuple, after: tuple) -> None:
        applier.apply_batch([Transaction(changes=[RowChange("update", "shop", "accounts", [(before, after)])], end=end)])

    try:
        update(("1", "'a@x'", "1"), ("1", "'a@x'", "2"))  # matches: applied
        assert dbs.target.sql("SELECT n FROM shop.accounts WHERE id = 1") == [(2,)]
        update(("1", None, None), ("1", "'a@x'", "3"))  # key-only before-image: addressed by the key
        assert dbs.target.sql("SELECT n FROM shop.accounts WHERE id = 1") == [(3,)]
        dbs.target.sql("UPDATE shop.accounts SET n = 7 WHERE id = 2")  # drift
        with pytest.raises(ApplyConflict, match=r"UPDATE of key \(id=2\) found a row whose values differ"):
            update(("2", "'b@x'", "2"), ("2", "'b@x'", "8"))
        assert dbs.target.sql("SELECT n FROM shop.accounts WHERE id = 2") == [(7,)]  # rolled back
        with pytest.raises(ApplyConflict, match=r"UPDATE of key \(id=5\) found no row"):
            update(("5", "'e@x'", "5"), ("5", "'e@x'", "6"))
    finally:
        applier.close()


def recording_applier(svc: TaskService) -> tuple[Applier, list[str]]:
    """An open applier on the DR side whose cursors note every statement they send."""
    applier = Applier(svc.spec_with_passwords(NAME).target, NAME, databases=("shop",), migrate_definer=False)
    applier.open()
    applier.ensure_ready(read_only=False)
    sent: list[str] = []
    cursor = applier.conn.cursor

    def recording_cursor(*args, **kwargs):
        cur = cursor(*args, **kwargs)
        execute = cur.execute
        cur.execute = lambda query, *a: (sent.append(query), execute(query, *a))[1]
        return cur

    applier.conn.cursor = recording_cursor
    return applier, sent


def test_net_effect_proves_updated_rows_in_one_pass(dbs, svc):
    """Rows that existed and changed are proven by the upsert's count (2 a row): no second look.
    A row whose net change is none takes the slower path (back to the savepoint, count, again)."""
    applier, sent = recording_applier(svc)
    end = BinlogPosition("binlog.000001", 4, None)
    changes = [
        RowChange("insert", "shop", "orders", [("7", "'g'", "7")]),
        RowChange("update", "shop", "orders", [(("1", None, None), ("1", "'a'", "11")), (("2", None, None), ("2", "'b'", "12"))]),
        RowChange("delete", "shop", "orders", [("3", None, None)]),
    ]
    try:
        applier.apply_batch([Transaction(changes=changes, end=end)])
        assert not any("ROLLBACK TO" in q for q in sent), sent
        assert dbs.target.sql("SELECT * FROM shop.orders ORDER BY id") == [(1, "a", 11), (2, "b", 12), (7, "g", 7)]
        sent.clear()
        same = [RowChange("update", "shop", "orders", [(("1", None, None), ("1", "'a'", "11"))])]
        applier.apply_batch([Transaction(changes=same, end=end)])  # as the DR side already has it
        assert any("ROLLBACK TO" in q for q in sent), sent
        assert dbs.target.sql("SELECT n FROM shop.orders WHERE id = 1") == [(11,)]
    finally:
        applier.close()


def test_a_batch_applies_each_net_effect_table_once_whatever_the_interleaving(dbs, svc):
    """OLTP transactions touch tables in turn (sysbench: a random table per statement). A batch
    gathers each net-effect table's changes, in their order, into one run, so 3 transactions
    alternating orders/accounts write orders with one statement of each kind, not one per
    transaction; accounts (two unique keys) keeps its changes in order; the rows end as on the
    service side, and a conflict is still found."""
    applier, sent = recording_applier(svc)
    end = BinlogPosition("binlog.000001", 4, None)

    def txn(*changes: RowChange) -> Transaction:
        return Transaction(changes=list(changes), end=end)

    batch = [
        txn(
            RowChange("update", "shop", "orders", [(("1", None, None), ("1", "'a'", "10"))]),
            RowChange("insert", "shop", "accounts", [("4", "'d@x'", "4")]),
            RowChange("delete", "shop", "orders", [("2", None, None)]),
        ),
        txn(
            RowChange("insert", "shop", "orders", [("2", "'b2'", "20")]),  # deleted, then back
            RowChange("update", "shop", "accounts", [(("4", "'d@x'", "4"), ("4", "'d@x'", "40"))]),
            RowChange("insert", "shop", "orders", [("8", "'h'", "8")]),
        ),
        txn(
            RowChange("update", "shop", "orders", [(("1", None, None), ("1", "'a'", "11"))]),
            RowChange("delete", "shop", "accounts", [("1", "'a@x'", "1")]),
            RowChange("delete", "shop", "orders", [("3", None, None)]),
        ),
    ]
    try:
        applier.apply_batch(batch)
        to_orders = [q for q in sent if "`orders`" in q]
        # DELETE (3), INSERT (8), upsert (1 and 2), and the savepoint: whatever the interleaving
        assert len(to_orders) == 3, to_orders
        assert dbs.target.sql("SELECT * FROM shop.orders ORDER BY id") == [(1, "a", 11), (2, "b2", 20), (8, "h", 8)]
        assert dbs.target.sql("SELECT * FROM shop.accounts ORDER BY id") == [(2, "b@x", 2), (3, "c@x", 3), (4, "d@x", 40)]
        late_conflict = [
            txn(RowChange("insert", "shop", "accounts", [("5", "'e@x'", "5")])),
            txn(RowChange("update", "shop", "orders", [(("1", None, None), ("1", "'a'", "12"))])),
            txn(RowChange("insert", "shop", "orders", [("8", "'h'", "8")])),  # 8 is there already
        ]
        with pytest.raises(ApplyConflict, match=r"INSERT of key \(id=8\) found an existing row"):
            applier.apply_batch(late_conflict)
        # the batch was one DR-side transaction: nothing of it stayed
        assert dbs.target.sql("SELECT COUNT(*) FROM shop.accounts WHERE id = 5") == [(0,)]
        assert dbs.target.sql("SELECT n FROM shop.orders WHERE id = 1") == [(11,)]
    finally:
        applier.close()


def test_a_batch_sent_in_one_query_commits_only_when_every_count_proves_it(dbs, svc):
    """The fast path (plan_batch, send_batch, finish_batch): the DR server runs a batch while the
    runner reads the next. Its counts are the careful path's proof; a count that is off rolls the
    whole batch back (nothing of it stays, its checkpoint neither) and the careful path names the
    conflict. Batches it cannot prove by counts alone are not planned at all."""
    applier = Applier(svc.spec_with_passwords(NAME).target, NAME, databases=("shop",), migrate_definer=False)
    applier.open()
    applier.ensure_ready(read_only=False)

    def txn(end: int, *changes: RowChange) -> Transaction:
        return Transaction(changes=list(changes), end=BinlogPosition("binlog.000009", end, None), timestamp=1700000000)

    def upd(key: str, n: str) -> RowChange:
        return RowChange("update", "shop", "orders", [((key, None, None), (key, "'x'", n))])

    try:
        ok = [txn(100, upd("1", "10"), RowChange("insert", "shop", "orders", [("9", "'i'", "9")])), txn(200, upd("3", "30"))]
        assert applier.plan_batch(ok) is None  # orders not looked up yet: the careful path asks first
        applier.shape("shop", "orders")
        steps = applier.plan_batch(ok)
        assert steps is not None and "checkpoint" in steps[-1][0]
        assert applier.finish_batch(applier.send_batch(steps)) is True
        assert dbs.target.sql("SELECT * FROM shop.orders ORDER BY id") == [(1, "x", 10), (2, "b", 2), (3, "x", 30), (9, "i", 9)]
        assert applier.checkpoint().position == BinlogPosition("binlog.000009", 200, None)

        dbs.target.sql("DELETE FROM shop.orders WHERE id = 2")  # someone wrote on the DR side
        drifted = [txn(300, RowChange("insert", "shop", "orders", [("10", "'j'", "10")])), txn(400, upd("2", "20"))]
        steps = applier.plan_batch(drifted)
        assert steps is not None
        assert applier.finish_batch(applier.send_batch(steps)) is False
        assert dbs.target.sql("SELECT COUNT(*) FROM shop.orders WHERE id = 10") == [(0,)]
        assert applier.checkpoint().position == BinlogPosition("binlog.000009", 200, None)
        with pytest.raises(ApplyConflict, match=r"UPDATE of key \(id=2\) found no row"):
            applier.apply_batch(drifted)

        duplicate = [txn(500, RowChange("insert", "shop", "orders", [("9", "'i'", "9")]))]
        assert applier.finish_batch(applier.send_batch(applier.plan_batch(duplicate))) is False
        # the session is usable after the error ended the answers
        assert applier.checkpoint().position == BinlogPosition("binlog.000009", 200, None)

        applier.shape("shop", "accounts")
        in_order = [txn(600, RowChange("insert", "shop", "accounts", [("7", "'g@x'", "7")]))]
        assert applier.plan_batch(in_order) is None  # two unique keys: applied change by change
        comes_and_goes = [txn(700, RowChange("insert", "shop", "orders", [("11", "'k'", "1")])),
                          txn(800, RowChange("delete", "shop", "orders", [("11", None, None)]))]  # fmt: skip
        assert applier.plan_batch(comes_and_goes) is None  # the careful path looks for key 11 first
    finally:
        applier.close()


def test_a_conflict_in_a_batch_sent_in_one_query_keeps_every_transaction_before_it(dbs, svc):
    """Once the applier knows a table, batches go to the DR server in one query (plan_batch). A row
    that drifted, met in the middle of a burst of source transactions: the sent batch rolls back
    whole, the careful path applies the transactions before the culprit one by one and fails on it,
    naming it; none after it is applied, and after the repair the task goes on to identical."""
    with RunnerThread(svc, NAME):
        wait_for(lambda: svc.get(NAME).status is Status.REPLICATING, what="replicating")
        dbs.source.sql("UPDATE shop.orders SET n = 10 WHERE id = 1")  # orders is now known to the applier
        wait_for(lambda: dbs.target.sql("SELECT n FROM shop.orders WHERE id = 1") == [(10,)], what="first change")
        dbs.target.sql("DELETE FROM shop.orders WHERE id = 2")  # someone wrote on the DR side
        conn = dbs.source.root("shop")
        try:
            with conn.cursor() as cur:
                for i in range(30):  # back to back: several transactions per batch
                    cur.execute("BEGIN")
                    cur.execute(f"INSERT INTO shop.orders VALUES ({200 + i}, 'burst', {i})")
                    if i == 15:
                        cur.execute("UPDATE shop.orders SET n = 99 WHERE id = 2")
                    cur.execute("COMMIT")
        finally:
            conn.close()
        wait_for(lambda: svc.get(NAME).status is Status.FAILED, what="the task to fail")
    assert "shop.orders: UPDATE of key (id=2) found no row" in svc.get(NAME).last_error
    assert dbs.target.sql("SELECT MIN(id), MAX(id), COUNT(*) FROM shop.orders WHERE id >= 200") == [(200, 214, 15)]
    dbs.target.sql(f"INSERT INTO shop.orders VALUES {ROW_2['orders']}")  # the DBA's repair
    resumes_to_identical(svc, dbs)
