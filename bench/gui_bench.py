"""The task window with many stored tasks: how long it takes to open, its idle CPU, and sorting.

Makes `--tasks` tasks (mixed statuses) in a fresh DRS home through the store API, then, offscreen:
- open: MainWindow constructor until its first refresh is merged into the table (median of --runs);
- idle: process CPU time over --idle-seconds with the window open and nothing changing, ÷ wall time;
- sort: `sortByColumn` on each column, both orders (the longest and the median).
No replication runs (the window is opened with autostart off, as over tasks run by `drs run` elsewhere).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_bench.py [--tasks 1000] [--idle-seconds 30] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DRS_SECRET_BACKEND", "file")

from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from report import replace_section  # noqa: E402

from drs_desktop.main_window import MainWindow  # noqa: E402
from drs_desktop.task_model import Column  # noqa: E402
from engine.spec import parse_spec  # noqa: E402
from engine.status import Status  # noqa: E402
from engine.store import Checkpoint  # noqa: E402
from engine.tasks import TaskService  # noqa: E402

MARK_START = "<!-- gui:start (written by bench/gui_bench.py; replaced when it runs again) -->"
MARK_END = "<!-- gui:end -->"
# A spread of statuses as a busy desktop has them; (status, phase, store fields)
MIX: list[tuple[Status, str, dict]] = [
    (Status.REPLICATING, "incremental", {"delay_seconds": 1.0, "progress_percent": 100.0}),
    (Status.REPLICATING, "incremental", {"delay_seconds": 42.0, "progress_percent": 100.0}),
    (Status.INITIALIZING, "initial", {"progress_percent": 37.5, "rows_copied": 375, "rows_total": 1000}),
    (Status.PAUSED, "incremental", {"delay_seconds": 12.0, "progress_percent": 100.0}),
    (Status.FAILED, "incremental", {"delay_seconds": 3.0}),
    (Status.CONFIGURATION, "none", {}),
    (Status.PENDING_START, "none", {}),
    (Status.PROMOTED, "done", {}),
    (Status.CREATION_FAILED, "none", {}),
    (Status.ENDED, "none", {}),
]


def spec_dict(i: int) -> dict:
    return {
        "name": f"bench-task-{i:05d}",
        "description": f"bench task {i}",
        "relationship": "standby",
        "network": "public",
        "source": {
            "host": f"10.0.{i // 250}.{i % 250 + 1}",
            "port": 3306,
            "user": "drs",
            "password": "x-pw-1",
        },
        "target": {
            "host": f"10.1.{i // 250}.{i % 250 + 1}",
            "port": 3306,
            "user": "drs",
            "password": "x-pw-2",
        },
        "flow_control": None,
        "migrate_definer": True,
        "start": "now"
        if i % 10 != 6
        else (datetime.now() + timedelta(days=30)).isoformat(timespec="minutes"),
        "tags": {"env": ("prod", "staging", "dev")[i % 3], "team": f"t{i % 17}"},
    }


def make_tasks(svc: TaskService, count: int) -> None:
    store = svc.store
    for i in range(count):
        status, phase, fields = MIX[i % len(MIX)]
        store.create_task(parse_spec(spec_dict(i), need_passwords=False), status=Status.CONFIGURATION)
        name = f"bench-task-{i:05d}"
        last_error = "MySQL error 1146: Table 'shop.x' doesn't exist" if status is Status.FAILED else None
        store.set_status(name, status, last_error=last_error, phase=phase, **fields)
        if phase == "incremental":
            store.save_checkpoint(name, Checkpoint("binlog.000007", 4242 + i, None))


def open_window(app: QApplication, svc: TaskService) -> tuple[MainWindow, float]:
    clock = QElapsedTimer()
    clock.start()
    window = MainWindow(svc, autostart=False)
    window.resize(1280, 800)
    window.show()
    while window.refresh_count < 1:
        app.processEvents()
        time.sleep(0.001)
    return window, clock.nsecsElapsed() / 1e9


def close_window(app: QApplication, window: MainWindow) -> None:
    window.close()
    window.deleteLater()
    app.processEvents()


def idle_cpu(app: QApplication, seconds: float) -> float:
    """Process CPU seconds per wall second while the event loop runs (timers, refreshes) and nothing changes."""
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    cpu0, wall0 = time.process_time(), time.monotonic()
    loop.exec()  # the event loop as the app runs it: blocked until a timer or an event wakes it
    return (time.process_time() - cpu0) / (time.monotonic() - wall0)


def sort_times(app: QApplication, window: MainWindow) -> list[tuple[str, float]]:
    times = []
    for column in Column:
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            t0 = time.perf_counter()
            window.table.sortByColumn(column, order)
            app.processEvents()  # the view relays out and repaints
            times.append((f"{column.name.lower()} {'asc' if order == Qt.SortOrder.AscendingOrder else 'desc'}",
                          time.perf_counter() - t0))  # fmt: skip
    return times


def report(args: argparse.Namespace, opens: list[float], cpu: float, sorts: list[tuple[str, float]]) -> str:
    sort_values = [s for _, s in sorts]
    slowest = max(sorts, key=lambda item: item[1])
    load = os.getloadavg()
    lines = [
        MARK_START,
        "## Task window with many tasks (bench/gui_bench.py)",
        "",
        f"Run {datetime.now():%Y-%m-%d %H:%M}: `{args.command}` — {args.tasks} stored tasks in ten statuses "
        f"(made through the store API), offscreen, autostart off; load average before {args.load_before}, "
        f"after {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| open: constructor → first refresh merged (median of {len(opens)}) | {statistics.median(opens) * 1000:.0f} ms "
        f"(min {min(opens) * 1000:.0f}, max {max(opens) * 1000:.0f}) | < 300 ms |",
        f"| idle CPU over {args.idle_seconds:.0f} s (process CPU time ÷ wall time) | {cpu * 100:.1f} % | < 2 % |",
        f"| sort by a column ({len(sorts)} sorts: each column, both orders) | median {statistics.median(sort_values) * 1000:.1f} ms, "
        f"longest {slowest[1] * 1000:.1f} ms ({slowest[0]}) | < 100 ms |",
        "",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def write_report(path: Path, section: str) -> None:
    replace_section(path, section, MARK_START, MARK_END)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5, help="window openings timed")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument(
        "--out", type=Path, help="write the section into this Markdown file (e.g. docs/benchmarks.md)"
    )
    args = parser.parse_args()
    args.command = "QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_bench.py " + " ".join(sys.argv[1:])
    load = os.getloadavg()
    args.load_before = f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}"
    app = QApplication.instance() or QApplication([])
    home = Path(tempfile.mkdtemp(prefix="drs-gui-bench-"))
    try:
        svc = TaskService(home)
        t0 = time.monotonic()
        make_tasks(svc, args.tasks)
        print(f"{args.tasks} tasks made in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        opens = []
        for _ in range(args.runs):
            window, seconds = open_window(app, svc)
            opens.append(seconds)
            close_window(app, window)
        window, _ = open_window(app, svc)
        idle_cpu(app, 3)  # let the start-up work (promote recovery, first refreshes) settle
        cpu = idle_cpu(app, args.idle_seconds)
        sorts = sort_times(app, window)
        close_window(app, window)
        svc.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    section = report(args, opens, cpu, sorts)
    print(section)
    if args.out:
        write_report(args.out, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
