"""A newcomer's five minutes through `drs sandbox`: start two private servers with a sample shop and a
trickle of writes, watch task sandbox-dr replicate them, stop, start again on the same data, wipe.
One sandbox lifecycle (real mariadbd processes, the CLI as a subprocess), plus a broken installation.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from dr_helpers import wait_for

from engine import sandbox
from engine.localserver import process_alive

ENV = {k: v for k, v in os.environ.items() if k != "DRS_HOME"} | {"DRS_SECRET_BACKEND": "file"}
TABLES = ("customers", "products", "orders", "order_lines", "order_events")
LOADED_ORDERS = 15_000  # the highest order id the sample loads; the trickle's orders come after


def drs(
    home: Path, *args: str, env: dict[str, str] = ENV, timeout: float = 180
) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "engine.cli", "--home", str(home), *args],
                            capture_output=True, text=True, env=env, timeout=timeout)  # fmt: skip
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def sandbox_status(home: Path) -> dict:
    result = drs(home, "sandbox", "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def task_show(home: Path) -> dict:
    result = drs(home, "task", "show", sandbox.SANDBOX_TASK, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sandbox_pids(st: dict) -> list[int]:
    pids = [st["servers"][side]["pid"] for side in ("service", "dr")]
    return [p for p in [*pids, st["trickle"]["pid"], st["task"]["runner_pid"]] if p]


def connect(endpoint: dict) -> pymysql.connections.Connection:
    return pymysql.connect(host=endpoint["host"], port=endpoint["port"], user=endpoint["user"],
                           password=endpoint["password"], database="sandbox_shop", autocommit=True)  # fmt: skip


def counts(endpoint: dict) -> dict[str, int]:
    conn = connect(endpoint)
    try:
        with conn.cursor() as cur:
            result = {}
            for table in TABLES:
                cur.execute(f"SELECT COUNT(*) FROM {table}")
                result[table] = cur.fetchone()[0]
            return result
    finally:
        conn.close()


def max_order(endpoint: dict) -> int:
    conn = connect(endpoint)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COALESCE(MAX(id), 0) FROM orders")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def prefill(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The sandbox's connections with their passwords, as the engine hands them to the wizard."""
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    return sandbox.wizard_prefill(home)


@pytest.fixture
def sandbox_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "drs-home"
    yield home
    # whatever the test did, no server, trickle or runner outlives it
    drs(home, "sandbox", "stop", "--wipe")


