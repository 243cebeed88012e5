"""`drs task ...` as a DBA runs it from a shell: exit codes 0/1/2, the field named on stderr, JSON for
scripts, never a traceback and never a password on the screen, in the task store or in the DR log.

The spec files point at hosts that do not exist: with --skip-checks `task create` only stores the task.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from engine.spec import parse_spec
from engine.store import SCHEMA_VERSION, STORE_FILE, Store
from engine.tasks import TaskService

SOURCE_PW = "Cli-Src-Pw-e41f0"
TARGET_PW = "Cli-Dr-Pw-77a3c"
ENV_PW = "Cli-Env-Pw-9b2d1"
REPO = Path(__file__).resolve().parents[1]


def spec_dict(name: str = "orders-dr", **overrides) -> dict:
    spec = {
        "name": name,
        "description": "orders database",
        "relationship": "standby",
        "network": "public",
        "source": {
            "host": "db1.example.invalid",
            "port": 3306,
            "user": "drs",
            "password": SOURCE_PW,
            "tls": "off",
        },
        "target": {
            "host": "db2.example.invalid",
            "port": 3306,
            "user": "drs",
            "password": TARGET_PW,
            "tls": "off",
        },
        "flow_control": {"max_mb_s": 20, "windows": [{"start": "08:00", "end": "18:00"}]},
        "migrate_definer": True,
        "start": "now",
        "tags": {"env": "prod"},
    }
    spec.update(overrides)
    return spec


def write_spec(path: Path, spec: dict | str) -> str:
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec), encoding="utf-8")
    return str(path)


def cli_env(home: Path | None, **extra: str) -> dict[str, str]:
    """The subprocess has no OS keyring: passwords go to the encrypted file."""
    env = {k: v for k, v in os.environ.items() if k not in ("DRS_HOME", "DRS_DEBUG")}
    env.update(DRS_SECRET_BACKEND="file", PYTHONPATH=str(REPO), **extra)
    if home is not None:
        env["DRS_HOME"] = str(home)
    return env


def start(home: Path | None, *args: str, env_home: Path | None = None, **extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "engine.cli", *(["--home", str(home)] if home else []), *args]
    return subprocess.Popen(
        argv, env=cli_env(env_home, **extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    for pw in (SOURCE_PW, TARGET_PW, ENV_PW):
        assert pw not in out and pw not in err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def drs(home: Path | None, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return finish(start(home, *args, **kwargs))


def assert_no_password_in_store(home: Path) -> None:
    data = b"".join(p.read_bytes() for p in home.glob(STORE_FILE + "*"))
    assert data
    for pw in (SOURCE_PW, TARGET_PW, ENV_PW):
        assert pw.encode() not in data


def test_create_list_show_delete(tmp_path, monkeypatch):
    home = tmp_path / "home"
    spec_file = write_spec(tmp_path / "spec.json", spec_dict())

    created = drs(home, "task", "create", "--spec", spec_file, "--skip-checks")
    assert created.returncode == 0, created.stderr
    assert "task orders-dr created: Starting" in created.stdout and "encrypted file" in created.stdout

    listed = drs(home, "task", "list")
    assert listed.returncode == 0
    assert "orders-dr" in listed.stdout and "Starting" in listed.stdout
    assert "db1.example.invalid:3306 -> db2.example.invalid:3306" in listed.stdout

    listed_json = json.loads(drs(home, "task", "list", "--json").stdout)
    assert [t["name"] for t in listed_json] == ["orders-dr"]

    shown = drs(home, "task", "show", "orders-dr", "--json")
    assert shown.returncode == 0
    task = json.loads(shown.stdout)
    assert isinstance(task, dict)
    assert task["name"] == "orders-dr" and task["status"] == "starting" and task["phase"] == "none"
    assert task["progress_percent"] == 0 and task["rows_copied"] == 0
    assert task["delay_seconds"] is None and task["checkpoint"] is None and task["last_error"] is None
    assert task["source"] == {
        "host": "db1.example.invalid",
        "port": 3306,
        "user": "drs",
        "tls": "off",
        "ca_file": None,
    }
    assert task["flow_control"] == {"max_mb_s": 20, "windows": [{"start": "08:00", "end": "18:00"}]}
    assert task["tags"] == {"env": "prod"} and task["secret_store"] == "encrypted file"
    assert "password" not in json.dumps(task)

    text = drs(home, "task", "show", "orders-dr")
    assert text.returncode == 0 and "orders-dr" in text.stdout and "starting" in text.stdout

    logs = json.loads(drs(home, "task", "logs", "orders-dr", "--json").stdout)
    assert [e["message"] for e in logs] == ["task created (Starting)"]

    # the passwords are in the encrypted secret file, readable by the engine
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    svc = TaskService(home)
    full = svc.spec_with_passwords("orders-dr")
    assert (full.source.password.reveal(), full.target.password.reveal()) == (SOURCE_PW, TARGET_PW)
    svc.close()
    assert_no_password_in_store(home)

    refused = drs(home, "task", "delete", "orders-dr")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    deleted = drs(home, "task", "delete", "orders-dr", "--yes")
    assert deleted.returncode == 0 and "task orders-dr deleted" in deleted.stdout
    gone = drs(home, "task", "show", "orders-dr")
    assert gone.returncode == 2 and "no task named 'orders-dr'" in gone.stderr
    assert drs(home, "task", "list").stdout.strip() == "no tasks"
    assert_no_password_in_store(home)
    rows = sqlite3.connect(home / STORE_FILE).execute("SELECT COUNT(*) FROM dr_log").fetchall()
    assert rows == [(0,)]


def test_drs_home_and_password_from_environment(tmp_path, monkeypatch):
    home = tmp_path / "env-home"
    by_env = spec_dict(source={"host": "127.0.0.1", "port": 1, "user": "drs", "password_env": "DRS_SRC_PW"})
    spec_file = write_spec(tmp_path / "spec.json", by_env)
    unset = start(None, "task", "create", "--spec", spec_file, "--skip-checks", env_home=home)
    ok = start(None, "task", "create", "--spec", spec_file, "--skip-checks", env_home=home, DRS_SRC_PW=ENV_PW)
    unset, ok = finish(unset), finish(ok)

    assert unset.returncode == 2
    assert "source.password_env" in unset.stderr and "DRS_SRC_PW" in unset.stderr
    assert ok.returncode == 0, ok.stderr
    shown = json.loads(drs(None, "task", "show", "orders-dr", "--json", env_home=home).stdout)
    assert shown["source"]["host"] == "127.0.0.1" and shown["source"]["port"] == 1
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    svc = TaskService(home)
    assert svc.spec_with_passwords("orders-dr").source.password.reveal() == ENV_PW
    svc.close()
    assert_no_password_in_store(home)


def test_invalid_input_exits_2_naming_the_field(tmp_path, monkeypatch):
    home = tmp_path / "home"
    existing = parse_spec(spec_dict("taken-dr"), env={})
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    TaskService(home).create(existing)
    bad_port = spec_dict(source=dict(spec_dict()["source"], port=70000))
    cases = {
        "source.port": (["task", "create", "--spec", write_spec(tmp_path / "a.json", bad_port), "--skip-checks"],
                        "1 to 65535"),
        "colour": (["task", "create", "--spec", write_spec(tmp_path / "b.json", spec_dict(colour="red")), "--skip-checks"],
                   "unknown key"),
        "--spec": (["task", "create", "--spec", str(tmp_path / "missing.json"), "--skip-checks"], "no such file"),
        "--spec ": (["task", "create", "--spec", write_spec(tmp_path / "c.json", '{"name": "x",'), "--skip-checks"],
                    "not valid JSON"),
        "name": (["task", "create", "--spec", write_spec(tmp_path / "d.json", spec_dict("taken-dr")), "--skip-checks"],
                 "already exists"),
        "ghost-dr": (["task", "show", "ghost-dr"], "no task named"),
        "ghost-dr ": (["task", "delete", "ghost-dr", "--yes"], "no task named"),
        "--spec  ": (["task", "create"], "required"),
        "COMMAND": ([], "required"),
    }  # fmt: skip
    procs = {key: start(home, *argv) for key, (argv, _) in cases.items()}
    for key, proc in procs.items():
        result = finish(proc)
        assert result.returncode == 2, (key, result.stderr)
        assert key.strip() in result.stderr and cases[key][1] in result.stderr, (key, result.stderr)
    # nothing was created, and the existing task kept its settings
    names = [t.name for t in Store(home).list_tasks()]
    assert names == ["taken-dr"]
    assert_no_password_in_store(home)


def test_other_failures_exit_1_without_traceback(tmp_path):
    newer = tmp_path / "newer-home"
    Store(newer).close()
    conn = sqlite3.connect(newer / STORE_FILE)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    not_a_dir = tmp_path / "file-home"
    not_a_dir.write_text("x")
    procs = [start(newer, "task", "list"), start(not_a_dir, "task", "list")]
    newer_result, file_result = (finish(p) for p in procs)
    assert newer_result.returncode == 1 and "newer DRS Desktop" in newer_result.stderr
    assert file_result.returncode == 1 and "as DRS home" in file_result.stderr


def test_help_exits_0():
    result = drs(None, "task", "--help")
    assert result.returncode == 0 and "usage: drs task" in result.stdout and "create" in result.stdout


def test_create_runs_prechecks_on_real_servers(dbs, tmp_path):
    from conftest import REPL_PASSWORD, make_spec

    home = tmp_path / "home"
    spec = make_spec(dbs, "checked-dr")
    dbs.source.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    # a non-empty database of the same name on the DR side is a failed item: refused, exit 2
    dbs.target.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)", "INSERT INTO shop.t VALUES (1)")
    refused = drs(home, "task", "create", "--spec", write_spec(tmp_path / "s.json", spec))
    assert refused.returncode == 2
    assert "DR database names not in use" in refused.stderr and "shop" in refused.stderr
    assert json.loads(drs(home, "task", "list", "--json").stdout) == []
    dbs.target.sql("DROP DATABASE shop")
    created = drs(home, "task", "create", "--spec", write_spec(tmp_path / "s.json", spec))
    assert created.returncode == 0, created.stderr
    assert REPL_PASSWORD not in created.stdout + created.stderr
    assert json.loads(drs(home, "task", "show", "checked-dr", "--json").stdout)["status"] == "starting"
    stored = b"".join(p.read_bytes() for p in home.glob(STORE_FILE + "*"))
    assert stored and REPL_PASSWORD.encode() not in stored
