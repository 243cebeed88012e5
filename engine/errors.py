"""Typed errors a DBA can act on.

The CLI prints `str(error)` and the GUI shows it; neither prints a traceback for these. Messages never
contain a password.
"""

from __future__ import annotations

from dataclasses import dataclass


class DrsError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path as in the spec file, e.g. "source.port", "flow_control.windows[1]"
    message: str  # what is allowed

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class SpecInvalid(DrsError):
    """One or more settings of a task break the rules; every broken rule is listed."""

    exit_code = 2

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return "invalid task settings:\n" + "\n".join(f"  - {e}" for e in self.errors)


class TaskNotFound(DrsError):
    exit_code = 2

    def __init__(self, name: str):
        super().__init__(f"no task named {name!r}")


class ActionNotAllowed(DrsError):
    """An action asked for in a status where the reference service does not allow it."""

    exit_code = 2


class StoreError(DrsError):
    """The local task store cannot be used (e.g. written by a newer DRS Desktop)."""


class SecretStoreError(DrsError):
    pass


class ConnectError(DrsError):
    """A database server could not be reached or refused us; subclasses say why."""

    def __init__(self, endpoint: str, detail: str):
        self.endpoint = endpoint
        self.detail = detail
        super().__init__(f"{endpoint}: {detail}")


class ConnectionRefused(ConnectError):
    pass


class UnknownHost(ConnectError):
    pass


class AccessDenied(ConnectError):
    pass


class ConnectTimeout(ConnectError):
    pass


class TlsError(ConnectError):
    pass


class PrecheckFailed(DrsError):
    exit_code = 2


class ReplicationError(DrsError):
    """The DR task cannot continue (schema mismatch, apply error, binlog purged, ...)."""


class Unreplicable(ReplicationError):
    """A change DRS cannot replay exactly (a refused event type, a system-versioned table, an XA commit
    whose prepare it never read, a row too big for the DR server): retrying meets the same change, so
    the task fails at once with what to do."""


class ApplyConflict(ReplicationError):
    """A row change does not fit the DR side (a key already there, a row missing or different).

    The DR side has drifted from the service database (someone wrote there). Retrying replays the same
    batch onto the same rows, so the task fails at once; the DBA compares, repairs, then resumes.
    """

    def __init__(self, task: str, table: str, operation: str, key: str, found: str):
        self.task, self.table, self.operation, self.key, self.found = task, table, operation, key, found
        super().__init__(
            f"apply conflict on {table}: {operation} of key ({key}) {found} on the DR side (the DR side has "
            f"drifted: run `drs compare {task} --level values`, repair the DR side, then `drs task resume {task}`)"
        )


class PromoteRolledBack(ReplicationError):
    """A promote could not finish (DR server unreachable, deadline passed, cancelled): the service
    database is writable again and the task is back in the status it had before."""

    def __init__(self, task: str, reason: str):
        self.task, self.reason = task, reason
        super().__init__(
            f"promote of task {task} rolled back: {reason}. The service database is writable again and the "
            "task is back in the status it had before; nothing was promoted"
        )


class PromoteStranded(ReplicationError):
    """A promote failed and so did its rollback: the service database is still read-only. Loud on purpose."""

    exit_code = 3

    def __init__(self, task: str, reason: str, server: str, statements: list[str], detail: str = ""):
        self.task, self.reason, self.server, self.statements = task, reason, server, list(statements)
        super().__init__(
            f"promote of task {task} failed ({reason}) and its rollback failed too{f' ({detail})' if detail else ''}: "
            f"THE SERVICE DATABASE {server} IS STILL READ-ONLY. To make it writable again, run on {server} as an "
            f"administrator: {' '.join(statements)} Then retry or resume the task."
        )


class PromoteAlreadyRunning(ActionNotAllowed):
    """Another promote of the same task is under way (in this or another process)."""

    def __init__(self, task: str, owner: str):
        self.task, self.owner = task, owner
        super().__init__(f"task {task} is already promoting ({owner}); wait for it to finish or roll back")
