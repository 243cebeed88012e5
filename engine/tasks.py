"""Operations on DR tasks shared by the GUI and the CLI: create, load with passwords, delete, control,
modify, and the lifecycle rules that go with them (the GUI and `drs` call these, never the store).

Store (settings, status) and SecretStore (passwords) are kept in step here so a task never exists
without its passwords, and deleting a task clears both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ActionNotAllowed, ConnectError, FieldError, SpecInvalid
from engine.paths import resolve_home
from engine.secrets import SecretStore
from engine.spec import (
    TLS_MODES,
    Endpoint,
    FlowControl,
    Secret,
    TaskSpec,
    check_choice,
    check_flow_control,
    check_host,
    check_password,
    check_port,
    check_user,
    shown_path,
)
from engine.status import Action, Status, why_not
from engine.store import Store, TaskRecord

if TYPE_CHECKING:
    import pymysql

SIDES = ("source", "target")
SIDE_LABELS = {"source": "service database", "target": "DR database"}
# Seconds a modify waits for a server it must check (the new address, the old one): a DBA is waiting.
CHECK_TIMEOUT = 5
IDENTITY_KEY = "server_identity"  # task extra: the identity of each side's server, once checked


@dataclass(frozen=True)
class ServerIdentity:
    """What makes a MySQL/MariaDB server itself, whatever address reaches it."""

    server_id: int
    server_uuid: str | None  # MySQL only; MariaDB has none

    def same_as(self, other: ServerIdentity) -> bool:
        if self.server_uuid and other.server_uuid:
            return self.server_uuid == other.server_uuid
        return self.server_id == other.server_id

    def to_json(self) -> dict[str, Any]:
        return {"server_id": self.server_id, "server_uuid": self.server_uuid}

    @classmethod
    def from_json(cls, data: Any) -> ServerIdentity | None:
        if not isinstance(data, dict) or not isinstance(data.get("server_id"), int):
            return None
        return cls(data["server_id"], data.get("server_uuid"))

    def __str__(self) -> str:
        return f"server_uuid {self.server_uuid}" if self.server_uuid else f"server_id {self.server_id}"


@dataclass(frozen=True)
class ConnectionChange:
    """A checked change of one side's connection details, ready to be written."""

    name: str
    side: str
    endpoint: Endpoint  # the new details (no password: that is `password`)
    password: Secret | None
    changes: tuple[str, ...]  # what the DR log says changed; never a password value
    identity: ServerIdentity | None  # of the server reached at the new address, when it was checked


def database_sizes(endpoint: Endpoint, *, connect_timeout: int = CHECK_TIMEOUT) -> list[tuple[str, int]]:
    """User databases of a server with their size in bytes (data + indexes), by name."""
    from engine.connect import connect, user_databases

    conn = connect(endpoint, connect_timeout=connect_timeout, read_timeout=120)
    try:
        names = user_databases(conn)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_SCHEMA, COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) "
                "FROM information_schema.TABLES GROUP BY TABLE_SCHEMA"
            )
            sizes = {_text(schema): int(size or 0) for schema, size in cur.fetchall()}
    finally:
        conn.close()
    return [(name, sizes.get(name, 0)) for name in names]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def describe_flow_control(fc: FlowControl | None) -> str:
    if fc is None:
        return "off"
    return f"{fc.max_mb_s} MB/s " + (", ".join(str(w) for w in fc.windows) or "all day")


