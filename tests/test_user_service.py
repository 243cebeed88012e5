"""A task run by a background service (`drs service install`): the unit's own command replicates, waits
through a pause and a failure (Retry runs it again), and ends when the service is removed.

No systemd user manager runs on the test machines (containers without systemd as PID 1), so the tests
start the unit's ExecStart themselves, with its Environment, exactly as systemd would; `systemctl
--user enable --now` is exercised for its error path (or its success where a manager answers).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dr_helpers import wait_for
from test_runner_e2e import ENV, create_task, drs, show

from engine import user_service


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setitem(ENV, "XDG_CONFIG_HOME", str(config))  # the drs subprocesses' environment
    return config


def test_unit_names_and_quoting_survive_odd_task_names_and_homes(tmp_path, config_home):
    home = tmp_path / "a home with spaces $HOME 100%"
    names = ["orders-dr", "ünïcode dr", "a/b", "a_b"]
    units = {user_service.unit_name(n) for n in names}
    assert len(units) == len(names)  # "a/b" and "a_b" do not share a unit
    for name in names:
        unit = user_service.unit_name(name)
        assert unit.startswith("drs-task-") and unit.endswith(".service")
        assert all(c.isalnum() or c in "_.-" for c in unit)
        argv, env = user_service.parse_exec_start(user_service.unit_text(home, name))
        assert argv == user_service.exec_command(home, name)
        assert argv[argv.index("--home") + 1] == str(home)
        assert env["PYTHONUNBUFFERED"] == "1"
    assert user_service.unit_path("orders-dr").parent == config_home / "systemd" / "user"


def _run_unit(home: Path, name: str) -> subprocess.Popen:
    """What systemd runs for the unit: its ExecStart argv with its Environment."""
    text = user_service.unit_path(name).read_text()
    argv, unit_env = user_service.parse_exec_start(text)
    return subprocess.Popen(argv, env={**ENV, **unit_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_service_process_outlives_pause_and_failure_and_ends_on_remove(dbs, home, tmp_path, config_home):
    dbs.source.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))",
                   "INSERT INTO shop.t VALUES (1, 'one')")  # fmt: skip
    create_task(home, dbs, "svc-dr", tmp_path, databases=["shop"])

    written = drs(home, "service", "install", "svc-dr", "--no-start", check=True)
    assert "written" in written.stdout
    unit = user_service.unit_path("svc-dr")
    assert unit.exists() and "ExecStart=" in unit.read_text() and "Restart=on-failure" in unit.read_text()
    status = json.loads(drs(home, "service", "status", "svc-dr", "--json", check=True).stdout)
    assert status["installed"] is True and status["unit"] == unit.name

    proc = _run_unit(home, "svc-dr")
    try:
        wait_for(lambda: show(home, "svc-dr")["status"] == "replicating", timeout=120, what="replicating")
        dbs.source.sql("INSERT INTO shop.t VALUES (2, 'two')")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.t")[0][0] == 2, what="row 2 on the DR side")

        # Pause: the process stays and keeps the task (the window would not start a runner of its own)
        drs(home, "task", "pause", "svc-dr", check=True)
        dbs.source.sql("INSERT INTO shop.t VALUES (3, 'three')")
        wait_for(lambda: show(home, "svc-dr")["runner_pid"] == proc.pid, what="the service holding the paused task")
        assert proc.poll() is None
        drs(home, "task", "resume", "svc-dr", check=True)
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.t")[0][0] == 3, what="row 3 after resume")

        # A failure (the DR table dropped by hand): the process waits for Retry instead of exiting
        dbs.target.sql("SET GLOBAL read_only = OFF", "DROP TABLE shop.t")
        dbs.source.sql("UPDATE shop.t SET v = 'uno' WHERE id = 1")
        wait_for(lambda: show(home, "svc-dr")["status"] == "failed", timeout=120, what="the task failed")
        wait_for(lambda: show(home, "svc-dr")["runner_pid"] == proc.pid, what="the service holding the failed task")
        assert proc.poll() is None
        dbs.target.sql(
            "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO shop.t VALUES (1, 'one'), (2, 'two'), (3, 'three')",
        )
        drs(home, "task", "resume", "svc-dr", check=True)  # Retry
        wait_for(lambda: dbs.target.sql("SELECT v FROM shop.t WHERE id = 1") == [("uno",)], what="the retried update")
        assert show(home, "svc-dr")["status"] == "replicating"

        removed = drs(home, "service", "remove", "svc-dr", check=True)
        assert "removed" in removed.stdout
        assert proc.wait(timeout=90) == 0
        assert not unit.exists()
        assert show(home, "svc-dr")["runner_pid"] is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_install_starts_through_systemd_or_says_why_and_delete_removes_the_unit(dbs, home, tmp_path, config_home):
    dbs.source.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    create_task(home, dbs, "svc2-dr", tmp_path, databases=["shop"])
    result = drs(home, "service", "install", "svc2-dr")
    unit = user_service.unit_path("svc2-dr")
    assert unit.exists()
    if result.returncode != 0:  # no systemd user manager here: the message says what to do
        assert result.returncode == 1
        assert "systemctl --user" in result.stderr and unit.name in result.stderr
    missing = drs(home, "service", "install", "no-such-task")
    assert missing.returncode == 2 and "no-such-task" in missing.stderr
    drs(home, "task", "delete", "svc2-dr", "--yes", check=True)
    assert not unit.exists()  # no unit left to start `drs run` for a deleted task at every login


def test_service_subcommand_help_lists_its_actions():
    out = subprocess.run([sys.executable, "-m", "engine.cli", "service", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for action in ("install", "remove", "status"):
        assert action in out.stdout