def test_sandbox_start_replicate_stop_restart_wipe(
    sandbox_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = sandbox_home
    started = drs(home, "sandbox", "start")
    assert started.returncode == 0, started.stderr
    assert f"drs --home {home} task show sandbox-dr" in started.stdout
    assert "drs-desktop" in started.stdout

    st = sandbox_status(home)
    assert st["running"] is True and st["home"] == str(home) and st["directory"] == str(home / "sandbox")
    for side in ("service", "dr"):
        server = st["servers"][side]
        assert server["host"] == "127.0.0.1" and isinstance(server["port"], int) and server["running"] is True
        assert process_alive(server["pid"])
    assert st["trickle"]["running"] is True and process_alive(st["trickle"]["pid"])
    assert st["task"]["name"] == "sandbox-dr" and st["task"]["runner_running"] is True

    wait_for(lambda: task_show(home)["status"] == "replicating", timeout=120, what="sandbox-dr replicating")
    connections = prefill(home, monkeypatch)
    service, dr = connections["source"], connections["target"]
    assert connections["databases"] == ["sandbox_shop"] and connections["start"] == "now"
    assert (service["port"], dr["port"]) == (st["servers"]["service"]["port"], st["servers"]["dr"]["port"])
    # the sample (~50k rows) was copied, and the trickle's orders and the trigger's audit rows follow
    assert sum(counts(dr).values()) > 45_000
    wait_for(lambda: max_order(dr) > LOADED_ORDERS, what="a trickle order on the DR side")
    wait_for(lambda: counts(dr)["order_events"] > 0, what="an audit row of the trigger on the DR side")
    compared = drs(home, "compare", "sandbox-dr", "--level", "values", "--json")
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert json.loads(compared.stdout)["consistent"] is True
    # the generated passwords stay in the secret store: not in state.json, nor in any log
    for path in (home / "sandbox").iterdir():
        if path.is_file():
            text = path.read_text(errors="replace")
            assert service["password"] not in text and dr["password"] not in text, path

    dr_before = counts(dr)
    dr_max_order_before = max_order(dr)
    stopped = drs(home, "sandbox", "stop")
    assert stopped.returncode == 0, stopped.stderr
    for pid in sandbox_pids(st):
        assert not process_alive(pid), f"process {pid} still runs after `drs sandbox stop`"
    after = sandbox_status(home)
    assert after["running"] is False and after["trickle"]["running"] is False
    assert not any(after["servers"][side]["running"] for side in ("service", "dr"))
    assert after["task"]["runner_running"] is False and after["task"]["status"] == "replicating"

    # the DR port taken meanwhile: the start fails, says why, and stops the service server it started
    with socket.socket() as squatter:
        squatter.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # its old connections linger in TIME_WAIT
        squatter.bind(("127.0.0.1", dr["port"]))
        squatter.listen()
        refused = drs(home, "sandbox", "start")
    assert refused.returncode == 1
    assert f"port {dr['port']}" in refused.stderr and "in use" in refused.stderr
    failed = sandbox_status(home)
    assert failed["running"] is False and not sandbox_pids(failed)

    again = drs(home, "sandbox", "start")
    assert again.returncode == 0, again.stderr
    assert (
        "loading the sample" not in again.stdout and "pre-checks" not in again.stdout
    )  # no reload, no new task
    assert drs(home, "sandbox", "start").stdout.startswith("the sandbox is already running")
    tasks = json.loads(drs(home, "task", "list", "--json").stdout)
    assert [t["name"] for t in tasks] == ["sandbox-dr"]
    created = drs(home, "task", "logs", "sandbox-dr", "--grep", "task created", "--json")
    assert len(json.loads(created.stdout)) == 1
    # the same data: what the DR side held before the stop is still there, and replication goes on
    assert counts(dr)["customers"] == dr_before["customers"] and max_order(dr) >= dr_max_order_before
    service_max_order = max_order(service)
    wait_for(
        lambda: max_order(dr) > service_max_order, what="a new trickle order on the DR side after the restart"
    )
    assert sandbox_status(home)["task"]["runner_running"] is True

    datadirs = [Path(st["servers"][side]["datadir"]) for side in ("service", "dr")]
    wiped = drs(home, "sandbox", "stop", "--wipe")
    assert wiped.returncode == 0, wiped.stderr
    assert not (home / "sandbox").exists() and not any(d.exists() for d in datadirs)
    assert drs(home, "task", "show", "sandbox-dr").returncode == 2
    with pytest.raises(sandbox.SandboxError):
        sandbox.wizard_prefill(home)
    final = sandbox_status(home)
    assert final["running"] is False and final["set_up"] is False and final["task"]["status"] is None


def test_sandbox_start_without_mariadb_says_what_to_install(sandbox_home: Path) -> None:
    home = sandbox_home
    broken = ENV | {"PATH": "/usr/bin:/bin", "DRS_MARIADBD": str(home / "no-such-dir" / "mariadbd")}
    result = drs(home, "sandbox", "start", env=broken)
    assert result.returncode == 1
    assert "install mariadb-server (e.g. apt-get install mariadb-server)" in result.stderr
    assert "DRS_MARIADBD" in result.stderr
    st = sandbox_status(home)
    assert st["running"] is False and not sandbox_pids(st)
    assert not (home / "sandbox").exists()
