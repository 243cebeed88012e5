"""Benchmarks of the replication engine beside the anchors, on two private local MariaDB servers.

One command, one run: initial copy (mariadb-dump | mariadb, mydumper/myloader, DRS), catch-up after
a backlog of row changes (native replica, DRS, plus a per-thread cProfile of DRS), and the runner's
memory while streaming. Writes a Markdown report with the command that produced it.

    python bench/run_bench.py [--rows 1000000] [--changes 200000] [--stream-minutes N] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pymysql
from servers import (
    REPL_PASSWORD,
    REPL_USER,
    ROOT,
    BenchServers,
    MariaDBServer,
    bench_servers,
    ensure_tools,
    fill_from_sequence,
)

from engine.connect import BinlogPosition
from engine.runner import TaskRunner, position_key
from engine.spec import parse_spec
from engine.tasks import TaskService

COPY_DB, COPY_TABLE = "bench", "orders"
CDC_DB, CDC_TABLE = "bench_cdc", "items"
SAVED_DB = "bench_cdc_saved"  # target-side copy of the DR table at the start position (not binlogged)
CDC_BASE_ROWS = 100_000
ROWS_PER_TXN = 10
STREAM_ROWS_PER_SECOND = 500
SAMPLE_SECONDS = 10.0
META = "drs_desktop_meta"


def log(message: str) -> None:
    print(f"{datetime.now():%H:%M:%S} {message}", flush=True)


# ---- facts about the servers -------------------------------------------------------------------


def master_position(server: MariaDBServer) -> BinlogPosition:
    file, pos = server.sql("SHOW MASTER STATUS")[0][:2]
    return BinlogPosition(file, int(pos), None)


def table_facts(server: MariaDBServer, db: str, table: str) -> tuple[int, int]:
    """(row count, CHECKSUM TABLE) of one table."""
    count = server.sql(f"SELECT COUNT(*) FROM `{db}`.`{table}`")[0][0]
    checksum = server.sql(f"CHECKSUM TABLE `{db}`.`{table}`")[0][1]
    return int(count), int(checksum or 0)


def same_table(source: MariaDBServer, target: MariaDBServer, db: str, table: str) -> dict:
    src, tgt = table_facts(source, db, table), table_facts(target, db, table)
    return {"rows": tgt[0], "checksum_source": src[1], "checksum_target": tgt[1], "identical": src == tgt}


def client_args(server: MariaDBServer) -> list[str]:
    return ["-h127.0.0.1", f"-P{server.port}", f"-u{REPL_USER}", f"-p{REPL_PASSWORD}"]


def spec_dict(pair: BenchServers, name: str, databases: list[str]) -> dict:
    def side(server: MariaDBServer) -> dict:
        return {
            "host": "127.0.0.1",
            "port": server.port,
            "user": REPL_USER,
            "password": REPL_PASSWORD,
            "tls": "off",
        }

    return {
        "name": name,
        "description": "benchmark",
        "relationship": "standby",
        "network": "public",
        "source": side(pair.source),
        "target": side(pair.target),
        "databases": databases,
        "flow_control": None,
        "migrate_definer": True,
        "start": "now",
        "tags": {},
    }


def machine_facts(pair: BenchServers) -> dict:
    def first(path: str, prefix: str) -> str:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
        return "?"

    from importlib import metadata

    tool = (
        subprocess.run(["mydumper", "--version"], capture_output=True, text=True).stdout.strip()
        if shutil.which("mydumper")
        else "not installed"
    )
    return {
        "date": f"{datetime.now():%Y-%m-%d %H:%M}",
        "nproc": os.cpu_count(),
        "memory": f"{int(first('/proc/meminfo', 'MemTotal').split()[0]) / 1048576:.1f} GiB",
        "cpu": first("/proc/cpuinfo", "model name"),
        "os": platform.platform(),
        "mariadb": pair.source.sql("SELECT VERSION()")[0][0],
        "python": platform.python_version(),
        "pymysql": pymysql.__version__,
        "mysql-replication": metadata.version("mysql-replication"),
        "mydumper": tool,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "engine_tree": "with uncommitted changes in engine/" if subprocess.run(
            ["git", "status", "--porcelain", "engine"], cwd=ROOT, capture_output=True, text=True).stdout.strip() else "clean",
        "load_before": os.getloadavg(),
    }  # fmt: skip


# ---- 1. initial copy ---------------------------------------------------------------------------

COPY_DDL = f"""CREATE TABLE `{COPY_DB}`.`{COPY_TABLE}` (
    id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer VARCHAR(40) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    qty INT NOT NULL,
    status VARCHAR(16) NOT NULL,
    note VARCHAR(40) NULL,
    KEY idx_created (created_at)
) ENGINE=InnoDB"""


def make_copy_table(source: MariaDBServer, rows: int) -> float:
    """~100-byte rows of a few types, made by the server (Sequence engine) in 100k-row transactions."""
    return fill_from_sequence(
        source, COPY_DB, COPY_DDL,
        f"INSERT INTO `{COPY_DB}`.`{COPY_TABLE}` (customer, created_at, amount, qty, status, note) "
        "SELECT CONCAT('customer-', LPAD(seq MOD 50000, 6, '0'), '-', LEFT(MD5(seq), 16)), "
        "'2024-01-01' + INTERVAL seq SECOND + INTERVAL (seq MOD 1000000) MICROSECOND, "
        "(seq MOD 100000) / 100 + 0.99, seq MOD 97, ELT(1 + seq MOD 4, 'new', 'paid', 'shipped', 'returned'), "
        "IF(seq MOD 10 = 0, NULL, CONCAT('note ', LEFT(SHA1(seq), 30)))",
        rows,
    )  # fmt: skip


def fresh_target_db(target: MariaDBServer) -> None:
    # the DR-side meta database too: a task's checkpoint there would make `drs run` resume, not copy
    target.sql("SET GLOBAL read_only = OFF", f"DROP DATABASE IF EXISTS `{COPY_DB}`",
               f"DROP DATABASE IF EXISTS `{META}`", f"CREATE DATABASE `{COPY_DB}`")  # fmt: skip


def copy_with_dump(pair: BenchServers) -> float:
    dump = ["mariadb-dump", *client_args(pair.source), "--single-transaction", COPY_DB]
    load = ["mariadb", *client_args(pair.target), COPY_DB]
    began = time.monotonic()
    p1 = subprocess.Popen(dump, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p2 = subprocess.run(load, stdin=p1.stdout, capture_output=True)
    p1.stdout.close()  # type: ignore[union-attr]
    err1 = p1.stderr.read()  # type: ignore[union-attr]
    if p1.wait() or p2.returncode:
        raise RuntimeError(f"dump|load failed: {err1[-500:]!r} {p2.stderr[-500:]!r}")
    return time.monotonic() - began


def copy_with_mydumper(
    pair: BenchServers, attempts: int = 2, on_retry: Callable[[], None] = lambda: None
) -> tuple[float, float]:
    """(dump seconds, load seconds). myloader 0.10 now and then exits 1 on a load that works when run
    again; such a run is no measurement, so it is said and run again from a fresh target (after
    `on_retry`)."""
    for attempt in range(1, attempts + 1):
        with tempfile.TemporaryDirectory(prefix="drs-bench-dump-") as out:
            began = time.monotonic()
            dump = subprocess.run(
                ["mydumper", *_long_args(pair.source), "-B", COPY_DB, "-t", "2", "-r", "100000", "-o", out],
                capture_output=True, text=True,
            )  # fmt: skip
            dumped = time.monotonic()
            # -e: write the target's binlog like the other two contenders do (myloader skips it by default)
            load = None
            if dump.returncode == 0:
                load = subprocess.run(
                    ["myloader", *_long_args(pair.target), "-d", out, "-t", "2", "-o", "-e"],
                    capture_output=True, text=True,
                )  # fmt: skip
            if load is not None and load.returncode == 0:
                return dumped - began, time.monotonic() - dumped
        failed = load if load is not None else dump
        what = f"{failed.args[0]} exited {failed.returncode}: {(failed.stderr or failed.stdout).strip()[-600:]}"
        if attempt == attempts:
            raise RuntimeError(what)
        log(f"   {what}; this run is not counted, running it again")
        fresh_target_db(pair.target)
        on_retry()
    raise AssertionError("unreachable")


def _long_args(server: MariaDBServer) -> list[str]:
    return ["-h", "127.0.0.1", "-P", str(server.port), "-u", REPL_USER, "-p", REPL_PASSWORD]


READY_LABEL = "Disaster recovery in progress"  # the runner's status line once the task is replicating


def drs_command(home: Path, *args: str) -> list[str]:
    # `python -m engine.cli` from ROOT (not the venv's `drs` script): the engine measured is the one
    # beside this file, even when the venv's editable install points at another checkout.
    return [sys.executable, "-m", "engine.cli", "--home", str(home), *args]


def create_task(pair: BenchServers, home: Path, name: str, databases: list[str]) -> None:
    """`drs task create --skip-checks` (not timed: the user does it once, before the run)."""
    spec_file = home / f"{name}.json"
    spec_file.write_text(json.dumps(spec_dict(pair, name, databases)))
    made = subprocess.run(drs_command(home, "task", "create", "--spec", str(spec_file), "--skip-checks"),
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    if made.returncode:
        raise RuntimeError(f"drs task create {name} failed: {made.stderr.strip()}")


@dataclass
class DrsRun:
    """A `drs run NAME` process, timed from its start until it prints that the task is replicating."""

    home: Path
    name: str
    proc: subprocess.Popen | None = None
    began: float = 0.0
    ready_seconds: float | None = None
    lines: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.began = time.monotonic()
        self.proc = subprocess.Popen(drs_command(self.home, "run", self.name), cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1)  # fmt: skip

    def wait_replicating(self, timeout: float) -> float:
        """Seconds from process start to the `replicating` status line (read as it is printed)."""
        assert self.proc is not None and self.proc.stdout is not None
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                if line.rstrip().endswith(READY_LABEL):
                    self.ready_seconds = time.monotonic() - self.began
                    return self.ready_seconds
        finally:
            timer.cancel()
        err = self.proc.stderr.read() if self.proc.stderr else ""
        raise RuntimeError(f"drs run ended before replicating: {self.lines[-5:]} {err[-800:]}")

    def peak_rss_mb(self) -> float:
        assert self.proc is not None
        return rss_kb(self.proc.pid, "VmHWM") / 1024

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def copy_with_drs_run(pair: BenchServers, name: str) -> dict:
    """End to end as a user waits: `drs run` from process start until the task reports replicating."""
    with tempfile.TemporaryDirectory(prefix="drs-bench-copy-") as tmp:
        home = Path(tmp)
        create_task(pair, home, name, [COPY_DB])
        run = DrsRun(home, name)
        run.start()
        try:
            seconds = run.wait_replicating(timeout=900)
            peak = run.peak_rss_mb()
        finally:
            code = run.stop()
    return {"seconds": seconds, "peak_rss_mb": peak, "exit_code": code}


DRS_CONTENDER = "DRS `drs run` (process start → replicating)"
DUMP_CONTENDER = "mariadb-dump --single-transaction | mariadb"
MYDUMPER_CONTENDER = "mydumper + myloader, 2 threads"


def bench_copy(pair: BenchServers, rows: int, repeats: int) -> dict:
    log(f"1. initial copy: making {rows:,} rows on the source")
    made = make_copy_table(pair.source, rows)
    src_rows, src_sum = table_facts(pair.source, COPY_DB, COPY_TABLE)
    pair.source.sql(f"ANALYZE TABLE `{COPY_DB}`.`{COPY_TABLE}`")  # fresh size statistics for the report
    size = pair.source.sql(
        "SELECT DATA_LENGTH, INDEX_LENGTH, AVG_ROW_LENGTH FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA='{COPY_DB}' AND TABLE_NAME='{COPY_TABLE}'"
    )[0]
    results: dict = {"rows": src_rows, "made_seconds": made, "data_mb": size[0] / 1048576, "index_mb": size[1] / 1048576,
                     "avg_row_bytes": size[2], "contenders": [], "load_before": os.getloadavg()}  # fmt: skip

    binlog_at = master_position(pair.target)

    def record(name: str, seconds: float, **extra) -> None:
        """One run of a contender; a contender's row in the report is its median run."""
        nonlocal binlog_at
        check = same_table(pair.source, pair.target, COPY_DB, COPY_TABLE)
        now = master_position(pair.target)
        binlog_mb = _binlog_bytes(pair.target, binlog_at, now) / 1048576
        binlog_at = now
        run = {"seconds": seconds, "target_binlog_mb": binlog_mb, **check, **extra}
        runs.setdefault(name, []).append(run)
        log(f"   {name}: {seconds:.2f} s, {src_rows / seconds:,.0f} rows/s, identical={check['identical']}")

    def restart_binlog_count() -> None:  # a failed try's binlog is not the next try's
        nonlocal binlog_at
        binlog_at = master_position(pair.target)

    runs: dict[str, list[dict]] = {}
    for _ in range(repeats):  # the contenders alternate, so a busy moment of the machine hits each alike
        fresh_target_db(pair.target)
        record(DUMP_CONTENDER, copy_with_dump(pair))
        fresh_target_db(pair.target)
        dump_s, load_s = copy_with_mydumper(pair, on_retry=restart_binlog_count)
        record(MYDUMPER_CONTENDER, dump_s + load_s, dump_seconds=dump_s, load_seconds=load_s)
        fresh_target_db(pair.target)
        drs = copy_with_drs_run(pair, f"bench-copy-{rows}")
        record(DRS_CONTENDER, drs["seconds"], peak_rss_mb=drs["peak_rss_mb"])
    for name, tries in runs.items():
        median = sorted(tries, key=lambda r: r["seconds"])[(len(tries) - 1) // 2]
        results["contenders"].append({"name": name, **median, "rows_per_s": src_rows / median["seconds"],
                                      "identical": all(t["identical"] for t in tries),
                                      "all_seconds": [t["seconds"] for t in tries]})  # fmt: skip
        if name == DRS_CONTENDER:
            results["contenders"][-1]["peak_rss_mb"] = max(t["peak_rss_mb"] for t in tries)
    results["load_after"] = os.getloadavg()
    assert src_sum  # the checksum is computed (a 0 would mean CHECKSUM TABLE was skipped)
    pair.source.sql(f"DROP DATABASE `{COPY_DB}`")  # frees the buffer pools for the next parts
    pair.target.sql(f"DROP DATABASE `{COPY_DB}`", f"DROP DATABASE IF EXISTS `{META}`")
    return results


# ---- 2. catch-up after a backlog ------------------------------------------------------------------

CDC_SETUP = (
    f"DROP DATABASE IF EXISTS `{CDC_DB}`",
    f"CREATE DATABASE `{CDC_DB}`",
    f"""CREATE TABLE `{CDC_DB}`.`{CDC_TABLE}` (
        id INT NOT NULL PRIMARY KEY,
        a INT NOT NULL,
        b VARCHAR(32) NOT NULL,
        c DATETIME(6) NOT NULL,
        d DECIMAL(10,2) NOT NULL
    ) ENGINE=InnoDB""",
    f"INSERT INTO `{CDC_DB}`.`{CDC_TABLE}` SELECT seq, seq MOD 1000, CONCAT('row ', seq), "
    f"'2024-01-01' + INTERVAL seq SECOND, seq / 7 FROM `{CDC_DB}`.seq_1_to_{CDC_BASE_ROWS}",
    # Each transaction: 4 inserts, 3 updates, 3 deletes = 10 row changes. Live ids stay contiguous
    # (new ids at the top, deletes from the bottom), so every statement hits exactly its rows.
    f"""CREATE PROCEDURE `{CDC_DB}`.make_changes(IN txns INT)
    BEGIN
      DECLARE i INT DEFAULT 0;
      DECLARE lo, hi, x INT;
      SELECT MIN(id), MAX(id) + 1 INTO lo, hi FROM `{CDC_DB}`.`{CDC_TABLE}`;
      WHILE i < txns DO
        START TRANSACTION;
        INSERT INTO `{CDC_DB}`.`{CDC_TABLE}` VALUES
          (hi, i MOD 1000, CONCAT('new ', hi), NOW(6), hi / 7), (hi + 1, 1, 'new', NOW(6), 1.5),
          (hi + 2, 2, CONCAT('n', i), NOW(6), 2.25), (hi + 3, 3, '', NOW(6), 0);
        SET hi = hi + 4;
        SET x = lo + 3 + FLOOR(RAND() * (hi - lo - 8));
        UPDATE `{CDC_DB}`.`{CDC_TABLE}` SET a = a + 1, b = CONCAT('upd ', i), c = NOW(6), d = d + 1.25
          WHERE id BETWEEN x AND x + 2;
        DELETE FROM `{CDC_DB}`.`{CDC_TABLE}` WHERE id BETWEEN lo AND lo + 2;
        SET lo = lo + 3;
        COMMIT;
        SET i = i + 1;
      END WHILE;
    END""",
)


@dataclass
class DrCheckpoint:
    """Polls the DR-side checkpoint row of one task."""

    target: MariaDBServer
    task: str
    conn: pymysql.connections.Connection | None = None

    def read(self) -> tuple[str | None, BinlogPosition | None]:
        if self.conn is None:
            self.conn = self.target.root()
        with self.conn.cursor() as cur:
            try:
                cur.execute(
                    f"SELECT phase, binlog_file, binlog_pos FROM `{META}`.`checkpoint` WHERE task=%s",
                    (self.task,),
                )
            except pymysql.err.ProgrammingError:
                return None, None  # the meta tables are not created yet
            row = cur.fetchone()
        if not row or not row[1]:
            return (row[0] if row else None), None
        return row[0], BinlogPosition(row[1], int(row[2]), None)

    def reached(self, end: BinlogPosition) -> bool:
        phase, pos = self.read()
        return phase == "incremental" and pos is not None and position_key(pos) >= position_key(end)

    def set(self, position: BinlogPosition) -> None:
        with self.target.root() as conn, conn.cursor() as cur:
            cur.execute(
                f"UPDATE `{META}`.`checkpoint` SET binlog_file=%s, binlog_pos=%s, ddl_pending=0 WHERE task=%s",
                (position.file, position.pos, self.task),
            )

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_until(
    svc: TaskService, name: str, checkpoint: DrCheckpoint, end: BinlogPosition, timeout: float
) -> float:
    """Run the task in a thread until the DR-side checkpoint reaches `end`; seconds from start to that."""
    runner = TaskRunner(svc, name)
    outcome: dict = {}

    def body() -> None:
        try:
            outcome["status"] = runner.run()
        except BaseException as exc:  # reported by the caller
            outcome["error"] = exc

    thread = threading.Thread(target=body, name="task-runner")
    began = time.monotonic()
    thread.start()
    try:
        while not checkpoint.reached(end):
            if not thread.is_alive():
                raise RuntimeError(f"runner ended before {end}: {outcome}")
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"runner did not reach {end} in {timeout:.0f} s (at {checkpoint.read()})")
            time.sleep(0.05)
        return time.monotonic() - began
    finally:
        runner.stop()
        thread.join()


