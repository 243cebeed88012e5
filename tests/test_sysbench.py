"""A third-party workload: sysbench OLTP against the service side (issue 11, 3c).

`oltp_write_only` runs while the task makes its initial copy and then streams; `drs run` is killed
(-9) mid-stream; `oltp_read_write` runs while the task is dead and goes on after it is started
again. Then the DR side must hold exactly what the service side holds (`drs compare --level values`
exits 0, and the byte-exact oracle agrees). sysbench comes from the Debian package `sysbench`
(scripts/setup-env.sh installs it for the tests). DRS_FAULTS_LONG=1 runs bigger tables for longer.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from conftest import REPL_PASSWORD, REPL_USER
from dr_helpers import wait_for
from test_faults import (
    LONG,
    converged,
    create_task,
    kill9,
    record,
    running,  # noqa: F401 - a fixture
    start_run,
    status,
    stop_run,
    wait_replicating,
)

TABLES = 2
TABLE_SIZE = 50000 if LONG else 5000
SECONDS = (30, 30) if LONG else (6, 4)  # oltp_write_only, oltp_read_write
THREADS = 4 if LONG else 2
RATE = 0 if LONG else 150  # transactions per second in all (0: as fast as it goes)


def sysbench(port: int, test: str, command: str, seconds: int = 0) -> list[str]:
    sb = shutil.which("sysbench")
    assert sb, "sysbench is not installed: `apt-get install sysbench` (scripts/setup-env.sh test does it)"
    args = [
        sb, test, "--db-driver=mysql", "--mysql-host=127.0.0.1", f"--mysql-port={port}", f"--mysql-user={REPL_USER}",
        f"--mysql-password={REPL_PASSWORD}", "--mysql-db=sbtest", f"--tables={TABLES}", f"--table-size={TABLE_SIZE}",
        f"--threads={THREADS}", "--rand-seed=11", "--report-interval=0",
    ]  # fmt: skip
    if command == "run":
        args += [f"--time={seconds}", f"--rate={RATE}", "--events=0"]
    return [*args, command]


def finished(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"sysbench failed ({proc.returncode}): {err}\n{out}"
    return out


def transactions(report: str) -> int:
    for line in report.splitlines():
        if line.strip().startswith("transactions:"):
            return int(line.split()[1])
    raise AssertionError(f"no transaction count in the sysbench report:\n{report}")


def test_sysbench_during_copy_and_stream_with_a_kill9_restart(dbs, home, tmp_path, running):  # noqa: F811
    port = dbs.source.port
    dbs.source.sql("CREATE DATABASE sbtest")
    finished(subprocess.Popen(sysbench(port, "oltp_write_only", "prepare"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    create_task(home, dbs, "sb-dr", tmp_path, databases=["sbtest"])
    write_only = subprocess.Popen(
        sysbench(port, "oltp_write_only", "run", SECONDS[0]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    read_write = None
    try:
        time.sleep(0.5)
        running.append(start_run(home, "sb-dr"))  # the initial copy runs under the load
        wait_replicating(home, "sb-dr")
        assert write_only.poll() is None, "sysbench ended before the copy did: the copy saw no load"
        copied = record(home, "sb-dr")[0].rows_copied
        assert copied >= TABLES * TABLE_SIZE * 0.9
        time.sleep(1.0)  # streaming under the load
        kill9(running[-1])
        report = finished(write_only)
        assert transactions(report) > 0
        read_write = subprocess.Popen(
            sysbench(port, "oltp_read_write", "run", SECONDS[1]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(1.0)  # a backlog builds up while the runner is dead
        running.append(start_run(home, "sb-dr"))
        report = finished(read_write)
        assert transactions(report) > 0
        wait_for(lambda: status(home, "sb-dr") == "replicating", 60, 0.2, "replicating")
        converged(home, dbs, "sb-dr", ["sbtest"], timeout=300)
        assert running[-1].poll() is None
    finally:
        for proc in (write_only, read_write):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    code, _out, err = stop_run(running[-1])
    assert code == 0, err

