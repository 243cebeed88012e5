"""Load: 8 DR tasks replicating at once in one app window under continuous writes (issue 11).

One MainWindow (offscreen) runs 8 tasks, each over its own database of the same two private MariaDB
servers, while writer threads keep changing every database. Measured: the GUI event loop's longest
stall (a 10 ms QTimer's largest gap), the process's RSS over time, every task's delay, and at the end
whether every database is identical (CHECKSUM TABLE). Prints a Markdown section.

    QT_QPA_PLATFORM=offscreen python bench/load_bench.py [--tasks 8] [--minutes 3] [--rate 100]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pymysql  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from run_bench import rss_kb, spec_dict  # noqa: E402
from servers import bench_servers  # noqa: E402

from drs_desktop.main_window import MainWindow  # noqa: E402
from engine.spec import parse_spec  # noqa: E402
from engine.status import Status  # noqa: E402
from engine.tasks import TaskService  # noqa: E402


def writer(socket_path: str, db: str, rate: float, stop, counter) -> None:
    """Inserts, updates and deletes at about `rate` row changes per second, in 5-row transactions.
    Runs in a process of its own: the applications writing are not inside the DRS window."""
    conn = pymysql.connect(unix_socket=socket_path, user="root", database=db, autocommit=False)
    n = 1_000_000  # above the seeded ids
    with conn.cursor() as cur:
        while not stop.is_set():
            t0 = time.monotonic()
            for _ in range(3):
                n += 1
                cur.execute("INSERT INTO items (id, v, note) VALUES (%s, %s, REPEAT('x', 64))", (n, n))
            cur.execute("UPDATE items SET v = v + 1 WHERE id = %s", (max(1, n - 2),))
            if n > 1_000_010:
                cur.execute("DELETE FROM items WHERE id = %s", (n - 10,))
            conn.commit()
            with counter.get_lock():
                counter.value += 5
            time.sleep(max(0.0, 5 / rate - (time.monotonic() - t0)))
    conn.close()


def checksum(server, db: str) -> tuple:
    conn = pymysql.connect(unix_socket=str(server.socket_path), user="root", database=db)
    with conn.cursor() as cur:
        cur.execute("CHECKSUM TABLE items EXTENDED")
        value = cur.fetchone()[1]
        cur.execute("SELECT COUNT(*) FROM items")
        rows = cur.fetchone()[0]
    conn.close()
    return value, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=100.0, help="row changes per second per database")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    home = Path(os.environ.get("DRS_BENCH_HOME") or (Path("/tmp") / f"drs-load-{os.getpid()}"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DRS_HOME"] = str(home)
    with bench_servers() as pair:
        names = [f"load-{i}" for i in range(args.tasks)]
        pair.source.sql("CREATE DATABASE IF NOT EXISTS test_seq")  # a schema for the seq_ engine's tables
        for i in range(args.tasks):
            pair.source.sql(
                f"CREATE DATABASE load{i}",
                f"CREATE TABLE load{i}.items (id INT PRIMARY KEY, v INT, note VARCHAR(80))",
                f"INSERT INTO load{i}.items SELECT seq, seq, 'seed' FROM test_seq.seq_1_to_20000",
            )
        svc = TaskService(home)
        for i, name in enumerate(names):
            svc.create(parse_spec(spec_dict(pair, name, [f"load{i}"])))
        window = MainWindow(svc)
        window.resize(1280, 800)
        window.show()
        for name in names:
            window.registry.start(name)

        def all_replicating() -> bool:
            return all(svc.get(n).status is Status.REPLICATING for n in names)

        t_start = time.monotonic()
        while not all_replicating():
            app.processEvents()
            time.sleep(0.05)
            if time.monotonic() - t_start > 600:
                print("tasks did not all reach replicating", file=sys.stderr)
                return 1
        setup_s = time.monotonic() - t_start

        # the event loop's health: a 10 ms timer; its largest gap is the longest stall
        clock = QElapsedTimer()
        clock.start()
        gaps: list[int] = []
        last = [clock.elapsed()]

        def tick() -> None:
            now = clock.elapsed()
            gaps.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.timeout.connect(tick)
        timer.start(10)

        stop = multiprocessing.Event()
        counters = [multiprocessing.Value("q", 0) for _ in names]
        writers = [multiprocessing.Process(target=writer, args=(str(pair.source.socket_path), f"load{i}", args.rate, stop, counters[i]), daemon=True)
                   for i in range(args.tasks)]  # fmt: skip
        for w in writers:
            w.start()
        rss: list[tuple[int, float]] = []
        delays: list[float] = []
        t0 = time.monotonic()
        next_sample = t0
        while time.monotonic() - t0 < args.minutes * 60:
            app.processEvents()
            now = time.monotonic()
            if now >= next_sample:
                rss.append((int(now - t0), rss_kb(os.getpid()) / 1024))
                delays.extend(d for d in (svc.get(n).delay_seconds for n in names) if d is not None)
                next_sample += 10
            time.sleep(0.005)
        stop.set()
        for w in writers:
            w.join()
        timer.stop()
        # let every task catch up, then compare
        deadline = time.monotonic() + 300
        same = False
        while time.monotonic() < deadline:
            app.processEvents()
            same = all(checksum(pair.source, f"load{i}") == checksum(pair.target, f"load{i}") for i in range(args.tasks))
            if same:
                break
            time.sleep(1)
        window.registry.stop_all()
        window.close()
        for _ in range(50):
            app.processEvents()
            time.sleep(0.02)
        changes = sum(c.value for c in counters)
        worst = max(gaps) if gaps else 0
        over = sum(1 for g in gaps if g > 100)
        p99 = sorted(gaps)[int(len(gaps) * 0.99)] if gaps else 0
        print(f"## Load: {args.tasks} tasks in one window\n")
        print(f"`QT_QPA_PLATFORM=offscreen python bench/load_bench.py --tasks {args.tasks} --minutes {args.minutes:g} "
              f"--rate {args.rate:g}` on {time.strftime('%Y-%m-%d %H:%M')}: {args.tasks} tasks over two private MariaDB "
              f"servers on this machine, each task's database taking about {args.rate:g} row changes/s "
              f"({changes:,} in {args.minutes:g} min in all; {setup_s:.0f} s to reach replicating from the initial copy of "
              f"20,000 rows each).\n")  # fmt: skip
        print("| measure | value |\n|---|---|")
        print(f"| GUI event loop: longest gap of a 10 ms timer | {worst} ms |")
        print(f"| GUI event loop: 99th percentile gap | {p99} ms |")
        print(f"| GUI event loop: gaps over 100 ms | {over} of {len(gaps):,} |")
        print(f"| RSS of the app process (min / max) | {min(r for _, r in rss):.0f} / {max(r for _, r in rss):.0f} MB |")
        print(f"| RSS samples (s: MB) | {', '.join(f'{t}: {r:.0f}' for t, r in rss)} |")
        print(f"| task delay while writing (max over samples) | {max(delays) if delays else 0:.0f} s |")
        print(f"| every database identical at the end | {'yes' if same else 'NO'} |")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
