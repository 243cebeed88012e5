"""Render the main window (light and dark, with tasks and empty), its context menu and dialogs offscreen
into docs/screenshots/*.png.

No servers are needed: a temporary DRS home gets tasks whose statuses and progress are set in the store,
and an hour of monitoring samples recorded through engine.metrics. With --local-servers the Monitoring and
DR log tabs (details-monitoring.png, details-log.png) show a real task instead: two private MariaDB
servers, `drs run` replicating while a load generator writes to the service database.
Usage: python scripts/screenshots.py [--out docs/screenshots] [--local-servers [--run-seconds 150]]
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DRS_SECRET_BACKEND", "file")  # never touch the desktop keyring of whoever runs this
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QElapsedTimer, QPoint  # noqa: E402
from PySide6.QtGui import QPainter, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from drs_desktop.app import apply_color_scheme, make_app  # noqa: E402
from drs_desktop.dialogs import (  # noqa: E402
    DeleteTaskDialog,
    FailoverDialog,
    FlowControlDialog,
    PromoteProgressDialog,
    StoppingTasksDialog,
    SwitchoverDialog,
    TaskDetailsDialog,
)
from drs_desktop.main_window import MainWindow  # noqa: E402
from drs_desktop.taskman import TaskManager  # noqa: E402
from engine.metrics import MetricSample, record_sample  # noqa: E402
from engine.spec import parse_spec  # noqa: E402
from engine.status import Status  # noqa: E402
from engine.store import Checkpoint  # noqa: E402
from engine.tasks import TaskService  # noqa: E402

# name, status, phase, progress %, delay s, tags, databases
TASKS = [
    ("orders-dr", Status.REPLICATING, "incremental", 100.0, 2.0, {"env": "prod", "team": "sales"}),
    ("billing-dr", Status.INITIALIZING, "initial", 42.0, None, {"env": "prod"}),
    ("crm-dr", Status.PAUSED, "incremental", 100.0, 35.0, {"env": "staging"}),
    ("reports-dr", Status.FAILED, "incremental", 100.0, 120.0, {"env": "prod", "owner": "bi"}),
    ("archive-dr", Status.PENDING_START, "none", 0.0, None, {"env": "prod"}),
    ("hr-dr", Status.CONFIGURATION, "none", 0.0, None, {}),
    ("legacy-dr", Status.PROMOTED, "done", 100.0, None, {"env": "old"}),
    ("inventory-dr", Status.CREATION_FAILED, "none", 0.0, None, {"env": "test"}),
]


def populate(svc: TaskService) -> None:
    for i, (name, status, phase, percent, delay, tags) in enumerate(TASKS):
        spec = parse_spec(
            {
                "name": name,
                "description": f"DR copy of the {name.removesuffix('-dr')} service database",
                "relationship": "active" if i == 5 else "standby",
                "network": "vpn" if i % 3 == 0 else "public",
                "source": {"host": f"10.0.{i}.11", "port": 3306, "user": "drs", "password": "not-a-real-pw"},
                "target": {"host": f"10.8.{i}.21", "port": 3306, "user": "drs", "password": "not-a-real-pw"},
                "flow_control": {"max_mb_s": 50, "windows": [{"start": "08:00", "end": "20:00"}]}
                if i == 1
                else None,
                "migrate_definer": True,
                "start": (datetime.now() + timedelta(days=1)).isoformat(timespec="minutes")
                if status is Status.PENDING_START
                else "now",
                "tags": tags,
                "databases": [name.removesuffix("-dr"), f"{name.removesuffix('-dr')}_audit"],
            }
        )
        svc.create(spec, status=Status.CONFIGURATION)
        error = None
        if status is Status.FAILED:
            error = "MySQL error 1146: Table 'reports.daily' doesn't exist"
        elif status is Status.CREATION_FAILED:
            error = "cannot connect to 10.0.7.11:3306: connection refused"
        svc.store.set_status(
            name,
            status,
            last_error=error,
            phase=phase,
            progress_percent=percent,
            rows_copied=int(percent * 12_345),
            rows_total=1_234_500,
            delay_seconds=delay,
        )
        if phase in ("incremental", "done"):
            svc.store.save_checkpoint(name, Checkpoint("binlog.000042", 1_234_567 + i * 1000, None))
        svc.store.add_log(name, "info", "runner", "initial full DR started")
        if phase in ("incremental", "done"):
            svc.store.add_log(
                name, "info", "runner", "initial full DR completed: 14 tables, 1234500 rows in 93.4s"
            )
            svc.store.add_log(
                name, "warning", "apply", "table audit_log has no primary key; rows matched on all columns"
            )
        if error:
            svc.store.add_log(name, "error", "runner", error)
        if phase in ("initial", "incremental", "done") and percent:
            db = name.removesuffix("-dr")
            tables = [
                (db, "orders", 600_000),
                (db, "order_lines", 540_000),
                (f"{db}_audit", "events", 94_500),
            ]
            done_rows = int(percent * 12_345)
            rows = []
            for database, table, estimate in tables:
                copied = max(0, min(estimate, done_rows))
                done_rows -= copied
                rows.append({"database": database, "table": table, "rows_done": copied, "rows_estimated": estimate,
                             "done": copied >= estimate})  # fmt: skip
            svc.store.merge_extra(
                name,
                copy={
                    "rows_per_second": 48_210.0,
                    "bytes_per_second": 5.1e6,
                    "eta_seconds": 14.8,
                    "tables": rows,
                },
            )


def record_history(svc: TaskService, name: str, minutes: int = 60) -> None:
    """An hour of samples every 5 s as the runner records them: a daily-work write load with a burst
    (a batch job) that the DR side falls behind on for a few minutes, then catches up."""
    now = datetime.now()
    steps = minutes * 12
    for i in range(steps):
        t = now - timedelta(seconds=5 * (steps - i))
        load = 1.0 + 0.35 * math.sin(i / 55) + 0.1 * math.sin(i / 7)
        burst = 1.0 if 380 <= i < 430 else 0.0
        behind = max(0.0, min(i - 380, 470 - i)) if 380 <= i < 470 else 0.0
        rows = 1800 * load + 5200 * burst
        record_sample(svc.store, name, MetricSample(
            time=t,
            delay_seconds=round(0.6 + 0.3 * load + behind * 2.4, 2),
            rto_seconds=round(0.4 + behind * 1.1, 2),
            rows_per_second=rows,
            events_per_second=rows / 12,
            bytes_per_second=rows * 310,
        ))  # fmt: skip


def wait_until(app: QApplication, condition, ms: int = 10_000) -> None:
    timer = QElapsedTimer()
    timer.start()
    while not condition():
        if timer.elapsed() > ms:
            raise SystemExit("timed out waiting for the window to load its tasks")
        app.processEvents()


def save(widget: QWidget, path: Path) -> None:
    widget.grab().save(str(path))
    print(f"wrote {path}")


def shoot_monitoring_and_log(
    app: QApplication, svc: TaskService, name: str, out: Path, *, zoom_to_data: bool = False, search: str = ""
) -> None:
    """details-monitoring.png and details-log.png of one task, read from its store as the app does."""
    taskman = TaskManager()
    details = TaskDetailsDialog(svc.store.get_task(name), store=svc.store, taskman=taskman)
    details.resize(1000, 680)
    details.show()
    monitoring = details.monitoring_tab
    details.show_tab(monitoring)
    wait_until(app, lambda: bool(monitoring.samples), 30_000)
    monitoring.poll_timer.stop()  # the picture must not move while it is taken
    if zoom_to_data:
        # A short real run is a sliver of the hour: zoom in on it as a user would with the mouse wheel.
        first, last = monitoring.samples[0].time.timestamp(), monitoring.samples[-1].time.timestamp()
        monitoring.plots["delay"].setXRange(first - 5, last + 5, padding=0)
    app.processEvents()
    save(details, out / "details-monitoring.png")
    details.show_tab(details.log_tab)
    wait_until(app, lambda: details.log_model.rowCount() > 0, 30_000)
    if search:
        details.log_tab.search_edit.setText(search)
    app.processEvents()
    taskman.wait_idle()
    app.processEvents()
    save(details, out / "details-log.png")
    details.close()
    taskman.wait_idle()


def real_run(app: QApplication, out: Path, run_seconds: int) -> None:
    """A real task on two private servers: `drs run` for run_seconds under a varying write load."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.servers import REPL_PASSWORD, REPL_USER, bench_servers

    with bench_servers() as servers, tempfile.TemporaryDirectory(prefix="drs-screens-real-") as tmp:
        src = servers.source
        src.sql(
            "CREATE DATABASE shop",
            "CREATE TABLE shop.orders (id INT PRIMARY KEY, customer VARCHAR(40), total DECIMAL(10,2), note TEXT)",
            "INSERT INTO shop.orders SELECT seq, CONCAT('customer ', seq), seq * 1.5, REPEAT('x', 200) "
            "FROM shop.seq_1_to_50000",
            "CREATE TABLE shop.audit_trail (at DATETIME, what TEXT)",  # no primary key: the DR log warns
        )
        home = Path(tmp) / "home"
        svc = TaskService(home)
        endpoint = {"user": REPL_USER, "password": REPL_PASSWORD, "tls": "off", "host": "127.0.0.1"}
        svc.create(parse_spec({
            "name": "orders-dr", "description": "Orders, DR copy in the second data centre",
            "relationship": "standby", "network": "vpn",
            "source": {**endpoint, "port": src.port}, "target": {**endpoint, "port": servers.target.port},
            "databases": ["shop"], "start": "now", "tags": {"env": "prod"},
        }))  # fmt: skip
        env = {**os.environ, "DRS_SECRET_BACKEND": "file"}
        runner = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "--home", str(home), "run", "orders-dr", "--quiet"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        stop = threading.Event()

        def load() -> None:
            # Writes in waves (and a burst) so the throughput and delay charts have something to show.
            conn = src.root("shop")
            next_id, started = 100_000, time.monotonic()
            with conn.cursor() as cur:
                while not stop.is_set():
                    elapsed = time.monotonic() - started
                    batch = int(
                        40 + 35 * math.sin(elapsed / 12) + (400 if 0.55 < elapsed / run_seconds < 0.65 else 0)
                    )
                    values = ", ".join(f"({next_id + k}, 'customer {k}', {k}.5, 'new')" for k in range(batch))
                    cur.execute(f"INSERT INTO orders (id, customer, total, note) VALUES {values}")
                    cur.execute(f"UPDATE orders SET total = total + 1 WHERE id BETWEEN {next_id % 50000} AND "
                                f"{next_id % 50000 + batch}")  # fmt: skip
                    cur.execute("INSERT INTO audit_trail VALUES (NOW(), 'batch')")
                    next_id += batch
                    stop.wait(0.1)
            conn.close()

        writer = threading.Thread(target=load, daemon=True)
        writer.start()
        started = time.monotonic()
        deadline = started + run_seconds
        events = [  # (fraction of the run, what happens): a schema change, then a DR server outage
            (0.25, lambda: src.sql("ALTER TABLE shop.orders ADD COLUMN channel VARCHAR(16) DEFAULT 'web'",
                                   "CREATE INDEX by_customer ON shop.orders (customer)")),
            (0.7, lambda: servers.target.stop()),
            (0.8, lambda: servers.target.start(servers.base)),
        ]  # fmt: skip
        while time.monotonic() < deadline and runner.poll() is None:
            while events and time.monotonic() - started >= events[0][0] * run_seconds:
                events.pop(0)[1]()
            time.sleep(0.5)
        stop.set()
        writer.join()
        time.sleep(6)  # one more sample after the load
        runner.send_signal(signal.SIGTERM)
        _out, err = runner.communicate(timeout=120)
        if runner.returncode not in (0, -signal.SIGTERM):
            print(f"drs run ended with {runner.returncode}: {err[-2000:]}", file=sys.stderr)
        print(f"real run: {len(svc.store.logs('orders-dr'))} log entries")
        shoot_monitoring_and_log(app, svc, "orders-dr", out, zoom_to_data=True)
        svc.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "screenshots"))
    parser.add_argument("--local-servers", action="store_true",
                        help="show a real task run on two private MariaDB servers in the Monitoring and DR log tabs")  # fmt: skip
    parser.add_argument(
        "--run-seconds", type=int, default=150, help="how long the real task runs (--local-servers)"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = make_app()
    apply_color_scheme(app, "light")  # the same pictures whatever the desktop of whoever runs this
    with tempfile.TemporaryDirectory(prefix="drs-screens-") as tmp:
        svc = TaskService(Path(tmp) / "home")
        populate(svc)
        record_history(svc, "orders-dr")
        window = MainWindow(svc, autostart=False, refresh_ms=60_000)
        window.resize(1360, 440)
        window.show()
        wait_until(app, lambda: window.model.rowCount() == len(TASKS))
        window.select_task("orders-dr")
        window.table.setFocus()
        app.processEvents()
        save(window, out / "main-window.png")
        apply_color_scheme(app, "dark")
        app.processEvents()
        save(window, out / "main-window-dark.png")
        apply_color_scheme(app, "light")
        with tempfile.TemporaryDirectory(prefix="drs-screens-empty-") as empty_home:
            empty_svc = TaskService(Path(empty_home) / "home")
            empty = MainWindow(empty_svc, autostart=False, refresh_ms=60_000)
            empty.resize(1360, 440)
            empty.show()
            wait_until(app, lambda: empty.refresh_count >= 1)
            app.processEvents()
            save(empty, out / "main-window-empty.png")
            apply_color_scheme(app, "dark")
            app.processEvents()
            save(empty, out / "main-window-empty-dark.png")
            apply_color_scheme(app, "light")
            empty.shutdown()
            empty.close()
            empty_svc.close()
        window.table.setFocus()
        app.processEvents()

        # The context menu, drawn over the window where a right-click on the row would open it.
        window.resize(1360, 620)
        window.select_task("billing-dr")
        menu = window.build_context_menu()
        row = window.proxy_row_of("billing-dr") or 0
        rect = window.table.visualRect(window.proxy.index(row, 1))
        anchor = window.table.viewport().mapTo(window, rect.center() + QPoint(40, 4))
        menu.popup(window.mapToGlobal(anchor))
        app.processEvents()
        shot = window.grab()
        painter = QPainter(shot)
        menu_pixmap: QPixmap = menu.grab()
        painter.drawPixmap(anchor, menu_pixmap)
        painter.end()
        path = out / "context-menu.png"
        shot.save(str(path))
        print(f"wrote {path}")
        menu.hide()

        record = svc.store.get_task("reports-dr")
        details = TaskDetailsDialog(record, window)
        details.show()
        app.processEvents()
        save(details, out / "details.png")
        details.close()
        if args.local_servers:
            real_run(app, out, args.run_seconds)
        else:
            shoot_monitoring_and_log(app, svc, "orders-dr", out)

        copying = TaskDetailsDialog(svc.store.get_task("billing-dr"), window)
        copying.tabs.setCurrentIndex(1)
        copying.show()
        app.processEvents()
        save(copying, out / "details-copy.png")
        copying.close()

        from engine.promote import OtherTask, PromotePlan

        plan = PromotePlan(
            task="orders-dr", mode="switchover", service_server="10.0.0.11:3306", dr_server="10.8.0.21:3306",
            task_databases=("orders", "orders_audit"), other_databases=("crm", "hr_payroll"),
            other_tasks=(OtherTask("crm-dr", "Paused", "its service server is this service server: read-only "
                                   "stops its applications' writes too"),),
            delay_seconds=2.0, read_only_estimate_seconds=7.0,
        )  # fmt: skip
        failover_plan = PromotePlan(
            task="orders-dr", mode="failover", service_server="10.0.0.11:3306", dr_server="10.8.0.21:3306",
            task_databases=("orders", "orders_audit"), other_databases=None, other_tasks=(),
            delay_seconds=2.0, read_only_estimate_seconds=None,
        )  # fmt: skip
        for dialog, filename in (
            (DeleteTaskDialog("crm-dr", window, status=Status.PAUSED), "delete.png"),
            (SwitchoverDialog("orders-dr", plan, window), "promote-switchover.png"),
            (
                FailoverDialog(
                    "orders-dr",
                    failover_plan,
                    "Last applied: binlog.000042:1235567 at 2026-11-25 14:02:11 (2 s behind). Changes committed on "
                    "the service database after that position — about 2 s of transactions — may be lost.",
                    window,
                ),
                "promote-failover.png",
            ),
            (FlowControlDialog(svc.store.get_task("billing-dr"), window), "flow-control.png"),
        ):
            dialog.show()
            app.processEvents()
            save(dialog, out / filename)
            dialog.close()

        def running_promote() -> PromoteProgressDialog:
            progress = PromoteProgressDialog("orders-dr", "switchover", window, timeout=60)
            progress.set_delay(1.0)
            progress.add_message("Stopping the task's replication worker at a checkpoint…")
            progress.add_message("promote started: planned switchover, deadline 60 s")
            progress.add_message("service database is now read-only")
            progress.add_message(
                "waiting until the DR database has applied everything up to binlog.000042:1240100 (RPO 0)"
            )
            progress.show()
            app.processEvents()
            return progress

        progress = running_promote()
        save(progress, out / "promote-progress.png")
        progress.request_cancel()
        progress.add_message("promote cannot finish: cancelled; rolling back")
        progress.show_rolled_back("cancelled")
        app.processEvents()
        save(progress, out / "promote-rolled-back.png")
        progress.force_close()

        from engine.errors import PromoteStranded

        stranded = PromoteStranded(
            "orders-dr", "the 60 s deadline passed", "10.0.0.11:3306",
            ["SET GLOBAL read_only = OFF;"], "10.0.0.11:3306: connection refused",
        )  # fmt: skip
        progress = running_promote()
        progress.show_stranded(str(stranded), stranded.statements, stranded.server)
        app.processEvents()
        save(progress, out / "promote-stranded.png")
        progress.force_close()

        stopping = StoppingTasksDialog(["billing-dr", "orders-dr", "reports-dr"], ["orders-dr"], window)
        stopping.set_remaining(["orders-dr", "reports-dr"])
        stopping.show()
        app.processEvents()
        save(stopping, out / "stopping-tasks.png")
        stopping.hide()

        progress = running_promote()
        from engine.connect import BinlogPosition
        from engine.promote import PromoteResult

        progress.add_message("DR database is now writable (applied up to binlog.000042:1240100)")
        progress.show_result(
            PromoteResult(
                "orders-dr",
                "switchover",
                BinlogPosition("binlog.000042", 1240100, None),
                BinlogPosition("binlog.000042", 1240100, None),
                True,
                "switchover complete: DR database writable, applied up to binlog.000042:1240100; "
                "service database read-only at binlog.000042:1240100",
            )
        )
        app.processEvents()
        save(progress, out / "promote-result.png")
        progress.close()

        window.shutdown()
        window.close()
        svc.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