def point_replica(cur: pymysql.cursors.Cursor, pair: BenchServers, start: BinlogPosition) -> None:
    """Make the target a (stopped) native replica of the source from `start`, by file and position."""
    cur.execute("STOP SLAVE")
    cur.execute("RESET SLAVE ALL")
    cur.execute(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
        "MASTER_LOG_FILE=%s, MASTER_LOG_POS=%s, MASTER_USE_GTID=no",
        (pair.source.port, REPL_USER, REPL_PASSWORD, start.file, start.pos),
    )


def native_catch_up(pair: BenchServers, start: BinlogPosition, end: BinlogPosition) -> float:
    """A real replica from `start`: seconds from START SLAVE until it has executed up to `end`."""
    conn = pair.target.root()
    try:
        cur = conn.cursor(pymysql.cursors.DictCursor)
        point_replica(cur, pair, start)
        began = time.monotonic()
        cur.execute("START SLAVE")
        while True:
            cur.execute("SHOW SLAVE STATUS")
            st = cur.fetchone()
            if st["Last_SQL_Errno"] or st["Last_IO_Errno"]:
                raise RuntimeError(f"native replica failed: {st['Last_SQL_Error']} {st['Last_IO_Error']}")
            at = BinlogPosition(st["Relay_Master_Log_File"], int(st["Exec_Master_Log_Pos"]), None)
            if position_key(at) >= position_key(end):
                seconds = time.monotonic() - began
                break
            time.sleep(0.01)
        cur.execute("STOP SLAVE")
        cur.execute("RESET SLAVE ALL")
        return seconds
    finally:
        conn.close()


