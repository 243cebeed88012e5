"""Replication that outlives the window: a task run by a systemd user service.

`drs service install NAME` writes `~/.config/systemd/user/drs-task-<name>.service`, whose ExecStart is
`python -m engine.cli --home HOME run NAME --service`, then asks the user's systemd to enable and start
it. In service mode the runner process stays for the task's whole life: a pause, a failure waiting for
Retry, a scheduled start are waited for in the process (it keeps `runner_pid`, so the desktop window
shows the task as run elsewhere and only writes control requests to the store, exactly as for
`drs run`); it exits when the task is stopped (`drs task delete`, `drs service remove`), promoted,
ended or deleted. `Restart=on-failure` brings it back after a crash, never after such an end.

Only systemd (Linux) is supported; launchd (macOS) and Windows services are not yet (README).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import DrsError
from engine.status import RUNNING, Status

UNIT_PREFIX = "drs-task-"
SYSTEMCTL_TIMEOUT = 30.0
WAIT_INTERVAL = 1.0
# Statuses a service-mode runner waits through (the user decides what comes next); any other status
# that is not a running one (promoted, ended, creation failed...) ends the service.
WAIT_STATUSES = frozenset({Status.PAUSED, Status.FAILED, Status.PENDING_START, Status.CONFIGURATION, Status.PROMOTING})


class ServiceError(DrsError):
    """systemd could not be asked to do it (not installed, no user manager, a unit that failed)."""


@dataclass(frozen=True)
class ServiceInfo:
    task: str
    unit: str
    path: Path
    installed: bool
    active: str  # systemctl is-active's answer, or "unknown" where systemd cannot be asked

    def to_json(self) -> dict[str, object]:
        return {"task": self.task, "unit": self.unit, "path": str(self.path), "installed": self.installed, "active": self.active}


def unit_dir() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user"


def unit_name(task: str) -> str:
    """A unit name for any task name: safe characters kept, the rest replaced, plus a short hash so two
    names that differ only in replaced characters never share a unit."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", task)[:80]
    if safe != task:
        safe += "-" + hashlib.sha256(task.encode()).hexdigest()[:8]
    return f"{UNIT_PREFIX}{safe}.service"


def unit_path(task: str) -> Path:
    return unit_dir() / unit_name(task)


