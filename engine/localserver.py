"""A private MariaDB server on a loopback port, started from the installed `mariadbd`: the sandbox's two
servers (and a launcher the test suite can share). Detached in its own session, found again by its pid
file, stopped by pid.

Running as root (CI, containers), mariadbd runs as the `mysql` system user: its data and temp
directories are chowned to it, and every directory above them must let it through (see
`mysql_can_traverse`); the caller chooses a place that does.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from engine.errors import DrsError

MARIADBD_ENV = "DRS_MARIADBD"  # the mariadbd binary to use instead of the one on PATH or in /usr/sbin
INSTALL_HINT = "install mariadb-server (e.g. apt-get install mariadb-server)"
SYSTEM_USER = "mysql"  # what mariadbd runs as when started by root
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0

# What tests/conftest.py runs its servers with: row binlog with every column and its metadata, so a DR
# task can read it; a smaller buffer pool and redo log, since two of these run on a workstation.
BASE_OPTIONS: tuple[str, ...] = (
    "--bind-address=127.0.0.1",
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
    "--log-slave-updates",
    "--skip-name-resolve",
    "--innodb-flush-log-at-trx-commit=2",
    "--sync-binlog=0",
    "--innodb-buffer-pool-size=128M",
    "--innodb-log-file-size=48M",
    "--max-connections=300",
    "--local-infile=1",
    "--skip-log-bin-trust-function-creators",
)


class MariaDBNotInstalled(DrsError):
    """No usable mariadbd / mariadb-install-db on this machine."""


class ServerStartFailed(DrsError):
    """mariadbd was found but did not come up (port taken, bad data directory, ...)."""


# ---- finding the binaries ------------------------------------------------------------------------


def _which(name: str, extra_dirs: Sequence[Path] = ()) -> Path | None:
    for directory in extra_dirs:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    for directory in ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_mariadbd() -> Path:
    """The server binary: $DRS_MARIADBD when set (it must exist), else `mariadbd`/`mysqld` on PATH or in /usr/sbin."""
    override = os.environ.get(MARIADBD_ENV)
    if override:
        path = Path(override).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise MariaDBNotInstalled(
                f"{MARIADBD_ENV}={override}: no executable mariadbd there; {INSTALL_HINT}, "
                f"or point {MARIADBD_ENV} at the mariadbd binary"
            )
        return path
    for name in ("mariadbd", "mysqld"):
        path = _which(name)
        if path is not None:
            return path
    raise MariaDBNotInstalled(f"mariadbd was not found (on PATH or in /usr/sbin): {INSTALL_HINT}")


def find_install_db(mariadbd: Path) -> Path:
    """`mariadb-install-db`, looked for beside the server binary first (a tarball's bin/ and scripts/)."""
    near = [mariadbd.parent, mariadbd.parent.parent / "bin", mariadbd.parent.parent / "scripts"]
    for name in ("mariadb-install-db", "mysql_install_db"):
        path = _which(name, near)
        if path is not None:
            return path
    raise MariaDBNotInstalled(
        f"mariadb-install-db was not found beside {mariadbd} or on PATH: {INSTALL_HINT}"
    )


def system_user() -> pwd.struct_passwd | None:
    """The account mariadbd runs as: `mysql` when we are root, else None (it runs as us)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise MariaDBNotInstalled(
            f"running as root, mariadbd needs the '{SYSTEM_USER}' system user, which does not exist: {INSTALL_HINT}"
        ) from None


def mysql_can_traverse(path: Path) -> bool:
    """Whether the `mysql` user may pass through every directory down to `path` (existing part only).
    Plain mode bits: ACLs are not consulted, so a False may be overcautious, never wrong the other way."""
    try:
        user = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        return False
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if SYSTEM_USER in g.gr_mem}
    path = path.absolute()
    for directory in (path, *path.parents):
        try:
            st = directory.stat()
        except FileNotFoundError:
            continue  # created later, by us, with a mode we choose
        if st.st_uid == user.pw_uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


# ---- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """Nothing listens on the port (connections of a stopped server in TIME_WAIT do not count: mariadbd
    binds with SO_REUSEADDR too)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def process_alive(pid: int | None, markers: Sequence[str] = ()) -> bool:
    """True when `pid` runs and (on Linux) its command line contains every marker, so a pid reused by
    another program after a reboot is not taken for ours. A zombie (exited, not yet reaped: our own
    child, or an orphan whose init does not reap) counts as gone."""
    if not pid or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user (mariadbd running as mysql)
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return not Path("/proc/self").exists()  # no procfs (macOS): trust kill(0)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state in ("Z", "X"):
        return False
    command = _cmdline(pid)
    return command is not None and all(m in command for m in markers)


def terminate(pid: int | None, *, markers: Sequence[str] = (), timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, wait up to `timeout` for the process to end, then SIGKILL."""
    if not process_alive(pid, markers):
        return
    assert pid is not None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid, markers):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process_alive(pid, markers):
        time.sleep(0.05)


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    os.chown(path, user.pw_uid, user.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), user.pw_uid, user.pw_gid)


# ---- one server ----------------------------------------------------------------------------------


@dataclass
class LocalServer:
    """One private mariadbd: its data directory, temp directory, loopback port and server id.
    Root connects through the socket in the data directory, which only its owner can reach."""

    name: str
    datadir: Path
    tmpdir: Path
    port: int
    server_id: int
    extra_args: tuple[str, ...] = ()
    mariadbd: Path | None = field(default=None, repr=False)  # found on first use

    @property
    def socket_path(self) -> Path:
        return self.datadir / "mysqld.sock"

    @property
    def pid_file(self) -> Path:
        return self.datadir / "mysqld.pid"

    @property
    def error_log(self) -> Path:
        return self.datadir / "error.log"

    @property
    def initialized(self) -> bool:
        return (self.datadir / "mysql").is_dir()

    def _binary(self) -> Path:
        if self.mariadbd is None:
            self.mariadbd = find_mariadbd()
        return self.mariadbd

    def initialize(self) -> None:
        """Create the system tables (root without a password, reachable through the socket only once
        `restrict_root` has run)."""
        mariadbd = self._binary()
        owner = system_user()
        self.datadir.mkdir(parents=True, exist_ok=True)
        # its own tmpdir: a server that starts deletes every #sql file in its tmpdir, and in a shared
        # /tmp that can be the temporary tables of this bootstrap ("Unknown table 'mysql.tmp_user_sys'")
        self._prepare_tmpdir()
        result = subprocess.run(
            [str(find_install_db(mariadbd)), "--no-defaults", f"--datadir={self.datadir}", f"--tmpdir={self.tmpdir}",
             *_basedir_option(mariadbd), *([f"--user={SYSTEM_USER}"] if owner else []),
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        )  # fmt: skip
        if result.returncode != 0 or not self.initialized:
            tail = result.stdout.strip()[-1500:]
            raise ServerStartFailed(f"mariadb-install-db could not initialize {self.datadir}:\n{tail}")
        # the socket lives here: only the owner (and root) may reach it
        os.chmod(self.datadir, 0o700)
        if owner:
            _chown_tree(self.datadir, owner)

    def _prepare_tmpdir(self) -> None:
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.tmpdir, 0o700)
        owner = system_user()
        if owner:
            os.chown(self.tmpdir, owner.pw_uid, owner.pw_gid)

    def command(self) -> list[str]:
        args = [
            str(self._binary()), "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
            f"--socket={self.socket_path}", f"--server-id={self.server_id}", f"--log-bin={self.datadir}/binlog",
            f"--pid-file={self.pid_file}", f"--log-error={self.error_log}", f"--tmpdir={self.tmpdir}",
            *BASE_OPTIONS,
        ]  # fmt: skip
        if system_user():
            args.append(f"--user={SYSTEM_USER}")
        return [*args, *self.extra_args]

    def start(self, log_path: Path, timeout: float = START_TIMEOUT) -> int:
        """Start detached (own session, so it outlives the caller), wait until root can connect; the pid."""
        if self.running():
            return self.pid() or 0
        if len(str(self.socket_path)) > SOCKET_PATH_MAX:
            raise ServerStartFailed(
                f"socket path {self.socket_path} is too long for a Unix socket; use a shorter directory"
            )
        if not port_free(self.port):
            raise ServerStartFailed(
                f"port {self.port} on 127.0.0.1 is in use by another program, so the {self.name} server cannot listen "
                "there; stop that program and start again"
            )
        self._prepare_tmpdir()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect_root(connect_timeout=2).close()
                return proc.pid
            except pymysql.err.MySQLError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    terminate(proc.pid)
                raise ServerStartFailed(
                    f"the {self.name} server (mariadbd on port {self.port}) did not start; the end of {self.error_log}:\n"
                    + self.error_log_tail()
                )
            time.sleep(0.1)

    def error_log_tail(self, chars: int = 1500) -> str:
        try:
            return self.error_log.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return "(no error log)"

    def pid(self) -> int | None:
        """The running server's pid (from its pid file, checked against the process list), else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid, (str(self.datadir),)) else None

    def running(self) -> bool:
        return self.pid() is not None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after `timeout`."""
        terminate(self.pid(), markers=(str(self.datadir),), timeout=timeout)

    def connect_root(self, database: str | None = None, **kwargs: object) -> pymysql.connections.Connection:
        options: dict = dict(unix_socket=str(self.socket_path), user="root", database=database, autocommit=True,
                             charset="utf8mb4", connect_timeout=10)  # fmt: skip
        options.update(kwargs)
        return pymysql.connect(**options)

    def sql(self, *statements: str, database: str | None = None) -> list[tuple]:
        """Run statements as root; the rows of the last one."""
        conn = self.connect_root(database)
        try:
            rows: list[tuple] = []
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
                    rows = list(cur.fetchall())
            return rows
        finally:
            conn.close()

    def restrict_root(self) -> None:
        """Drop the password-less root accounts reachable over TCP (127.0.0.1, ::1, the host name):
        root is then reachable only through the socket in the owner-only data directory."""
        conn = self.connect_root()
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_log_bin = 0")  # account changes are no DR task's business
                cur.execute("SELECT Host FROM mysql.user WHERE User = 'root' AND Host <> 'localhost'")
                for (host,) in cur.fetchall():
                    cur.execute("DROP USER 'root'@%s", (host,))
        finally:
            conn.close()

    def ensure_user(self, user: str, password: str, host: str = "127.0.0.1") -> None:
        """An account with every privilege (what a DR task needs, and more), with this password."""
        conn = self.connect_root()
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_log_bin = 0")
                cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password))
                cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password))
                cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@%s", (user, host))
        finally:
            conn.close()


def _basedir_option(mariadbd: Path) -> list[str]:
    """A server named by $DRS_MARIADBD may come from an unpacked tarball: install-db must be told the
    installation prefix to find its SQL scripts (a packaged server's install-db knows its own)."""
    if not os.environ.get(MARIADBD_ENV):
        return []
    return [f"--basedir={mariadbd.resolve().parent.parent}"]
