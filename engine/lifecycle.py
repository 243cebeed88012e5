"""Task lifecycle operations that touch more than the store: delete (stop runner, lift read-only)."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from engine.errors import DrsError
from engine.status import Action

if TYPE_CHECKING:  # pid_alive is asked by `drs task show` and health, which must not load the keyring
    from engine.tasks import TaskService

STOP_WAIT_SECONDS = 30.0


def pid_alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_runner(
    svc: TaskService, name: str, timeout: float = STOP_WAIT_SECONDS, cancel: threading.Event | None = None
) -> None:
    """Ask a `drs run` process working on the task to stop at a checkpoint, and wait for it (until
    `timeout`, or until `cancel` is set)."""
    record = svc.store.get_task(name)
    if not pid_alive(record.runner_pid):
        return
    svc.store.request_control(name, "stop")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(svc.store.get_task(name).runner_pid):
        if cancel is not None and cancel.is_set():
            raise DrsError(
                f"cancelled while waiting for process {record.runner_pid} running task {name} to stop"
            )
        time.sleep(0.1)
    if pid_alive(svc.store.get_task(name).runner_pid):
        raise DrsError(
            f"process {record.runner_pid} running task {name} did not stop within {timeout:.0f}s; stop it (SIGTERM) and try again"
        )


def delete_task(svc: TaskService, name: str, *, lift_read_only: bool = False) -> None:
    record = svc.require(name, Action.DELETE)
    from engine import user_service

    # a background service left behind would start `drs run` for a task that no longer exists at every login
    user_service.remove(svc, name)
    stop_runner(svc, name)
    if lift_read_only:
        from engine.connect import connect, set_read_only

        spec = svc.spec_with_passwords(name)
        conn = connect(spec.target)
        try:
            set_read_only(conn, False)
        finally:
            conn.close()
    svc.delete(record.name)
