"""Operations on DR tasks shared by the GUI and the CLI: create, load with passwords, delete, control.

Store (settings, status) and SecretStore (passwords) are kept in step here so a task never exists
without its passwords, and deleting a task clears both.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from engine.errors import ActionNotAllowed, FieldError, SpecInvalid
from engine.paths import resolve_home
from engine.secrets import SecretStore
from engine.spec import Secret, TaskSpec
from engine.status import Action, Status, why_not
from engine.store import Store, TaskRecord


class TaskService:
    """The tasks of one DRS home."""

    def __init__(self, home: str | os.PathLike[str] | None = None):
        self.home: Path = resolve_home(home)
        self.store = Store(self.home)
        self.secrets = SecretStore(self.home)
        self.store.end_expired_creation_failures()  # kept three days, then ended

    def close(self) -> None:
        self.store.close()

    def create(self, spec: TaskSpec, *, status: Status | None = None) -> TaskRecord:
        if self.store.name_taken(spec.name):
            raise SpecInvalid([FieldError("name", f"a task named {spec.name!r} already exists; names must be unique")])
        if status is None:
            status = Status.PENDING_START if spec.start_at is not None else Status.STARTING
        self.secrets.set_password(spec.name, "source", spec.source.password)
        self.secrets.set_password(spec.name, "target", spec.target.password)
        try:
            record = self.store.create_task(spec, status=status)
        except BaseException:
            self.secrets.delete_task(spec.name)
            raise
        self.store.add_log(spec.name, "info", "task", f"task created ({status.label})")
        return record

    def get(self, name: str) -> TaskRecord:
        return self.store.get_task(name)

    def spec_with_passwords(self, name: str) -> TaskSpec:
        """The task's settings with both passwords filled in from the secret store."""
        spec = self.store.get_task(name).spec
        return replace(
            spec,
            source=spec.source.with_password(self.secrets.get_password(name, "source")),
            target=spec.target.with_password(self.secrets.get_password(name, "target")),
        )

    def set_password(self, name: str, side: str, password: Secret | str) -> None:
        record = self.store.get_task(name)
        reason = why_not(Action.MODIFY_CONNECTION, record.status)
        if reason:
            raise ActionNotAllowed(reason)
        self.secrets.set_password(name, side, password)
        self.store.add_log(name, "info", "task", f"{side} connection details modified")

    def require(self, name: str, action: Action) -> TaskRecord:
        record = self.store.get_task(name)
        reason = why_not(action, record.status)
        if reason:
            raise ActionNotAllowed(reason)
        return record

    def delete(self, name: str) -> None:
        self.require(name, Action.DELETE)
        self.store.delete_task(name)
        self.secrets.delete_task(name)

    def pause(self, name: str) -> None:
        self.require(name, Action.PAUSE)
        self.store.request_control(name, "pause")
        self.store.set_status(name, Status.PAUSED)
        self.store.add_log(name, "info", "task", "paused by user")

    def resume(self, name: str) -> None:
        record = self.store.get_task(name)
        if record.status is Status.FAILED:
            self.require(name, Action.RETRY)
        else:
            self.require(name, Action.RESUME)
        self.store.request_control(name, None)
        next_status = Status.REPLICATING if record.phase == "incremental" else Status.STARTING
        self.store.set_status(name, next_status)
        self.store.add_log(name, "info", "task", f"resumed by user ({next_status.label})")