def _quote(arg: str) -> str:
    """systemd's ExecStart quoting: double quotes, with backslash, quote, and $/% (systemd specifiers and
    variables) escaped."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def exec_command(home: Path, task: str) -> list[str]:
    """The command the service runs: this Python (the venv's), the engine's CLI, the task in service mode."""
    from engine.paths import drs_argv

    return [*drs_argv(), "--home", str(home), "run", task, "--service", "--quiet"]


def unit_text(home: Path, task: str) -> str:
    env = {"PYTHONUNBUFFERED": "1"}
    # The secret backend chosen at install time (e.g. the encrypted file on a host without a keyring)
    if os.environ.get("DRS_SECRET_BACKEND"):
        env["DRS_SECRET_BACKEND"] = os.environ["DRS_SECRET_BACKEND"]
    if not getattr(sys, "frozen", False):  # an editable install runs from the checkout
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    lines = [
        "# Written by DRS Desktop (`drs service install`); removed by `drs service remove` or when the task is deleted.",
        "[Unit]",
        f"Description=DRS Desktop disaster recovery task {task}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_quote(a) for a in exec_command(home, task)),
        *(f"Environment={_quote(f'{k}={v}')}" for k, v in env.items()),
        f"WorkingDirectory={_quote(str(home))}",
        # SIGTERM: the runner stops at a checkpoint; give it time to commit
        "KillSignal=SIGTERM",
        "TimeoutStopSec=90",
        "Restart=on-failure",
        "RestartSec=10",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def parse_exec_start(text: str) -> tuple[list[str], dict[str, str]]:
    """ExecStart's argv and the Environment of a unit written by unit_text (for `service status` and tests)."""
    argv: list[str] = []
    env: dict[str, str] = {}

    def unescape(word: str) -> str:
        return word.replace("%%", "%").replace("$$", "$")

    for line in text.splitlines():
        if line.startswith("ExecStart="):
            argv = [unescape(w) for w in shlex.split(line[len("ExecStart=") :])]
        elif line.startswith("Environment="):
            key, _, value = unescape(shlex.split(line[len("Environment=") :])[0]).partition("=")
            env[key] = value
    return argv, env


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("systemctl")
    if exe is None:
        raise ServiceError("systemctl not found: background services need systemd (Linux); run `drs run NAME` instead")
    try:
        return subprocess.run([exe, "--user", *args], capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"systemctl --user {' '.join(args)} did not answer within {SYSTEMCTL_TIMEOUT:.0f}s") from exc


def _checked(*args: str) -> None:
    done = _systemctl(*args)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise ServiceError(
            f"systemctl --user {' '.join(args)} failed: {reason[-1] if reason else f'exit {done.returncode}'}"
        )


def install(home: Path, task: str, *, start: bool = True) -> ServiceInfo:
    """Write the unit; with start, enable it (starts at login) and start it now."""
    path = unit_path(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(unit_text(home, task), encoding="utf-8")
    os.replace(tmp, path)
    if start:
        try:
            _checked("daemon-reload")
            _checked("enable", "--now", path.name)
        except ServiceError as exc:
            raise ServiceError(
                f"{exc}. The unit is written to {path}; start it with `systemctl --user enable --now {path.name}` "
                "once a systemd user manager runs (a desktop login, or `loginctl enable-linger`)"
            ) from None
    return info(task)


def remove(svc: object, task: str) -> bool:
    """Stop and disable the unit, delete it, and make sure no service-mode runner is left. False when no
    unit was installed."""
    from engine.lifecycle import stop_runner

    path = unit_path(task)
    if not path.exists():
        return False
    if shutil.which("systemctl"):
        try:
            _systemctl("disable", "--now", path.name)  # a manager that cannot be reached: nothing it runs
        except ServiceError:
            pass
    path.unlink(missing_ok=True)
    if shutil.which("systemctl"):
        try:
            _systemctl("daemon-reload")
        except ServiceError:
            pass
    try:
        stop_runner(svc, task)  # type: ignore[arg-type]  # a runner started from the unit's command by hand
    except DrsError as exc:
        if "no task" not in str(exc).lower():
            raise
    return True


def info(task: str) -> ServiceInfo:
    path = unit_path(task)
    active = "unknown"
    if path.exists() and shutil.which("systemctl"):
        try:
            done = _systemctl("is-active", path.name)
            answer = done.stdout.strip()
            active = answer if answer and done.returncode in (0, 3) else "unknown"
        except ServiceError:
            pass
    return ServiceInfo(task, path.name, path, path.exists(), active if path.exists() else "inactive")


def serve(
    name: str,
    run_once: Callable[[], Status],
    read_status: Callable[[], tuple[Status, str | None]],
    hold: Callable[[], None],
    stop: threading.Event,
) -> int:
    """The service-mode loop: run the task while it is in a running status, wait (holding the task, so no
    other runner takes it) while it is paused, failed or scheduled, and end when it is stopped, promoted,
    ended or deleted. Returns the process exit code (0: a normal end)."""
    while not stop.is_set():
        try:
            status, control = read_status()
        except DrsError:
            return 0  # the task was deleted
        if control == "stop":
            return 0
        if status in RUNNING or (status is Status.PENDING_START):
            status = run_once()
            continue
        if status not in WAIT_STATUSES:
            return 0
        hold()
        stop.wait(WAIT_INTERVAL)
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from engine.store import dumps
    from engine.tasks import TaskService

    svc = TaskService(args.home)
    try:
        if args.service_command == "install":
            svc.store.get_task(args.name)  # unknown task: its own message, exit 2
            result = install(svc.home, args.name, start=not args.no_start)
            state = "written (not started)" if args.no_start else f"installed and {result.active}"
            print(f"task {args.name}: service {result.unit} {state} ({result.path})")
            return 0
        if args.service_command == "remove":
            if not remove(svc, args.name):
                print(f"task {args.name}: no background service installed ({unit_path(args.name)})")
                return 0
            print(f"task {args.name}: background service removed; the task is no longer run in the background")
            return 0
        result = info(args.name)
        if args.json:
            print(dumps(result.to_json()))
        else:
            where = f"{result.unit}: {result.active}" if result.installed else "not installed"
            print(f"task {args.name}: background service {where}")
        return 0
    finally:
        svc.close()


def register_cli(top: argparse._SubParsersAction, task_sub: argparse._SubParsersAction) -> None:
    p = top.add_parser("service", help="run a task in the background as a systemd user service (Linux)")
    sub = p.add_subparsers(dest="service_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    q = sub.add_parser("install", help="write the unit, enable and start it (the task then outlives the window)")
    q.add_argument("name")
    q.add_argument("--no-start", action="store_true", help="only write the unit file")
    q.set_defaults(func=cmd_service)
    q = sub.add_parser("remove", help="stop and disable the service and delete its unit (the task itself stays)")
    q.add_argument("name")
    q.set_defaults(func=cmd_service)
    q = sub.add_parser("status", help="whether the task has a background service, and its state")
    q.add_argument("name")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_service)
