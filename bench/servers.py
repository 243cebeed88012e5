"""Two private mariadbd servers (source and target) for the benchmarks, in a temporary directory.

Reuses the test suite's MariaDBServer (same options: ROW binlog, FULL image and metadata, relaxed
flushing) so the benchmark measures the engine on the servers its tests run on. Stopped by pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from conftest import REPL_PASSWORD, REPL_USER, MariaDBServer  # noqa: E402

# conftest defines an in-memory keyring backend, which keyring then prefers in this process: the
# passwords of bench tasks must go to the DRS home's encrypted file, where `drs run` finds them.
os.environ["DRS_SECRET_BACKEND"] = "file"

__all__ = ["REPL_PASSWORD", "REPL_USER", "BenchServers", "MariaDBServer", "bench_servers"]


@dataclass
class BenchServers:
    source: MariaDBServer
    target: MariaDBServer
    base: Path


@contextmanager
def bench_servers() -> Iterator[BenchServers]:
    """Start source (server id 101) and target (202) on free loopback ports; stop and remove them after."""
    base = Path(tempfile.mkdtemp(prefix="drs-bench-"))
    os.chmod(base, 0o755)  # mariadbd runs as mysql and must traverse it
    source = MariaDBServer("source", server_id=101)
    target = MariaDBServer("target", server_id=202)
    try:
        source.start(base)
        target.start(base)
        yield BenchServers(source, target, base)
    finally:
        for server in (source, target):
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


# The tools the benchmarks run, by the Debian package that has them
PACKAGE_OF = {
    "mariadbd": "mariadb-server",
    "mariadb-dump": "mariadb-client",
    "mariadb": "mariadb-client",
    "mydumper": "mydumper",
    "myloader": "mydumper",
    "sysbench": "sysbench",
    "pt-table-sync": "percona-toolkit",
}


def ensure_tools(tools: list[str]) -> None:
    """Install the missing ones of `tools` with apt-get when this runs as root on Debian/Ubuntu (as
    .ci/run installs mariadb-server); elsewhere stop with the list and the command that installs them."""
    missing = [t for t in tools if shutil.which(t) is None and not (t == "mariadbd" and shutil.which("mysqld"))]
    if not missing:
        return
    packages = sorted({PACKAGE_OF[t] for t in missing})
    command = ["apt-get", "install", "-y", *packages]
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"bench: installing {', '.join(packages)} (for {', '.join(missing)})", flush=True)
        subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if all(shutil.which(t) for t in missing):
            return
    raise SystemExit(f"bench: {', '.join(missing)} not found; install them first: sudo {' '.join(command)}")


def fill_from_sequence(source: MariaDBServer, db: str, ddl: str, insert_select: str, rows: int) -> float:
    """(Re)create database `db` with `ddl`, then run `insert_select` (an INSERT ... SELECT over `seq`,
    without its FROM) on the Sequence engine's rows 1..`rows`, 100k per transaction. Seconds taken."""
    source.sql(f"DROP DATABASE IF EXISTS `{db}`", f"CREATE DATABASE `{db}`", ddl)
    began = time.monotonic()
    for lo in range(1, rows + 1, 100_000):
        hi = min(rows, lo + 99_999)
        source.sql(f"{insert_select} FROM `{db}`.seq_{lo}_to_{hi}")
    return time.monotonic() - began


if __name__ == "__main__":
    # Manual use: start both, print where they listen, stop on Enter.
    with bench_servers() as s:
        print(f"source 127.0.0.1:{s.source.port} socket {s.source.socket_path}")
        print(f"target 127.0.0.1:{s.target.port} socket {s.target.socket_path}")
        print(f"user {REPL_USER} password {REPL_PASSWORD}; press Enter to stop")
        sys.stdin.readline()
