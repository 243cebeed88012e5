"""Test fixtures: two real MariaDB servers (service and DR) shared by the whole session.

The servers are started from the `mariadbd` binary on free loopback ports with temporary data
directories, and stopped by pid at the end. Set DRS_TEST_SOURCE / DRS_TEST_TARGET to
"host:port:user:password" (a user with all privileges) to run the suite against servers you already
have, e.g. a real MySQL 8.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import keyring
import pymysql
import pytest
from keyring.backend import KeyringBackend

from engine.spec import Endpoint, Secret
from engine.tasks import TaskService

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPL_USER = "drs"
REPL_PASSWORD = "Drs-test-pw-7f3a"
SYSTEM_DBS = {"mysql", "sys", "information_schema", "performance_schema"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MariaDBServer:
    """One private mariadbd; `root()` connects as root through its socket."""

    name: str
    server_id: int
    port: int = 0
    datadir: Path = field(default_factory=Path)
    socket_path: Path = field(default_factory=Path)
    tmpdir: Path = field(default_factory=Path)
    proc: subprocess.Popen | None = None
    external: tuple[str, int, str, str] | None = None

    @property
    def endpoint(self) -> Endpoint:
        if self.external:
            host, port, user, pw = self.external
            return Endpoint(host, port, user, Secret(pw))
        return Endpoint("127.0.0.1", self.port, REPL_USER, Secret(REPL_PASSWORD))

    def root(self, database: str | None = None, **kwargs) -> pymysql.connections.Connection:
        if self.external:
            host, port, user, pw = self.external
            return pymysql.connect(host=host, port=port, user=user, password=pw, database=database,
                                   autocommit=True, charset="utf8mb4", **kwargs)  # fmt: skip
        return pymysql.connect(unix_socket=str(self.socket_path), user="root", database=database,
                               autocommit=True, charset="utf8mb4", **kwargs)  # fmt: skip

    def sql(self, *statements: str, database: str | None = None) -> list[tuple]:
        conn = self.root(database)
        try:
            rows: list[tuple] = []
            with conn.cursor() as cur:
                for st in statements:
                    cur.execute(st)
                    rows = list(cur.fetchall())
            return rows
        finally:
            conn.close()

    def start(self, base: Path, extra_args: list[str] | None = None) -> None:
        self.datadir = base / self.name
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.socket_path = self.datadir / "sock"
        # A private temp dir (outside the datadir, where it would show up as a database): nothing
        # else in /tmp can delete the server's temp files.
        self.tmpdir = base / f"{self.name}-tmp"
        self.tmpdir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.tmpdir, "mysql", "mysql")
        if not (self.datadir / "mysql").exists():
            # --tmpdir: a bootstrapping server deletes every #sql file in its tmpdir, so with the shared
            # /tmp one worker's bootstrap removed another's temporary tables ("Unknown table
            # 'mysql.tmp_user_sys'", about 1 start in 12 with 4 at once)
            made = subprocess.run(
                [_tool("mariadb-install-db", "mysql_install_db"), "--no-defaults", f"--datadir={self.datadir}",
                 f"--tmpdir={self.tmpdir}", *(["--user=mysql"] if os.geteuid() == 0 else []),
                 "--auth-root-authentication-method=normal", "--skip-test-db"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            )  # fmt: skip
            if made.returncode != 0:
                raise RuntimeError(f"mariadb-install-db {self.name} failed:\n{made.stdout[-3000:]}")
        if os.geteuid() == 0:
            shutil.chown(self.datadir, "mysql", "mysql")
            subprocess.run(["chown", "-R", "mysql:mysql", str(self.datadir)], check=True)
        self.port = self.port or free_port()
        args = [
            _tool("mariadbd", "mysqld"), "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
            f"--socket={self.socket_path}", "--bind-address=127.0.0.1", f"--server-id={self.server_id}",
            f"--log-bin={self.datadir}/binlog", "--binlog-format=ROW", "--binlog-row-image=FULL",
            "--binlog-row-metadata=FULL", "--log-slave-updates", f"--pid-file={self.datadir}/pid",
            f"--log-error={self.datadir}/err.log", f"--tmpdir={self.tmpdir}", "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=2",
            "--sync-binlog=0", "--innodb-buffer-pool-size=256M", "--max-connections=300",
            "--innodb-log-file-size=256M", "--local-infile=1", "--skip-log-bin-trust-function-creators",
            # a server started again (after a kill) keeps its port, which a client's outgoing connection
            # may hold for a moment meanwhile (test ports are in the ephemeral range): wait, not fail
            "--port-open-timeout=15",
        ]  # fmt: skip
        if os.geteuid() == 0:
            args.append("--user=mysql")
        args += extra_args or []
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.sql("SELECT 1")
                break
            except pymysql.err.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.datadir / "err.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"mariadbd {self.name} did not start:\n{log}") from None
                time.sleep(0.05)
        self.sql(
            f"CREATE USER IF NOT EXISTS '{REPL_USER}'@'%' IDENTIFIED BY '{REPL_PASSWORD}'",
            f"GRANT ALL PRIVILEGES ON *.* TO '{REPL_USER}'@'%' WITH GRANT OPTION",
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """Crash the server (SIGKILL): for failover tests."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, base: Path) -> None:
        self.stop()
        self.start(base)

    def user_databases(self) -> list[str]:
        return [r[0] for r in self.sql("SHOW DATABASES") if r[0] not in SYSTEM_DBS]

    def reset(self) -> None:
        """Drop every user database and leave the server writable: a clean slate for the next test."""
        self.sql("SET GLOBAL read_only = OFF")
        for db in self.user_databases():
            self.sql(f"DROP DATABASE `{db.replace('`', '``')}`")
        for (user, host) in self.sql("SELECT User, Host FROM mysql.user WHERE User LIKE 'drs\\_t%'"):
            self.sql(f"DROP USER '{user}'@'{host}'")