def save_target_table(target: MariaDBServer) -> None:
    target.sql(
        "SET SESSION sql_log_bin = 0",
        f"DROP DATABASE IF EXISTS `{SAVED_DB}`",
        f"CREATE DATABASE `{SAVED_DB}`",
        f"CREATE TABLE `{SAVED_DB}`.`{CDC_TABLE}` LIKE `{CDC_DB}`.`{CDC_TABLE}`",
        f"INSERT INTO `{SAVED_DB}`.`{CDC_TABLE}` SELECT * FROM `{CDC_DB}`.`{CDC_TABLE}`",
    )


def restore_target_table(target: MariaDBServer) -> None:
    target.sql(
        "SET SESSION sql_log_bin = 0",
        f"TRUNCATE TABLE `{CDC_DB}`.`{CDC_TABLE}`",
        f"INSERT INTO `{CDC_DB}`.`{CDC_TABLE}` SELECT * FROM `{SAVED_DB}`.`{CDC_TABLE}`",
    )


def bench_catch_up(pair: BenchServers, home: Path, changes: int, runs: int = 3) -> dict:
    name = "bench-cdc"
    log(f"2. catch-up: table of {CDC_BASE_ROWS:,} rows, DRS task to replicating")
    pair.target.sql("SET GLOBAL read_only = OFF")
    pair.source.sql(*CDC_SETUP)
    svc = TaskService(home)
    svc.create(parse_spec(spec_dict(pair, name, [CDC_DB])))
    checkpoint = DrCheckpoint(pair.target, name)
    start = master_position(pair.source)
    run_until(svc, name, checkpoint, start, timeout=300)
    _, at = checkpoint.read()
    assert at is not None and position_key(at) == position_key(start), (at, start)
    base_check = same_table(pair.source, pair.target, CDC_DB, CDC_TABLE)
    assert base_check["identical"], base_check
    save_target_table(pair.target)

    txns = changes // ROWS_PER_TXN
    log(
        f"   making {txns * ROWS_PER_TXN:,} row changes in {txns:,} transactions on the source (replication stopped)"
    )
    began = time.monotonic()
    pair.source.sql(f"CALL `{CDC_DB}`.make_changes({txns})")
    made = time.monotonic() - began
    end = master_position(pair.source)
    backlog_mb = _binlog_bytes(pair.source, start, end) / 1048576
    rows = txns * ROWS_PER_TXN
    results: dict = {"rows": rows, "txns": txns, "made_seconds": made, "backlog_mb": backlog_mb,
                     "start": str(start), "end": str(end)}  # fmt: skip

    # Alternating, `runs` times each, from the same DR-side state: the machine is shared, and one run
    # of each is a coin toss; the medians are reported, every run listed.
    times: dict[str, list[float]] = {"native": [], "drs": []}
    checks: dict[str, bool] = {"native": True, "drs": True}
    for n in range(1, runs + 1):
        log(f"   native replica catching up ({n}/{runs})")
        seconds = native_catch_up(pair, start, end)
        checks["native"] &= same_table(pair.source, pair.target, CDC_DB, CDC_TABLE)["identical"]
        times["native"].append(seconds)
        log(f"   native: {seconds:.2f} s, {rows / seconds:,.0f} rows/s, identical={checks['native']}")
        restore_target_table(pair.target)
        checkpoint.set(start)
        log(f"   DRS catching up ({n}/{runs})")
        seconds = run_until(svc, name, checkpoint, end, timeout=900)
        checks["drs"] &= same_table(pair.source, pair.target, CDC_DB, CDC_TABLE)["identical"]
        times["drs"].append(seconds)
        log(f"   DRS: {seconds:.2f} s, {rows / seconds:,.0f} rows/s, identical={checks['drs']}")
        restore_target_table(pair.target)
    for key in ("native", "drs"):
        median = statistics.median(times[key])
        results[key] = {"seconds": median, "runs": times[key], "rows_per_s": rows / median, "identical": checks[key]}
    results["ratio"] = results["native"]["seconds"] / results["drs"]["seconds"]
    log(f"   medians: native {results['native']['seconds']:.2f} s, DRS {results['drs']['seconds']:.2f} s, ratio {results['ratio']:.3f}")

    log("   DRS catching up again under cProfile (one profile per thread)")
    checkpoint.set(start)
    profiles, profiled_seconds = _profiled(lambda: run_until(svc, name, checkpoint, end, timeout=1800))
    results["profile"] = {"seconds": profiled_seconds, "threads": profiles,
                          **same_table(pair.source, pair.target, CDC_DB, CDC_TABLE)}  # fmt: skip
    pair.target.sql(f"DROP DATABASE `{SAVED_DB}`")
    checkpoint.close()
    svc.close()
    return results


