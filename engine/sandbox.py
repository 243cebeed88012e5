"""`drs sandbox`: the product working in five minutes without owning a server. Two private MariaDB
servers on loopback ports, a sample shop database with a trickle of writes, and DR task `sandbox-dr`.

Layout, under `<DRS home>/sandbox/`: `state.json` (ports, pids, paths; never a password), the logs of
every process it starts (`service.log`, `dr.log`, `trickle.log`, `runner.log`), and the servers'
directories `service/`, `dr/` (+ `-tmp/`). Running as root, mariadbd runs as `mysql`, which may be
unable to pass through the DRS home (under /root, or a 0700 temp dir); the servers' directories then go
to `/var/tmp/drs-sandbox-<uid>-<hash of the sandbox path>/` instead, recorded in state.json as
`server_base` (the same when the socket path would be too long). `--wipe` deletes both.

The servers' account `drs_sandbox` (all privileges, from 127.0.0.1 only) has a generated password per
server, kept in the secret store under the name `drs.sandbox` (a name no task can have), sides
`source` (service server) and `target` (DR server); `stop --wipe` removes it. Root has no password and
is reachable only through the socket in its owner-only data directory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import localserver, sandbox_data
from engine.errors import DrsError, SecretStoreError, TaskNotFound
from engine.localserver import LocalServer
from engine.paths import drs_argv, resolve_home

if TYPE_CHECKING:
    from engine.tasks import TaskService

try:
    import fcntl
except ImportError:  # Windows: no sandbox servers there anyway (mariadbd launcher is POSIX)
    fcntl = None  # type: ignore[assignment]

SANDBOX_TASK = "sandbox-dr"
SECRET_NAME = "drs.sandbox"  # not a valid task name ('.'), so no task's passwords can collide with it
SANDBOX_USER = "drs_sandbox"
HOST = "127.0.0.1"
DIRECTORY = "sandbox"
STATE_FILE = "state.json"
STATE_VERSION = 1
SIDES = ("service", "dr")
SECRET_SIDE = {"service": "source", "dr": "target"}
SERVER_IDS = {"service": 1001, "dr": 2002}
LABELS = {"service": "service", "dr": "DR"}
# The DR server must accept the sample's stored function while its own binlog is on. Binlogs are kept a
# week: the trickle never fills the disk, and the binlog retention pre-check passes.
EXTRA_ARGS = {
    "service": ("--expire-logs-days=7",),
    "dr": ("--expire-logs-days=7", "--log-bin-trust-function-creators=ON"),
}
TRICKLE_MARKERS = ("sandbox", "trickle")
RUNNER_MARKERS = ("run", SANDBOX_TASK)
READY_TIMEOUT = 60.0
RUNNER_STOP_TIMEOUT = 30.0


class SandboxError(DrsError):
    """The sandbox could not be started or stopped; the message says what to do."""


# ---- status ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerStatus:
    host: str
    port: int | None
    pid: int | None
    running: bool
    datadir: str


@dataclass(frozen=True)
class SandboxTaskStatus:
    name: str
    status: str | None  # engine.status.Status value; None: no such task
    runner_pid: int | None
    runner_running: bool


@dataclass(frozen=True)
class SandboxStatus:
    running: bool  # both servers and the trickle run
    set_up: bool  # the servers' data exists (a start reuses it)
    home: str
    directory: str
    database: str
    task: SandboxTaskStatus
    servers: dict[str, ServerStatus]
    trickle_pid: int | None
    trickle_running: bool
    started: tuple[str, ...] = ()  # what the call that returned this started (start only)

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "set_up": self.set_up,
            "home": self.home,
            "directory": self.directory,
            "database": self.database,
            "task": asdict(self.task),
            "servers": {side: asdict(server) for side, server in self.servers.items()},
            "trickle": {"pid": self.trickle_pid, "running": self.trickle_running},
            "started": list(self.started),
        }


# ---- state.json ------------------------------------------------------------------------------------


@dataclass
class ServerState:
    port: int
    server_id: int
    pid: int | None = None


@dataclass
class SandboxState:
    server_base: str
    servers: dict[str, ServerState]
    loaded: bool = False  # the sample database is complete on the service server
    trickle_pid: int | None = None
    runner_pid: int | None = None  # the `drs run` process the sandbox started
    version: int = STATE_VERSION
    database: str = sandbox_data.DATABASE
    user: str = SANDBOX_USER

    def server(self, side: str) -> LocalServer:
        base = Path(self.server_base)
        s = self.servers[side]
        return LocalServer(
            LABELS[side], base / side, base / f"{side}-tmp", s.port, s.server_id, EXTRA_ARGS[side]
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxState:
        servers = {side: ServerState(**data["servers"][side]) for side in SIDES}
        return cls(**{**data, "servers": servers})


def sandbox_directory(home: str | os.PathLike[str] | None) -> Path:
    return resolve_home(home) / DIRECTORY


def _load_state(directory: Path) -> SandboxState | None:
    path = directory / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SandboxError(f"{path} cannot be read ({exc}); `drs sandbox stop --wipe` starts over") from None
    try:
        return SandboxState.from_json(data)
    except (KeyError, TypeError) as exc:
        raise SandboxError(
            f"{path} is not a sandbox state file ({exc}); `drs sandbox stop --wipe` starts over"
        ) from None


def _save_state(directory: Path, state: SandboxState) -> None:
    path = directory / STATE_FILE
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    os.replace(tmp, path)


def _server_base(directory: Path) -> Path:
    """Where the servers' directories go: inside the sandbox directory when mariadbd can reach it there
    (and the socket path fits), else a private directory under /var/tmp named after it."""
    inside = directory
    socket_fits = len(str(inside / "service" / "mysqld.sock")) <= localserver.SOCKET_PATH_MAX
    if socket_fits and (os.geteuid() != 0 or localserver.mysql_can_traverse(inside)):
        return inside
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"drs-sandbox-{os.geteuid()}-{digest}"


def _make_private_dir(path: Path) -> None:
    """Create `path` (mode 0755: mysql passes through, nobody else writes); refuse one that someone else
    made or that is a symlink (a predictable name in a world-writable /var/tmp)."""
    try:
        path.mkdir(mode=0o755)
    except FileExistsError:
        st = path.lstat()
        if path.is_symlink() or st.st_uid != os.geteuid() or not path.is_dir():
            raise SandboxError(
                f"{path} exists and is not a directory of ours; remove it and start again"
            ) from None
    os.chmod(path, 0o755)


def _new_state(directory: Path) -> SandboxState:
    base = _server_base(directory)
    ports: list[int] = []
    while len(ports) < 2:
        port = localserver.free_port()
        if port not in ports:
            ports.append(port)
    servers = {side: ServerState(port, SERVER_IDS[side]) for side, port in zip(SIDES, ports, strict=True)}
    return SandboxState(server_base=str(base), servers=servers)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One start/stop at a time per sandbox (the GUI and a shell may both try)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _task_service(home: Path, *, create: bool) -> TaskService | None:
    """The home's TaskService, or None when there is no task store yet and `create` is False (status
    must not create a DRS home as a side effect)."""
    from engine.store import STORE_FILE
    from engine.tasks import TaskService

    if not create and not (home / STORE_FILE).exists():
        return None
    return TaskService(home)


def _runner_alive(pid: int | None) -> bool:
    # the desktop app runs tasks in its own process, and may be the one asking
    return pid == os.getpid() or localserver.process_alive(pid)


def _status(home: Path, started: tuple[str, ...] = ()) -> SandboxStatus:
    directory = home / DIRECTORY
    try:
        state = _load_state(directory) if directory.exists() else None
    except SandboxError:
        state = None  # unreadable: shown as not set up; start and stop say what is wrong
    servers: dict[str, ServerStatus] = {}
    for side in SIDES:
        if state is None:
            servers[side] = ServerStatus(HOST, None, None, False, str(directory / side))
            continue
        server = state.server(side)
        pid = server.pid()
        servers[side] = ServerStatus(HOST, server.port, pid, pid is not None, str(server.datadir))
    trickle_pid = state.trickle_pid if state else None
    trickle_running = localserver.process_alive(trickle_pid, TRICKLE_MARKERS)
    task = SandboxTaskStatus(SANDBOX_TASK, None, None, False)
    try:
        svc = _task_service(home, create=False)
    except DrsError:  # a store this version cannot open: the task's part stays unknown
        svc = None
    if svc is not None:
        try:
            record = svc.store.get_task(SANDBOX_TASK)
            task = SandboxTaskStatus(
                SANDBOX_TASK, record.status.value, record.runner_pid, _runner_alive(record.runner_pid)
            )
        except DrsError:  # no such task
            pass
        finally:
            svc.close()
    return SandboxStatus(
        running=all(s.running for s in servers.values()) and trickle_running,
        set_up=state is not None and all(state.server(side).initialized for side in SIDES),
        home=str(home),
        directory=str(directory),
        database=sandbox_data.DATABASE,
        task=task,
        servers=servers,
        trickle_pid=trickle_pid if trickle_running else None,
        trickle_running=trickle_running,
        started=started,
    )


def status(home: str | os.PathLike[str] | None) -> SandboxStatus:
    """What runs and where; never starts or creates anything."""
    return _status(resolve_home(home))


# ---- passwords and the task spec -------------------------------------------------------------------


def _secret_store(home: Path) -> Any:
    from engine.secrets import SecretStore

    return SecretStore(home)


def _password(home: Path, side: str, *, create: bool) -> str:
    store = _secret_store(home)
    try:
        return store.get_password(SECRET_NAME, SECRET_SIDE[side]).reveal()
    except SecretStoreError:
        if not create:
            raise SandboxError(f"the sandbox's {side} server password is not in the secret store; "
                               "`drs sandbox stop --wipe` then `drs sandbox start` sets it up again") from None  # fmt: skip
    password = secrets.token_urlsafe(18)
    store.set_password(SECRET_NAME, SECRET_SIDE[side], password)
    return password


def _spec_dict(state: SandboxState, passwords: dict[str, str]) -> dict[str, Any]:
    """The task as a spec file (and the wizard's prefill) says it."""

    def endpoint(side: str) -> dict[str, Any]:
        return {
            "host": HOST,
            "port": state.servers[side].port,
            "user": state.user,
            "password": passwords[side],
            "tls": "off",
        }

    return {
        "name": SANDBOX_TASK,
        "description": "sandbox: the sample shop database to a local DR server",
        "relationship": "standby",
        "network": "public",
        "source": endpoint("service"),
        "target": endpoint("dr"),
        "databases": [state.database],
        "flow_control": None,
        "migrate_definer": True,
        "start": "now",
        "tags": {"sandbox": "yes"},
    }


def wizard_prefill(home: str | os.PathLike[str] | None) -> dict[str, Any]:
    """What the creation wizard is opened with after `start(home, create_task=False)`: the sandbox task,
    both connections with their passwords, the sample database, start now."""
    home_path = resolve_home(home)
    state = _load_state(home_path / DIRECTORY)
    if state is None:
        raise SandboxError("the sandbox is not set up yet: start it first (`drs sandbox start`)")
    return _spec_dict(state, {side: _password(home_path, side, create=False) for side in SIDES})


# ---- start -----------------------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    """The environment of the processes the sandbox starts: ours, with this engine importable."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.pop("DRS_HOME", None)  # --home says it
    return env


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_child_env(),
            start_new_session=True, cwd=log_path.parent,
        )  # fmt: skip