class TaskService:
    """The tasks of one DRS home."""

    database_sizes = staticmethod(database_sizes)

    def __init__(self, home: str | os.PathLike[str] | None = None):
        self.home: Path = resolve_home(home)
        self.store = Store(self.home)
        self.secrets = SecretStore(self.home)
        self.store.end_expired_creation_failures()  # kept three days, then ended

    def close(self) -> None:
        self.store.close()

    def create(self, spec: TaskSpec, *, status: Status | None = None) -> TaskRecord:
        if self.store.name_taken(spec.name):
            raise SpecInvalid(
                [FieldError("name", f"a task named {spec.name!r} already exists; names must be unique")]
            )
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

    def record_creation_failure(self, spec: TaskSpec, reason: str) -> TaskRecord:
        """Keep a task whose creation failed, with why (the reference keeps it three days, then ends it).
        Its passwords are not kept: such a task never runs."""
        self.store.create_task(spec, status=Status.CREATION_FAILED)
        self.store.set_status(spec.name, Status.CREATION_FAILED, last_error=reason)
        self.store.add_log(spec.name, "error", "task", f"creation failed: {reason}")
        return self.store.get_task(spec.name)

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

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, name: str) -> TaskRecord:
        """Configuration or Pending start → Starting (whoever runs tasks, the window or `drs run`, then
        takes it up)."""
        self.require(name, Action.START)
        if not self.store.set_status(
            name, Status.STARTING, expect={Status.CONFIGURATION, Status.PENDING_START}
        ):
            # another process moved it between the check and the change
            reason = why_not(Action.START, self.store.get_task(name).status)
            raise ActionNotAllowed(reason or f"task {name} changed status meanwhile; look again")
        self.store.add_log(name, "info", "task", "started by user")
        return self.store.get_task(name)

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

    # -- flow control ---------------------------------------------------------------------------
    def check_flow_control(self, name: str, flow_control: FlowControl | None) -> TaskRecord:
        """What modify_flow_control checks, without writing: the status rule, then the values."""
        record = self.require(name, Action.MODIFY_FLOW_CONTROL)
        errors = check_flow_control(flow_control)
        if errors:
            raise SpecInvalid(errors)
        return record

    def modify_flow_control(self, name: str, flow_control: FlowControl | None) -> TaskRecord:
        """Set (or turn off, None) the task's flow control. A copy under way reads it again within a few
        seconds (engine.throttle), so a change applies to the rest of the initial phase."""
        self.check_flow_control(name, flow_control)
        self.store.update_task(name, flow_control=flow_control)
        self.store.add_log(
            name, "info", "task", f"flow control modified: {describe_flow_control(flow_control)}"
        )
        return self.store.get_task(name)

    # -- connection details ---------------------------------------------------------------------
    def set_password(self, name: str, side: str, password: Secret | str) -> None:
        self.modify_connection(name, side, password=password)

    def modify_connection(
        self,
        name: str,
        side: str,
        *,
        host: str | None = None,
        port: int | str | None = None,
        user: str | None = None,
        password: Secret | str | None = None,
        tls: str | None = None,
        ca_file: str | None = None,
    ) -> TaskRecord:
        """Change how one side is reached (None: keep that detail). Allowed in the statuses of
        Action.MODIFY_CONNECTION. A new host or port must reach the same server (see check_same_server).
        A running task uses the new details from its next (re)connect."""
        change = self.plan_connection_change(
            name, side, host=host, port=port, user=user, password=password, tls=tls, ca_file=ca_file
        )
        return self.apply_connection_change(change)

    def plan_connection_change(
        self,
        name: str,
        side: str,
        *,
        host: str | None = None,
        port: int | str | None = None,
        user: str | None = None,
        password: Secret | str | None = None,
        tls: str | None = None,
        ca_file: str | None = None,
    ) -> ConnectionChange:
        """Everything modify_connection checks (status, values, the server), nothing written yet: the CLI
        checks both sides before writing either."""
        if side not in SIDES:
            raise SpecInvalid([FieldError("side", f"must be source or target (got {side!r})")])
        record = self.require(name, Action.MODIFY_CONNECTION)
        current: Endpoint = getattr(record.spec, side)
        other: Endpoint = getattr(record.spec, "target" if side == "source" else "source")
        errors: list[FieldError] = []

        def check(fname: str, msg: str | None) -> None:
            if msg:
                errors.append(FieldError(f"{side}.{fname}", msg))

        if all(v is None for v in (host, port, user, password, tls, ca_file)):
            raise SpecInvalid(
                [FieldError(side, "nothing to modify: give a host, port, user, password, tls or ca_file")]
            )
        if host is not None:
            check("host", check_host(host))
        if port is not None:
            check("port", check_port(port))
        if user is not None:
            check("user", check_user(user))
        if tls is not None:
            check("tls", check_choice(tls, TLS_MODES))
        secret: Secret | None = None
        if password is not None:
            text = password.reveal() if isinstance(password, Secret) else password
            check("password", check_password(text))
            secret = Secret(text) if isinstance(text, str) else None
        new_tls = tls if tls is not None else current.tls
        new_ca = current.ca_file if ca_file is None else (ca_file or None)
        if new_tls == "verify_ca":
            if not new_ca:
                check("ca_file", "required when tls is verify_ca: path of the CA file")
            elif not os.path.isfile(new_ca):
                check("ca_file", f"no such file: {shown_path(new_ca)}")
        elif ca_file:
            check("ca_file", "only allowed when tls is verify_ca")
        else:
            new_ca = None  # a CA file only goes with verify_ca
        if errors:
            raise SpecInvalid(errors)
        endpoint = Endpoint(
            host=host.strip() if host is not None else current.host,
            port=int(port) if port is not None else current.port,
            user=user if user is not None else current.user,
            tls=new_tls,
            ca_file=new_ca,
        )
        if (endpoint.host, endpoint.port) == (other.host, other.port):
            what = "DR database" if side == "target" else "service database"
            raise SpecInvalid([FieldError(f"{side}.host", f"the {what} must be a different server from the "
                                          f"{SIDE_LABELS['source' if side == 'target' else 'target']}")])  # fmt: skip
        changes = tuple(
            f"{key} {getattr(current, key)} -> {getattr(endpoint, key)}"
            for key in ("host", "port", "user", "tls", "ca_file")
            if getattr(current, key) != getattr(endpoint, key)
        ) + (("password changed",) if secret is not None else ())
        identity = None
        if (endpoint.host, endpoint.port) != (current.host, current.port):
            stored = self.secrets.get_password(name, side)
            login = endpoint.with_password(secret if secret is not None else stored)
            identity = self.check_same_server(record, side, current.with_password(stored), login)
        return ConnectionChange(name, side, endpoint, secret, changes, identity)

    def apply_connection_change(self, change: ConnectionChange) -> TaskRecord:
        name, side = change.name, change.side
        record = self.require(name, Action.MODIFY_CONNECTION)
        if change.endpoint != getattr(record.spec, side):
            self.store.update_endpoint(name, side, change.endpoint)
        if change.password is not None:
            self.secrets.set_password(name, side, change.password)
        if change.identity is not None:
            known = dict(record.extra.get(IDENTITY_KEY) or {})
            known[side] = change.identity.to_json()
            self.store.merge_extra(name, **{IDENTITY_KEY: known})
        what = "; ".join(change.changes) or "unchanged"
        self.store.add_log(name, "info", "task", f"{side} connection details modified: {what}")
        return self.store.get_task(name)

    def check_same_server(
        self, record: TaskRecord, side: str, old: Endpoint, new: Endpoint
    ) -> ServerIdentity:
        """`old` and `new` with their passwords. Refuse (SpecInvalid on "<side>.host") a new address unless it reaches the server the task
        works with. The rule:

        1. identity: the new address's @@server_uuid (MySQL), else @@server_id, equals the one of the
           task's server: as recorded by an earlier modify, else as the old address answers now;
        2. continuity, when the task has a checkpoint: on the service side the binlog the checkpoint
           points into is still listed, up to the checkpoint's offset (the stream continues there); on
           the DR side the server holds this task's checkpoint (drs_desktop_meta);
        3. when neither can be checked (the old address does not answer, nothing recorded, no checkpoint
           yet) the change is refused: nothing shows it is the same server.
        Returns the identity of the server reached, which the task then records.
        """
        from engine.connect import server_info

        field = f"{side}.host"
        label = SIDE_LABELS[side]
        try:
            conn = self._connect(new)
        except ConnectError as exc:
            raise SpecInvalid(
                [FieldError(field, f"cannot check {new.address} is the same {label}: {exc}")]
            ) from None
        try:
            info = server_info(conn)
            found = ServerIdentity(info.server_id, info.server_uuid)
            expected = ServerIdentity.from_json((record.extra.get(IDENTITY_KEY) or {}).get(side))
            if expected is None:
                expected = self._identity_at(old)
            if expected is not None and not found.same_as(expected):
                raise SpecInvalid([FieldError(field, f"{new.address} is another server ({found}), not the task's "
                                              f"{label} ({expected}); a task cannot move to another server: "
                                              "delete it and create a new one")])  # fmt: skip
            continuity = self._continuity_problem(conn, record, side)
            if continuity is not None:
                raise SpecInvalid(
                    [FieldError(field, f"{new.address} cannot be the task's {label}: {continuity}")]
                )
            if expected is None and not self._has_checkpoint(record, side):
                raise SpecInvalid([FieldError(field, f"cannot tell that {new.address} is the task's {label}: the "
                                              f"old address {old.address} does not answer and the task has no "
                                              "checkpoint yet to compare with")])  # fmt: skip
            return found
        finally:
            conn.close()

    @staticmethod
    def _connect(endpoint: Endpoint) -> pymysql.connections.Connection:
        from engine.connect import connect

        return connect(endpoint, connect_timeout=CHECK_TIMEOUT, read_timeout=2 * CHECK_TIMEOUT)

    def _identity_at(self, endpoint: Endpoint) -> ServerIdentity | None:
        """The identity of the server at the task's current address, None when it does not answer."""
        from engine.connect import server_info

        try:
            conn = self._connect(endpoint)
        except ConnectError:
            return None
        try:
            info = server_info(conn)
            return ServerIdentity(info.server_id, info.server_uuid)
        finally:
            conn.close()

    @staticmethod
    def _has_checkpoint(record: TaskRecord, side: str) -> bool:
        if side == "source":
            return record.checkpoint.binlog_file is not None
        return record.phase in ("initial", "incremental")

    def _continuity_problem(
        self, conn: pymysql.connections.Connection, record: TaskRecord, side: str
    ) -> str | None:
        """Why the server on `conn` cannot carry on where the task is, or None (also: nothing to check)."""
        import pymysql

        if side == "source":
            cp = record.checkpoint
            if cp.binlog_file is None:
                return None
            try:
                with conn.cursor() as cur:
                    cur.execute("SHOW BINARY LOGS")
                    logs = {_text(r[0]): int(r[1]) for r in cur.fetchall()}
            except pymysql.err.MySQLError as exc:
                return f"its binlog list cannot be read ({exc.args[-1] if exc.args else exc})"
            if cp.binlog_file not in logs:
                return f"it has no binlog {cp.binlog_file}, which the task's checkpoint points into"
            if cp.binlog_pos is not None and logs[cp.binlog_file] < cp.binlog_pos:
                return (f"its binlog {cp.binlog_file} ends at {logs[cp.binlog_file]}, before the task's "
                        f"checkpoint at {cp.binlog_pos}")  # fmt: skip
            return None
        if not self._has_checkpoint(record, side):
            return None
        from engine.checkpoint import read_checkpoint

        try:
            target_cp = read_checkpoint(conn, record.name)
        except pymysql.err.MySQLError:  # no drs_desktop_meta there at all
            target_cp = None
        if target_cp is None:
            return f"it does not hold this task's checkpoint (database drs_desktop_meta, task {record.name})"
        return None
