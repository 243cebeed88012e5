"""Render the task details on their "Data comparison" tab into docs/screenshots/details-compare.png.

Starts two private MariaDB servers (bench/servers.py), replicates a small shop database with a real task
(the TaskRunner in a thread until it replicates, then stopped), changes a few rows and objects on the
DR side, and runs a Values compare and an Objects compare through the tab, as a DBA would.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DRS_SECRET_BACKEND", "file")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtWidgets import QApplication  # noqa: E402

from drs_desktop.details import TaskDetailsDialog  # noqa: E402
from drs_desktop.taskman import TaskManager  # noqa: E402
from engine.runner import TaskRunner  # noqa: E402
from engine.spec import parse_spec  # noqa: E402
from engine.status import Status  # noqa: E402
from engine.tasks import TaskService  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
NAME = "orders-dr"


def wait_until(app: QApplication, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def build_source(server) -> None:
    server.sql(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(60) NOT NULL, email VARCHAR(80))",
        "CREATE TABLE shop.orders (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2), "
        "status VARCHAR(12), KEY by_customer (customer_id))",
        "CREATE TABLE shop.order_lines (order_id INT, sku VARCHAR(20), qty INT, PRIMARY KEY (order_id, sku))",
        "INSERT INTO shop.customers SELECT seq, CONCAT('Customer ', seq), CONCAT('c', seq, '@example.com') "
        "FROM shop.seq_1_to_500",
        "INSERT INTO shop.orders SELECT seq, 1 + seq % 500, seq * 1.25, ELT(1 + seq % 3, 'new', 'paid', 'shipped') "
        "FROM shop.seq_1_to_5000",
        "INSERT INTO shop.order_lines SELECT o.seq, CONCAT('sku-', l.seq), l.seq FROM shop.seq_1_to_2000 o, shop.seq_1_to_3 l",
        "CREATE VIEW shop.big_orders AS SELECT id, amount FROM shop.orders WHERE amount > 1000",
        "CREATE FUNCTION shop.vat(x DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC RETURN x * 1.2",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    from bench.servers import REPL_PASSWORD, REPL_USER, bench_servers

    app = QApplication.instance() or QApplication(sys.argv[:1])
    home = Path(tempfile.mkdtemp(prefix="drs-compare-shots-"))
    with bench_servers() as servers:
        build_source(servers.source)
        svc = TaskService(home)
        ends = {
            side: {"host": "127.0.0.1", "port": server.port, "user": REPL_USER, "password": REPL_PASSWORD, "tls": "off"}
            for side, server in (("source", servers.source), ("target", servers.target))
        }
        spec = {
            "name": NAME, "description": "Shop database, DR copy in the second data centre", "relationship": "standby",
            "network": "public", **ends, "flow_control": None, "migrate_definer": True, "start": "now",
            "databases": ["shop"], "tags": {"team": "dba"},
        }  # fmt: skip
        svc.create(parse_spec(spec))
        runner = TaskRunner(svc, NAME)
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        wait_until(app, lambda: svc.store.get_task(NAME).status is Status.REPLICATING, 180, "replicating")
        runner.stop()
        thread.join(30)

        taskman = TaskManager()
        dialog = TaskDetailsDialog(svc.store.get_task(NAME), store=svc.store, taskman=taskman, service=svc)
        dialog.resize(900, 600)
        dialog.show()
        tab = dialog.compare_tab
        dialog.show_tab(tab)

        def run(level: str, scope: str = "") -> None:
            tab.set_level(level)
            tab.scope_edit.setText(scope)
            done: list[object] = []
            tab.finished.connect(done.append)
            tab.start()
            wait_until(app, lambda: bool(done), 120, f"the {level} compare")
            tab.finished.disconnect(done.append)

        # a consistent baseline first, then drift on the DR side: what the history will show
        run("rows")
        servers.target.sql(
            "DELETE FROM shop.orders WHERE id IN (17, 2048)",
            "UPDATE shop.orders SET amount = 42.00 WHERE id = 42",
            "UPDATE shop.customers SET email = 'old@example.com' WHERE id = 7",
            "INSERT INTO shop.order_lines VALUES (9999, 'sku-x', 1)",
            "DROP VIEW shop.big_orders",
        )
        run("objects")
        run("values")
        wait_until(app, lambda: tab.run_model.rowCount() == 3, 30, "the history")
        for _ in range(10):
            app.processEvents()
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "details-compare.png"
        dialog.grab().save(str(path))
        print(path)
        dialog.close()
        taskman.wait_idle()
        svc.close()
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