def _log_tail(path: Path, offset: int = 0, chars: int = 1500) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")[-chars:].strip()
    except OSError:
        return ""


def _wait(condition: Callable[[], bool], failed: Callable[[], bool], timeout: float) -> bool:
    """True once `condition` holds; False when `failed` says so first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if failed():
            return False
        time.sleep(0.1)
    return condition()


def _start_server(
    home: Path,
    directory: Path,
    state: SandboxState,
    side: str,
    started: list[str],
    say: Callable[[str], None],
) -> None:
    """Initialize (first time) and start one server, and set up its accounts."""
    server = state.server(side)
    fresh = not server.initialized
    if fresh:
        say(f"initializing the {LABELS[side]} server's data directory {server.datadir}")
        if Path(state.server_base) != directory:
            _make_private_dir(Path(state.server_base))
        server.initialize()
    if not server.running():
        say(f"starting the {LABELS[side]} server on {HOST}:{server.port}")
        started.append(f"{side}_server")
        state.servers[side].pid = server.start(directory / f"{side}.log")
        _save_state(directory, state)
    if fresh:
        server.restrict_root()
    server.ensure_user(state.user, _password(home, side, create=True), HOST)


def _start_trickle(
    home: Path, directory: Path, state: SandboxState, started: list[str], say: Callable[[str], None]
) -> None:
    log_path = directory / "trickle.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    say("starting the trickle of writes on the service server")
    started.append("trickle")
    proc = _spawn([*drs_argv(), "--home", str(home), "sandbox", "trickle"], log_path)
    state.trickle_pid = proc.pid
    _save_state(directory, state)
    if not _wait(
        lambda: "connected" in _log_tail(log_path, offset), lambda: proc.poll() is not None, READY_TIMEOUT
    ):
        raise SandboxError(
            f"the trickle of writes did not start; {log_path} says:\n{_log_tail(log_path, offset)}"
        )


def _reset_dr_side(state: SandboxState) -> None:
    """A fresh DR server for a new task: what an earlier (deleted) task copied there goes."""
    from engine.connect import META_DATABASE

    server = state.server("dr")
    server.sql(
        "SET SESSION sql_log_bin = 0",
        "SET GLOBAL read_only = OFF",
        f"DROP DATABASE IF EXISTS `{state.database}`",
        f"DROP DATABASE IF EXISTS `{META_DATABASE}`",
    )


def _dr_server_used_by_a_task(svc: TaskService, state: SandboxState) -> bool:
    """Whether some task (the sandbox's, renamed in the wizard) replicates into the sandbox's DR server."""
    port = state.servers["dr"].port
    return any(
        t.spec.target.port == port and t.spec.target.host in (HOST, "localhost")
        for t in svc.store.list_tasks()
    )


def _create_task(home: Path, svc: TaskService, state: SandboxState, say: Callable[[str], None]) -> None:
    from engine import precheck
    from engine.spec import parse_spec

    spec = parse_spec(_spec_dict(state, {side: _password(home, side, create=False) for side in SIDES}))
    say(f"running the pre-checks of task {SANDBOX_TASK}")
    results = precheck.run_prechecks(spec, other_tasks=[t.spec for t in svc.store.list_tasks()])
    failed = [r for r in results if r.result == "failed"]
    if failed:
        items = "\n".join(f"  - {r.item}: {r.reason} (fix: {r.fix})" for r in failed)
        raise SandboxError(
            f"task {SANDBOX_TASK} not created: {len(failed)} pre-check item(s) failed:\n{items}"
        )
    svc.create(spec)
    say(f"task {SANDBOX_TASK} created")


def _start_runner(
    home: Path,
    svc: TaskService,
    directory: Path,
    state: SandboxState,
    started: list[str],
    say: Callable[[str], None],
) -> None:
    log_path = directory / "runner.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    say(f"starting `drs run {SANDBOX_TASK}` in the background")
    started.append("runner")
    proc = _spawn([*drs_argv(), "--home", str(home), "run", SANDBOX_TASK], log_path)
    state.runner_pid = proc.pid
    _save_state(directory, state)

    def running() -> bool:
        return svc.store.get_task(SANDBOX_TASK).runner_pid == proc.pid and _runner_alive(proc.pid)

    if not _wait(running, lambda: proc.poll() is not None, READY_TIMEOUT):
        raise SandboxError(
            f"`drs run {SANDBOX_TASK}` did not start; {log_path} says:\n{_log_tail(log_path, offset)}"
        )


def start(
    home: str | os.PathLike[str] | None,
    *,
    create_task: bool = True,
    progress: Callable[[str], None] | None = None,
) -> SandboxStatus:
    """Bring the sandbox up: both servers, the sample data (first time), the trickle and, with
    `create_task`, task sandbox-dr and its runner. Whatever already runs is left as it is (the returned
    status's `started` is then empty). On failure, what this call started is stopped again."""
    from engine.status import Status

    home_path = resolve_home(home)
    say = progress or (lambda _message: None)
    localserver.find_install_db(localserver.find_mariadbd())  # no mariadbd: say so before touching anything
    localserver.system_user()
    directory = home_path / DIRECTORY
    started: list[str] = []
    with _locked(directory):
        state = _load_state(directory) or _new_state(directory)
        _save_state(directory, state)
        svc = _task_service(home_path, create=True)
        assert svc is not None
        try:
            for side in SIDES:
                _start_server(home_path, directory, state, side, started, say)
            if not state.loaded:
                say(f"loading the sample database {state.database} on the service server")
                conn = state.server("service").connect_root()
                try:
                    rows = sandbox_data.load(conn)
                finally:
                    conn.close()
                state.loaded = True
                _save_state(directory, state)
                say(f"loaded {rows:,} rows")
            if not localserver.process_alive(state.trickle_pid, TRICKLE_MARKERS):
                _start_trickle(home_path, directory, state, started, say)
            try:
                record = svc.store.get_task(SANDBOX_TASK)
            except TaskNotFound:
                record = None
                if not _dr_server_used_by_a_task(svc, state):
                    _reset_dr_side(state)
            if create_task:
                if record is None:
                    _create_task(home_path, svc, state, say)
                    record = svc.store.get_task(SANDBOX_TASK)
                if record.status in (Status.PROMOTED, Status.ENDED, Status.CREATION_FAILED, Status.PROMOTING):
                    say(f"task {SANDBOX_TASK} is {record.status.label}: no runner started "
                        "(`drs sandbox stop --wipe` then `drs sandbox start` for a fresh sandbox)")  # fmt: skip
                elif not _runner_alive(record.runner_pid):
                    _start_runner(home_path, svc, directory, state, started, say)
        except BaseException:
            _stop_processes(home_path, svc, directory, state, only=started)
            raise
        finally:
            svc.close()
    return _status(home_path, tuple(started))


# ---- stop ------------------------------------------------------------------------------------------


def _stop_runner(svc: TaskService | None, state: SandboxState) -> None:
    """A clean stop (checkpoint saved) through the store; SIGTERM to the `drs run` process if it hangs."""
    from engine import lifecycle

    pids = {state.runner_pid}
    if svc is not None:
        try:
            runner_pid = svc.store.get_task(SANDBOX_TASK).runner_pid
            pids.add(runner_pid)
            if runner_pid == os.getpid():
                _stop_runner_in_this_process(svc)
            else:
                lifecycle.stop_runner(svc, SANDBOX_TASK, timeout=RUNNER_STOP_TIMEOUT)
        except TaskNotFound:
            pass
        except DrsError:
            pass  # did not stop in time: SIGTERM below
    for pid in pids - {None}:
        # only a `drs run sandbox-dr` process: the store's runner may be the desktop app itself
        localserver.terminate(pid, markers=RUNNER_MARKERS, timeout=RUNNER_STOP_TIMEOUT)
    state.runner_pid = None


def _stop_runner_in_this_process(svc: TaskService) -> None:
    """The desktop app runs the task on one of its threads (and calls stop from another): ask it through
    the store, as `drs task delete` would from outside, and wait for it to let go."""
    svc.store.request_control(SANDBOX_TASK, "stop")
    deadline = time.monotonic() + RUNNER_STOP_TIMEOUT
    while time.monotonic() < deadline and svc.store.get_task(SANDBOX_TASK).runner_pid == os.getpid():
        time.sleep(0.1)


def _stop_processes(
    home: Path,
    svc: TaskService | None,
    directory: Path,
    state: SandboxState,
    *,
    only: list[str] | None = None,
) -> None:
    """Stop the runner, the trickle and the servers (in that order: nothing writes to a server going
    down); `only`: just those named (what a failed start had started)."""

    def wanted(what: str) -> bool:
        return only is None or what in only

    with suppress(Exception):  # stopping must go on past one part that fails
        if wanted("runner"):
            _stop_runner(svc, state)
    if wanted("trickle"):
        localserver.terminate(state.trickle_pid, markers=TRICKLE_MARKERS, timeout=10)
        state.trickle_pid = None
    for side in SIDES:
        if wanted(f"{side}_server"):
            state.server(side).stop()
            state.servers[side].pid = None
    if directory.exists():
        _save_state(directory, state)


def stop(home: str | os.PathLike[str] | None, *, wipe: bool = False) -> SandboxStatus:
    """Stop the runner, the trickle and both servers; the data stays for the next start unless `wipe`,
    which also deletes task sandbox-dr (with its passwords), the servers' password and every file."""
    home_path = resolve_home(home)
    directory = home_path / DIRECTORY
    if not directory.exists() and not wipe:
        return _status(home_path)
    with _locked(directory):
        state = _load_state(directory)
        svc = _task_service(home_path, create=False)
        try:
            if state is not None:
                _stop_processes(home_path, svc, directory, state)
            elif svc is not None:
                _stop_runner(svc, SandboxState("", {}))
            if wipe:
                if svc is not None:
                    with suppress(TaskNotFound):
                        svc.delete(SANDBOX_TASK)
                _secret_store(home_path).delete_task(SECRET_NAME)
                if state is not None and Path(state.server_base) != directory:
                    shutil.rmtree(state.server_base, ignore_errors=True)
                shutil.rmtree(directory, ignore_errors=True)
        finally:
            if svc is not None:
                svc.close()
    return _status(home_path)


# ---- the trickle process ---------------------------------------------------------------------------


def trickle_main(home: str | os.PathLike[str] | None) -> int:
    """`drs --home H sandbox trickle` (started by `sandbox start`, not for users): write to the service server until SIGTERM, or until
    it has been gone for good. Root through the socket: no password involved."""
    directory = sandbox_directory(home)
    state = _load_state(directory)
    if state is None:
        print(f"no sandbox in {directory}", flush=True)
        return 1
    stop_event = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: stop_event.set())

    def server_gone() -> bool:
        current = _load_state(directory) if (directory / STATE_FILE).exists() else None
        return current is None or not current.server("service").running()

    def log(message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} trickle: {message}", flush=True)

    service = state.server("service")
    return sandbox_data.run_trickle(
        lambda: service.connect_root(sandbox_data.DATABASE, connect_timeout=5, read_timeout=30),
        stop_event,
        server_gone=server_gone,
        log=log,
    )


# ---- CLI -------------------------------------------------------------------------------------------


def _print_status(st: SandboxStatus) -> None:
    some = st.trickle_running or st.task.runner_running or any(s.running for s in st.servers.values())
    if st.running:
        state = "running"
    elif some:
        state = "partly running (`drs sandbox start` starts the rest)"
    else:
        state = "stopped" if st.set_up else "not set up"
    print(f"sandbox: {state} ({st.directory})")
    for side, server in st.servers.items():
        where = f"{server.host}:{server.port}" if server.port else "-"
        run = f"running (pid {server.pid})" if server.running else "stopped"
        print(f"  {LABELS[side] + ' server':<15} {where:<16} {run:<20} data {server.datadir}")
    trickle = (
        f"running (pid {st.trickle_pid}), a few writes a second on {st.database}"
        if st.trickle_running
        else "stopped"
    )
    print(f"  {'trickle':<15} {trickle}")
    task = st.task
    if task.status is None:
        print(f"  {'task':<15} {task.name}: not created")
    else:
        runner = f"runner pid {task.runner_pid}" if task.runner_running else "no runner"
        print(f"  {'task':<15} {task.name}: {task.status} ({runner})")


def cmd_sandbox_start(args: argparse.Namespace) -> int:
    st = start(args.home, progress=lambda message: print(f"  ... {message}", flush=True))
    if not st.started:
        print("the sandbox is already running")
    else:
        print(f"sandbox started ({', '.join(s.replace('_', ' ') for s in st.started)})")
    _print_status(st)
    home = f" --home {args.home}" if args.home else ""
    print(f"\nLook:  drs{home} task show {SANDBOX_TASK}     (status, progress, delay)")
    print(f"       drs{home} compare {SANDBOX_TASK} --level rows")
    print(f"       drs-desktop{home}     (the desktop app)")
    print(f"Stop:  drs{home} sandbox stop     (--wipe deletes the servers' data and the task)")
    return 0


def cmd_sandbox_stop(args: argparse.Namespace) -> int:
    if not args.wipe and not status(args.home).set_up:
        print(f"no sandbox in {sandbox_directory(args.home)}: nothing to stop")
        return 0
    st = stop(args.home, wipe=args.wipe)
    print(
        "sandbox wiped" if args.wipe else "sandbox stopped (its data stays for the next `drs sandbox start`)"
    )
    if not args.wipe:
        _print_status(st)
    return 0


def cmd_sandbox_status(args: argparse.Namespace) -> int:
    st = status(args.home)
    if args.json:
        print(json.dumps(st.to_json(), indent=2))
    else:
        _print_status(st)
    return 0


def register_cli(top: argparse._SubParsersAction, task_sub: argparse._SubParsersAction) -> None:
    p = top.add_parser("sandbox", help="two local MariaDB servers, sample data and a DR task to try DRS with")
    sub = p.add_subparsers(dest="sandbox_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    s = sub.add_parser("start", help="start the sandbox (servers, sample data, writes, task sandbox-dr)")
    s.set_defaults(func=cmd_sandbox_start)
    s = sub.add_parser("stop", help="stop everything the sandbox runs; its data stays")
    s.add_argument(
        "--wipe", action="store_true", help="also delete the data, task sandbox-dr and its passwords"
    )
    s.set_defaults(func=cmd_sandbox_stop)
    s = sub.add_parser("status", help="what the sandbox runs and where")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sandbox_status)
    # the background writer `start` launches; a subcommand so a frozen app (no `python -m`) can run it
    s = sub.add_parser("trickle")
    s.set_defaults(func=lambda args: trickle_main(args.home))