def _binlog_bytes(server: MariaDBServer, start: BinlogPosition, end: BinlogPosition) -> int:
    sizes = dict(server.sql("SHOW BINARY LOGS"))
    if start.file == end.file:
        return end.pos - start.pos
    files = sorted(f for f in sizes if start.file <= f <= end.file)
    return sum(int(sizes[f]) for f in files[:-1]) - start.pos + end.pos


# ---- profile --------------------------------------------------------------------------------------


def _profiled(work) -> tuple[dict, float]:
    """Run `work` with a cProfile in every thread it starts (cProfile follows one thread only)."""
    original = threading.Thread.run
    collected: dict[str, tuple[cProfile.Profile, float]] = {}

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        began = time.monotonic()
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()
            collected[self.name] = (profile, time.monotonic() - began)

    threading.Thread.run = run  # type: ignore[method-assign]
    try:
        seconds = work()
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]
    time.sleep(0.5)  # the reader thread is joined with a timeout; let it record its profile
    return {name: _summarize(p, wall) for name, (p, wall) in collected.items()}, seconds


WAIT_SOCKET_READ = "socket reads (waiting on a server)"
WAIT_THREAD = "waiting on the other thread (queue, locks)"


def _category(file: str, func: str) -> str | None:
    """Where a function's own time belongs; None for builtins, which are charged to their caller."""
    if file == "~":
        if "recv_into" in func or "'recv'" in func:
            return WAIT_SOCKET_READ
        if "sendall" in func:
            return "socket writes"
        if "_thread.lock" in func or "_thread.RLock" in func:
            return WAIT_THREAD
        return None
    path = file.replace("\\", "/")
    if "pymysqlreplication" in path:
        return "decode: pymysqlreplication"
    if path.endswith("engine/rowdecode.py"):
        return "decode: engine.rowdecode"
    if path.endswith("engine/stream.py"):
        return "decode: engine.stream (grouping into transactions)"
    if path.endswith(("engine/apply.py", "engine/checkpoint.py")):
        return "apply: engine.apply (SQL building)"
    if "/pymysql/" in path:
        return "client: pymysql (protocol, result parsing)"
    if path.endswith("engine/runner.py"):
        return "runner loop"
    if "sqlalchemy" in path or "sqlite" in path or path.endswith("engine/store.py"):
        return "task store (SQLite progress updates)"
    if path.endswith(("queue.py", "threading.py")):
        return WAIT_THREAD
    return "other Python"


def _summarize(profile: cProfile.Profile, wall: float) -> dict:
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    own: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, tt, _ct, callers) in stats.items():
        cat = _category(file, func)
        if cat is not None:
            own[cat] = own.get(cat, 0.0) + tt
            continue
        # a builtin (int.from_bytes, bytes.join, ...): charge its time to whoever called it
        total_from_callers = sum(c[2] for c in callers.values()) or 1.0
        for (cfile, _cl, cfunc), c in callers.items():
            ccat = _category(cfile, cfunc) or "other Python"
            own[ccat] = own.get(ccat, 0.0) + tt * c[2] / total_from_callers
    top = sorted(stats.items(), key=lambda kv: kv[1][3], reverse=True)[:14]
    return {
        "wall": wall,
        "profiled": sum(own.values()),
        "categories": sorted(own.items(), key=lambda kv: kv[1], reverse=True),
        "top": [
            {
                "function": f"{Path(f).name}:{line}({fn})" if f != "~" else fn,
                "calls": nc,
                "own": tt,
                "cumulative": ct,
            }
            for (f, line, fn), (_cc, nc, tt, ct, _callers) in top
        ],  # fmt: skip
    }


# ---- 3. memory while streaming ---------------------------------------------------------------------


