"""Compare Parameters against the real test servers: differences shown, applied, read back; restart-only
parameters come back as my.cnf lines. Every global changed on a shared server is restored.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MariaDBServer, ServerPair, make_spec

from engine.params import ParamComparison, apply_params, compare_params, same_value
from engine.spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent
CHANGED = ("wait_timeout", "max_connections", "long_query_time", "sql_mode")


@pytest.fixture
def changed_target(dbs: ServerPair) -> Iterator[ServerPair]:
    """The DR server with four parameters unlike the service server's; the old values come back after."""
    old = dbs.target.sql("SELECT " + ", ".join(f"@@GLOBAL.{n}" for n in CHANGED))[0]
    dbs.target.sql(
        "SET GLOBAL wait_timeout = 1234",
        "SET GLOBAL max_connections = 77",
        "SET GLOBAL long_query_time = 2.5",
        "SET GLOBAL sql_mode = 'ANSI_QUOTES,NO_ENGINE_SUBSTITUTION'",
    )
    try:
        yield dbs
    finally:
        conn = dbs.target.root()
        with conn.cursor() as cur:
            for name, value in zip(CHANGED, old, strict=True):
                cur.execute(f"SET GLOBAL {name} = %s", (value,))
        conn.close()


def by_name(rows: list[ParamComparison]) -> dict[str, ParamComparison]:
    return {r.name: r for r in rows}


def test_compare_shows_differences_and_apply_makes_them_consistent(changed_target: ServerPair) -> None:
    dbs = changed_target
    spec = parse_spec(make_spec(dbs))
    rows = by_name(compare_params(spec))
    source_values = {n: str(dbs.source.sql(f"SELECT @@GLOBAL.{n}")[0][0]) for n in CHANGED}
    assert (
        rows["wait_timeout"].target_value == "1234"
        and rows["wait_timeout"].source_value == source_values["wait_timeout"]
    )
    assert {n for n, r in rows.items() if not r.consistent} == set(CHANGED)
    assert rows["max_connections"].category == "common" and rows["long_query_time"].category == "performance"
    assert not any(rows[n].needs_restart for n in CHANGED)
    assert rows["tx_isolation"].consistent and rows["tx_isolation"].source_value == "REPEATABLE-READ"
    assert rows["lower_case_table_names"].needs_restart

    results = {r.name: r for r in apply_params(spec, list(CHANGED))}
    assert all(r.applied for r in results.values()), results
    assert results["max_connections"].value == source_values["max_connections"]
    # re-read from the server: what the DR side has now
    assert [r.name for r in compare_params(spec) if not r.consistent] == []
    assert str(dbs.target.sql("SELECT @@GLOBAL.max_connections")[0][0]) == source_values["max_connections"]
    assert same_value(
        str(dbs.target.sql("SELECT @@GLOBAL.long_query_time")[0][0]), source_values["long_query_time"]
    )


def test_apply_unknown_and_consistent_names_say_so(dbs: ServerPair) -> None:
    spec = parse_spec(make_spec(dbs))
    unknown, same = apply_params(spec, ["no_such_param", "wait_timeout"])
    assert not unknown.applied and "not one of the compared parameters" in unknown.message
    assert not same.applied and same.message.startswith("already consistent")


@pytest.fixture(scope="module")
def small_log_buffer(servers: ServerPair) -> Iterator[MariaDBServer]:
    """A third server whose innodb_log_buffer_size (read-only at run time on MariaDB) differs."""
    server = MariaDBServer("params-odd", server_id=404)
    server.start(servers.base, extra_args=["--innodb-log-buffer-size=8388608"])
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.datadir, ignore_errors=True)


def test_restart_only_parameter_comes_back_as_mycnf_line(
    dbs: ServerPair, small_log_buffer: MariaDBServer
) -> None:
    target = {
        "host": "127.0.0.1",
        "port": small_log_buffer.port,
        "user": "drs",
        "password": dbs.source.endpoint.password.reveal(),
    }
    spec = parse_spec(make_spec(dbs, target=target))
    row = by_name(compare_params(spec))["innodb_log_buffer_size"]
    source_value = str(dbs.source.sql("SELECT @@GLOBAL.innodb_log_buffer_size")[0][0])
    assert (row.target_value, row.consistent, row.needs_restart) == ("8388608", False, True)
    (result,) = apply_params(spec, ["innodb_log_buffer_size"])
    assert not result.applied
    assert result.mycnf_line == f"innodb_log_buffer_size = {source_value}"
    assert "restart" in result.message
    assert small_log_buffer.sql("SELECT @@GLOBAL.innodb_log_buffer_size") == [(8388608,)]


def _cli(tmp_path: Path, spec: dict, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "engine.cli", "task", "params", "--spec", str(path), "--json", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_params_json_shapes_and_exit_codes(
    changed_target: ServerPair, tmp_path: Path, home: Path
) -> None:
    dbs = changed_target
    compared = _cli(tmp_path, make_spec(dbs))
    assert compared.returncode == 0, compared.stderr
    rows = json.loads(compared.stdout)
    assert {"name", "category", "source_value", "target_value", "consistent", "needs_restart"} == set(rows[0])
    assert {r["name"] for r in rows if not r["consistent"]} == set(CHANGED)

    applied = _cli(tmp_path, make_spec(dbs), "--apply", "wait_timeout")
    assert applied.returncode == 0, applied.stderr
    data = json.loads(applied.stdout)
    assert set(data) == {"comparisons", "applied"}
    assert data["applied"][0]["name"] == "wait_timeout" and data["applied"][0]["applied"] is True
    assert next(r for r in data["comparisons"] if r["name"] == "wait_timeout")["consistent"] is True

    bad = _cli(tmp_path, make_spec(dbs), "--apply", "wait_timeoot")
    assert bad.returncode == 2 and "wait_timeoot" in bad.stderr and "Traceback" not in bad.stderr
    invalid = _cli(tmp_path, make_spec(dbs, relationship="sideways"))
    assert invalid.returncode == 2 and "relationship" in invalid.stderr
