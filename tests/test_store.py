"""The local task store (engine.store): one SQLite file in WAL mode that the GUI, its workers and `drs`
share. A DBA checks that every setting survives, logs filter, deletes are complete, and that a store
from a newer version or a foreign file is refused instead of being silently changed.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from engine.errors import SpecInvalid, StoreError, TaskNotFound
from engine.spec import Endpoint, FlowControl, TaskSpec, TimeWindow, parse_spec
from engine.status import Status
from engine.store import SCHEMA_VERSION, STORE_FILE, Checkpoint, Store

TABLES_WITH_TASK_ID = ("tags", "dr_log", "checkpoints", "compare_runs")


def full_spec(name: str = "orders-dr") -> TaskSpec:
    return parse_spec(
        {
            "name": name,
            "description": "orders, Frankfurt to Dublin; nightly batch",
            "relationship": "active",
            "network": "vpn",
            "source": {"host": "db1.example.invalid", "port": 3306, "user": "drs_src", "password": "pw-1", "tls": "required"},
            "target": {"host": "10.0.0.5", "port": 3310, "user": "drs_dr", "password": "pw-2", "tls": "off"},
            "databases": ["orders", "billing"],
            "flow_control": {"max_mb_s": 120, "windows": [{"start": "08:00", "end": "12:30"}, {"start": "20:00", "end": "24:00"}]},
            "migrate_definer": False,
            "start": "2099-01-02T03:04",
            "tags": {"env": "prod", "owner": "dba-team", "cost.center": "42"},
        },
        env={},
    )  # fmt: skip


def raw_rows(store: Store, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "home")
    yield s
    s.close()


# ---- the file -----------------------------------------------------------------------------------


def test_new_store_is_wal_and_records_its_schema_version(store):
    assert store.path.name == STORE_FILE and store.path.exists()
    assert raw_rows(store, "PRAGMA journal_mode") == [("wal",)]
    assert raw_rows(store, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    with store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_store_from_a_newer_version_is_refused_untouched(tmp_path):
    home = tmp_path / "home"
    Store(home).create_task(full_spec())
    conn = sqlite3.connect(home / STORE_FILE)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as info:
        Store(home)
    assert "newer DRS Desktop" in str(info.value) and f"schema {SCHEMA_VERSION + 1}" in str(info.value)
    conn = sqlite3.connect(home / STORE_FILE)
    assert conn.execute("SELECT value FROM meta").fetchall() == [(str(SCHEMA_VERSION + 1),)]
    assert conn.execute("SELECT name FROM tasks").fetchall() == [("orders-dr",)]
    conn.close()


def test_store_of_schema_1_is_migrated_in_place_keeping_its_tasks(tmp_path):
    home = tmp_path / "home"
    Store(home).create_task(full_spec())
    # turn it back into what schema 1 wrote: no compare result kinds, no monitoring samples
    conn = sqlite3.connect(home / STORE_FILE)
    for column in ("kind", "key_json", "fix_sql"):
        conn.execute(f"ALTER TABLE compare_results DROP COLUMN {column}")
    conn.execute("DROP TABLE metric_samples")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    store = Store(home)
    assert raw_rows(store, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert [t.name for t in store.list_tasks()] == ["orders-dr"]
    run = store.start_compare_run("orders-dr", "values")
    store.finish_compare_run(run, "finished", {"consistent": False}, [
        {"object_type": "table", "object_name": "shop.t", "consistent": False, "detail": "row missing on the DR side",
         "kind": "missing", "key_json": "[1]", "fix_sql": None}])  # fmt: skip
    assert store.compare_results(run)[0]["kind"] == "missing"
    assert raw_rows(store, "SELECT COUNT(*) FROM metric_samples") == [(0,)]
    store.close()


def test_foreign_sqlite_file_is_refused_and_not_changed(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    conn = sqlite3.connect(home / STORE_FILE)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a DRS Desktop task store"):
        Store(home)
    conn = sqlite3.connect(home / STORE_FILE)
    assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [("customers",)]
    conn.close()


def test_meta_without_a_schema_version_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    conn = sqlite3.connect(home / STORE_FILE)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version is missing"):
        Store(home)


def test_a_file_that_is_not_sqlite_is_refused_clearly(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / STORE_FILE).write_bytes(b"this is a spreadsheet, not a database\n" * 200)
    with pytest.raises(StoreError, match="cannot open task store .*not a database"):
        Store(home)


def test_home_that_is_a_file_is_refused_clearly(tmp_path):
    (tmp_path / "home").write_text("x")
    with pytest.raises(StoreError, match="cannot use .* as DRS home"):
        Store(tmp_path / "home")


def test_processes_opening_a_new_home_at_once_all_succeed(tmp_path):
    errors: list[BaseException] = []
    stores: list[Store] = []

    def open_store() -> None:
        try:
            stores.append(Store(tmp_path / "home"))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert raw_rows(stores[0], "SELECT COUNT(*) FROM meta") == [(1,)]
    for s in stores:
        s.close()


# ---- tasks --------------------------------------------------------------------------------------


def test_every_setting_survives_a_round_trip_and_a_reopen(store):
    spec = full_spec()
    created = store.create_task(spec, status=Status.PENDING_START)
    reopened = Store(store.home)
    for record in (
        created,
        store.get_task("orders-dr"),
        reopened.get_task("orders-dr"),
        reopened.list_tasks()[0],
    ):
        assert record.spec == spec
        assert record.spec.flow_control == FlowControl(
            120, (TimeWindow(time(8), time(12, 30)), TimeWindow(time(20), time(23, 59, 59, 999999)))
        )
        assert record.spec.tags == (("env", "prod"), ("owner", "dba-team"), ("cost.center", "42"))
        assert record.spec.source == Endpoint("db1.example.invalid", 3306, "drs_src", tls="required")
        assert record.status is Status.PENDING_START and record.phase == "none"
        assert record.checkpoint == Checkpoint() and record.last_error is None
        assert not record.spec.source.password and not record.spec.target.password  # passwords live elsewhere
    reopened.close()
    data = created.to_json()
    assert data["name"] == "orders-dr" and data["status"] == "pending_start" and data["checkpoint"] is None
    assert data["flow_control"]["windows"][1] == {"start": "20:00", "end": "23:59"}
    assert data["start"] == "2099-01-02T03:04" and data["tags"]["cost.center"] == "42"


def test_minimal_task_round_trip(store):
    spec = TaskSpec("billing-dr", Endpoint("db1.example.invalid"), Endpoint("db2.example.invalid"))
    assert store.create_task(spec).spec == spec
    assert store.get_task("billing-dr").status is Status.CONFIGURATION


def test_names_are_unique(store):
    store.create_task(full_spec())
    assert store.name_taken("orders-dr") and not store.name_taken("other-dr")
    with pytest.raises(SpecInvalid) as info:
        store.create_task(full_spec())
    assert info.value.errors[0].field == "name" and "already exists" in info.value.errors[0].message
    assert len(store.list_tasks()) == 1


def test_unknown_task_is_named(store):
    for call in (
        lambda: store.get_task("ghost-dr"),
        lambda: store.delete_task("ghost-dr"),
        lambda: store.set_status("ghost-dr", Status.FAILED),
        lambda: store.update_task("ghost-dr", phase="initial"),
        lambda: store.add_log("ghost-dr", "info", "task", "x"),
        lambda: store.logs("ghost-dr"),
    ):
        with pytest.raises(TaskNotFound, match="ghost-dr"):
            call()


def test_list_in_creation_order(store):
    for name in ("zeta-dr", "alpha-dr", "mid-dr"):
        store.create_task(full_spec(name))
    assert [t.name for t in store.list_tasks()] == ["zeta-dr", "alpha-dr", "mid-dr"]


def test_progress_and_runner_fields_update(store):
    store.create_task(full_spec())
    beat = datetime(2030, 1, 1, 10, 0, 0)
    store.update_task("orders-dr", phase="initial", progress_percent=42.5, rows_copied=1000, rows_total=2000,
                      bytes_copied=4096, delay_seconds=1.5, events_per_second=300.0, runner_pid=4242,
                      runner_heartbeat=beat, flow_control=FlowControl(7, ()))  # fmt: skip
    store.merge_extra("orders-dr", tables={"orders.t": 50})
    store.merge_extra("orders-dr", promote={"file": "binlog.000002"})
    r = store.get_task("orders-dr")
    assert (r.phase, r.progress_percent, r.rows_copied, r.rows_total, r.bytes_copied) == (
        "initial",
        42.5,
        1000,
        2000,
        4096,
    )
    assert (r.delay_seconds, r.events_per_second, r.runner_pid, r.runner_heartbeat) == (
        1.5,
        300.0,
        4242,
        beat,
    )
    assert r.spec.flow_control == FlowControl(7, ())
    assert r.extra == {"tables": {"orders.t": 50}, "promote": {"file": "binlog.000002"}}
    assert "tables" not in r.to_json()  # only known extras (copy, promote) are shown
    store.merge_extra("orders-dr", copy={"rows_per_second": 10.0, "tables": []})
    assert store.get_task("orders-dr").to_json()["copy"] == {"rows_per_second": 10.0, "tables": []}
    with pytest.raises(ValueError, match="not updatable"):
        store.update_task("orders-dr", status="ended")
    store.request_control("orders-dr", "pause")
    assert store.get_task("orders-dr").control_request == "pause"


def test_set_status_compare_and_set(store):
    store.create_task(full_spec(), status=Status.STARTING)
    assert store.set_status("orders-dr", Status.INITIALIZING, expect={Status.STARTING}, phase="initial")
    # a second runner racing for the same move loses
    assert not store.set_status("orders-dr", Status.INITIALIZING, expect={Status.STARTING})
    r = store.get_task("orders-dr")
    assert r.status is Status.INITIALIZING and r.phase == "initial"
    assert store.set_status("orders-dr", Status.FAILED, last_error="binlog.000001 purged on the service side")
    assert store.get_task("orders-dr").last_error == "binlog.000001 purged on the service side"
    store.set_status("orders-dr", Status.FAILED)  # failing again without a reason keeps the reason
    assert store.get_task("orders-dr").last_error == "binlog.000001 purged on the service side"
    store.set_status("orders-dr", Status.REPLICATING)  # back to work clears it
    assert store.get_task("orders-dr").last_error is None
    with pytest.raises(ValueError):
        store.set_status("orders-dr", Status.PAUSED, source_host="elsewhere")


def test_creation_failures_end_after_three_days(store):
    for name in ("failed-dr", "running-dr"):
        store.create_task(full_spec(name), status=Status.STARTING)
    store.set_status("failed-dr", Status.CREATION_FAILED, last_error="pre-check failed")
    changed = store.get_task("failed-dr").status_changed_at
    assert store.end_expired_creation_failures(now=changed + timedelta(days=2, hours=23)) == []
    assert store.get_task("failed-dr").status is Status.CREATION_FAILED
    later = changed + timedelta(days=3, seconds=1)
    assert store.end_expired_creation_failures(now=later) == ["failed-dr"]
    assert store.get_task("failed-dr").status is Status.ENDED
    assert store.get_task("failed-dr").status_changed_at == later
    assert store.get_task("running-dr").status is Status.STARTING


# ---- DR log, checkpoints, comparisons -----------------------------------------------------------


def test_dr_log_levels_and_filters(store):
    store.create_task(full_spec())
    for level, msg in [("info", "initial copy started"), ("warning", "table t has no primary key"),
                       ("alarm", "delay above 60 s"), ("error", "lost connection"), ("info", "reconnected")]:  # fmt: skip
        store.add_log("orders-dr", level, "runner", msg)
    all_entries = store.logs("orders-dr")
    assert [e.level for e in all_entries] == ["info", "warning", "alarm", "error", "info"]
    assert all_entries[0].component == "runner" and all_entries[0].message == "initial copy started"
    assert [e.message for e in store.logs("orders-dr", level="info")] == [
        "initial copy started",
        "reconnected",
    ]
    assert [e.message for e in store.logs("orders-dr", level="alarm")] == ["delay above 60 s"]
    assert [e.message for e in store.logs("orders-dr", limit=2)] == ["lost connection", "reconnected"]
    assert store.logs("orders-dr", since=datetime.now() + timedelta(minutes=1)) == []
    assert len(store.logs("orders-dr", since=all_entries[0].time)) == 5
    with pytest.raises(ValueError, match="log level"):
        store.add_log("orders-dr", "debug", "runner", "x")


def test_checkpoint_and_snapshot_state(store):
    store.create_task(full_spec())
    assert store.snapshot_state("orders-dr") == {}
    store.save_checkpoint(
        "orders-dr", Checkpoint("binlog.000003", 4711, "0-101-99"), snapshot={"orders.t": "done"}
    )
    store.save_checkpoint("orders-dr", Checkpoint("binlog.000003", 5000, "0-101-100"))
    r = store.get_task("orders-dr")
    assert r.checkpoint == Checkpoint("binlog.000003", 5000, "0-101-100")
    assert r.to_json()["checkpoint"] == {
        "binlog_file": "binlog.000003",
        "binlog_pos": 5000,
        "gtid": "0-101-100",
    }
    assert store.snapshot_state("orders-dr") == {"orders.t": "done"}  # kept when not given


def test_compare_runs_and_results(store):
    store.create_task(full_spec())
    run = store.start_compare_run("orders-dr", "rows")
    assert store.compare_runs("orders-dr")[0]["status"] == "running"
    results = [
        {"object_type": "table", "object_name": "orders.t", "source_value": "10", "target_value": "10", "consistent": True},
        {"object_type": "table", "object_name": "orders.u", "source_value": "5", "target_value": "4",
         "consistent": False, "detail": "1 row missing"},
    ]  # fmt: skip
    store.finish_compare_run(run, "done", {"tables": 2, "inconsistent": 1}, results)
    runs = store.compare_runs("orders-dr")
    assert len(runs) == 1 and runs[0]["kind"] == "rows" and runs[0]["status"] == "done"
    assert runs[0]["summary"] == {"tables": 2, "inconsistent": 1} and runs[0]["finished_at"]
    got = store.compare_results(run)
    assert [(r["object_name"], r["consistent"], r["detail"]) for r in got] == [
        ("orders.t", True, None), ("orders.u", False, "1 row missing"),
    ]  # fmt: skip
    with pytest.raises(StoreError, match="no compare run"):
        store.finish_compare_run(run + 100, "done", {}, [])


def test_delete_removes_every_row_of_the_task(store):
    store.create_task(full_spec("keep-dr"))
    store.add_log("keep-dr", "info", "task", "kept")
    store.create_task(full_spec())
    store.add_log("orders-dr", "info", "task", "to go")
    store.save_checkpoint("orders-dr", Checkpoint("binlog.000001", 4))
    run = store.start_compare_run("orders-dr", "object")
    store.finish_compare_run(
        run, "done", {}, [{"object_type": "table", "object_name": "a.b", "consistent": True}]
    )
    task_id = store.get_task("orders-dr").id
    store.delete_task("orders-dr")
    assert not store.name_taken("orders-dr")
    for table in TABLES_WITH_TASK_ID:
        assert raw_rows(store, f"SELECT COUNT(*) FROM {table} WHERE task_id = ?", task_id) == [(0,)]
    assert raw_rows(store, "SELECT COUNT(*) FROM compare_results") == [(0,)]
    assert [e.message for e in store.logs("keep-dr")] == ["kept"]
    assert len(store.get_task("keep-dr").spec.tags) == 3


# ---- many writers at once -----------------------------------------------------------------------


def test_concurrent_writers_and_readers_never_hit_a_locked_database(tmp_path):
    """The GUI, its workers and a `drs run` process (here: a second Store) write at the same time."""
    home = tmp_path / "home"
    stores = [Store(home), Store(home)]
    names = [f"task-{i}" for i in range(6)]
    for name in names:
        stores[0].create_task(full_spec(name), status=Status.INITIALIZING)
    errors: list[BaseException] = []
    writers_done = threading.Event()

    def writer(i: int) -> None:
        s, name = stores[i % 2], names[i]
        try:
            for n in range(200):
                if n % 2:
                    s.add_log(name, "info", "snapshot", f"chunk {n} copied")
                else:
                    s.update_task(name, progress_percent=n / 2, rows_copied=n)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    def reader(s: Store) -> None:
        try:
            while not writers_done.is_set():
                assert len(s.list_tasks()) == 6
                s.logs(names[0], level="info", limit=50)
                s.get_task(names[1])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    readers = [threading.Thread(target=reader, args=(s,)) for s in stores]
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    writers_done.set()
    for t in readers:
        t.join()
    assert errors == []
    for name in names:
        assert len(stores[0].logs(name, limit=1000)) == 100
        assert stores[1].get_task(name).rows_copied == 198
    for s in stores:
        s.close()
