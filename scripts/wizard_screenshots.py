"""Render every page of the Create Disaster Recovery Task wizard into docs/screenshots/wizard-*.png.

With --local-servers it starts two private MariaDB servers (bench/servers.py) with sample databases
and uses them. With --source/--target (host:port:user:password) the pages talk to those servers. Without them the
pages are filled with CANNED results (a fake backend below, for display only: nothing is connected).
Passwords are never visible: the fields echo as dots and the summary masks them. (A password given
with --source/--target is visible to other local users in the process list: use a test account.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DRS_SECRET_BACKEND", "file")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from drs_desktop.taskman import TaskManager  # noqa: E402
from drs_desktop.wizard import CreateTaskWizard, EngineBackend, WizardBackend  # noqa: E402
from engine.connect import ServerInfo  # noqa: E402
from engine.params import ParamComparison  # noqa: E402
from engine.precheck import PrecheckResult  # noqa: E402
from engine.spec import Endpoint, TaskSpec  # noqa: E402
from engine.tasks import TaskService  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
NAMES = (
    "wizard-1-task",
    "wizard-2-connections",
    "wizard-3-configure",
    "wizard-4-check",
    "wizard-5-params",
    "wizard-6-start",
)


# ---- CANNED results: for display only, used when no servers are given ---------------------------
CannedCheck = PrecheckResult  # the engine's own result types, filled with canned values
CannedParam = ParamComparison


@dataclass(frozen=True)
class CannedApply:
    name: str
    applied: bool
    value: str | None
    message: str
    mycnf_line: str | None


CANNED_CHECKS = [
    CannedCheck("Service database connectivity", "passed", "connected as drs (MariaDB 10.11.6)", ""),
    CannedCheck("DR database connectivity", "passed", "connected as drs (MariaDB 10.11.6)", ""),
    CannedCheck(
        "Service account privileges",
        "passed",
        "SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT granted",
        "",
    ),
    CannedCheck("DR account privileges", "passed", "ALL PRIVILEGES granted", ""),
    CannedCheck(
        "Binary log enabled, ROW, FULL image",
        "passed",
        "log_bin=ON, binlog_format=ROW, binlog_row_image=FULL",
        "",
    ),
    CannedCheck("Binary log retention", "passed", "expire_logs_days=7", ""),
    CannedCheck("server_id differs", "passed", "service 101, DR 202", ""),
    CannedCheck("Versions", "passed", "DR 10.11 is not older than service 10.11", ""),
    CannedCheck(
        "Tables without a primary key",
        "confirm",
        "orders.audit_trail has no primary key: updates are applied by matching every column",
        "Add a primary key, or confirm to go on",
        "no_pk",
    ),
    CannedCheck(
        "DR database names not in use", "passed", "orders, crm are empty or absent on the DR side", ""
    ),
]
CANNED_PARAMS = [
    CannedParam("character_set_server", "common", "utf8mb4", "utf8mb4", True, False),
    CannedParam("collation_server", "common", "utf8mb4_general_ci", "utf8mb4_general_ci", True, False),
    CannedParam("lower_case_table_names", "common", "0", "0", True, True),
    CannedParam("sql_mode", "common", "STRICT_TRANS_TABLES", "STRICT_TRANS_TABLES", True, False),
    CannedParam("time_zone", "common", "SYSTEM", "SYSTEM", True, False),
    CannedParam("max_allowed_packet", "common", "67108864", "16777216", False, False),
    CannedParam("innodb_buffer_pool_size", "performance", "268435456", "134217728", False, False),
    CannedParam("innodb_log_file_size", "performance", "268435456", "100663296", False, True),
    CannedParam("max_connections", "performance", "300", "151", False, False),
]


class CannedBackend(WizardBackend):
    """Fixed answers so the pages show realistic content without servers. Display only."""

    def test_connection(self, endpoint: Endpoint) -> ServerInfo:
        return ServerInfo("10.11.6-MariaDB-0+deb12u1", "mariadb", (10, 11), 101, "db", endpoint.port, None)

    def database_sizes(self, endpoint: Endpoint) -> list[tuple[str, int]]:
        return [("crm", 48_300_000), ("orders", 2_150_000_000), ("reporting", 730_000_000)]

    def run_prechecks(self, spec: TaskSpec, on_progress: Any, stop: threading.Event) -> list[Any]:
        for i, check in enumerate(CANNED_CHECKS, start=1):
            on_progress(i, len(CANNED_CHECKS), check.item)
        return list(CANNED_CHECKS)

    def compare_params(self, spec: TaskSpec) -> list[Any]:
        return list(CANNED_PARAMS)

    def apply_params(self, spec: TaskSpec, names: list[str]) -> list[Any]:
        return [CannedApply(n, True, "", "", None) for n in names]


# ---- driving the wizard ---------------------------------------------------------------------------
def settle(app: QApplication, taskman: TaskManager, seconds: float = 60) -> None:
    """Let background jobs finish and their results reach the widgets."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        taskman.wait_idle(100)
        app.processEvents()
        if taskman.pool.activeThreadCount() == 0 and not taskman._relays:
            break
    for _ in range(5):
        app.processEvents()


