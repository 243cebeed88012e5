"""A DBA's story through the `drs` CLI on two real servers: run, stop, crash (kill -9), resume, promote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import make_spec
from dr_helpers import ODD_DB, ODD_TABLE, assert_databases_identical, create_type_matrix, wait_for

ENV = {**os.environ, "DRS_SECRET_BACKEND": "file"}


def drs(home: Path, *args: str, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "engine.cli", "--home", str(home), *args], capture_output=True, text=True, env=ENV, timeout=timeout)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    if check:
        assert result.returncode == 0, result.stderr
    return result


def show(home: Path, name: str) -> dict:
    return json.loads(drs(home, "task", "show", name, "--json", check=True).stdout)


def start_run(home: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--home", str(home), "run", name, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip


def create_task(home: Path, dbs, name: str, tmp_path: Path, **overrides) -> None:
    spec_file = tmp_path / f"{name}.json"
    spec_file.write_text(json.dumps(make_spec(dbs, name, **overrides)))
    drs(home, "task", "create", "--spec", str(spec_file), "--skip-checks", check=True)


def odd_schema(server) -> None:
    odd, table = ODD_DB.replace("`", "``"), ODD_TABLE.replace("`", "``")
    server.sql(
        f"CREATE DATABASE `{odd}`",
        f"CREATE TABLE `{odd}`.`{table}` (`the \"col\"` INT, `sp ace` VARCHAR(20), `select` DOUBLE)",
        f"INSERT INTO `{odd}`.`{table}` VALUES (1, 'a', 1.5), (1, 'a', 1.5), (2, NULL, NULL)",
        f"CREATE TABLE `{odd}`.`composite` (a INT, b VARCHAR(10), v TEXT, PRIMARY KEY (a, b))",
        f"INSERT INTO `{odd}`.`composite` VALUES (1, 'x', 'one'), (1, 'y', 'two'), (2, 'x', 'three')",
    )


def stop(proc: subprocess.Popen) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_run_stop_resume_without_recopy(dbs, home, tmp_path):
    create_type_matrix(dbs.source, "shop")
    odd_schema(dbs.source)
    create_task(home, dbs, "shop-dr", tmp_path)
    proc = start_run(home, "shop-dr")
    try:
        wait_for(lambda: show(home, "shop-dr")["status"] == "replicating", 120, 0.3, "replicating")
        data = show(home, "shop-dr")
        for key in ("name", "status", "phase", "progress_percent", "rows_copied", "delay_seconds", "checkpoint", "last_error"):
            assert key in data
        assert data["phase"] == "incremental" and data["progress_percent"] == 100 and data["rows_copied"] >= 11
        assert data["checkpoint"]["binlog_file"]
        # per-table progress of the initial phase stays visible
        tables = {(t["database"], t["table"]): t for t in data["copy"]["tables"]}
        assert tables[("shop", "types")]["done"] and tables[("shop", "types")]["rows_done"] == 6
        dbs.source.sql("INSERT INTO shop.types (id, vc) VALUES (50, 'live ✓')", "UPDATE shop.types SET d52 = 1.25 WHERE id = 5")
        wait_for(lambda: dbs.target.sql("SELECT vc FROM shop.types WHERE id = 50") == [("live ✓",)], 60, 0.2, "streamed insert")
        # the DR side is read-only for everyone but the task
        assert dbs.target.sql("SELECT @@GLOBAL.read_only")[0][0] == 1
    finally:
        code, _out, err = stop(proc)
    assert code == 0, err
    stopped = show(home, "shop-dr")
    assert stopped["status"] == "replicating" and stopped["checkpoint"]["binlog_pos"]
    # changes made while nothing runs are picked up on the next run, without copying again
    dbs.source.sql("DELETE FROM shop.types WHERE id = 2", "INSERT INTO shop.types (id, c) VALUES (51, 'offline')")
    proc = start_run(home, "shop-dr")
    try:
        wait_for(lambda: dbs.target.sql("SELECT id FROM shop.types WHERE id IN (2, 51)") == [(51,)], 60, 0.2, "catch-up")
        assert_databases_identical(dbs.source, dbs.target, ["shop", ODD_DB])
    finally:
        code, _out, err = stop(proc)
    assert code == 0, err
    logs = json.loads(drs(home, "task", "logs", "shop-dr", "--json", check=True).stdout)
    assert sum("initial full DR started" in e["message"] for e in logs) == 1


def writer(server, stop_event: threading.Event, counter: list[int]) -> None:
    """Small OLTP transactions on the source: inserts, updates, deletes, and a keyless table."""
    conn = server.root("oltp")
    i = 0
    try:
        with conn.cursor() as cur:
            while not stop_event.is_set() and i < 20000:
                i += 1
                cur.execute("BEGIN")
                cur.execute("INSERT INTO oltp.kv (id, v) VALUES (%s, %s)", (i, f"v{i}"))
                cur.execute("INSERT INTO oltp.nokey (n, v) VALUES (%s, %s)", (i % 7, f"n{i}"))
                if i % 3 == 0:
                    cur.execute("UPDATE oltp.kv SET v = CONCAT(v, '+') WHERE id = %s", (i - 1,))
                if i % 5 == 0:
                    cur.execute("DELETE FROM oltp.kv WHERE id = %s", (i - 2,))
                    cur.execute("DELETE FROM oltp.nokey WHERE n = %s AND v = %s LIMIT 1", ((i - 2) % 7, f"n{i - 2}"))
                cur.execute("COMMIT")
                counter[0] = i
    finally:
        conn.close()


def load_schema(server, rows: int = 0) -> None:
    server.sql(
        "CREATE DATABASE oltp",
        "CREATE TABLE oltp.kv (id INT PRIMARY KEY, v VARCHAR(40))",
        "CREATE TABLE oltp.nokey (n INT, v VARCHAR(40))",
        "CREATE TABLE oltp.big (id INT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(200), d DATETIME(6), x DECIMAL(12,2))",
    )
    if rows:
        server.sql(
            "INSERT INTO oltp.big (pad, d, x) SELECT REPEAT(CHAR(65 + seq % 26), 150), NOW(6) - INTERVAL seq SECOND, seq / 7 "
            f"FROM oltp.seq_1_to_{rows}"
        )


def test_kill9_mid_stream_resumes_without_loss_or_duplicates(dbs, home, tmp_path):
    load_schema(dbs.source)
    create_task(home, dbs, "load-dr", tmp_path, databases=["oltp"])
    proc = start_run(home, "load-dr")
    stop_event, counter = threading.Event(), [0]
    thread = threading.Thread(target=writer, args=(dbs.source, stop_event, counter), daemon=True)
    try:
        wait_for(lambda: show(home, "load-dr")["status"] == "replicating", 120, 0.3, "replicating")
        thread.start()
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM oltp.nokey")[0][0] > 300, 120, 0.1, "stream under way")
        proc.kill()  # kill -9 in the middle of applying
        proc.wait()
        wait_for(lambda: counter[0] > 1500, 120, 0.1, "more writes while the runner is dead")
        proc = start_run(home, "load-dr")
        wait_for(lambda: counter[0] > 2500, 120, 0.1, "writes after restart")
        proc.kill()  # and once more
        proc.wait()
        proc = start_run(home, "load-dr")
        stop_event.set()
        thread.join(60)
        wait_for(
            lambda: dbs.target.sql("SELECT COUNT(*), SUM(CRC32(v)) FROM oltp.nokey") == dbs.source.sql("SELECT COUNT(*), SUM(CRC32(v)) FROM oltp.nokey")
            and dbs.target.sql("SELECT COUNT(*) FROM oltp.kv") == dbs.source.sql("SELECT COUNT(*) FROM oltp.kv"),
            120, 0.3, "DR side caught up",
        )  # fmt: skip
        assert_databases_identical(dbs.source, dbs.target, ["oltp"])
    finally:
        stop_event.set()
        if proc.poll() is None:
            code, _out, err = stop(proc)
            assert code == 0, err


def test_kill9_mid_copy_recopies_and_converges(dbs, home, tmp_path):
    load_schema(dbs.source, rows=60000)
    create_task(home, dbs, "copy-dr", tmp_path, databases=["oltp"], flow_control={"max_mb_s": 1, "windows": []})
    proc = start_run(home, "copy-dr")
    try:
        wait_for(lambda: show(home, "copy-dr")["rows_copied"] > 1000, 120, 0.2, "copy under way")
        assert show(home, "copy-dr")["status"] == "initializing"
        proc.kill()
        proc.wait()
        dbs.source.sql("INSERT INTO oltp.kv VALUES (1, 'during the outage')", "DELETE FROM oltp.big WHERE id <= 10")
        # the DBA lifts the flow control before restarting
        from engine.tasks import TaskService

        TaskService(home).store.update_task("copy-dr", flow_control=None)
        proc = start_run(home, "copy-dr")
        wait_for(lambda: show(home, "copy-dr")["status"] == "replicating", 180, 0.3, "replicating after re-copy")
        dbs.source.sql("UPDATE oltp.big SET x = -x WHERE id BETWEEN 100 AND 200")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM oltp.big WHERE x < 0")[0][0] == 101, 60, 0.2, "stream after copy")
        assert_databases_identical(dbs.source, dbs.target, ["oltp"])
    finally:
        if proc.poll() is None:
            code, _out, err = stop(proc)
            assert code == 0, err


def test_promote_switchover_while_run_is_running(dbs, home, tmp_path):
    load_schema(dbs.source)
    dbs.source.sql("CREATE TRIGGER oltp.kv_upper BEFORE INSERT ON oltp.kv FOR EACH ROW SET NEW.v = UPPER(NEW.v)")
    dbs.source.sql("CREATE EVENT oltp.purge ON SCHEDULE EVERY 1 DAY DO DELETE FROM oltp.kv WHERE id < 0")
    create_task(home, dbs, "promo-dr", tmp_path, databases=["oltp"])
    proc = start_run(home, "promo-dr")
    try:
        wait_for(lambda: show(home, "promo-dr")["status"] == "replicating", 120, 0.3, "replicating")
        dbs.source.sql("INSERT INTO oltp.kv VALUES (1, 'before promote'), (2, 'last one')")
        result = drs(home, "promote", "promo-dr")
        assert result.returncode == 0, result.stderr
        assert "writable" in result.stdout
        proc.communicate(timeout=60)  # the runner was asked to stop and did
        data = show(home, "promo-dr")
        assert data["status"] == "promoted"
        assert dbs.target.sql("SELECT v FROM oltp.kv ORDER BY id") == [("BEFORE PROMOTE",), ("LAST ONE",)]
        assert dbs.target.sql("SELECT @@GLOBAL.read_only")[0][0] == 0
        assert dbs.source.sql("SELECT @@GLOBAL.read_only")[0][0] == 1
        # the trigger held back on the standby exists now, and the DR side accepts writes
        assert dbs.target.sql("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='oltp'") == [("kv_upper",)]
        # the event that was disabled on the standby runs on the new primary
        assert dbs.target.sql("SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA='oltp'") == [("ENABLED",)]
        dbs.target.sql("INSERT INTO oltp.kv VALUES (3, 'new primary')")
        assert dbs.target.sql("SELECT v FROM oltp.kv WHERE id = 3") == [("NEW PRIMARY",)]
        assert data["promote"]["source_final"]["binlog_pos"] <= data["promote"]["target_applied"]["binlog_pos"] or (
            data["promote"]["source_final"]["binlog_file"] != data["promote"]["target_applied"]["binlog_file"]
        )
    finally:
        dbs.source.sql("SET GLOBAL read_only = OFF")
        if proc.poll() is None:
            stop(proc)


def test_forced_failover_with_service_down(dbs, home, tmp_path):
    load_schema(dbs.source)
    create_task(home, dbs, "fail-dr", tmp_path, databases=["oltp"])
    proc = start_run(home, "fail-dr")
    try:
        wait_for(lambda: show(home, "fail-dr")["status"] == "replicating", 120, 0.3, "replicating")
        dbs.source.sql("INSERT INTO oltp.kv VALUES (7, 'replicated before the crash')")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM oltp.kv")[0][0] == 1, 60, 0.2, "row on DR")
        dbs.source.kill()
        # honest about lag: with the service side gone, the reported delay grows instead of staying 0
        wait_for(lambda: (show(home, "fail-dr")["delay_seconds"] or 0) >= 2, 60, 0.5, "delay growing while disconnected")
        refused = drs(home, "promote", "fail-dr")
        assert refused.returncode == 2
        assert "cannot be reached" in refused.stderr and "--force" in refused.stderr
        result = drs(home, "promote", "fail-dr", "--force")
        assert result.returncode == 0, result.stderr
        data = show(home, "fail-dr")
        assert data["status"] == "promoted" and data["promote"]["mode"] == "failover"
        assert dbs.target.sql("SELECT @@GLOBAL.read_only")[0][0] == 0
        dbs.target.sql("INSERT INTO oltp.kv VALUES (8, 'written on the new primary')")
        logs = json.loads(drs(home, "task", "logs", "fail-dr", "--json", check=True).stdout)
        assert any("will be lost" in e["message"] for e in logs)
    finally:
        if proc.poll() is None:
            stop(proc)
        if dbs.source.proc is None:
            dbs.source.start(dbs.base)


@pytest.fixture(autouse=True)
def _seq_engine(dbs):
    """MariaDB's SEQUENCE engine makes big test tables quickly (seq_1_to_N)."""
    yield


