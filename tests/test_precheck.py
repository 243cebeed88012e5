"""Pre-check items against the two real test servers: the happy path, then each item made to fail.

Every global variable a test changes is restored in a finally block; accounts are named drs_t* so the
dbs fixture drops them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
import pytest
from conftest import MariaDBServer, ServerPair, free_port, make_spec

from engine.connect import ServerInfo
from engine.precheck import REGISTRY, Grants, PrecheckResult, run_prechecks, version_verdict
from engine.spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent
KEYS = [c.key for c in REGISTRY]


def check(servers: ServerPair, **overrides) -> dict[str, PrecheckResult]:
    results = run_prechecks(parse_spec(make_spec(servers, **overrides)))
    assert [r.key for r in results] == KEYS
    return {r.key: r for r in results}


@contextmanager
def global_vars(server: MariaDBServer, **values) -> Iterator[None]:
    """SET GLOBAL for the test, the old values back afterwards."""
    old = {name: server.sql(f"SELECT @@GLOBAL.{name}")[0][0] for name in values}
    conn = server.root()
    try:
        with conn.cursor() as cur:
            for name, value in values.items():
                cur.execute(f"SET GLOBAL {name} = %s", (value,))
        yield
    finally:
        with conn.cursor() as cur:
            for name, value in old.items():
                cur.execute(f"SET GLOBAL {name} = %s", (value,))
        conn.close()


def shop(server: MariaDBServer, db: str = "shop") -> None:
    server.sql(
        f"CREATE DATABASE `{db}`",
        f"CREATE TABLE `{db}`.orders (id INT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(50) CHARACTER SET latin1) ENGINE=InnoDB",
        f"INSERT INTO `{db}`.orders VALUES (1, 9.5, 'x'), (2, 3.25, 'y')",
        f"CREATE VIEW `{db}`.big_orders AS SELECT * FROM `{db}`.orders WHERE amount > 5",
    )


def account(server: MariaDBServer, user: str, password: str, *grants: str) -> dict:
    server.sql(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'", *[f"{g} TO '{user}'@'%'" for g in grants]
    )
    return {"host": "127.0.0.1", "port": server.port, "user": user, "password": password, "tls": "off"}


def test_happy_path_every_item_passes(dbs: ServerPair) -> None:
    shop(dbs.source)
    results = check(dbs)
    assert {k: r.result for k, r in results.items() if r.result != "passed"} == {}
    assert "log_bin is ON" in results["source_binlog_enabled"].reason
    assert "server_id 101 (service) and 202 (DR)" in results["server_ids"].reason
    assert "shop" in results["source_databases_exist"].reason
    assert "latin1_swedish_ci" in results["collations"].reason
    assert all(r.fix == "" for r in results.values())
    assert set(results["versions"].to_json()) >= {"item", "result", "reason", "fix"}


def test_progress_reported_and_stop_honoured(dbs: ServerPair) -> None:
    spec = parse_spec(make_spec(dbs))
    seen: list[tuple[int, int, str]] = []
    stop = threading.Event()

    def on_progress(done: int, total: int, item: str) -> None:
        seen.append((done, total, item))
        if done == 3:
            stop.set()

    results = run_prechecks(spec, on_progress=on_progress, stop=stop)
    assert [r.key for r in results] == KEYS[:4]  # the item running when stop came still finishes
    assert seen[0] == (0, len(KEYS), "connecting")
    assert seen[1:] == [(i, len(KEYS), REGISTRY[i].name) for i in range(4)]
    seen.clear()
    assert len(run_prechecks(spec, on_progress=on_progress)) == len(KEYS)
    assert seen[-1] == (len(KEYS), len(KEYS), "")


def test_misconfigured_binlog_and_server_settings(dbs: ServerPair) -> None:
    shop(dbs.source)
    with (
        global_vars(
            dbs.source,
            binlog_format="STATEMENT",
            binlog_row_image="MINIMAL",
            binlog_row_metadata="MINIMAL",
            binlog_expire_logs_seconds=3600,
            server_id=202,
            max_allowed_packet=64 * 1024 * 1024,
        ),
        global_vars(dbs.target, max_allowed_packet=1024 * 1024, time_zone="+05:00", sql_mode="ANSI_QUOTES"),
    ):
        r = check(dbs)
    assert r["source_binlog_format"].result == "failed"
    assert r["source_binlog_format"].reason.startswith("binlog_format is STATEMENT;")
    assert "binlog_format='ROW'" in r["source_binlog_format"].fix
    assert (
        r["source_binlog_row_image"].result == "failed" and "MINIMAL" in r["source_binlog_row_image"].reason
    )
    assert (
        r["source_binlog_row_metadata"].result == "failed"
        and "MINIMAL" in r["source_binlog_row_metadata"].reason
    )
    assert r["source_binlog_row_metadata"].fix.startswith("SET GLOBAL binlog_row_metadata='FULL'")
    assert (
        r["source_binlog_retention"].result == "confirm" and "3600 s" in r["source_binlog_retention"].reason
    )
    assert r["server_ids"].result == "failed" and "both servers have server_id 202" in r["server_ids"].reason
    assert r["distinct_servers"].result == "passed"  # same host, different ports: two servers
    assert r["max_allowed_packet"].result == "failed"
    assert (
        "1048576" in r["max_allowed_packet"].reason
        and "SET GLOBAL max_allowed_packet=67108864" in r["max_allowed_packet"].fix
    )
    assert r["time_zone"].result == "confirm" and "+05:00" in r["time_zone"].reason
    assert (
        r["sql_mode"].result == "confirm" and "only on the DR database: ANSI_QUOTES" in r["sql_mode"].reason
    )
    assert r["source_binlog_enabled"].result == "passed" and r["source_privileges"].result == "passed"
    # and everything is back: the same checks pass again
    again = check(dbs)
    assert [k for k, res in again.items() if res.result != "passed"] == []


def test_service_account_missing_privileges_named_and_fix_works(dbs: ServerPair) -> None:
    shop(dbs.source)
    source = account(
        dbs.source, "drs_t_lim", "Lim-pw-1",
        "GRANT SELECT, SHOW VIEW, TRIGGER ON `shop`.*", "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.*",
    )  # fmt: skip
    r = check(dbs, source=source, databases=["shop"])["source_privileges"]
    assert r.result == "failed"
    assert r.reason == "'drs_t_lim'@'%' lacks: EVENT, RELOAD"
    assert r.fix == "GRANT RELOAD ON *.* TO 'drs_t_lim'@'%'; GRANT EVENT ON `shop`.* TO 'drs_t_lim'@'%';"
    dbs.source.sql(*[s for s in r.fix.split(";") if s.strip()])  # the DBA runs the fix as given
    assert check(dbs, source=source, databases=["shop"])["source_privileges"].result == "passed"


def test_service_account_with_only_select(dbs: ServerPair) -> None:
    shop(dbs.source)
    source = account(dbs.source, "drs_t_lim", "Lim-pw-1", "GRANT SELECT ON *.*")
    r = check(dbs, source=source)["source_privileges"]
    assert r.result == "failed"
    assert r.reason.endswith("lacks: SHOW VIEW, TRIGGER, EVENT, REPLICATION SLAVE, BINLOG MONITOR, RELOAD")


def test_dr_account_missing_privileges_and_read_only_admin(dbs: ServerPair) -> None:
    shop(dbs.source)
    # SUPER is not enough on MariaDB 10.11: it no longer lets an account write while read_only is ON
    target = account(
        dbs.target, "drs_t_dr", "Dr-pw-1", "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, SUPER ON *.*"
    )
    r = check(dbs, target=target)["target_privileges"]
    assert r.result == "failed"
    assert r.reason == (
        "'drs_t_dr'@'%' lacks: ALTER, INDEX, CREATE VIEW, CREATE ROUTINE, ALTER ROUTINE, TRIGGER, EVENT, "
        "REFERENCES, READ_ONLY ADMIN"
    )
    dbs.target.sql(*[s for s in r.fix.split(";") if s.strip()])
    assert check(dbs, target=target)["target_privileges"].result == "passed"
    # what the item promises: the account writes while the DR database is read-only
    dbs.target.sql(
        "CREATE DATABASE drs_t_ro",
        "CREATE TABLE drs_t_ro.t (id INT PRIMARY KEY)",
        "SET GLOBAL read_only = ON",
    )
    try:
        conn = pymysql.connect(
            host="127.0.0.1", port=dbs.target.port, user="drs_t_dr", password="Dr-pw-1", autocommit=True
        )
        with conn.cursor() as cur:
            cur.execute("INSERT INTO drs_t_ro.t VALUES (1)")
        conn.close()
    finally:
        dbs.target.sql("SET GLOBAL read_only = OFF")
    assert dbs.target.sql("SELECT id FROM drs_t_ro.t") == [(1,)]


def test_non_empty_database_on_dr_side_fails_empty_one_passes(dbs: ServerPair) -> None:
    shop(dbs.source)
    shop(dbs.source, "crm")
    dbs.target.sql(
        "CREATE DATABASE shop", "CREATE TABLE shop.old (id INT PRIMARY KEY)", "CREATE DATABASE crm"
    )
    r = check(dbs)["target_databases_empty"]
    assert r.result == "failed"
    assert "shop (1 objects)" in r.reason and "crm" not in r.reason
    dbs.target.sql("DROP TABLE shop.old")
    r = check(dbs)["target_databases_empty"]
    assert r.result == "passed" and "crm, shop" in r.reason


def test_tables_without_primary_key_and_myisam_need_confirmation(dbs: ServerPair) -> None:
    shop(dbs.source)
    dbs.source.sql(
        "CREATE TABLE shop.audit (at DATETIME, what VARCHAR(50)) ENGINE=InnoDB",
        "CREATE TABLE shop.legacy (id INT PRIMARY KEY) ENGINE=MyISAM",
    )
    r = check(dbs)
    assert r["primary_keys"].result == "confirm"
    assert "1 table(s) without a primary key: shop.audit;" in r["primary_keys"].reason
    assert r["storage_engines"].result == "confirm"
    assert (
        "shop.legacy (MyISAM)" in r["storage_engines"].reason and "orders" not in r["storage_engines"].reason
    )


def test_stored_functions_need_log_bin_trust_function_creators_on_dr(dbs: ServerPair) -> None:
    shop(dbs.source)
    dbs.source.sql(
        "CREATE FUNCTION shop.tax(x DECIMAL(10,2)) RETURNS DECIMAL(10,2) DETERMINISTIC RETURN x * 0.2"
    )
    r = check(dbs)["function_creators"]
    assert r.result == "failed" and "shop.tax" in r.reason
    assert r.fix.startswith("SET GLOBAL log_bin_trust_function_creators=ON")
    with global_vars(dbs.target, log_bin_trust_function_creators="ON"):
        assert check(dbs)["function_creators"].result == "passed"


def test_definers_missing_on_dr_side_unless_migrated(dbs: ServerPair) -> None:
    shop(dbs.source)
    dbs.source.sql(
        "CREATE USER 'drs_t_def'@'%'",
        "GRANT SELECT ON shop.* TO 'drs_t_def'@'%'",
        "CREATE DEFINER='drs_t_def'@'%' VIEW shop.cheap AS SELECT id FROM shop.orders WHERE amount < 5",
    )
    r = check(dbs, migrate_definer=False)["definers"]
    assert r.result == "confirm" and "drs_t_def@%" in r.reason and "root@localhost" not in r.reason
    assert check(dbs, migrate_definer=True)["definers"].result == "passed"


def test_selected_database_missing_on_service_side(dbs: ServerPair) -> None:
    shop(dbs.source)
    r = check(dbs, databases=["shop", "nope"])
    assert r["source_databases_exist"].result == "failed" and "nope" in r["source_databases_exist"].reason
    assert "shop" not in r["source_databases_exist"].reason
    assert r["primary_keys"].result == "passed"  # the other items still look at shop


def test_wrong_password_and_unused_port(dbs: ServerPair) -> None:
    spec = make_spec(dbs)
    spec["source"]["password"] = "Not-the-pw-9"
    spec["target"]["port"] = free_port()
    results = run_prechecks(parse_spec(spec))
    r = {x.key: x for x in results}
    assert (
        r["source_connection"].result == "failed" and "access denied" in r["source_connection"].reason.lower()
    )
    assert (
        r["target_connection"].result == "failed"
        and "connection refused" in r["target_connection"].reason.lower()
    )
    assert (
        r["source_binlog_format"].reason
        == f"skipped: cannot connect to the service database (127.0.0.1:{dbs.source.port})"
    )
    assert r["target_privileges"].reason.startswith("skipped: cannot connect to the DR database")
    assert all(x.result == "failed" for x in results)
    text = json.dumps([x.to_json() for x in results])
    assert "Not-the-pw-9" not in text and spec["target"]["password"] not in text


def test_same_server_on_both_sides(dbs: ServerPair) -> None:
    shop(dbs.source)
    src = make_spec(dbs)["source"]
    r = check(dbs, target={**src, "host": "localhost"})
    assert r["distinct_servers"].result == "failed"
    assert (
        f"127.0.0.1:{dbs.source.port} and localhost:{dbs.source.port} reach the same server"
        in r["distinct_servers"].reason
    )
    assert r["server_ids"].result == "failed"


@pytest.fixture(scope="module")
def odd_server(servers: ServerPair) -> Iterator[MariaDBServer]:
    """A third server without a binlog and with lower_case_table_names=1 (both need a restart to change)."""
    server = MariaDBServer("precheck-odd", server_id=303)
    server.start(servers.base, extra_args=["--skip-log-bin", "--lower-case-table-names=1"])
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.datadir, ignore_errors=True)


def test_binlog_off_and_lower_case_table_names(dbs: ServerPair, odd_server: MariaDBServer) -> None:
    odd = {
        "host": "127.0.0.1",
        "port": odd_server.port,
        "user": "drs",
        "password": dbs.source.endpoint.password.reveal(),
    }
    odd_server.sql("DROP DATABASE IF EXISTS shop")
    shop(odd_server)
    r = check(dbs, source=odd)
    assert (
        r["source_binlog_enabled"].result == "failed"
        and "log_bin is OFF" in r["source_binlog_enabled"].reason
    )
    assert r["lower_case_table_names"].result == "failed"
    assert "1 on the service database and 0 on the DR database" in r["lower_case_table_names"].reason
    # as the DR side: no binlog there, so stored functions can be created without the trust flag
    shop(dbs.source)
    dbs.source.sql("CREATE FUNCTION shop.one() RETURNS INT DETERMINISTIC RETURN 1")
    odd_server.sql("DROP DATABASE shop")
    r = check(dbs, target=odd)
    assert r["function_creators"].result == "passed" and "DR binlog is off" in r["function_creators"].reason


def info(version: str) -> ServerInfo:
    family = "mariadb" if "mariadb" in version.lower() else "mysql"
    return ServerInfo(
        version, family, (int(version.split(".")[0]), int(version.split(".")[1])), 1, "h", 3306, None
    )


@pytest.mark.parametrize(
    ("source", "target", "result"),
    [
        ("10.11.19-MariaDB", "10.11.19-MariaDB-log", "passed"),
        ("10.11.6-MariaDB", "10.6.16-MariaDB", "failed"),
        ("10.6.16-MariaDB", "10.11.6-MariaDB", "confirm"),
        ("8.0.36", "8.0.30", "failed"),
        ("8.0.30", "8.0.36", "passed"),
        ("5.7.44-log", "10.11.6-MariaDB", "confirm"),
        ("8.0.36", "10.11.6-MariaDB", "failed"),
        ("10.11.6-MariaDB", "8.0.36", "failed"),
    ],
)
def test_version_pairs(source: str, target: str, result: str) -> None:
    assert version_verdict(info(source), info(target))[0] == result


def test_grants_parsed_from_mysql8_and_mariadb_wording() -> None:
    mysql8 = Grants.parse([
        "GRANT SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `u`@`%`",
        "GRANT CONNECTION_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `u`@`%`",
        "GRANT SHOW VIEW, TRIGGER ON `app\\_db`.* TO `u`@`%`",
        "GRANT INSERT (`a`) ON `x`.`t` TO `u`@`%`",
        "GRANT EXECUTE ON PROCEDURE `x`.`p` TO `u`@`%`",
        "REVOKE SELECT ON `secret`.* FROM `u`@`%`",
    ])  # fmt: skip
    assert mysql8.has_global(["CONNECTION_ADMIN"]) and mysql8.has_global(["SYSTEM_VARIABLES_ADMIN"])
    assert mysql8.has_on_db(["SHOW VIEW"], "app_db") and not mysql8.has_on_db(["SHOW VIEW"], "appXdb")
    assert not mysql8.has_on_db(["INSERT"], "x") and not mysql8.has_on_db(["SELECT"], "secret")
    maria = Grants.parse([
        "GRANT ALL PRIVILEGES ON *.* TO `drs`@`%` IDENTIFIED BY PASSWORD '*0123' WITH GRANT OPTION",
        "GRANT `r1` TO `drs`@`%`",
    ])  # fmt: skip
    assert maria.has_global(["READ_ONLY ADMIN"]) and maria.has_on_db(["EVENT"], "any")


def _cli(spec: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "engine.cli", "task", "check", "--spec", str(path), "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_check_json_and_exit_codes(dbs: ServerPair, tmp_path: Path, home: Path) -> None:
    shop(dbs.source)
    ok = _cli(make_spec(dbs), tmp_path)
    assert ok.returncode == 0, ok.stderr
    items = json.loads(ok.stdout)
    assert len(items) == len(KEYS)
    assert all({"item", "result", "reason", "fix"} <= set(i) and i["result"] == "passed" for i in items)
    dbs.target.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    bad = _cli(make_spec(dbs), tmp_path)
    assert bad.returncode == 2
    failed = [i for i in json.loads(bad.stdout) if i["result"] == "failed"]
    assert [i["item"] for i in failed] == ["DR database names not in use"] and "shop" in failed[0]["reason"]
    invalid = _cli(make_spec(dbs, name="x"), tmp_path)
    assert invalid.returncode == 2 and "name:" in invalid.stderr and "Traceback" not in invalid.stderr
    assert invalid.stdout == ""