def endpoint_arg(value: str) -> dict[str, Any]:
    host, port, user, password = value.split(":", 3)
    return {"host": host, "port": int(port), "user": user, "password": password, "tls": "off"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="service database host:port:user:password (real mode)")
    parser.add_argument("--target", help="DR database host:port:user:password (real mode)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--local-servers",
        action="store_true",
        help="start two private MariaDB servers with sample databases and use them (real mode)",
    )
    args = parser.parse_args(argv)
    if args.local_servers:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from bench.servers import REPL_PASSWORD, REPL_USER, bench_servers

        with bench_servers() as servers:
            servers.source.sql(
                "CREATE DATABASE shop",
                "CREATE TABLE shop.orders (id INT PRIMARY KEY, customer VARCHAR(40), total DECIMAL(10,2))",
                "INSERT INTO shop.orders SELECT seq, CONCAT('customer ', seq), seq * 1.5 FROM shop.seq_1_to_2000",
                "CREATE DATABASE crm",
                "CREATE TABLE crm.contacts (id INT PRIMARY KEY, email VARCHAR(80))",
                "CREATE TABLE crm.audit_trail (at DATETIME, what TEXT)",  # no key: a confirmation item
            )
            servers.target.sql("SET GLOBAL max_connections = 400, GLOBAL wait_timeout = 600")
            args.source = f"127.0.0.1:{servers.source.port}:{REPL_USER}:{REPL_PASSWORD}"
            args.target = f"127.0.0.1:{servers.target.port}:{REPL_USER}:{REPL_PASSWORD}"
            return render(args)
    return render(args)


def render(args: argparse.Namespace) -> int:
    real = bool(args.source and args.target)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    home = Path(tempfile.mkdtemp(prefix="drs-shots-"))
    service = TaskService(home)
    taskman = TaskManager()
    prefill = {
        "name": "orders-dr",
        "description": "Orders and CRM, DR copy in the second data centre",
        "relationship": "standby",
        "network": "public",
        "source": endpoint_arg(args.source)
        if real
        else {"host": "db-main.example.net", "port": 3306, "user": "drs", "password": "not-a-real-password"},
        "target": endpoint_arg(args.target)
        if real
        else {"host": "db-dr.example.net", "port": 3306, "user": "drs", "password": "not-a-real-password"},
        "flow_control": {
            "max_mb_s": 80,
            "windows": [{"start": "01:00", "end": "06:00"}, {"start": "20:00", "end": "23:00"}],
        },
        "migrate_definer": True,
        "tags": {"team": "dba", "env": "production"},
    }
    wizard = CreateTaskWizard(
        service, taskman, prefill=prefill, backend=EngineBackend() if real else CannedBackend()
    )
    wizard.resize(wizard.minimumSize())
    wizard.show()
    args.out.mkdir(parents=True, exist_ok=True)

    def shoot(index: int) -> None:
        settle(app, taskman)
        path = args.out / f"{NAMES[index]}.png"
        wizard.grab().save(str(path))
        print(path)

    shoot(0)
    wizard.next()
    page = wizard.connections_page
    for box in (page.source_box, page.target_box):
        box.test_button.click()
    page.agreement.setChecked(True)
    shoot(1)
    wizard.next()
    shoot(2)
    wizard.next()
    settle(app, taskman)
    check = wizard.check_page
    for row, result in enumerate(check.model.results):
        if result.result == "confirm":
            check.model.setData(
                check.model.index(row, 0), Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole
            )
    shoot(3)
    wizard.next()
    settle(app, taskman)
    params = wizard.params_page
    for row, p in enumerate(params.model.rows[:]):
        if not p.consistent and p.name == "max_allowed_packet":
            params.model.setData(
                params.model.index(row, 0), Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole
            )
    if not real:
        params.show_apply_results(
            [
                CannedApply("max_connections", True, "300", "", None),
                CannedApply(
                    "innodb_log_file_size",
                    False,
                    None,
                    "read-only variable",
                    "innodb_log_file_size = 268435456",
                ),
            ]
        )
    shoot(4)
    wizard.next()
    shoot(5)
    wizard.close()
    taskman.wait_idle()
    service.close()
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