def rss_kb(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class SteadyLoad:
    """Small transactions (10 row changes each) on the source at a steady rate, in a thread."""

    source: MariaDBServer
    rows_per_second: int
    txns: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        per_tick = 5  # transactions per call, 10 calls a second at 500 rows/s
        interval = per_tick * ROWS_PER_TXN / self.rows_per_second
        conn = self.source.root()
        began = time.monotonic()
        ticks = 0
        with conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute(f"CALL `{CDC_DB}`.make_changes({per_tick})")
                self.txns += per_tick
                ticks += 1
                self.stop.wait(max(0.0, began + ticks * interval - time.monotonic()))
        conn.close()

    def finish(self) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join()


def bench_stream(pair: BenchServers, home: Path, minutes: float) -> dict:
    name = "bench-cdc"
    log(
        f"3. streaming for {minutes:g} min under a steady load of {STREAM_ROWS_PER_SECOND} row changes/s (`drs run`)"
    )
    checkpoint = DrCheckpoint(pair.target, name)
    # `python -m engine.cli` from ROOT (not the venv's `drs` script): the engine measured is the one
    # beside this file, even when the venv's editable install points at another checkout.
    command = [sys.executable, "-m", "engine.cli"]
    load = SteadyLoad(pair.source, STREAM_ROWS_PER_SECOND)
    load.start()
    proc = subprocess.Popen([*command, "--home", str(home), "run", name, "--quiet"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    samples: list[tuple[float, int]] = []
    try:
        deadline = time.monotonic() + 120
        while load.txns == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        first = master_position(pair.source)  # beyond the checkpoint: reached only once the runner applies
        while not checkpoint.reached(first):  # the runner has connected and applies the load
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"drs run did not start streaming: {proc.stderr.read() if proc.stderr else ''}"
                )
            time.sleep(0.1)
        began = time.monotonic()
        while True:
            elapsed = time.monotonic() - began
            samples.append((elapsed, rss_kb(proc.pid)))
            if elapsed >= minutes * 60:
                break
            time.sleep(max(0.0, began + len(samples) * SAMPLE_SECONDS - time.monotonic()))
            if proc.poll() is not None:
                raise RuntimeError(
                    f"drs run ended while streaming: {proc.stderr.read() if proc.stderr else ''}"
                )
        load.finish()
        end = master_position(pair.source)
        stopped = time.monotonic()
        while not checkpoint.reached(end):
            if time.monotonic() - stopped > 300:
                raise RuntimeError("the runner did not catch up after the load stopped")
            time.sleep(0.05)
        drained = time.monotonic() - stopped
        hwm = rss_kb(proc.pid, "VmHWM")
    finally:
        load.finish()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        checkpoint.close()
    check = same_table(pair.source, pair.target, CDC_DB, CDC_TABLE)
    rss = [kb / 1024 for _, kb in samples]
    log(
        f"   RSS start {rss[0]:.0f} MB, end {rss[-1]:.0f} MB, max {max(rss):.0f} MB; identical={check['identical']}"
    )
    return {
        "minutes": minutes,
        "rows_per_second": STREAM_ROWS_PER_SECOND,
        "row_changes": load.txns * ROWS_PER_TXN,
        "samples": [(round(t), round(kb / 1024, 1)) for t, kb in samples],
        "start_mb": rss[0],
        "end_mb": rss[-1],
        "max_mb": max(rss),
        "peak_hwm_mb": hwm / 1024,
        "drain_seconds": drained,
        "exit_code": proc.returncode,
        **check,
    }


# ---- 4. delay under sysbench oltp_write_only ---------------------------------------------------------

SB_DB = "sbtest"
SB_TABLES, SB_TABLE_SIZE, SB_THREADS = 4, 100_000, 4
HEARTBEAT_EVERY = 0.1  # seconds between heartbeat rows written on the source


def sysbench(pair: BenchServers, action: str, seconds: float = 0) -> str:
    args = ["sysbench", "oltp_write_only", "--db-driver=mysql", "--mysql-host=127.0.0.1",
            f"--mysql-port={pair.source.port}", f"--mysql-user={REPL_USER}", f"--mysql-password={REPL_PASSWORD}",
            f"--mysql-db={SB_DB}", f"--tables={SB_TABLES}", f"--table-size={SB_TABLE_SIZE}"]  # fmt: skip
    if action == "run":
        args += [f"--threads={SB_THREADS}", f"--time={int(seconds)}", "--report-interval=0"]
    return subprocess.run([*args, action], check=True, capture_output=True, text=True).stdout


@dataclass
class Heartbeat:
    """pt-heartbeat's idea: the source stamps NOW(6) into a replicated row every HEARTBEAT_EVERY s;
    the DR side's delay is its clock minus the stamp it holds (both servers share this machine's clock),
    measured the same way for the native replica and for DRS."""

    pair: BenchServers
    stop: threading.Event = field(default_factory=threading.Event)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, delay)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.stop.clear()
        self.samples = []
        self.began = time.monotonic()
        self.threads = [
            threading.Thread(target=self._write, daemon=True),
            threading.Thread(target=self._sample, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _write(self) -> None:
        conn = self.pair.source.root()
        with conn.cursor() as cur:
            while not self.stop.wait(HEARTBEAT_EVERY):
                cur.execute(f"UPDATE `{SB_DB}`.drs_heartbeat SET ts = NOW(6) WHERE id = 1")
        conn.close()

    def _sample(self) -> None:
        conn = self.pair.target.root()
        with conn.cursor() as cur:
            while not self.stop.wait(1.0):
                cur.execute(
                    f"SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) / 1e6 FROM `{SB_DB}`.drs_heartbeat"
                )
                self.samples.append((time.monotonic() - self.began, float(cur.fetchone()[0])))
        conn.close()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def measured_load(pair: BenchServers, seconds: float, reached) -> dict:
    """sysbench for `seconds` with the heartbeat on; then the time until `reached(end position)`."""
    beat = Heartbeat(pair)
    beat.start()
    try:
        out = sysbench(pair, "run", seconds)
    finally:
        beat.finish()
    end = master_position(pair.source)
    stopped = time.monotonic()
    while not reached(end):
        if time.monotonic() - stopped > 900:
            raise RuntimeError("the DR side did not catch up within 15 min after the load stopped")
        time.sleep(0.05)
    drain = time.monotonic() - stopped
    txns = int(out.split("transactions:", 1)[1].split()[0])
    delays = [d for _, d in beat.samples]
    half = delays[len(delays) // 2 :]
    # growth of the delay over the second half of the load (seconds of delay per second): ~0 when bounded
    slope = (half[-1] - half[0]) / max(1, len(half) - 1) if len(half) > 1 else 0.0
    return {"service_tps": txns / seconds, "txns": txns, "p50": _percentile(delays, 0.5),
            "p99": _percentile(delays, 0.99), "max": max(delays), "last": delays[-1], "slope": slope,
            "bounded": slope < 0.05 and delays[-1] < 5.0, "drain_seconds": drain,
            "applied_tps": txns / (seconds + drain), "samples": [round(d, 2) for d in delays]}  # fmt: skip


def _native_reached(conn: pymysql.connections.Connection):
    def reached(end: BinlogPosition) -> bool:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            st = cur.fetchone()
        if st["Last_SQL_Errno"] or st["Last_IO_Errno"]:
            raise RuntimeError(f"native replica failed: {st['Last_SQL_Error']} {st['Last_IO_Error']}")
        at = BinlogPosition(st["Relay_Master_Log_File"], int(st["Exec_Master_Log_Pos"]), None)
        return position_key(at) >= position_key(end)

    return reached


def _sb_identical(pair: BenchServers) -> bool:
    return all(
        same_table(pair.source, pair.target, SB_DB, f"sbtest{i}")["identical"]
        for i in range(1, SB_TABLES + 1)
    )


def bench_sysbench(pair: BenchServers, seconds: float) -> dict:
    log(f"4. sysbench oltp_write_only, {SB_THREADS} threads, {seconds:g} s: native replica, then DRS")
    pair.target.sql("SET GLOBAL read_only = OFF", f"DROP DATABASE IF EXISTS `{SB_DB}`")
    pair.source.sql(f"DROP DATABASE IF EXISTS `{SB_DB}`")
    start = master_position(pair.source)
    pair.source.sql(f"CREATE DATABASE `{SB_DB}`",
                    f"CREATE TABLE `{SB_DB}`.drs_heartbeat (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL)",
                    f"INSERT INTO `{SB_DB}`.drs_heartbeat VALUES (1, NOW(6))")  # fmt: skip
    sysbench(pair, "prepare")
    results: dict = {"seconds": seconds, "threads": SB_THREADS, "tables": SB_TABLES, "table_size": SB_TABLE_SIZE,
                     "load_before": os.getloadavg()}  # fmt: skip

    # native: a replica of the source from before the prepare (it replays the prepare, then the load)
    conn = pair.target.root()
    try:
        with conn.cursor() as cur:
            point_replica(cur, pair, start)
            cur.execute("START SLAVE")
        reached = _native_reached(conn)
        prepared = master_position(pair.source)
        while not reached(prepared):
            time.sleep(0.1)
        results["native"] = measured_load(pair, seconds, reached)
        with conn.cursor() as cur:
            cur.execute("STOP SLAVE")
            cur.execute("RESET SLAVE ALL")
    finally:
        conn.close()
    results["native"]["identical"] = _sb_identical(pair)
    n = results["native"]
    log(f"   native: service {n['service_tps']:,.0f} tps, delay p50 {n['p50']:.2f} s p99 {n['p99']:.2f} s, "
        f"drained in {n['drain_seconds']:.1f} s, identical={n['identical']}")  # fmt: skip

    # DRS: a fresh DR copy by `drs run`, then the same load
    pair.target.sql(f"DROP DATABASE `{SB_DB}`", f"DROP DATABASE IF EXISTS `{META}`")
    name = "bench-sysbench"
    with tempfile.TemporaryDirectory(prefix="drs-bench-sb-") as tmp:
        home = Path(tmp)
        create_task(pair, home, name, [SB_DB])
        run = DrsRun(home, name)
        run.start()
        checkpoint = DrCheckpoint(pair.target, name)
        try:
            results["drs_copy_seconds"] = run.wait_replicating(timeout=900)
            results["drs"] = measured_load(pair, seconds, checkpoint.reached)
            results["drs"]["peak_rss_mb"] = run.peak_rss_mb()
        finally:
            checkpoint.close()
            run.stop()
    results["drs"]["identical"] = _sb_identical(pair)
    results["load_after"] = os.getloadavg()
    d = results["drs"]
    log(f"   DRS: service {d['service_tps']:,.0f} tps, applied {d['applied_tps']:,.0f} tps, delay p50 {d['p50']:.2f} s "
        f"p99 {d['p99']:.2f} s max {d['max']:.2f} s, drained in {d['drain_seconds']:.1f} s, identical={d['identical']}")  # fmt: skip
    pair.source.sql(f"DROP DATABASE `{SB_DB}`")
    pair.target.sql(f"DROP DATABASE `{SB_DB}`")
    return results


# ---- report ---------------------------------------------------------------------------------------


def render(
    command: str,
    machine: dict,
    copies: list[dict],
    catch: dict | None,
    stream: dict | None,
    sb: dict | None,
    total: float,
    analysis: str,
) -> str:
    lines: list[str] = []
    add = lines.append
    add("# Benchmarks: DRS Desktop's replication engine beside the anchors\n")
    add(f"Produced by one run of `{command}` on {machine['date']} (commit `{machine['commit']}`, engine/ {machine['engine_tree']}), "
        f"{total / 60:.1f} minutes in all. Both MariaDB servers are private `mariadbd` processes on this "
        "machine (bench/servers.py: the test suite's options: ROW binlog, FULL row image and metadata, "
        "`innodb_flush_log_at_trx_commit=2`, `sync_binlog=0`, 256 MB buffer pool), so the network is loopback "
        "and the servers, the tools and the engine share the same two cores.\n")  # fmt: skip
    add("**The machine is shared**: other work was running beside this run (load average "
        f"{', '.join(f'{x:.1f}' for x in machine['load_before'])} before it started, "
        f"{', '.join(f'{x:.1f}' for x in machine['load_after'])} at the end), so absolute figures carry noise; "
        "the contenders of each part ran back to back and the ratios are the figures to read.\n")  # fmt: skip
    add("## Machine\n")
    add("| | |\n|---|---|")
    for key in (
        "nproc",
        "memory",
        "cpu",
        "os",
        "mariadb",
        "python",
        "pymysql",
        "mysql-replication",
        "mydumper",
    ):
        add(f"| {key} | {machine[key]} |")
    add("")

    for copy in copies:
        add(copy_section(copy))
    if catch is None:
        add("## 2. Catch-up\n\n(not run: `--parts` left it out)\n")
    else:
        add(f"## 2. Catch-up after {catch['rows']:,} row changes\n")
        add(f"Table `{CDC_DB}.{CDC_TABLE}` (INT primary key, INT, VARCHAR(32), DATETIME(6), DECIMAL(10,2); "
            f"{CDC_BASE_ROWS:,} rows to begin with). With replication stopped, a stored procedure on the source made "
            f"{catch['txns']:,} transactions of 4 inserts + 3 updates + 3 deletes ({catch['made_seconds']:.1f} s on the "
            f"source; {catch['backlog_mb']:.1f} MB of binlog from {catch['start']} to {catch['end']}). Each contender "
            "starts from the same DR-side state at the start position (the target table is restored, unlogged, "
            "between them) and is timed until it has applied up to the source's end position: the native replica "
            "by `Exec_Master_Log_Pos` from `START SLAVE`, DRS by its DR-side checkpoint "
            f"(`{META}.checkpoint`) from `TaskRunner.run()` (connects, then reads and applies).\n")  # fmt: skip
        add(f"The two run alternately, {len(catch['drs'].get('runs', [0]))} times each; a contender's figure is its median run.\n")
        add("| contender | seconds (median) | every run (s) | rows/s | CHECKSUM TABLE equal to the source |")
        add("|---|---:|---|---:|:---:|")
        for label, key in (
            ("native replica (CHANGE MASTER TO ... START SLAVE)", "native"),
            ("DRS TaskRunner", "drs"),
        ):
            r = catch[key]
            every = ", ".join(f"{x:.2f}" for x in r.get("runs", [r["seconds"]]))
            add(f"| {label} | {r['seconds']:.2f} | {every} | {r['rows_per_s']:,.0f} | "
                f"{'yes' if r['identical'] else '**NO**'} |")  # fmt: skip
        prof = catch["profile"]
        add(f"| DRS TaskRunner under cProfile (for the profile below) | {prof['seconds']:.2f} | | "
            f"{catch['rows'] / prof['seconds']:,.0f} | {'yes' if prof['identical'] else '**NO**'} |")  # fmt: skip
        add("")
        add(f"**Ratio DRS ÷ native (rows/s): {catch['ratio']:.3f}** (goal ≥ 1.0).\n")
        add("### Where the DRS catch-up time goes (cProfile, one profile per thread)\n")
        add("The runner has two threads: the binlog reader (python-mysql-replication + engine.rowdecode + "
            "engine.stream, feeding a queue) and the apply loop (engine.apply building SQL, pymysql sending it "
            "and waiting for the target). Own time per category; builtins (`int.from_bytes`, `str.join`...) are "
            "charged to the function that called them. cProfile slows Python-heavy code more than waiting, so "
            "read the shares, not the seconds. Each thread's time includes connecting at the start and up to one "
            "heartbeat (1 s) of idle reading after the end position was reached, before the stop was noticed. "
            "'socket writes' block when the server has not yet read the previous bytes (a 4 MB upsert), so in the "
            "apply thread they are waiting on the DR server too.\n")  # fmt: skip
        for tname, t in sorted(prof["threads"].items()):
            add(f"**Thread `{tname}`** — {t['wall']:.1f} s alive, {t['profiled']:.1f} s accounted:\n")
            add("| category | seconds | share |")
            add("|---|---:|---:|")
            for cat, sec in t["categories"]:
                if sec >= 0.005 * t["profiled"]:
                    add(f"| {cat} | {sec:.2f} | {100 * sec / max(t['profiled'], 1e-9):.0f}% |")
            add("")
            add("<details><summary>top functions by cumulative time</summary>\n")
            add("| function | calls | own s | cumulative s |")
            add("|---|---:|---:|---:|")
            for f in t["top"]:
                add(f"| `{f['function']}` | {f['calls']:,} | {f['own']:.2f} | {f['cumulative']:.2f} |")
            add("\n</details>\n")

    if stream is None:
        add("## 3. Memory while streaming\n\n(not run: `--parts` left it out)\n")
    else:
        add("## 3. Memory of `drs run` while streaming\n")
        add(f"`drs --home DIR run bench-cdc --quiet` (a separate process) for **{stream['minutes']:g} minutes** "
            f"(the target duration is 10; this run used {stream['minutes']:g}) while the source took a steady "
            f"{stream['rows_per_second']} row changes/s in 10-row transactions ({stream['row_changes']:,} in all); "
            f"VmRSS sampled every {SAMPLE_SECONDS:.0f} s from the moment the runner was applying.\n")  # fmt: skip
        add(
            "| start | end | max of samples | VmHWM (peak) | caught up after load stopped | target identical to source |"
        )
        add("|---:|---:|---:|---:|---:|:---:|")
        add(f"| {stream['start_mb']:.1f} MB | {stream['end_mb']:.1f} MB | {stream['max_mb']:.1f} MB | "
            f"{stream['peak_hwm_mb']:.1f} MB | {stream['drain_seconds']:.1f} s | {'yes' if stream['identical'] else '**NO**'} |\n")  # fmt: skip
        add("Samples (seconds, MB): " + ", ".join(f"{t}: {mb}" for t, mb in stream["samples"]) + "\n")
    add(sysbench_section(sb))
    add(targets(copies, catch, stream, sb))
    add(ANALYSIS_START)
    add(analysis or "(No analysis written for this run yet.)")
    add(ANALYSIS_END)
    return "\n".join(lines) + "\n"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


ANALYSIS_START = (
    "<!-- analysis:start (hand-written for the run above; kept when the report is regenerated) -->"
)
ANALYSIS_END = "<!-- analysis:end -->"


def kept_analysis(out: Path) -> str:
    """The hand-written analysis of an earlier report at `out`, to carry over."""
    if not out.exists():
        return ""
    text = out.read_text()
    if ANALYSIS_START not in text or ANALYSIS_END not in text:
        return ""
    return text.split(ANALYSIS_START, 1)[1].split(ANALYSIS_END, 1)[0].strip()


def kept_compare_section(out: Path) -> str:
    """The other benches' sections of an earlier report (compare_bench.py's and those after it: gui,
    cli), each with its own run and command, carried over whole."""
    from compare_bench import SECTION_START

    if not out.exists():
        return ""
    text = out.read_text()
    if SECTION_START not in text:
        return ""
    return "\n" + SECTION_START + text.split(SECTION_START, 1)[1]


def copy_section(copy: dict) -> str:
    lines: list[str] = []
    add = lines.append
    add(f"## 1. Initial copy of one {copy['rows']:,}-row table, end to end\n")
    add(f"Table `{COPY_DB}.{COPY_TABLE}`: INT AUTO_INCREMENT primary key, VARCHAR(40), DATETIME(6), DECIMAL(12,2), "
        f"INT, VARCHAR(16), nullable VARCHAR(40), a secondary index on the DATETIME; average row "
        f"{copy['avg_row_bytes']} bytes, {copy['data_mb']:.0f} MB data + {copy['index_mb']:.0f} MB index on the source. "
        "The target database is dropped and re-created before each contender; after each, COUNT(*) and "
        "CHECKSUM TABLE are compared with the source. All three write the target's binlog (myloader with `-e`). "
        f"The three run alternately, {len(copy['contenders'][0]['all_seconds'])} times each; a contender's "
        "figure is its median run (peak RSS: the highest of its runs). "
        "Each is timed as a user waits, process start included: the dump and load pipeline; mydumper into a "
        "temporary directory, then myloader; DRS from starting `python -m engine.cli --home H run NAME` (the task "
        "made beforehand with `drs task create --skip-checks`, not timed) until it prints that the task is "
        "replicating. Load average "
        f"{', '.join(f'{x:.1f}' for x in copy['load_before'])} before, "
        f"{', '.join(f'{x:.1f}' for x in copy['load_after'])} after.\n")  # fmt: skip
    add(
        "| contender | seconds (median) | every run (s) | rows/s | rows on target | CHECKSUM TABLE equal "
        "| target binlog written | peak RSS |"
    )
    add("|---|---:|---|---:|---:|:---:|---:|---:|")
    by_name = {c["name"]: c for c in copy["contenders"]}
    dump, myd, drs = by_name[DUMP_CONTENDER], by_name[MYDUMPER_CONTENDER], by_name[DRS_CONTENDER]
    for c in copy["contenders"]:
        rss = f"{c['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in c else ""
        every = ", ".join(f"{x:.2f}" for x in c["all_seconds"])
        add(f"| {cell(c['name'])} | {c['seconds']:.2f} | {every} | {c['rows_per_s']:,.0f} | {c['rows']:,} | "
            f"{'yes' if c['identical'] else '**NO**'} | {c['target_binlog_mb']:.0f} MB | {rss} |")  # fmt: skip
    add("")
    add(f"**Ratio (anchor's seconds ÷ DRS's seconds): {dump['seconds'] / drs['seconds']:.2f}× dump | load, "
        f"{myd['seconds'] / drs['seconds']:.2f}× mydumper + myloader** (goals ≥ 1.5× and ≥ 1.0×). "
        f"mydumper took {myd['dump_seconds']:.1f} s to dump and myloader {myd['load_seconds']:.1f} s to load "
        "(`-t 2 -r 100000`).\n")  # fmt: skip
    return "\n".join(lines)


def sysbench_section(sb: dict | None) -> str:
    if sb is None:
        return "## 4. Delay under sysbench\n\n(not run: `--parts` left it out)\n"
    lines: list[str] = []
    add = lines.append
    add(f"## 4. Delay under sysbench `oltp_write_only`, {sb['threads']} threads, {sb['seconds']:g} s\n")
    add(f"`sysbench oltp_write_only --tables={sb['tables']} --table-size={sb['table_size']:,} "
        f"--threads={sb['threads']} --time={int(sb['seconds'])}` on the source, first with a native replica "
        "(`CHANGE MASTER TO` the position before `prepare`, `START SLAVE`, caught up before the load), then with a "
        f"DRS task (`drs run`: initial copy of `{SB_DB}` in {sb['drs_copy_seconds']:.1f} s, then the same load). "
        f"Delay measured the same way for both, pt-heartbeat style: the source stamps `NOW(6)` into a row of "
        f"`{SB_DB}.drs_heartbeat` every {HEARTBEAT_EVERY} s; every second the DR side's `NOW(6)` minus the stamp "
        "it holds. 'Drained' is the time from the end of the load until the DR side has applied up to the "
        "source's binlog position at that moment (the replica's `Exec_Master_Log_Pos`, DRS's DR-side checkpoint). "
        "'Bounded': the delay grew by less than 0.05 s per second over the load's second half and ended under 5 s. "
        f"Load average {', '.join(f'{x:.1f}' for x in sb['load_before'])} before, "
        f"{', '.join(f'{x:.1f}' for x in sb['load_after'])} after.\n")  # fmt: skip
    add(
        "| DR side | service tps | applied tps (load + drain) | delay p50 | p99 | max | at load end | bounded | drained in | tables equal |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|:---:|---:|:---:|")
    for label, key in (("native replica", "native"), ("DRS `drs run`", "drs")):
        r = sb[key]
        add(f"| {label} | {r['service_tps']:,.0f} | {r['applied_tps']:,.0f} | {r['p50']:.2f} s | {r['p99']:.2f} s | "
            f"{r['max']:.2f} s | {r['last']:.2f} s | {'yes' if r['bounded'] else '**no**'} | "
            f"{r['drain_seconds']:.1f} s | {'yes' if r['identical'] else '**NO**'} |")  # fmt: skip
    add("")
    kept = {key: sb[key]["applied_tps"] / sb[key]["service_tps"] for key in ("native", "drs")}
    add(f"**Share of its source's load applied (transactions ÷ (load + drain), over transactions ÷ load): "
        f"DRS {kept['drs']:.3f}, native {kept['native']:.3f}; DRS ÷ native {kept['drs'] / kept['native']:.2f}** "
        "(goal ≥ 1.0, i.e. keeping up like the replica; each ran its own sysbench load, so their service tps "
        f"differ with the machine). DRS peak RSS {sb['drs']['peak_rss_mb']:.0f} MB.\n")  # fmt: skip
    for label, key in (("native", "native"), ("DRS", "drs")):
        add(
            f"Delay samples, {label} (s, one a second): "
            + ", ".join(f"{d:g}" for d in sb[key]["samples"])
            + "\n"
        )
    return "\n".join(lines)


def targets(copies: list[dict], catch: dict | None, stream: dict | None, sb: dict | None) -> str:
    rows: list[tuple[str, str, bool]] = []
    for copy in copies:
        by = {c["name"]: c for c in copy["contenders"]}
        drs = by[DRS_CONTENDER]
        vs_myd = by[MYDUMPER_CONTENDER]["seconds"] / drs["seconds"]
        vs_dump = by[DUMP_CONTENDER]["seconds"] / drs["seconds"]
        rows.append(
            (
                f"copy {copy['rows']:,} rows end to end ≥ 1.0× mydumper+myloader",
                f"{vs_myd:.2f}×",
                vs_myd >= 1.0,
            )
        )
        rows.append(
            (f"copy {copy['rows']:,} rows end to end ≥ 1.5× dump | load", f"{vs_dump:.2f}×", vs_dump >= 1.5)
        )
        if copy["rows"] >= 1_000_000:
            rows.append(
                (
                    f"copy {copy['rows']:,} rows peak RSS < 200 MB",
                    f"{drs['peak_rss_mb']:.0f} MB",
                    drs["peak_rss_mb"] < 200,
                )
            )
    if catch is not None:
        rows.append(
            ("catch-up rows/s ≥ 1.0 × native", f"{catch['ratio']:.3f} × native", catch["ratio"] >= 1.0)
        )
    if stream is not None:
        growth = stream["end_mb"] - stream["start_mb"]
        rows.append(
            (
                "streaming RSS flat (end − start < 5 MB)",
                f"{growth:+.1f} MB over {stream['minutes']:g} min",
                growth < 5,
            )
        )
    if sb is not None:
        kept = {key: sb[key]["applied_tps"] / sb[key]["service_tps"] for key in ("native", "drs")}
        ratio = kept["drs"] / kept["native"]
        rows.append(
            ("sysbench oltp_write_only: DRS keeps up ≥ 1.0 × native (share of its source's load applied)",
             f"{ratio:.2f}× ({kept['drs']:.1%} vs {kept['native']:.1%})", round(ratio, 2) >= 1.0)
        )
        rows.append(("sysbench oltp_write_only: delay bounded", f"p50 {sb['drs']['p50']:.2f} s, p99 {sb['drs']['p99']:.2f} s",
                     sb["drs"]["bounded"]))  # fmt: skip
    same = _all_identical(copies, catch, stream, sb)
    rows.append(
        (
            "every copy and catch-up ends identical to the source",
            "CHECKSUM TABLE equal" if same else "a difference",
            same,
        )
    )
    out = ["## Targets\n", "| target | this run | met |", "|---|---|:---:|"]
    out += [f"| {cell(name)} | {value} | {'yes' if ok else '**no**'} |" for name, value, ok in rows]
    return "\n".join(out) + "\n"


def _all_identical(copies: list[dict], catch: dict | None, stream: dict | None, sb: dict | None) -> bool:
    parts = [c["identical"] for copy in copies for c in copy["contenders"]]
    if catch is not None:
        parts += [catch["native"]["identical"], catch["drs"]["identical"], catch["profile"]["identical"]]
    if stream is not None:
        parts.append(stream["identical"])
    if sb is not None:
        parts += [sb["native"]["identical"], sb["drs"]["identical"]]
    return all(parts)


PARTS = ("copy", "catchup", "stream", "sysbench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="300000,1000000",
                        help="rows of the initial-copy table, comma-separated: one end-to-end copy per size")  # fmt: skip
    parser.add_argument("--copy-runs", type=int, default=5, help="runs of each copy contender, alternating")
    parser.add_argument("--changes", type=int, default=200_000, help="row changes in the catch-up backlog")
    parser.add_argument("--catchup-runs", type=int, default=3, help="runs of each catch-up contender, alternating")
    parser.add_argument("--stream-minutes", type=float, default=2.0, help="minutes of streaming under load")
    parser.add_argument(
        "--sysbench-seconds", type=float, default=90, help="seconds of sysbench load per contender"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--out", default="docs/benchmarks.md", help="Markdown report (relative to the repo)")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        parser.error(f"--parts: unknown {', '.join(sorted(parts - set(PARTS)))}; allowed: {', '.join(PARTS)}")
    sizes = [int(x) for x in args.rows.split(",") if x.strip()]
    command = "python bench/run_bench.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    ensure_tools(
        ["mariadbd"]
        + (["mariadb-dump", "mariadb", "mydumper", "myloader"] if "copy" in parts else [])
        + (["sysbench"] if "sysbench" in parts else [])
    )
    began = time.monotonic()
    catch = stream = sb = None
    # `drs run` starts from bytecode, as an installed package does (pip compiles at install; a checkout
    # on a machine with PYTHONDONTWRITEBYTECODE set would compile every module at every start)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "engine")], check=True, stdout=subprocess.DEVNULL)
    with bench_servers() as pair, tempfile.TemporaryDirectory(prefix="drs-bench-home-") as home:
        machine = machine_facts(pair)
        log(f"servers up: source :{pair.source.port}, target :{pair.target.port}; {machine['mariadb']}")
        copies = [bench_copy(pair, rows, args.copy_runs) for rows in sizes] if "copy" in parts else []
        if "catchup" in parts or "stream" in parts:
            catch = bench_catch_up(pair, Path(home), args.changes, args.catchup_runs)
        if "stream" in parts:
            stream = bench_stream(pair, Path(home), args.stream_minutes)
        if "sysbench" in parts:
            sb = bench_sysbench(pair, args.sysbench_seconds)
        machine["load_after"] = os.getloadavg()
    total = time.monotonic() - began
    out = Path(args.out) if Path(args.out).is_absolute() else ROOT / args.out
    report = render(command.strip(), machine, copies, catch, stream, sb, total, kept_analysis(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + kept_compare_section(out))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": machine, "copies": copies, "catch_up": catch, "stream": stream, "sysbench": sb},
            indent=1, default=str))  # fmt: skip
    log(f"report written to {out} ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
