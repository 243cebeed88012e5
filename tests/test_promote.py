"""A promote that never strands anyone, on two real servers: deadline, cancel, DR server lost, one promote
at a time, kill -9 mid-promote, writes past read_only, the plan (what read_only freezes besides the
task), and read_only kept off a server another task was promoted onto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPL_PASSWORD, REPL_USER, make_spec
from dr_helpers import wait_for

from engine.apply import Applier
from engine.errors import PromoteAlreadyRunning, PromoteRolledBack
from engine.promote import JOURNAL, promote, recover_stale_promotes
from engine.runner import TaskRunner
from engine.spec import Endpoint, Secret, parse_spec
from engine.status import Status
from engine.store import Store
from engine.tasks import TaskService

ENV = {**os.environ, "DRS_SECRET_BACKEND": "file"}
NAME = "promo-dr"


def drs(home: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "engine.cli", "--home", str(home), *args],
                            capture_output=True, text=True, env=ENV, timeout=120)  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result


def drs_background(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "--home", str(home), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)  # fmt: skip


@pytest.fixture
def svc(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TaskService]:
    """Passwords in the encrypted file, so that `drs` subprocesses share them with this process."""
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    service = TaskService(home)
    yield service
    service.close()


def replicating_task(svc: TaskService, dbs, name: str = NAME) -> None:
    """A small task through its initial copy into incremental DR, then its runner stopped (as after `drs run`)."""
    dbs.source.sql(
        "CREATE DATABASE oltp",
        "CREATE TABLE oltp.kv (id INT PRIMARY KEY, v VARCHAR(40))",
        "INSERT INTO oltp.kv VALUES (1, 'one'), (2, 'two')",
    )
    svc.create(parse_spec(make_spec(dbs, name, databases=["oltp"])), status=Status.STARTING)
    runner = TaskRunner(svc, name)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    wait_for(lambda: svc.get(name).status is Status.REPLICATING, 60, 0.1, "incremental DR")
    runner.stop()
    thread.join(30)
    # a backlog: changed on the service side while nothing applies
    dbs.source.sql("UPDATE oltp.kv SET v = 'backlog' WHERE id = 1")


@contextmanager
def dr_row_locked(dbs) -> Iterator[None]:
    """A DBA's session on the DR side holds the row the backlog changes: the apply waits on it."""
    conn = dbs.target.root()
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SELECT * FROM oltp.kv WHERE id = 1 FOR UPDATE")
    try:
        yield
    finally:
        try:
            conn.rollback()
            conn.close()
        except Exception:  # the DR server was killed under it
            pass


def read_only(server) -> int:
    return server.sql("SELECT @@GLOBAL.read_only")[0][0]


def journal_step(svc: TaskService) -> str | None:
    return (svc.get(NAME).extra.get(JOURNAL) or {}).get("step")


def in_background(fn, *args, **kwargs) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_compare_and_set_lets_exactly_one_of_many_promotes_in(home: Path) -> None:
    store = Store(home)
    def nowhere(port: int) -> SimpleNamespace:  # servers this test never connects to
        return SimpleNamespace(endpoint=Endpoint("127.0.0.1", port, REPL_USER, Secret(REPL_PASSWORD)))

    spec = parse_spec(make_spec(SimpleNamespace(source=nowhere(3306), target=nowhere(3307)), NAME))
    store.create_task(spec, status=Status.REPLICATING)
    barrier, wins = threading.Barrier(8), []

    def contender(i: int) -> None:
        other = Store(home)  # as another process would: its own engine on the same file
        barrier.wait()
        if other.set_status_if(NAME, {Status.REPLICATING}, Status.PROMOTING, extra={JOURNAL: {"pid": i}}):
            wins.append(i)
        other.close()

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    record = store.get_task(NAME)
    assert record.status is Status.PROMOTING and record.extra[JOURNAL] == {"pid": wins[0]}


def test_deadline_passed_rolls_back_a_paused_task(dbs, svc, home) -> None:
    replicating_task(svc, dbs)
    svc.pause(NAME)
    with dr_row_locked(dbs):
        result = drs(home, "promote", NAME, "--timeout", "3")
    assert result.returncode == 1, result.stderr
    assert "rolled back" in result.stderr and "3 s deadline" in result.stderr
    assert "waiting for a row lock held by session" in result.stderr  # says what held it up
    assert read_only(dbs.source) == 0  # the service database takes writes again
    assert svc.get(NAME).status is Status.PAUSED  # where it was, and resume works as before
    assert dbs.target.sql("SELECT v FROM oltp.kv WHERE id = 1") == [("one",)]  # nothing half-applied
    logs = svc.store.logs(NAME, level="error")
    assert any("promote cannot finish" in e.message for e in logs)
    svc.resume(NAME)
    assert svc.get(NAME).status is Status.REPLICATING


