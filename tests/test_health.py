"""Health of a DR task (engine.health, `drs task health`, `drs task show`): alarms a DBA can act on when
the runner dies, a server goes away and comes back, the delay passes its threshold, binlogs run out.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from dr_helpers import wait_for
from test_runner_e2e import create_task, drs, show, start_run, stop
from test_store import full_spec

from engine import health
from engine.status import Status
from engine.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "home")
    s.create_task(full_spec("orders-dr"))
    yield s
    s.close()


def test_rules_over_stored_facts(store):
    name, now = "orders-dr", datetime.now()
    # a task nobody is meant to run yet is fine
    store.set_status(name, Status.CONFIGURATION)
    assert health.evaluate(store, store.get_task(name)).to_json() == {"state": "ok", "reasons": []}
    # replicating, but nobody runs it: alarm, and the delay grows with the clock
    store.set_status(name, Status.REPLICATING, phase="incremental", delay_seconds=2.0, runner_pid=None,
                     runner_heartbeat=now - timedelta(seconds=40))  # fmt: skip
    record = store.get_task(name)
    h = health.evaluate(store, record, now)
    assert h.state == "alarm" and "no process is running this task (last heartbeat 40 s ago)" in h.reasons[0]
    assert health.effective_delay(record, now) == pytest.approx(42.0)
    assert health.effective_delay(record, now + timedelta(seconds=10)) == pytest.approx(52.0)
    # a live runner (this process, as in the GUI) with a fresh heartbeat: ok, the stored delay as is
    import os

    store.update_task(name, runner_pid=os.getpid(), runner_heartbeat=now)
    record = store.get_task(name)
    assert health.evaluate(store, record, now).state == "ok" and health.effective_delay(record, now) == 2.0
    # a server unreachable: warning at first, alarm after 15 s
    store.merge_extra(name, health={"target_unreachable_since": (now - timedelta(seconds=5)).isoformat(), "target_error": "refused"})
    h = health.evaluate(store, store.get_task(name), now)
    assert h.state == "warning" and "DR database has been unreachable for 5 s (refused)" in h.reasons[0]
    h = health.evaluate(store, store.get_task(name), now + timedelta(seconds=20))
    assert h.state == "alarm"
    store.merge_extra(name, health={})
    # delay over half the threshold: warning; over it: alarm
    health.set_delay_threshold(store, name, 10)
    store.update_task(name, delay_seconds=6.0)
    assert health.evaluate(store, store.get_task(name), now).state == "warning"
    store.update_task(name, delay_seconds=12.0)
    h = health.evaluate(store, store.get_task(name), now)
    assert h.state == "alarm" and "12 s behind (delay threshold 10 s)" in h.reasons[0]
    with pytest.raises(ValueError):
        health.set_delay_threshold(store, name, 0)
    health.set_delay_threshold(store, name, 300)
    store.update_task(name, delay_seconds=0.0)
    # binlog retention: the binlog the checkpoint needs may be purged soon, or is gone
    facts = {"checkpoint_file": "binlog.000007", "oldest": "binlog.000007", "current": "binlog.000009", "retention_seconds": 1800.0, "gone": False}
    store.merge_extra(name, health={"binlog": facts})
    h = health.evaluate(store, store.get_task(name), now)
    assert h.state == "warning" and "binlog.000007 (the oldest one left) this task still needs may be purged" in h.reasons[0]
    store.merge_extra(name, health={"binlog": {**facts, "current": "binlog.000007"}})
    assert health.evaluate(store, store.get_task(name), now).state == "ok"  # still written to: not purgeable
    store.merge_extra(name, health={"binlog": {**facts, "checkpoint_file": "binlog.000003", "gone": True}})
    h = health.evaluate(store, store.get_task(name), now)
    assert h.state == "alarm" and "binlog.000003" in h.reasons[0] and "no longer on the service database" in h.reasons[0]
    store.merge_extra(name, health={})
    # a failed compare
    run = store.start_compare_run(name, "rows")
    store.finish_compare_run(run, "finished", {"consistent": False, "differences": 3}, [])
    h = health.evaluate(store, store.get_task(name), now)
    assert h.state == "warning" and f"last compare (run {run}" in h.reasons[0] and "3 differences" in h.reasons[0]
    run = store.start_compare_run(name, "rows")
    store.finish_compare_run(run, "finished", {"consistent": True}, [])
    assert health.evaluate(store, store.get_task(name), now).state == "ok"
    # paused: warning, the delay grows; failed: alarm with the error
    store.set_status(name, Status.PAUSED)
    record = store.get_task(name)
    h = health.evaluate(store, record, record.status_changed_at + timedelta(seconds=30))
    assert h.state == "warning" and "paused" in h.reasons[0]
    assert health.effective_delay(record, record.status_changed_at + timedelta(seconds=30)) == pytest.approx(30.0)
    store.set_status(name, Status.FAILED, last_error="MySQL error 1146: table gone")
    h = health.evaluate(store, store.get_task(name))
    assert h.state == "alarm" and "table gone" in h.reasons[0]
    store.set_status(name, Status.PROMOTED)
    assert health.evaluate(store, store.get_task(name)).state == "ok"


def health_of(home, name: str) -> tuple[int, dict]:
    result = drs(home, "task", "health", name, "--json")
    return result.returncode, json.loads(result.stdout)


def test_cli_health_input_errors(home, tmp_path, dbs):
    create_task(home, dbs, "cli-dr", tmp_path, databases=["nothing"])
    bad = drs(home, "task", "health", "cli-dr", "--delay-threshold", "-3")
    assert bad.returncode == 2 and "--delay-threshold" in bad.stderr
    bad = drs(home, "task", "health", "cli-dr", "--delay-threshold", "soon")
    assert bad.returncode == 2 and "--delay-threshold" in bad.stderr
    missing = drs(home, "task", "health", "no-such-task")
    assert missing.returncode == 2 and "no task named 'no-such-task'" in missing.stderr
    # created, not run by anyone yet: the alarm says so, in text and in `task show`
    text = drs(home, "task", "health", "cli-dr")
    assert text.returncode == 2 and text.stdout.startswith("cli-dr: ALARM") and "no process is running" in text.stdout
    assert show(home, "cli-dr")["health"]["state"] == "alarm"


def test_runner_killed_then_servers_lost_and_back(dbs, home, tmp_path):
    dbs.source.sql("CREATE DATABASE hl", "CREATE TABLE hl.t (id INT PRIMARY KEY)")
    create_task(home, dbs, "hl-dr", tmp_path, databases=["hl"])
    proc = start_run(home, "hl-dr")
    try:
        wait_for(lambda: health_of(home, "hl-dr")[0] == 0, 120, 0.5, "healthy and replicating")
        data = show(home, "hl-dr")
        assert data["status"] == "replicating" and data["health"] == {"state": "ok", "reasons": []}

        # the DR server goes away: alarm within 15 s (plus slack on a busy machine), ok again after it returns
        dbs.target.stop()
        lost = time.monotonic()
        code, h = wait_for(lambda: (r := health_of(home, "hl-dr"))[0] == 2 and r, 25, 0.5, "alarm for the DR server")
        assert any("DR database has been unreachable" in r for r in h["reasons"]), h
        assert time.monotonic() - lost < 25
        dbs.target.start(dbs.base)
        wait_for(lambda: health_of(home, "hl-dr")[0] == 0, 40, 0.5, "ok after the DR server returned")
        dbs.source.sql("INSERT INTO hl.t VALUES (1)")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM hl.t")[0][0] == 1, 60, 0.3, "replicating again")

        # the service server goes away (the binlog stream dies with it) and returns
        dbs.source.stop()
        code, h = wait_for(lambda: (r := health_of(home, "hl-dr"))[0] == 2 and r, 25, 0.5, "alarm for the service server")
        assert any("service database has been unreachable" in r for r in h["reasons"]), h
        dbs.source.start(dbs.base)
        wait_for(lambda: health_of(home, "hl-dr")[0] == 0, 40, 0.5, "ok after the service server returned")
        dbs.source.sql("INSERT INTO hl.t VALUES (2)")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM hl.t")[0][0] == 2, 60, 0.3, "replicating after the source returned")

        # caught up again: the delay goes back to 0 (measured against the source's heartbeat)
        wait_for(lambda: show(home, "hl-dr")["delay_seconds"] == 0, 30, 0.5, "delay back to 0 after the source returned")
        # the delay threshold, per task: a paused task's delay grows past 1 s
        assert drs(home, "task", "health", "hl-dr", "--delay-threshold", "1").returncode == 0
        drs(home, "task", "pause", "hl-dr", check=True)
        code, h = wait_for(lambda: (r := health_of(home, "hl-dr"))[0] == 2 and r, 30, 0.5, "delay over the threshold")
        assert any("paused" in r for r in h["reasons"]) and any("behind (delay threshold 1 s)" in r for r in h["reasons"]), h
        assert h["delay_threshold"] == 1.0
        drs(home, "task", "resume", "hl-dr", check=True)
        drs(home, "task", "health", "hl-dr", "--delay-threshold", "300", check=True)
        wait_for(lambda: health_of(home, "hl-dr")[0] == 0, 30, 0.5, "ok after resume")

        # kill -9: nobody runs the task any more; the delay grows with the clock
        proc.kill()
        proc.wait()
        data = wait_for(lambda: (d := show(home, "hl-dr"))["health"]["state"] == "alarm" and d, 30, 0.5, "alarm for the dead runner")
        assert any("no process is running this task" in r for r in data["health"]["reasons"]), data["health"]
        first = data["delay_seconds"]
        assert first is not None
        wait_for(lambda: show(home, "hl-dr")["delay_seconds"] >= first + 2, 30, 0.5, "delay growing with the clock")
        assert drs(home, "task", "health", "hl-dr").returncode == 2
    finally:
        for server in (dbs.source, dbs.target):
            if server.proc is None:
                server.start(dbs.base)
        if proc.poll() is None:
            stop(proc)