def test_pause_resume_and_reconnect_after_dr_server_restart(dbs, home, tmp_path):
    load_schema(dbs.source)
    create_task(home, dbs, "pause-dr", tmp_path, databases=["oltp"])
    proc = start_run(home, "pause-dr")
    try:
        wait_for(lambda: show(home, "pause-dr")["status"] == "replicating", 120, 0.3, "replicating")
        drs(home, "task", "pause", "pause-dr", check=True)
        assert show(home, "pause-dr")["status"] == "paused"
        logs = lambda: json.loads(drs(home, "task", "logs", "pause-dr", "--json", check=True).stdout)  # noqa: E731
        wait_for(lambda: any("paused at" in e["message"] for e in logs()), 30, 0.3, "runner paused")
        dbs.source.sql("INSERT INTO oltp.kv VALUES (1, 'while paused')")
        wait_for(lambda: dbs.source.sql("SELECT COUNT(*) FROM oltp.kv")[0][0] == 1, 5, 0.5, "give the runner a chance")
        assert dbs.target.sql("SELECT COUNT(*) FROM oltp.kv")[0][0] == 0  # nothing applied while paused
        assert proc.poll() is None  # `drs run` waits for resume
        # pause is refused when already paused: the status rules are enforced by the CLI too
        again = drs(home, "task", "pause", "pause-dr")
        assert again.returncode == 2 and "Pause is not available" in again.stderr
        drs(home, "task", "resume", "pause-dr", check=True)
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM oltp.kv")[0][0] == 1, 60, 0.3, "applied after resume")
        # the DR server goes away and comes back: the runner reconnects by itself
        dbs.target.stop()
        dbs.source.sql("INSERT INTO oltp.kv VALUES (2, 'while the DR server was down')")
        dbs.target.start(dbs.base)
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM oltp.kv")[0][0] == 2, 120, 0.5, "applied after reconnect")
        assert any(e["level"] == "alarm" and "reconnecting" in e["message"] for e in logs()), [e["message"] for e in logs() if e["level"] != "info"]
        assert show(home, "pause-dr")["status"] == "replicating"
        # the restarted DR server came back writable; the runner made it read-only again
        assert dbs.target.sql("SELECT @@GLOBAL.read_only")[0][0] == 1
    finally:
        if proc.poll() is None:
            code, _out, err = stop(proc)
            assert code == 0, err