def test_dr_server_lost_during_switchover_rolls_back(dbs, svc, home) -> None:
    replicating_task(svc, dbs)
    try:
        with dr_row_locked(dbs):
            proc = drs_background(home, "promote", NAME, "--timeout", "6")
            wait_for(lambda: journal_step(svc) == "catching_up", 30, 0.1, "promote waiting for the DR side")
            assert read_only(dbs.source) == 1
            dbs.target.kill()
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "rolled back" in err and "deadline" in err
        assert read_only(dbs.source) == 0
        record = svc.get(NAME)
        assert record.status is Status.REPLICATING and record.extra[JOURNAL]["step"] == "rolled_back"
    finally:
        if dbs.target.proc is None:
            dbs.target.start(dbs.base)


def test_rollback_that_cannot_reach_the_service_database_says_so_loudly(dbs, svc, home) -> None:
    replicating_task(svc, dbs)
    try:
        with dr_row_locked(dbs):
            proc = drs_background(home, "promote", NAME, "--timeout", "4")
            wait_for(lambda: journal_step(svc) == "catching_up", 30, 0.1, "promote waiting for the DR side")
            dbs.source.kill()  # gone before the rollback can lift read_only
            _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 3, err
        address = f"127.0.0.1:{dbs.source.port}"
        assert f"THE SERVICE DATABASE {address} IS STILL READ-ONLY" in err and "SET GLOBAL read_only=OFF;" in err
        record = svc.get(NAME)
        # a status the DBA acts from (retry or promote again), with the statements as its last error
        assert record.status is Status.FAILED and "STILL READ-ONLY" in (record.last_error or "")
        assert any("STILL READ-ONLY" in e.message for e in svc.store.logs(NAME, level="error"))
    finally:
        if dbs.source.proc is None:
            dbs.source.start(dbs.base)


def test_cancel_rolls_back(dbs, svc) -> None:
    replicating_task(svc, dbs)
    cancel = threading.Event()
    messages: list[str] = []
    with dr_row_locked(dbs):
        thread, box = in_background(promote, svc, NAME, timeout=30, cancel=cancel, on_progress=messages.append)
        wait_for(lambda: journal_step(svc) == "catching_up", 30, 0.1, "promote waiting for the DR side")
        cancel.set()
        thread.join(20)
    assert isinstance(box.get("error"), PromoteRolledBack), box
    assert "cancelled" in str(box["error"])
    assert read_only(dbs.source) == 0 and svc.get(NAME).status is Status.REPLICATING
    assert any("rolled back" in m for m in messages)


def test_second_promote_is_refused_while_the_first_runs_and_the_first_wins(dbs, svc, home) -> None:
    replicating_task(svc, dbs)
    with dr_row_locked(dbs):
        thread, box = in_background(promote, svc, NAME, timeout=40)
        wait_for(lambda: journal_step(svc) == "catching_up", 30, 0.1, "first promote waiting for the DR side")
        other_process = drs(home, "promote", NAME, "--timeout", "5")
        assert other_process.returncode == 2 and "already promoting" in other_process.stderr
        with pytest.raises(PromoteAlreadyRunning, match="already promoting"):
            promote(svc, NAME, timeout=5)  # another thread of this process
        assert recover_stale_promotes(svc) == []  # its owner is alive: nothing to recover
    thread.join(40)
    assert "error" not in box, box
    assert box["result"].mode == "switchover" and svc.get(NAME).status is Status.PROMOTED
    assert dbs.target.sql("SELECT v FROM oltp.kv WHERE id = 1") == [("backlog",)]  # RPO 0
    assert read_only(dbs.target) == 0 and read_only(dbs.source) == 1