def _tool(*names: str) -> str:
    for n in names:
        path = shutil.which(n) or (f"/usr/sbin/{n}" if os.path.exists(f"/usr/sbin/{n}") else None)
        if path:
            return path
    raise RuntimeError(f"{names[0]} not found: install mariadb-server (the README's test command does)")


def _external(var: str) -> tuple[str, int, str, str] | None:
    value = os.environ.get(var)
    if not value:
        return None
    host, port, user, pw = value.split(":", 3)
    return host, int(port), user, pw


@dataclass
class ServerPair:
    source: MariaDBServer
    target: MariaDBServer
    base: Path

    def reset(self) -> None:
        self.source.reset()
        self.target.reset()


@pytest.fixture(scope="session")
def servers() -> Iterator[ServerPair]:
    base = Path(tempfile.mkdtemp(prefix="drs-mariadb-"))
    os.chmod(base, 0o755)  # mariadbd runs as mysql and must traverse it
    source = MariaDBServer("source", server_id=101, external=_external("DRS_TEST_SOURCE"))
    target = MariaDBServer("target", server_id=202, external=_external("DRS_TEST_TARGET"))
    try:
        for server in (source, target):
            if not server.external:
                server.start(base)
        yield ServerPair(source, target, base)
    finally:
        for server in (source, target):
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def dbs(servers: ServerPair) -> Iterator[ServerPair]:
    """The two servers, with every user database dropped before the test."""
    for server in (servers.source, servers.target):
        if not server.external and server.proc is None:
            server.start(servers.base)
    servers.reset()
    yield servers


class MemoryKeyring(KeyringBackend):
    """An in-process keyring backend, so tests exercise the real keyring API without an OS keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DRS home; DRS_HOME points at it for code and subprocesses."""
    h = tmp_path / "drs-home"
    monkeypatch.setenv("DRS_HOME", str(h))
    return h


@pytest.fixture
def service(home: Path, memory_keyring: MemoryKeyring) -> Iterator[TaskService]:
    """The tasks of a fresh DRS home, passwords in the in-memory keyring."""
    svc = TaskService(home)
    yield svc
    svc.close()


def make_spec(servers: ServerPair, name: str = "orders-dr", **overrides) -> dict:
    """A spec dict (as in a spec file) pointing at the two test servers."""
    src, tgt = servers.source.endpoint, servers.target.endpoint
    spec = {
        "name": name,
        "description": "test task",
        "relationship": "standby",
        "network": "public",
        "source": {"host": src.host, "port": src.port, "user": src.user, "password": src.password.reveal(), "tls": "off"},
        "target": {"host": tgt.host, "port": tgt.port, "user": tgt.user, "password": tgt.password.reveal(), "tls": "off"},
        "flow_control": None,
        "migrate_definer": True,
        "start": "now",
        "tags": {},
    }
    spec.update(overrides)
    return spec
