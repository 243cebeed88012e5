"""`drs` does what the window does: start a task, modify its flow control and connection details (checked
in full before anything is written; errors name the flag and the field; passwords only from the
environment). And it starts quickly: `task list` / `task show` read the store over the stdlib sqlite3,
print byte for byte what the SQLAlchemy path prints, and import neither SQLAlchemy nor the keyring nor
the MySQL driver (asserted on what is imported, not on time)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine import cli
from engine.records import TaskRecord
from engine.secrets import EncryptedFileBackend
from engine.spec import parse_spec
from engine.status import Status
from engine.store import SCHEMA_VERSION, STORE_FILE, Checkpoint, Store
from engine.store_read import StoreReader
from engine.tasks import TaskService
from tests.conftest import make_spec
from tests.test_cli import ENV_PW, REPO, cli_env, drs, spec_dict, write_spec

HEAVY = ("sqlalchemy", "keyring", "pymysql", "cryptography", "pymysqlreplication", "PySide6")


def create(home: Path, tmp_path: Path, name: str = "orders-dr", **overrides) -> None:
    result = drs(home, "task", "create", "--spec", write_spec(tmp_path / f"{name}.json", spec_dict(name, **overrides)),
                 "--skip-checks")  # fmt: skip
    assert result.returncode == 0, result.stderr


def log_messages(home: Path, name: str) -> list[str]:
    return [e["message"] for e in json.loads(drs(home, "task", "logs", name, "--json").stdout)]


def settings(home: Path) -> dict:
    """The task as stored, without what moves with the clock (health)."""
    task = json.loads(drs(home, "task", "show", "orders-dr", "--json").stdout)
    return {k: v for k, v in task.items() if k != "health"}


# ---- task start ----------------------------------------------------------------------------------


def test_task_start_moves_a_configured_task_and_names_the_rule_when_not_allowed(tmp_path):
    home = tmp_path / "home"
    create(home, tmp_path, start=(datetime.now() + timedelta(days=2)).isoformat(timespec="minutes"))
    assert json.loads(drs(home, "task", "show", "orders-dr", "--json").stdout)["status"] == "pending_start"
    started = drs(home, "task", "start", "orders-dr")
    assert started.returncode == 0 and "orders-dr: Starting" in started.stdout
    assert "started by user" in log_messages(home, "orders-dr")
    again = drs(home, "task", "start", "orders-dr")
    assert again.returncode == 2 and again.stdout == ""
    assert (
        "Start is not available while the task is Starting; allowed in: Configuration, Pending start"
        in again.stderr
    )
    unknown = drs(home, "task", "start", "nobody-dr")
    assert unknown.returncode == 2 and "no task named 'nobody-dr'" in unknown.stderr


# ---- task modify ---------------------------------------------------------------------------------


def test_modify_flow_control_as_in_the_spec_file_or_off(tmp_path):
    home = tmp_path / "home"
    create(home, tmp_path)  # Starting: flow control can still change
    fc = '{"max_mb_s": 50, "windows": [{"start": "22:00", "end": "24:00"}, {"start": "00:00", "end": "06:00"}]}'
    done = drs(home, "task", "modify", "orders-dr", "--flow-control", fc, "--json")
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    assert task["name"] == "orders-dr" and task["status"] == "starting"
    assert task["flow_control"] == {
        "max_mb_s": 50,
        "windows": [{"start": "00:00", "end": "06:00"}, {"start": "22:00", "end": "23:59"}],
    }  # fmt: skip (24:00 shows as 23:59)
    off = drs(home, "task", "modify", "orders-dr", "--flow-control", "off")
    assert off.returncode == 0 and "flow control off" in off.stdout
    assert json.loads(drs(home, "task", "show", "orders-dr", "--json").stdout)["flow_control"] is None
    assert drs(home, "task", "modify", "orders-dr", "--flow-control", "null").returncode == 0
    assert "flow control modified: 50 MB/s 00:00-06:00, 22:00-23:59" in log_messages(home, "orders-dr")

    bad = {
        '{"max_mb_s": 0}': "flow_control.max_mb_s (--flow-control): must be a whole number of MB/s from 1 to 9999",
        '{"max_mb_s": 5, "windows": [{"start": "9am"}]}': "flow_control.windows[0] (--flow-control)",
        '{"max_mb_s": 5, "speed": 1}': "flow_control (--flow-control): must be null (off) or",
        "{max_mb_s: 5}": "flow_control (--flow-control): not valid JSON",
    }
    for value, message in bad.items():
        result = drs(home, "task", "modify", "orders-dr", "--flow-control", value)
        assert result.returncode == 2 and message in result.stderr, (value, result.stderr)

    # once the initial copy is over, flow control has nothing left to limit: the status rule says so
    Store(home).set_status("orders-dr", Status.REPLICATING, phase="incremental")
    late = drs(home, "task", "modify", "orders-dr", "--flow-control", '{"max_mb_s": 5}')
    assert late.returncode == 2
    assert (
        "Modify Flow Control is not available while the task is Disaster recovery in progress" in late.stderr
    )


def test_modify_connection_flags_name_the_flag_and_the_field_and_write_nothing_on_error(tmp_path):
    home = tmp_path / "home"
    create(home, tmp_path)
    before = settings(home)
    cases = {
        ("--port", "source=70000"): "source.port (--port): must be from 1 to 65535 (got 70000)",
        ("--port", "source=http"): "source.port (--port): must be a whole number from 1 to 65535",
        ("--tls", "target=sometimes"): "target.tls (--tls): must be one of off, required, verify_ca",
        ("--tls", "target=verify_ca"): "target.ca_file (--ca-file): required when tls is verify_ca",
        ("--host", "dr.example.invalid"): "--host: 'dr.example.invalid': give SIDE=VALUE, SIDE being source or target",
        ("--host", "middle=x"): "--host: 'middle=x': give SIDE=VALUE",
        ("--password-env", "target=DRS_NOT_SET_ANYWHERE"): "--password-env: environment variable 'DRS_NOT_SET_ANYWHERE' is not set",
        ("--user", "source=ops", "--user", "source=dba"): "--user: source given twice",
    }  # fmt: skip
    for args, message in cases.items():
        result = drs(home, "task", "modify", "orders-dr", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    # one good flag and one bad one: nothing is written
    mixed = drs(home, "task", "modify", "orders-dr", "--user", "source=ops", "--port", "target=0")
    assert mixed.returncode == 2 and "target.port (--port)" in mixed.stderr
    nothing = drs(home, "task", "modify", "orders-dr")
    assert nothing.returncode == 2 and "nothing to modify" in nothing.stderr
    assert settings(home) == before


def test_modify_reads_the_password_from_the_environment_only(tmp_path, monkeypatch):
    home = tmp_path / "home"
    create(home, tmp_path)
    done = drs(home, "task", "modify", "orders-dr", "--password-env", "target=DRS_NEW_PW", "--user", "target=dr_ops",
               DRS_NEW_PW=ENV_PW)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "target user drs -> dr_ops, password changed" in done.stdout and ENV_PW not in done.stdout
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    svc = TaskService(home)
    assert svc.secrets.get_password("orders-dr", "target").reveal() == ENV_PW
    assert svc.get("orders-dr").spec.target.user == "dr_ops"
    svc.close()
    stored = b"".join(p.read_bytes() for p in home.glob(STORE_FILE + "*"))
    assert ENV_PW.encode() not in stored
    assert "target connection details modified: user drs -> dr_ops; password changed" in log_messages(
        home, "orders-dr"
    )
    # a task in Configuration has no connection to modify yet (the reference's rule)
    Store(home).set_status("orders-dr", Status.CONFIGURATION)
    refused = drs(
        home, "task", "modify", "orders-dr", "--password-env", "target=DRS_NEW_PW", DRS_NEW_PW=ENV_PW
    )
    assert refused.returncode == 2 and "Modify Connection Details is not available" in refused.stderr


def test_modify_moves_a_side_to_a_new_address_of_the_same_server_only(dbs, tmp_path, monkeypatch):
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    home = tmp_path / "home"
    svc = TaskService(home)
    svc.create(parse_spec(make_spec(dbs, "real-dr")), status=Status.FAILED)
    svc.close()
    moved = drs(home, "task", "modify", "real-dr", "--host", "source=localhost", "--json")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["source"]["host"] == "localhost"
    other = drs(
        home, "task", "modify", "real-dr", "--port", f"target={dbs.source.port}"
    )  # the service server
    assert (
        other.returncode == 2 and "target.host (--host)" in other.stderr and "another server" in other.stderr
    )


# ---- the quick read path -------------------------------------------------------------------------


def varied_store(home: Path, servers) -> None:
    """Tasks with every kind of field the printed forms show: tags, flow control windows, a schedule,
    databases, a checkpoint, copy and promote facts, errors, unicode, in many statuses."""
    svc = TaskService(home)
    specs = [
        make_spec(servers, "alpha-dr", tags={"env": "prod", "team": "pay"}, description="caf\u00e9 orders",
                  flow_control={"max_mb_s": 20, "windows": [{"start": "08:00", "end": "12:00"}]}),
        make_spec(servers, "beta-dr", databases=["shop", "crm"],
                  start=(datetime.now() + timedelta(days=3)).isoformat(timespec="minutes")),
        make_spec(servers, "gamma-dr", relationship="active", network="vpn", migrate_definer=False),
        make_spec(servers, "delta-dr"),
        make_spec(servers, "eps-dr"),
    ]  # fmt: skip
    for raw in specs:
        svc.create(parse_spec(raw), status=Status.CONFIGURATION)
    store = svc.store
    store.set_status("alpha-dr", Status.REPLICATING, phase="incremental", delay_seconds=1.5, events_per_second=12.25,
                     progress_percent=100.0, rows_copied=1234, rows_total=1234, bytes_copied=98765,
                     runner_pid=os.getpid(), runner_heartbeat=datetime.now() + timedelta(hours=1))  # fmt: skip
    store.save_checkpoint("alpha-dr", Checkpoint("binlog.000042", 123456, "0-101-77"))
    store.merge_extra(
        "alpha-dr", copy={"rows_per_second": 10.5, "tables": [{"database": "shop", "table": "t"}]}
    )
    store.set_status("gamma-dr", Status.PROMOTED, phase="done")
    store.merge_extra(
        "gamma-dr", promote={"mode": "failover", "at": "2026-01-02T03:04:05", "message": "ok \u2713"}
    )
    store.set_status("delta-dr", Status.FAILED, last_error="MySQL error 1146: Table 'shop.x' doesn't exist")
    store.set_status("eps-dr", Status.CREATION_FAILED, last_error="refused")
    svc.close()


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_and_show_print_the_same_bytes_over_sqlite3_as_over_sqlalchemy(servers, home, memory_keyring, capsys,
                                                                            monkeypatch):  # fmt: skip
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    varied_store(home, servers)
    readings = {}
    for path in ("quick", "full"):
        if path == "full":
            monkeypatch.setattr(cli, "_quick_reader", lambda args: None)
        readings[path] = [
            run_cli(capsys, argv)
            for argv in (["task", "list"], ["task", "list", "--json"], ["task", "show", "nobody-dr"],
                         *(["task", "show", n, *j] for n in ("alpha-dr", "beta-dr", "gamma-dr", "delta-dr", "eps-dr")
                           for j in ([], ["--json"])))
        ]  # fmt: skip
    assert readings["quick"] == readings["full"]
    assert [code for code, *_ in readings["quick"]] == [0, 0, 2] + [0] * 10
    assert "caf\u00e9 orders" in readings["quick"][1][1] and '"mode": "failover"' in readings["quick"][1][1]
    # the records themselves, field by field, including the change counter
    store = Store(home)
    reader = StoreReader(home)
    orm, quick = store.list_tasks_orm(), reader.list_tasks()
    assert orm == quick and [r.change_seq for r in orm] == [r.change_seq for r in quick]
    assert all(isinstance(r, TaskRecord) for r in quick) and len(quick) == 5
    assert reader.get_task("alpha-dr") == store.get_task("alpha-dr")
    assert reader.latest_compare_run("alpha-dr") is None
    run = store.start_compare_run("alpha-dr", "values")
    store.finish_compare_run(run, "finished", {"consistent": False, "differences": 2}, [])
    assert reader.latest_compare_run("alpha-dr") == store.latest_compare_run("alpha-dr")
    reader.close()
    store.close()
    assert EncryptedFileBackend.name == cli.ENCRYPTED_FILE


def imported_by(home: Path, argv: list[str], **env: str) -> tuple[list[str], str]:
    """The heavy top-level packages loaded by running `drs ARGV` in a fresh interpreter, and its output."""
    probe = (
        "import sys, io, contextlib\n"
        "from engine.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main({argv!r})\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(repr((code, heavy)))\n"
        "print(out.getvalue(), end='')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], env=cli_env(home, **env), capture_output=True, text=True,
                            cwd=REPO, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, _, output = result.stdout.partition("\n")
    code, heavy = eval(first)  # noqa: S307 - our own repr of a tuple of literals
    assert code == 0, result.stdout
    return heavy, output


def test_list_and_show_import_no_orm_no_keyring_no_driver(servers, home, memory_keyring, monkeypatch):
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    varied_store(home, servers)
    for argv in (["task", "list"], ["task", "list", "--json"], ["task", "show", "alpha-dr"],
                 ["task", "show", "gamma-dr", "--json"]):  # fmt: skip
        heavy, output = imported_by(home, argv)
        assert heavy == [], (argv, heavy)
        assert "alpha-dr" in output or "gamma-dr" in output
    # the modules behind `task check` / `task params` are not imported to build the parser either
    heavy, _ = imported_by(home, ["task", "list"])
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from engine.cli import build_parser; build_parser('task'); "
                               "print(sorted(m for m in sys.modules if m in ('engine.precheck', 'engine.params', "
                               "'engine.store', 'engine.tasks', 'engine.secrets')))"],
        env=cli_env(home), capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert probe.stdout.strip() == "[]", probe.stderr


def test_the_quick_path_steps_aside_for_a_store_to_migrate_create_or_tidy(servers, home, memory_keyring, monkeypatch,
                                                                         capsys):  # fmt: skip
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    # no store yet: the full path creates it
    assert run_cli(capsys, ["--home", str(home), "task", "list"])[1] == "no tasks\n"
    assert (home / STORE_FILE).exists()
    varied_store(home, servers)
    # a store of schema 2: listed after the full store migrated it
    conn = sqlite3.connect(home / STORE_FILE)
    for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DROP INDEX ix_tasks_change_seq")
    conn.execute("ALTER TABLE tasks DROP COLUMN change_seq")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    code, out, _ = run_cli(capsys, ["--home", str(home), "task", "list", "--json"])
    assert code == 0 and [t["name"] for t in json.loads(out)] == [
        "alpha-dr",
        "beta-dr",
        "gamma-dr",
        "delta-dr",
        "eps-dr",
    ]
    conn = sqlite3.connect(home / STORE_FILE)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [
        (str(SCHEMA_VERSION),)
    ]
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'").fetchall() == [(6,)]
    # a creation failure past its three days: the full store ends it before listing (as before)
    conn.execute("UPDATE tasks SET status_changed_at = ? WHERE name = 'eps-dr'",
                 ((datetime.now() - timedelta(days=3, minutes=1)).isoformat(sep=" "),))  # fmt: skip
    conn.commit()
    conn.close()
    code, out, _ = run_cli(capsys, ["--home", str(home), "task", "list"])
    assert code == 0 and "eps-dr" in out and "Ended" in out


@pytest.mark.parametrize("argv", [["task", "list"], ["task", "show", "orders-dr", "--json"]])
def test_the_drs_command_prints_the_same_through_the_console_script(tmp_path, argv):
    """The installed entry point (`python -m engine.cli` here) behaves as main() in-process does."""
    home = tmp_path / "home"
    create(home, tmp_path)
    result = drs(home, *argv)
    assert result.returncode == 0 and "orders-dr" in result.stdout