def test_kill9_mid_promote_is_rolled_back_at_the_next_start(dbs, svc, home) -> None:
    replicating_task(svc, dbs)
    with dr_row_locked(dbs):
        proc = drs_background(home, "promote", NAME, "--timeout", "60")
        wait_for(lambda: journal_step(svc) == "catching_up", 30, 0.1, "promote waiting for the DR side")
        proc.kill()
        proc.wait()
    assert svc.get(NAME).status is Status.PROMOTING and read_only(dbs.source) == 1  # what the crash left
    messages = recover_stale_promotes(svc)  # what the desktop app does at start
    assert len(messages) == 1 and "rolled back" in messages[0], messages
    assert read_only(dbs.source) == 0
    record = svc.get(NAME)
    assert record.status is Status.REPLICATING and record.extra[JOURNAL]["step"] == "rolled_back"
    # and the task promotes normally afterwards
    result = drs(home, "promote", NAME, "--timeout", "30", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "promoted"


def test_promote_that_died_after_the_dr_side_took_over_is_finished(dbs, svc, home) -> None:
    replicating_task(svc, dbs)
    promote(svc, NAME, timeout=30)
    # as if the promoting process had died right after making the DR side writable
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    journal = {**svc.get(NAME).extra[JOURNAL], "pid": gone.pid, "token": "dead", "step": "finishing_target"}
    assert svc.store.set_status_if(NAME, {Status.PROMOTED}, Status.PROMOTING, extra={JOURNAL: journal})
    result = drs(home, "promote", NAME, "--timeout", "10")
    assert result.returncode == 0, result.stderr
    assert "finished by recovery" in result.stdout
    assert svc.get(NAME).status is Status.PROMOTED and read_only(dbs.target) == 0


def test_write_by_an_admin_session_after_read_only_is_caught_up_and_reported(dbs, svc, monkeypatch) -> None:
    replicating_task(svc, dbs)
    resolved: list[str] = []
    spec_with_passwords = svc.spec_with_passwords
    monkeypatch.setattr(svc, "spec_with_passwords", lambda name: resolved.append(name) or spec_with_passwords(name))
    with dr_row_locked(dbs):
        thread, box = in_background(promote, svc, NAME, timeout=30)
        wait_for(lambda: journal_step(svc) == "catching_up", 30, 0.1, "promote waiting for the DR side")
        assert read_only(dbs.source) == 1
        # root (READ_ONLY ADMIN) writes past read_only on MariaDB
        dbs.source.sql("INSERT INTO oltp.kv VALUES (99, 'admin after read-only')")
    thread.join(30)
    assert "error" not in box, box
    result = box["result"]
    assert result.writes_after_read_only and len(result.source_positions) == 2
    assert result.source_final == result.source_positions[-1]
    assert dbs.target.sql("SELECT v FROM oltp.kv WHERE id = 99") == [("admin after read-only",)]
    stored = svc.get(NAME).extra["promote"]
    assert stored["writes_after_read_only"] is True and len(stored["source_positions"]) == 2
    assert any("after it was made read-only" in e.message for e in svc.store.logs(NAME, level="warning"))
    assert resolved == [NAME]  # the task resolved once, through two catch-ups and their monitors


def test_dry_run_lists_what_read_only_freezes_besides_the_task(dbs, svc, home) -> None:
    dbs.source.sql("CREATE DATABASE oltp", "CREATE DATABASE billing", "CREATE DATABASE crm")
    svc.create(parse_spec(make_spec(dbs, NAME, databases=["oltp"])), status=Status.STARTING)
    svc.create(parse_spec(make_spec(dbs, "billing-dr", databases=["billing"])), status=Status.CONFIGURATION)
    result = drs(home, "promote", NAME, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["mode"] == "switchover" and plan["task_databases"] == ["oltp"]
    assert plan["other_databases"] == ["billing", "crm"]
    assert plan["service_server"] == f"127.0.0.1:{dbs.source.port}" and plan["dr_server"] == f"127.0.0.1:{dbs.target.port}"
    [other] = plan["other_tasks"]
    assert other["name"] == "billing-dr" and "read-only" in other["effect"] and "writable" in other["effect"]
    assert plan["read_only_estimate_seconds"] is not None and plan["not_allowed"]  # still Starting
    text = drs(home, "promote", NAME, "--dry-run")
    assert text.returncode == 0 and "billing, crm" in text.stdout and "nothing was changed" in text.stdout
    assert read_only(dbs.source) == 0 and svc.get(NAME).status is Status.STARTING
    bad = drs(home, "promote", NAME, "--timeout", "-1")
    assert bad.returncode == 2 and "--timeout" in bad.stderr


def test_ensure_ready_leaves_a_server_writable_that_another_task_was_promoted_onto(dbs, svc) -> None:
    svc.create(parse_spec(make_spec(dbs, "old-dr", databases=["crm"])), status=Status.STARTING)
    svc.store.set_status("old-dr", Status.PROMOTED)
    svc.create(parse_spec(make_spec(dbs, NAME, databases=["oltp"])), status=Status.STARTING)
    logged: list[str] = []
    spec = svc.spec_with_passwords(NAME)

    def ready() -> None:
        applier = Applier(spec.target, NAME, databases=spec.databases, migrate_definer=True,
                          log=lambda level, component, message: logged.append(message))  # fmt: skip
        applier.open()
        try:
            applier.ensure_ready(read_only=True, store=svc.store)
        finally:
            applier.close()

    ready()
    assert read_only(dbs.target) == 0 and any("old-dr" in m and "writable" in m for m in logged)
    svc.store.set_status("old-dr", Status.ENDED)  # once nothing is promoted there, the usual protection
    ready()
    assert read_only(dbs.target) == 1


def test_precheck_confirms_a_dr_server_shared_with_other_databases(dbs, svc) -> None:
    from engine.precheck import run_prechecks

    dbs.source.sql("CREATE DATABASE oltp", "CREATE TABLE oltp.kv (id INT PRIMARY KEY)")
    dbs.target.sql("CREATE DATABASE billing", "CREATE DATABASE scratch")
    other = parse_spec(make_spec(dbs, "billing-dr", databases=["billing"]))
    spec = parse_spec(make_spec(dbs, NAME, databases=["oltp"]))
    [item] = [r for r in run_prechecks(spec, other_tasks=[other]) if r.key == "target_databases_empty"]
    assert item.result == "confirm"
    assert "billing (task billing-dr), scratch" in item.reason and "server-wide" in item.reason
