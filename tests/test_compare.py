"""Compare DR items on two real servers: each kind of difference injected on the DR side is reported
exactly (table, kind, key, the column that differs), a busy but consistent pair reports consistent,
fix SQL makes the sides equal, and the `drs compare` contract (JSON keys, exit codes) holds."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
from conftest import make_spec
from dr_helpers import ODD_DB, ODD_TABLE, create_type_matrix, wait_for
from test_incremental import RunnerThread
from test_runner_e2e import drs

from engine import compare
from engine.spec import parse_spec
from engine.status import Status
from engine.tasks import TaskService

ODD = ODD_DB.replace("`", "``")
ODD_T = ODD_TABLE.replace("`", "``")


def build_source(server) -> None:
    create_type_matrix(server, "shop")
    server.sql(
        "INSERT INTO shop.types (id, j, b64, f, dbl) VALUES (7, '{\"a\": 1, \"b\": [1, 2]}', NULL, NULL, NULL), "
        "(8, NULL, b'1010', NULL, NULL), (9, NULL, NULL, 1.5, 0.1)",
        "CREATE TABLE shop.orders (id INT PRIMARY KEY, customer VARCHAR(40) NOT NULL, amount DECIMAL(12,2), "
        "note TEXT, KEY by_customer (customer))",
        "CREATE TABLE shop.lines (order_id INT, sku VARCHAR(20), qty INT, PRIMARY KEY (order_id, sku))",
        "CREATE VIEW shop.big_orders AS SELECT id, amount FROM shop.orders WHERE amount > 100",
        "CREATE FUNCTION shop.vat(x DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC RETURN x * 1.2",
        "CREATE TRIGGER shop.orders_bi BEFORE INSERT ON shop.orders FOR EACH ROW SET NEW.note = IFNULL(NEW.note, 'new')",
        f"CREATE DATABASE `{ODD}`",
        f"CREATE TABLE `{ODD}`.`{ODD_T}` (`the \"col\"` INT, `sp ace` VARCHAR(20), `select` DOUBLE)",
        f"INSERT INTO `{ODD}`.`{ODD_T}` VALUES (1, 'a', 1.5), (1, 'a', 1.5), (2, NULL, NULL), (3, '', 0)",
    )
    rows = ",".join(f"({i}, 'customer-{i % 97}', {i}.{i % 100:02d}, {'NULL' if i % 5 == 0 else repr('n' + str(i))})" for i in range(1, 3001))
    server.sql(f"INSERT INTO shop.orders VALUES {rows}")
    server.sql("INSERT INTO shop.lines VALUES " + ",".join(f"({i}, 'sku-{j}', {j})" for i in range(1, 301) for j in range(3)))
    # no key, duplicates on purpose: compared as a multiset, in hash buckets
    server.sql(
        "CREATE TABLE shop.audit (n INT, msg VARCHAR(30))",
        "INSERT INTO shop.audit VALUES " + ",".join(f"({i}, 'event {i % 300}')" for i in range(1, 2001)),
        "INSERT INTO shop.audit SELECT * FROM shop.audit WHERE n <= 100",
        "ANALYZE TABLE shop.audit",
    )


@pytest.fixture
def pair(dbs, home, monkeypatch, tmp_path):
    """A task past its initial copy (a real run), runner stopped: the DR side equals the service side."""
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")  # the CLI in a subprocess must find the passwords
    build_source(dbs.source)
    svc = TaskService(home)
    svc.create(parse_spec(make_spec(dbs, "cmp-task", databases=["shop", ODD_DB])))
    with RunnerThread(svc, "cmp-task"):
        wait_for(lambda: svc.store.get_task("cmp-task").status is Status.REPLICATING, 120, 0.2, "replicating")
    yield svc
    svc.close()


def run_cli(home: Path, *args: str):
    result = drs(home, "compare", "cmp-task", *args)
    data = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result, data


def test_consistent_pair_is_consistent_at_every_level(pair, home):
    for level in ("objects", "rows", "values"):
        result, data = run_cli(home, "--level", level, "--json")
        assert result.returncode == 0, (level, result.stdout, result.stderr)
        assert data["consistent"] is True and data["differences"] == []
    # the object level lists each object as consistent, the trigger as held back for promote
    objects = {(o["object_type"], o["name"]): o for o in data_of(home, "objects")["objects"]}
    assert objects[("trigger", "shop.orders_bi")]["status"] == "consistent"
    assert objects[("view", "shop.big_orders")]["status"] == "consistent"
    assert objects[("function", "shop.vat")]["status"] == "consistent"
    assert objects[("table", "shop.orders")]["status"] == "consistent"


def data_of(home: Path, level: str) -> dict:
    return run_cli(home, "--level", level, "--json")[1]


def test_each_value_difference_is_reported_exactly_and_fix_sql_repairs_it(pair, dbs, home, tmp_path):
    t = dbs.target
    t.sql(
        "UPDATE shop.types SET dtm = '1000-01-01 00:00:00.000001' WHERE id = 1",  # one microsecond
        "UPDATE shop.types SET bl = X'DEADBEEE' WHERE id = 2",  # the last byte of a BLOB
        "UPDATE shop.types SET c = '' WHERE id = 3",  # NULL vs ''
        "UPDATE shop.types SET vc = ' trailing' WHERE id = 4",  # a trailing space
        "UPDATE shop.types SET d65 = '3.141592653589793238462643383278' WHERE id = 5",  # the last decimal digit
        "UPDATE shop.types SET lb = CONCAT(LEFT(lb, LENGTH(lb) - 1), X'00') WHERE id = 6",  # last byte of 25,600
        "UPDATE shop.types SET j = '{\"a\": 2, \"b\": [1, 2]}' WHERE id = 7",  # JSON
        "UPDATE shop.types SET b64 = b'1011' WHERE id = 8",  # BIT
        "UPDATE shop.types SET f = 1.5000001 WHERE id = 9",  # a float as stored
        "DELETE FROM shop.orders WHERE id = 17",
        "INSERT INTO shop.orders VALUES (99999, 'intruder', 1.00, NULL)",
        "UPDATE shop.orders SET amount = 42.43 WHERE id = 42",
        "UPDATE shop.orders SET amount = NULL, note = '100.00' WHERE id = 100",  # the NULL moved to the next column
        "UPDATE shop.lines SET qty = 7 WHERE order_id = 5 AND sku = 'sku-1'",
        f"DELETE FROM `{ODD}`.`{ODD_T}` WHERE `the \"col\"` = 1 LIMIT 1",  # a lost duplicate (no key)
        "DELETE FROM shop.audit WHERE n = 5 LIMIT 1",  # one of two copies lost
        "UPDATE shop.audit SET msg = 'changed' WHERE n = 1500",  # one row gone, another one there instead
    )
    fix_file = tmp_path / "fix.sql"
    result, data = run_cli(home, "--level", "values", "--json", "--fix-sql", str(fix_file), "--chunk-rows", "500")
    assert result.returncode == 3, result.stderr
    assert data["consistent"] is False
    found = {(d["table"], d["kind"], json.dumps(d["key"])): d for d in data["differences"] if d["table"] != "shop.audit"}
    audit = sorted((d["kind"], d["detail"]) for d in data["differences"] if d["table"] == "shop.audit")
    assert audit == [
        ("extra", "row (1500, 'changed') appears 1x on the DR side, 0x on the service side"),
        ("missing", "row (1500, 'event 0') appears 1x on the service side, 0x on the DR side"),
        ("missing", "row (5, 'event 5') appears 2x on the service side, 1x on the DR side"),
    ]
    expected = {("shop.types", "different", json.dumps([i])) for i in range(1, 10)} | {
        ("shop.orders", "missing", "[17]"),
        ("shop.orders", "extra", "[99999]"),
        ("shop.orders", "different", "[42]"),
        ("shop.orders", "different", "[100]"),
        ("shop.lines", "different", json.dumps([5, "sku-1"])),
        (f"{ODD_DB}.{ODD_TABLE}", "missing", "null"),
    }
    assert set(found) == expected
    for row_id, column in [(1, "dtm"), (2, "bl"), (3, "c"), (4, "vc"), (5, "d65"), (6, "lb"), (7, "j"), (8, "b64"), (9, "f")]:
        detail = found[("shop.types", "different", json.dumps([row_id]))]["detail"]
        assert detail.startswith(f"{column}: "), (row_id, detail)
    assert "amount: service 42.42, DR 42.43" in found[("shop.orders", "different", "[42]")]["detail"]
    assert "1x on the DR side" in found[(f"{ODD_DB}.{ODD_TABLE}", "missing", "null")]["detail"]

    # the fix is written, not run: the DR side still differs
    text = fix_file.read_text()
    assert "DELETE FROM `shop`.`orders` WHERE `id` = 99999;" in text
    assert "REPLACE INTO `shop`.`orders`" in text
    assert t.sql("SELECT COUNT(*) FROM shop.orders WHERE id = 99999") == [(1,)]

    # history: the run is stored; the DBA applies its fix on purpose, then the pair is consistent
    runs = json.loads(drs(home, "compare", "cmp-task", "--list", "--json", check=True).stdout)
    assert runs[-1]["kind"] == "values" and runs[-1]["summary"]["consistent"] is False
    assert drs(home, "compare", "cmp-task", "--run", str(data["run_id"]), "--apply-fix").returncode == 2  # no --yes
    applied = drs(home, "compare", "cmp-task", "--run", str(data["run_id"]), "--apply-fix", "--yes", "--json")
    assert applied.returncode == 3 and "18 fix statement(s) applied" in applied.stderr
    result, data = run_cli(home, "--level", "values", "--json")
    assert result.returncode == 0 and data["consistent"] is True, data["differences"]


def test_history_drill_down_and_exports(pair, dbs, home, tmp_path):
    dbs.target.sql("DELETE FROM shop.orders WHERE id = 3")
    result, data = run_cli(home, "--level", "rows", "--json")
    assert result.returncode == 3
    assert [(d["table"], d["kind"], d["key"]) for d in data["differences"]] == [("shop.orders", "count", None)]
    assert "3000" in data["differences"][0]["detail"] and "2999" in data["differences"][0]["detail"]
    csv_file, html_file = tmp_path / "run.csv", tmp_path / "run.html"
    shown = drs(home, "compare", "cmp-task", "--run", str(data["run_id"]), "--json", "--csv", str(csv_file), "--html", str(html_file))
    assert shown.returncode == 3
    stored = json.loads(shown.stdout)
    assert stored["differences"] == data["differences"] and stored["level"] == "rows"
    assert "shop.orders,count" in csv_file.read_text()
    assert "shop.orders" in html_file.read_text() and "<table>" in html_file.read_text()
    # the DR log says a compare found differences
    messages = [e.message for e in pair.store.logs("cmp-task")]
    assert any("row count compare" in m and "1 difference" in m for m in messages)


def test_object_drift_is_reported_per_object(pair, dbs, home):
    t = dbs.target
    t.sql(
        "ALTER TABLE shop.orders MODIFY customer VARCHAR(50) NOT NULL",
        "ALTER TABLE shop.orders DROP INDEX by_customer",
        "DROP VIEW shop.big_orders",
        "DROP FUNCTION shop.vat",
        "CREATE FUNCTION shop.vat(x DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC RETURN x * 1.25",
        "CREATE TABLE shop.stray (id INT PRIMARY KEY)",
        "DELETE FROM drs_desktop_meta.deferred_object WHERE kind = 'trigger' AND name = 'orders_bi'",
    )
    result, data = run_cli(home, "--level", "objects", "--json")
    assert result.returncode == 3
    assert all(d["kind"] == "object" and d["key"] is None for d in data["differences"])
    got = {(d["table"], d["object_type"]) : d["detail"] for d in data["differences"]}  # fmt: skip
    assert "column customer: type 'varchar(40)' on the service side, 'varchar(50)' on the DR side" in got[("shop.orders", "column")]
    assert "index by_customer" in got[("shop.orders", "index")] and "missing on the DR side" in got[("shop.orders", "index")]
    assert "missing" in got[("shop.big_orders", "view")]
    assert "body" in got[("shop.vat", "function")]
    assert "only on the DR side" in got[("shop.stray", "table")]
    assert "promote would not create it" in got[("shop.orders_bi", "trigger")]
    assert len(got) == 6


def test_compare_under_write_load_reports_consistent(pair, dbs):
    """Online: the task streams while a writer changes rows; differences in flight are rechecked away."""
    stop = threading.Event()
    errors: list[BaseException] = []
    written = [0]  # loops of the writer so far

    def writer() -> None:
        conn = dbs.source.root("shop")
        rnd = random.Random(7)
        next_id = 10_000
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    i = rnd.randint(1, 3000)
                    cur.execute("UPDATE orders SET amount = amount + 0.01, note = CONCAT('u', %s) WHERE id = %s", (i, i))
                    cur.execute("INSERT INTO orders VALUES (%s, 'w', 1.00, NULL)", (next_id,))
                    cur.execute("DELETE FROM orders WHERE id = %s", (next_id - 5,))
                    cur.execute("UPDATE types SET txt = CONCAT('w', %s) WHERE id = %s", (next_id, rnd.randint(1, 9)))
                    next_id += 1
                    written[0] += 1
                    stop.wait(0.01)  # a steady load the task keeps up with (a few hundred changes/s)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            conn.close()

    with RunnerThread(pair, "cmp-task"):
        wait_for(lambda: pair.store.get_task("cmp-task").status is Status.REPLICATING, 60, 0.2, "replicating")
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            wait_for(lambda: errors or (dbs.target.sql("SELECT MAX(id) FROM shop.orders")[0][0] or 0) > 10_020, 60, 0.2, "load streaming")
            assert not errors
            for level in ("rows", "values"):
                before = written[0]
                report = compare.run_compare(pair, "cmp-task", level, chunk_rows=300)
                assert report.status == "finished"
                assert report.consistent, [d.to_json() for d in report.differences]
                assert written[0] > before  # the source was being written to while it compared
        finally:
            stop.set()
            thread.join(30)
    assert not errors


def test_cancel_and_invalid_input(pair, home):
    cancel = threading.Event()
    seen: list[compare.CompareProgress] = []

    def progress(p: compare.CompareProgress) -> None:
        seen.append(p)
        cancel.set()

    report = compare.run_compare(pair, "cmp-task", "values", on_progress=progress, cancel=cancel, chunk_rows=100)
    assert report.status == "cancelled" and not report.consistent and len(seen) == 1
    assert pair.store.compare_runs("cmp-task")[-1]["status"] == "cancelled"

    unknown = drs(home, "compare", "no-such-task", "--level", "values", "--json")
    assert unknown.returncode == 2 and "no-such-task" in unknown.stderr
    bad_level = drs(home, "compare", "cmp-task", "--level", "everything")
    assert bad_level.returncode == 2 and "--level" in bad_level.stderr
    bad_table = drs(home, "compare", "cmp-task", "--level", "values", "--tables", "shop.nope")
    assert bad_table.returncode == 2 and "--tables" in bad_table.stderr and "shop.nope" in bad_table.stderr
    no_level = drs(home, "compare", "cmp-task")
    assert no_level.returncode == 2 and "--level" in no_level.stderr
    # a subset of tables
    result, data = run_cli(home, "--level", "values", "--tables", "shop.orders", "--json")
    assert result.returncode == 0 and [t["table"] for t in data["tables"]] == ["shop.orders"]


def test_compare_is_refused_while_the_task_cannot_be_compared(dbs, home, memory_keyring):
    svc = TaskService(home)
    svc.create(parse_spec(make_spec(dbs, "new-task")))  # starting: nothing to compare yet
    with pytest.raises(compare.ActionNotAllowed):
        compare.run_compare(svc, "new-task", "objects")
