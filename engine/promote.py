"""Promote the DR database to primary: a planned switchover (RPO 0) or a forced failover.

Switchover: service side read-only, wait until no session there has uncommitted changes, read its final
binlog position, wait (within a deadline) until the DR side has applied everything up to it, read it
again (admin sessions write past read_only) and catch up again if it moved, DR side writable. Failover
(service unreachable): stop at the last applied position, DR side writable, say what may be lost.

A promote never strands anyone: when it cannot finish (DR side unreachable, deadline passed, cancelled)
it rolls back - the service database as writable as it was, the task back in its status. One promote
at a time per task (a compare-and-set to Promoting in the store); a journal in the task's extra lets
the next start finish or roll back a promote whose process died.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, NoReturn

import pymysql

from engine import checkpoint as cp
from engine.apply import promoted_onto, same_server
from engine.connect import (
    BinlogPosition,
    ServerInfo,
    binlog_position,
    connect,
    is_read_only,
    quote_ident,
    server_info,
    set_read_only,
    user_databases,
    variables,
)
from engine.errors import (
    ActionNotAllowed,
    ConnectError,
    DrsError,
    PromoteAlreadyRunning,
    PromoteRolledBack,
    PromoteStranded,
    ReplicationError,
)
from engine.lifecycle import STOP_WAIT_SECONDS, pid_alive, stop_runner
from engine.runner import TaskRunner, position_key
from engine.server_errors import connection_lost
from engine.spec import Endpoint, TaskSpec
from engine.status import Action, Status, why_not
from engine.store import Store, TaskRecord
from engine.tasks import TaskService

REACHABLE_TIMEOUT = 5
DEFAULT_TIMEOUT = 60.0
CONTROL_TIMEOUT = 5  # seconds: connections that check or roll back must not hang the DBA
READ_ONLY_MARGIN = 5.0  # seconds added to the delay in the read-only estimate (stop, checks, finish)
JOURNAL = "promote_journal"  # key of the promote journal in the task's extra
JOURNAL_BEAT_EVERY = 2.0
FOREIGN_OWNER_STALE = 15.0  # seconds: a promote run on another host is alive while its journal beats
LOCAL_OWNER_STALE = 60.0  # a live pid on this host with a journal silent this long is not the promote
ABORT_GRACE = 1.0  # seconds a stopped catch-up gets before its apply session is cut

LogFn = Callable[..., None]


# ---- results and plans ---------------------------------------------------------------------------


def _pos_json(pos: BinlogPosition | None) -> dict[str, Any] | None:
    return None if pos is None else {"binlog_file": pos.file, "binlog_pos": pos.pos, "gtid": pos.gtid}


def _pos_from_json(data: dict[str, Any] | None) -> BinlogPosition | None:
    if not data or not data.get("binlog_file"):
        return None
    return BinlogPosition(data["binlog_file"], int(data["binlog_pos"]), data.get("gtid"))


def _reached(applied: BinlogPosition | None, final: BinlogPosition) -> bool:
    return applied is not None and position_key(applied) >= position_key(final)


@dataclass(frozen=True)
class PromoteResult:
    task: str
    mode: str  # "switchover" | "failover"
    source_final: BinlogPosition | None
    target_applied: BinlogPosition | None
    target_writable: bool
    message: str
    # the service side's binlog moved after it was made read-only (admin sessions, replication threads):
    # those writes were caught up too, and every position read is listed (the first is the read-only one)
    writes_after_read_only: bool = False
    source_positions: tuple[BinlogPosition, ...] = ()
    read_only_seconds: float | None = None  # how long the service side was read-only before the DR side took over
    # the service position once the DR side was writable, when it had moved again (not on the DR side)
    source_after_promote: BinlogPosition | None = None
    recovered: bool = False  # finished by recovery after the promoting process died
    plan: dict[str, Any] | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        for key in ("source_final", "target_applied", "source_after_promote"):
            data[key] = _pos_json(getattr(self, key))
        data["source_positions"] = [_pos_json(p) for p in self.source_positions]
        return data


@dataclass(frozen=True)
class FailoverEstimate:
    last_applied: BinlogPosition | None
    last_applied_time: datetime | None
    delay_seconds: float | None
    message: str


@dataclass(frozen=True)
class OtherTask:
    """Another task in the store that uses one of the two servers, and what the promote does to it."""

    name: str
    status: str
    effect: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "effect": self.effect}


@dataclass(frozen=True)
class PromotePlan:
    """What a promote would do and whom it touches (read_only is server-wide, a task is some databases)."""

    task: str
    mode: str  # "switchover" | "failover" (service server unreachable)
    service_server: str  # host:port
    dr_server: str
    task_databases: tuple[str, ...] | None  # None: every user database, unknown (service unreachable)
    other_databases: tuple[str, ...] | None  # on the service server, frozen by read_only too; None: unknown
    other_tasks: tuple[OtherTask, ...]
    delay_seconds: float | None
    read_only_estimate_seconds: float | None  # switchover: delay + margin; None for a failover
    not_allowed: str | None = None  # why a promote is not available right now (dry runs show plans anyway)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["task_databases"] = None if self.task_databases is None else list(self.task_databases)
        data["other_databases"] = None if self.other_databases is None else list(self.other_databases)
        data["other_tasks"] = [t.to_json() for t in self.other_tasks]
        return data

    def lines(self) -> list[str]:
        dbs = ", ".join(self.task_databases) if self.task_databases is not None else "every user database"
        out = [f"promote plan for task {self.task}: {self.mode}"]
        if self.mode == "switchover":
            out.append(f"  service server {self.service_server}: made read-only (server-wide), and stays so")
        else:
            out.append(f"  service server {self.service_server}: unreachable, left as it is (failover)")
        out.append(f"  DR server {self.dr_server}: made writable (server-wide)")
        out.append(f"  databases that change role: {dbs}")
        if self.other_databases is None:
            out.append("  other databases on the service server: unknown (it cannot be reached)")
        elif self.other_databases:
            out.append(
                f"  other databases on the service server that read-only freezes too: {', '.join(self.other_databases)}"
            )
        else:
            out.append("  other databases on the service server: none")
        for t in self.other_tasks:
            out.append(f"  other task {t.name} ({t.status}): {t.effect}")
        delay = "unknown" if self.delay_seconds is None else f"{self.delay_seconds:.0f} s"
        estimate = (
            f"; service read-only for about {self.read_only_estimate_seconds:.0f} s before the DR side takes over"
            if self.read_only_estimate_seconds is not None
            else ""
        )
        out.append(f"  current delay: {delay}{estimate}")
        if self.not_allowed:
            out.append(f"  not available now: {self.not_allowed}")
        return out


@dataclass(frozen=True)
class ReadOnlyState:
    """read_only (and MySQL's super_read_only) of the service server as promote found it."""

    read_only: bool
    super_read_only: bool | None  # None on MariaDB (no such variable)

    def to_json(self) -> dict[str, Any]:
        return {"read_only": self.read_only, "super_read_only": self.super_read_only}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ReadOnlyState:
        # no record (a promote of an older DRS): a service database is writable
        data = data or {}
        return cls(bool(data.get("read_only", False)), data.get("super_read_only"))

    def statements(self) -> list[str]:
        """The statements that put the server back to this state (what a DBA runs by hand)."""
        out = []
        if self.super_read_only is not None and not self.super_read_only:
            out.append("SET GLOBAL super_read_only=OFF;")
        out.append(f"SET GLOBAL read_only={'ON' if self.read_only else 'OFF'};")
        if self.super_read_only:
            out.append("SET GLOBAL super_read_only=ON;")
        return out


def _read_only_state(conn: pymysql.connections.Connection, info: ServerInfo) -> ReadOnlyState:
    v = variables(conn, "read_only", "super_read_only")
    on = lambda value: str(value).upper() in ("1", "ON")  # noqa: E731
    return ReadOnlyState(on(v["read_only"]), None if info.is_mariadb else on(v["super_read_only"]))


def _restore_read_only(conn: pymysql.connections.Connection, state: ReadOnlyState) -> None:
    with conn.cursor() as cur:
        for statement in state.statements():
            cur.execute(statement.rstrip(";"))
    if is_read_only(conn) != state.read_only:
        raise ReplicationError(f"read_only is still {'OFF' if state.read_only else 'ON'} after restoring it")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DrsError):
        return str(exc)
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        return f"MySQL error {exc.args[0]}: {exc.args[1]}"
    return f"{type(exc).__name__}: {exc}"


def _sayer(store: Store, name: str, on_progress: Callable[[str], None] | None) -> LogFn:
    def say(message: str, level: str = "info") -> None:
        try:
            store.add_log(name, level, "promote", message)
        except DrsError:
            pass  # the task is gone; the caller finds out on its next store call
        if on_progress:
            on_progress(message)

    return say


# ---- the task, resolved once ---------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedTask:
    """A task's record and its spec with passwords, read once and handed down (one keyring read)."""

    record: TaskRecord
    spec: TaskSpec

    @property
    def name(self) -> str:
        return self.record.name

    @classmethod
    def load(cls, svc: TaskService, name: str) -> ResolvedTask:
        spec = svc.spec_with_passwords(name)
        return cls(svc.get(name), spec)


class _PinnedService:
    """The TaskService as the catch-up runner sees it: the task's spec already resolved, so its retries
    and monitor probes do not read the keyring again."""

    def __init__(self, svc: TaskService, spec: TaskSpec):
        self._svc, self._spec = svc, spec
        self.store, self.secrets, self.home = svc.store, svc.secrets, svc.home

    def spec_with_passwords(self, name: str) -> TaskSpec:
        return self._spec if name == self._spec.name else self._svc.spec_with_passwords(name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._svc, attr)


def _connect_or_none(endpoint: Endpoint, timeout: int = REACHABLE_TIMEOUT, read_timeout: int = REACHABLE_TIMEOUT):
    try:
        return connect(endpoint, connect_timeout=timeout, read_timeout=read_timeout)
    except ConnectError:
        return None


def service_reachable(svc: TaskService, name: str) -> bool:
    conn = _connect_or_none(svc.spec_with_passwords(name).source)
    if conn is None:
        return False
    conn.close()
    return True


def _target_checkpoint(spec: TaskSpec) -> cp.TargetCheckpoint | None:
    conn = connect(spec.target, connect_timeout=CONTROL_TIMEOUT)
    try:
        cp.ensure_meta(conn)
        return cp.read_checkpoint(conn, spec.name)
    finally:
        conn.close()


def _failover_estimate(record: TaskRecord, spec: TaskSpec) -> FailoverEstimate:
    try:
        target_cp = _target_checkpoint(spec)
    except ConnectError as exc:
        return FailoverEstimate(None, None, record.delay_seconds, f"the DR database cannot be reached either: {exc}")
    position = target_cp.position if target_cp else None
    when = datetime.fromtimestamp(target_cp.source_ts) if target_cp and target_cp.source_ts else None
    rate = record.events_per_second or 0.0
    delay = record.delay_seconds
    if position is None:
        return FailoverEstimate(None, None, delay, "the DR database has not finished its initial copy: promoting it now gives an incomplete database")
    lost = "no change known to be pending"
    if delay and delay > 0:
        lost = f"about {delay:.0f} s of service-side changes (~{delay * rate:.0f} transactions at the last rate of {rate:.1f}/s)"
    since = f" (service commit time {when:%Y-%m-%d %H:%M:%S})" if when else ""
    return FailoverEstimate(
        position,
        when,
        delay,
        f"The DR database has applied the service binlog up to {position}{since}. Changes committed on the "
        f"service database after that point and not yet received will be lost: {lost} when the task last reported.",
    )


def failover_estimate(svc: TaskService, name: str) -> FailoverEstimate:
    task = ResolvedTask.load(svc, name)
    return _failover_estimate(task.record, task.spec)


def reverse_spec(svc: TaskService, name: str) -> dict:
    """A spec for the reverse task: the promoted DR database becomes the service side."""
    public = svc.get(name).spec.to_public_dict()
    base = f"{name}-reverse"[:50]
    candidate, n = base, 2
    while svc.store.name_taken(candidate):
        candidate = f"{base[:46]}-{n}"
        n += 1
    public.update(
        name=candidate,
        description=f"reverse of {name}"[:256],
        source={k: v for k, v in public["target"].items() if v is not None},
        target={k: v for k, v in public["source"].items() if v is not None},
        start="now",
    )
    return public


# ---- plan ------------------------------------------------------------------------------------------


def _other_task_effects(store: Store, record: TaskRecord, service: Endpoint, dr: Endpoint,
                        service_info: ServerInfo | None) -> list[OtherTask]:  # fmt: skip
    out = []
    for other in store.list_tasks():
        if other.name == record.name or other.status in (Status.ENDED, Status.CREATION_FAILED):
            continue
        effects = []
        if same_server(other.spec.source, service):
            effects.append("its service server is this service server: read-only stops its applications' writes too")
        if same_server(other.spec.target, service):
            blocked = service_info is not None and not service_info.is_mariadb
            effects.append(
                "it replicates into this service server: super_read_only stops its apply"
                if blocked
                else "it replicates into this service server: its apply goes on under read_only (admin privilege)"
            )
        if same_server(other.spec.target, dr):
            if other.status is Status.PROMOTED:
                effects.append("it promoted this DR server already: the server stays writable")
            else:
                effects.append(
                    "it replicates into this DR server: read_only is lifted server-wide, so its DR databases "
                    "become writable for everyone, and DRS keeps the server writable while this task is Promoted"
                )
        if same_server(other.spec.source, dr):
            effects.append("it reads from this DR server: not affected")
        if effects:
            out.append(OtherTask(other.name, other.status.label, "; ".join(effects)))
    return out


def _plan(svc: TaskService, task: ResolvedTask, source: pymysql.connections.Connection | None) -> PromotePlan:
    from engine import health

    record, spec = task.record, task.spec
    task_dbs: tuple[str, ...] | None = spec.databases
    other_dbs: tuple[str, ...] | None = None
    info = None
    if source is not None:
        info = server_info(source)
        present = user_databases(source)
        if task_dbs is None:
            task_dbs, other_dbs = tuple(present), ()
        else:
            mine = set(task_dbs)
            other_dbs = tuple(d for d in present if d not in mine)
    delay = health.effective_delay(record)
    mode = "switchover" if source is not None else "failover"
    return PromotePlan(
        task=record.name,
        mode=mode,
        service_server=spec.source.address,
        dr_server=spec.target.address,
        task_databases=task_dbs,
        other_databases=other_dbs,
        other_tasks=tuple(_other_task_effects(svc.store, record, spec.source, spec.target, info)),
        delay_seconds=delay,
        read_only_estimate_seconds=(delay or 0.0) + READ_ONLY_MARGIN if mode == "switchover" else None,
        not_allowed=why_not(Action.PROMOTE, record.status)
        or (None if record.phase == "incremental" else "the initial copy has not finished"),
    )


def promote_plan(svc: TaskService, name: str) -> PromotePlan:
    """What `promote` would do now, changing nothing (`drs promote NAME --dry-run`)."""
    task = ResolvedTask.load(svc, name)
    source = _connect_or_none(task.spec.source)
    try:
        return _plan(svc, task, source)
    finally:
        if source is not None:
            source.close()


# ---- who owns a promote ----------------------------------------------------------------------------

# Tokens of the promotes (and recoveries) running in this process: a journal naming our own pid is
# alive only while its token is here (threads of one process, e.g. the GUI, share a pid).
_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


def _owner_text(journal: dict[str, Any] | None) -> str:
    if not journal:
        return "owner unknown"
    return f"process {journal.get('pid')} on {journal.get('host')}, started {journal.get('started_at')}"


def _beat_age(journal: dict[str, Any]) -> float:
    try:
        return (datetime.now() - datetime.fromisoformat(journal.get("beat_at") or "")).total_seconds()
    except ValueError:
        return math.inf


def _owner_alive(journal: dict[str, Any]) -> bool:
    pid, host = journal.get("pid"), journal.get("host")
    if host == socket.gethostname():
        if pid == os.getpid():
            with _ACTIVE_LOCK:
                return journal.get("token") in _ACTIVE
        # a live pid whose journal stopped beating long ago is another process that got the pid (reboot)
        return pid_alive(pid) and _beat_age(journal) < LOCAL_OWNER_STALE
    # another host: its pid means nothing here; its journal beats while it runs
    return _beat_age(journal) < FOREIGN_OWNER_STALE


class _Journal:
    """The promote journal in the task's extra: who promotes, the step, and what to undo."""

    def __init__(self, store: Store, name: str, data: dict[str, Any]):
        self.store, self.name = store, name
        self.data = dict(data)
        self.lost = False  # another process took the promote over (it looked dead): hands off
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._beat: threading.Thread | None = None

    def update(self, **fields: Any) -> None:
        """Record fields, only while the journal in the store is still ours (same token)."""
        token = self.data.get("token")
        with self._lock:
            if self.lost:
                return
            self.data.update(fields)
            self.data["beat_at"] = datetime.now().isoformat(timespec="seconds")
            try:
                mine = self.store.merge_extra_if(
                    self.name, lambda extra: (extra.get(JOURNAL) or {}).get("token") == token, {JOURNAL: dict(self.data)}
                )
            except DrsError:
                return  # the store is gone; the promote itself reports what matters
            self.lost = not mine

    def start_beating(self) -> None:
        def beat() -> None:
            while not self._halt.wait(JOURNAL_BEAT_EVERY):
                self.update()

        self._beat = threading.Thread(target=beat, name=f"promote-journal-{self.name}", daemon=True)
        self._beat.start()

    def stop_beating(self) -> None:
        self._halt.set()
        if self._beat is not None:
            self._beat.join(timeout=5)


def _new_journal(token: str, **facts: Any) -> dict[str, Any]:
    now = datetime.now().isoformat(timespec="seconds")
    return {"token": token, "pid": os.getpid(), "host": socket.gethostname(), "started_at": now, "beat_at": now, **facts}


# ---- the catch-up ----------------------------------------------------------------------------------


class _CatchUpRunner(TaskRunner):
    """TaskRunner for the catch-up: the status stays Promoting whatever happens (a failure goes back to
    promote, which rolls back), never an initial copy, and its apply session can be cut from outside."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.failure: str | None = None
        self.last_problem: str | None = None
        self.applier = None

    def _set_status(self, status: Status, phase: str, message: str | None = None, **fields: Any) -> None:
        if status is Status.FAILED:
            self.failure = message or "the apply failed"
        self.svc.store.update_task(self.name, phase=phase, **fields)

    def log(self, level: str, component: str, message: str) -> None:
        if level in ("alarm", "error"):
            self.last_problem = message
        super().log(level, component, message)

    def _initial_phase(self, spec: Any, applier: Any) -> Any:
        self.failure = "the DR database holds no incremental checkpoint of this task (initial copy not complete)"
        self.stop()
        raise ReplicationError(self.failure)

    def _incremental_phase(self, spec: Any, applier: Any, target_cp: Any, until: Any) -> Status:
        self.applier = applier
        return super()._incremental_phase(spec, applier, target_cp, until)

    def cut_apply_session(self, target: Endpoint) -> str | None:
        """A stopped runner may still wait on a DR-side row lock (innodb_lock_wait_timeout): end its
        session on the server (KILL), and its socket here for a server that does not answer. Returns
        what the session was waiting for, when the server says."""
        conn = self.applier.conn if self.applier is not None else None
        if conn is None:
            return None
        waiting = None
        try:
            killer = connect(target, connect_timeout=3, read_timeout=3)
            try:
                thread_id = int(conn.thread_id())
                waiting = _lock_wait(killer, thread_id)
                with killer.cursor() as cur:
                    cur.execute(f"KILL CONNECTION {thread_id}")
            finally:
                killer.close()
        except Exception:  # noqa: BLE001 - gone already, or the server is unreachable: the socket below
            pass
        sock = getattr(conn, "_sock", None)  # pymysql keeps no public handle on it
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return waiting


def _lock_wait(conn: pymysql.connections.Connection, thread_id: int) -> str | None:
    """'waiting for a lock held by session N (user@host)' when the session waits on a row lock."""
    with conn.cursor() as cur:
        cur.execute("SELECT trx_state, trx_id FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = %s", (thread_id,))
        row = cur.fetchone()
        if row is None or str(row[0]) != "LOCK WAIT":
            return None
        holders = []
        try:  # MariaDB and MySQL 5.7; MySQL 8 moved lock waits to performance_schema
            cur.execute(
                "SELECT b.trx_mysql_thread_id, p.USER, p.HOST FROM information_schema.INNODB_LOCK_WAITS w "
                "JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id "
                "LEFT JOIN information_schema.PROCESSLIST p ON p.ID = b.trx_mysql_thread_id "
                "WHERE w.requesting_trx_id = %s",
                (row[1],),
            )
            holders = [f"session {r[0]} ({r[1]}@{r[2]})" for r in cur.fetchall()]
        except pymysql.err.MySQLError:
            pass
    by = f" held by {', '.join(holders)}" if holders else ""
    return f"the apply on the DR database was waiting for a row lock{by}"


# ---- one promote -----------------------------------------------------------------------------------


class _Abort(Exception):
    """The promote cannot finish; the reason is for the DBA."""


class _Promotion:
    """The state of one promote (or one recovery): what it changed, so that a rollback undoes exactly that."""

    def __init__(self, svc: TaskService, task: ResolvedTask, journal: _Journal, say: LogFn, *,
                 timeout: float, cancel: threading.Event | None, on_progress: Callable[[str], None] | None):  # fmt: skip
        self.svc, self.store, self.task, self.name = svc, svc.store, task, task.name
        self.spec = task.spec
        self.journal, self.say = journal, say
        self.timeout, self.cancel, self.on_progress = timeout, cancel, on_progress
        self.deadline = time.monotonic() + timeout
        self.previous_status = Status(journal.data.get("previous_status", Status.REPLICATING.value))
        self.previous_last_error: str | None = journal.data.get("previous_last_error")
        self.before = (
            ReadOnlyState.from_json(journal.data.get("source_read_only_before"))
            if "source_read_only_before" in journal.data
            else None
        )
        self.restored: list[list[str]] = [list(o) for o in journal.data.get("restored_objects", [])]
        self.target_made_writable = bool(journal.data.get("target_made_writable"))
        self.source: pymysql.connections.Connection | None = None
        self.source_info: ServerInfo | None = None
        self.target: pymysql.connections.Connection | None = None

    # -- limits ----------------------------------------------------------------------------------
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.journal.lost:
            current = self.svc.get(self.name).extra.get(JOURNAL)
            raise _Abort(f"this promote was taken over by {_owner_text(current)}, which found it stalled")
        if self.cancel is not None and self.cancel.is_set():
            raise _Abort("cancelled")
        if self.remaining() <= 0:
            raise _Abort(f"the {self.timeout:g} s deadline passed")

    def _bounded(self, seconds: float) -> int:
        return max(1, min(int(seconds), math.ceil(self.remaining())))

    # -- connections -----------------------------------------------------------------------------
    def target_conn(self) -> pymysql.connections.Connection:
        if self.target is not None:
            try:
                self.target.ping(reconnect=False)
                return self.target
            except Exception:  # noqa: BLE001 - a broken session is replaced below
                self.close_target()
        try:
            self.target = connect(self.spec.target, connect_timeout=self._bounded(10), read_timeout=30)
        except ConnectError as exc:
            raise _Abort(f"the DR database cannot be reached: {exc}") from None
        return self.target

    def close_target(self) -> None:
        if self.target is not None:
            try:
                self.target.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self.target = None

    def close(self) -> None:
        self.close_target()
        if self.source is not None:
            try:
                self.source.close()
            except Exception:  # noqa: BLE001
                pass
            self.source = None

    def target_checkpoint(self) -> cp.TargetCheckpoint | None:
        conn = self.target_conn()
        cp.ensure_meta(conn)
        return cp.read_checkpoint(conn, self.name)

    # -- steps -----------------------------------------------------------------------------------
    def stop_task_runner(self) -> None:
        self.journal.update(step="stopping_runner")
        self.say("stopping the replication of the task")
        try:
            stop_runner(self.svc, self.name, timeout=max(0.1, min(STOP_WAIT_SECONDS, self.remaining())), cancel=self.cancel)
        except DrsError as exc:
            raise _Abort(str(exc)) from None

    def check_target(self) -> cp.TargetCheckpoint:
        """Before anything changes on the service side: the DR side answers and is in its incremental phase."""
        target_cp = self.target_checkpoint()
        if target_cp is None or target_cp.phase != "incremental" or target_cp.position is None:
            raise _Abort("the DR database holds no incremental checkpoint of this task (initial copy not complete)")
        return target_cp

    def make_source_read_only(self) -> None:
        assert self.source is not None and self.source_info is not None
        self.before = _read_only_state(self.source, self.source_info)
        # journal first: a crash right after the SET must still know what to put back
        self.journal.update(
            step="source_read_only", source_read_only_before=self.before.to_json(),
            source_family=self.source_info.family, service_server=self.spec.source.address,
        )  # fmt: skip
        self.check()
        with self.source.cursor() as cur:
            # SET GLOBAL read_only waits for running writes and commits: no longer than the deadline
            cur.execute(f"SET SESSION lock_wait_timeout = {self._bounded(self.remaining())}")
        try:
            set_read_only(self.source, True, self.source_info, super_read_only=True)
        except pymysql.err.MySQLError as exc:
            raise _Abort(f"the service database could not be made read-only: {_describe(exc)}") from None
        self.say("service database is now read-only")

    def wait_for_writers(self) -> None:
        """Until no other session holds uncommitted changes: those would commit after the final position."""
        assert self.source is not None
        self.journal.update(step="waiting_writers")
        reported = False
        while True:
            try:
                with self.source.cursor() as cur:
                    cur.execute(
                        "SELECT t.trx_mysql_thread_id, p.USER, p.HOST, t.trx_started, t.trx_rows_modified "
                        "FROM information_schema.INNODB_TRX t "
                        "LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
                        "WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND t.trx_is_read_only = 0 "
                        "AND t.trx_rows_modified > 0"
                    )
                    writers = cur.fetchall()
            except pymysql.err.MySQLError as exc:
                if connection_lost(exc):
                    raise
                self.say(f"cannot see the other sessions' transactions ({_describe(exc)}): the final position is read "
                         "without waiting for them (the check after the catch-up still sees late writes)", "warning")  # fmt: skip
                return
            if not writers:
                return
            sessions = ", ".join(f"session {r[0]} ({r[1]}@{r[2]}, {r[4]} rows changed since {r[3]})" for r in writers)
            if not reported:
                self.say(f"waiting for transactions with uncommitted changes on the service database: {sessions}")
                reported = True
            try:
                self.check()
            except _Abort as abort:
                raise _Abort(f"{abort}: transactions with uncommitted changes were still open on the service database: {sessions}") from None
            time.sleep(0.2)

    def catch_up(self, until: BinlogPosition) -> BinlogPosition:
        """Run the task's apply until the DR side holds `until`; stop it at the deadline or on cancel."""
        self.say(f"waiting until the DR database has applied everything up to {until} (RPO 0)")
        progress = (
            (lambda p: self.say(f"applied up to {p.binlog_file}:{p.binlog_pos}, delay {p.delay_seconds:.0f}s"))
            if self.on_progress
            else None
        )
        runner = _CatchUpRunner(_PinnedService(self.svc, self.spec), self.name, on_stream_progress=progress)  # type: ignore[arg-type]
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["status"] = runner.run(until=until)
            except BaseException as exc:  # noqa: BLE001 - handed to the promote thread
                outcome["error"] = exc

        thread = threading.Thread(target=run, name=f"promote-catch-up-{self.name}", daemon=True)
        thread.start()
        reason = None
        while thread.is_alive():
            if self.cancel is not None and self.cancel.is_set():
                reason = "cancelled"
            elif self.remaining() <= 0:
                reason = f"the DR database did not reach the service's final position {until} within the {self.timeout:g} s deadline"
            if reason:
                break
            thread.join(0.2)
        if reason:
            runner.stop()
            thread.join(ABORT_GRACE)
            waiting = None
            if thread.is_alive():
                waiting = runner.cut_apply_session(self.spec.target)
                thread.join(ABORT_GRACE * 2)
            if thread.is_alive():
                self.say("the apply session is still busy on the DR server; it ends on its own (nothing is committed)", "warning")
            problem = waiting or runner.last_problem
            if problem and reason != "cancelled":
                reason += f" ({problem})"
            raise _Abort(reason)
        if "error" in outcome:
            raise _Abort(f"the catch-up failed: {_describe(outcome['error'])}")
        if runner.failure:
            raise _Abort(f"the DR database could not apply up to {until}: {runner.failure}")
        applied = self.target_checkpoint()
        position = applied.position if applied else None
        if not _reached(position, until):
            raise _Abort(f"the DR database did not reach the service's final position {until} (applied: {position})")
        assert position is not None
        return position

    def finish_target(self) -> tuple[BinlogPosition | None, bool]:
        """Make the DR side a primary: triggers held back created, events enabled, writable."""
        self.journal.update(step="finishing_target")
        conn = self.target_conn()
        cp.ensure_meta(conn)
        target_cp = cp.read_checkpoint(conn, self.name)
        info = server_info(conn)
        done = {tuple(o) for o in self.restored}
        with conn.cursor() as cur:
            for kind, db, obj, definition in cp.load_deferred(conn, self.name):
                if (kind, db, obj) in done:
                    continue  # restored by the attempt this one recovers
                try:
                    if kind == "trigger":
                        if db:
                            cur.execute(f"USE {quote_ident(db)}")
                        cur.execute(definition)
                        self.say(f"trigger {db}.{obj} created")
                    elif kind == "event":
                        cur.execute(f"ALTER EVENT {quote_ident(db)}.{quote_ident(obj)} ENABLE")
                        self.say(f"event {db}.{obj} enabled")
                    self.restored.append([kind, db, obj])
                    self.journal.update(restored_objects=self.restored)
                except pymysql.err.MySQLError as exc:
                    if connection_lost(exc):
                        raise
                    self.say(f"warning: {kind} {db}.{obj} could not be restored: {_describe(exc)}", "warning")
            cur.execute("USE mysql")
        self.journal.update(target_made_writable=True)  # before: a crash in between must check the DR side
        self.target_made_writable = True
        set_read_only(conn, False, info)
        writable = not is_read_only(conn)
        return (target_cp.position if target_cp else None), writable

    # -- rollback --------------------------------------------------------------------------------
    def undo_target(self) -> list[str]:
        """Undo what finish_target did on the DR side; what could not be undone, as sentences."""
        if not self.restored and not self.target_made_writable:
            return []
        try:
            conn = connect(self.spec.target, connect_timeout=CONTROL_TIMEOUT, read_timeout=30)
        except ConnectError as exc:
            left = [f"{k} {d}.{o}" for k, d, o in self.restored]
            return [f"the DR database cannot be reached ({exc}) to undo what the promote did there"
                    + (f": drop or disable {', '.join(left)} before resuming the task" if left else "")]  # fmt: skip
        problems = []
        try:
            with conn.cursor() as cur:
                for kind, db, obj in reversed(self.restored):
                    try:
                        if kind == "trigger":
                            cur.execute(f"DROP TRIGGER IF EXISTS {quote_ident(db)}.{quote_ident(obj)}")
                        else:
                            cur.execute(f"ALTER EVENT {quote_ident(db)}.{quote_ident(obj)} DISABLE")
                    except pymysql.err.MySQLError as exc:
                        problems.append(f"{kind} {db}.{obj} could not be undone on the DR side: {_describe(exc)}")
            if self.target_made_writable and not promoted_onto(self.store, self.spec.target, self.name):
                set_read_only(conn, True)
        except pymysql.err.MySQLError as exc:
            problems.append(f"the DR side could not be put back: {_describe(exc)}")
        finally:
            conn.close()
        return problems

    def roll_back(self, reason: str) -> NoReturn:
        """Undo exactly what this promote changed, put the task back in its status, and raise."""
        self.say(f"promote cannot finish: {reason}; rolling back", "error")
        self.close()
        problems = self.undo_target()
        lift_error = None
        if self.before is not None:
            try:
                conn = connect(self.spec.source, connect_timeout=CONTROL_TIMEOUT, read_timeout=30)
                try:
                    _restore_read_only(conn, self.before)
                finally:
                    conn.close()
            except (DrsError, pymysql.err.MySQLError, OSError) as exc:
                lift_error = _describe(exc)
        if lift_error is not None:
            assert self.before is not None
            statements = ReadOnlyState(self.before.read_only, self.before.super_read_only).statements()
            stranded = PromoteStranded(self.name, reason, self.spec.source.address, statements, lift_error)
            self.store.add_log(self.name, "error", "promote", str(stranded))
            if self.on_progress:
                self.on_progress(str(stranded))
            # Failed, with the statements as its last error: a status the DBA acts from (retry, promote)
            self.store.set_status_if(self.name, {Status.PROMOTING}, Status.FAILED, last_error=str(stranded))
            self.journal.update(step="stranded", reason=reason, finished_at=datetime.now().isoformat(timespec="seconds"))
            raise stranded
        for problem in problems:
            self.say(problem, "error")
        if self.journal.lost:  # the process that took over decides the status
            raise PromoteRolledBack(self.name, reason)
        self.store.set_status_if(self.name, {Status.PROMOTING}, self.previous_status, last_error=self.previous_last_error)
        self.journal.update(step="rolled_back", reason=reason, finished_at=datetime.now().isoformat(timespec="seconds"))
        what = "service database writable again" if self.before is not None and not self.before.read_only else "service database as it was"
        self.say(f"promote rolled back: {what}, task back to {self.previous_status.label}", "warning")
        raise PromoteRolledBack(self.name, reason + "".join(f"; {p}" for p in problems))

    # -- the whole promote -----------------------------------------------------------------------
    def switchover(self, plan: PromotePlan) -> PromoteResult:
        assert self.source is not None
        self.source_info = server_info(self.source)
        self.stop_task_runner()
        self.check()
        self.check_target()
        self.make_source_read_only()
        read_only_since = time.monotonic()
        self.wait_for_writers()
        final = binlog_position(self.source, self.source_info)
        positions = [final]
        self.journal.update(step="catching_up", source_final=_pos_json(final))
        writes_after = False
        while True:
            self.catch_up(final)
            # admin sessions and replication threads write past read_only: the position must not move
            now = binlog_position(self.source, self.source_info)
            if position_key(now) <= position_key(final):
                break
            moved = now.gtid != final.gtid if (now.gtid and final.gtid) else True
            writes_after = writes_after or moved
            self.say(
                f"the service database's binlog moved from {final} to {now} after it was made read-only "
                + ("(writes by an admin session or a replication thread)" if moved else "(no new transaction)")
                + ": catching up to it too",
                "warning",
            )
            final = now
            positions.append(now)
            self.journal.update(source_final=_pos_json(final), writes_after_read_only=writes_after)
            self.check()
        self.journal.update()  # proves the journal is still ours just before the point of no return
        self.check()  # the last moment a cancel, the deadline or a takeover can still roll back
        target_applied, writable = self.finish_target()
        read_only_seconds = round(time.monotonic() - read_only_since, 2)
        after = None
        try:
            later = binlog_position(self.source, self.source_info)
            if position_key(later) > position_key(final):
                after = later
                self.say(f"the service database's binlog moved again, from {final} to {later}, after the DR database "
                         "became writable: those changes are NOT on the DR database; compare and repair", "error")  # fmt: skip
        except (pymysql.err.MySQLError, DrsError) as exc:
            self.say(f"could not re-read the service position after the promote: {_describe(exc)}", "warning")
        if writes_after:
            self.say(f"writes happened on the service database after it was made read-only; they were caught up: "
                     f"positions {', '.join(str(p) for p in positions)}", "warning")  # fmt: skip
        message = (
            f"switchover complete: DR database writable, applied up to {target_applied}; "
            f"service database read-only at {final}"
        )
        return PromoteResult(self.name, "switchover", final, target_applied, writable, message,
                             writes_after_read_only=writes_after, source_positions=tuple(positions),
                             read_only_seconds=read_only_seconds, source_after_promote=after,
                             plan=plan.to_json())  # fmt: skip

    def failover(self, plan: PromotePlan) -> PromoteResult:
        self.stop_task_runner()
        self.check()
        self.say(_failover_estimate(self.task.record, self.spec).message, "warning")
        self.journal.update()
        self.check()
        target_applied, writable = self.finish_target()
        message = f"failover complete: DR database writable, applied up to {target_applied}"
        return PromoteResult(self.name, "failover", None, target_applied, writable, message, plan=plan.to_json())


def _finish_promoted(store: Store, name: str, result: PromoteResult, journal: _Journal, say: LogFn) -> None:
    store.merge_extra(name, promote={**result.to_json(), "at": datetime.now().isoformat(timespec="seconds")})
    store.set_status_if(name, {Status.PROMOTING}, Status.PROMOTED, delay_seconds=0.0)
    journal.update(step="done", finished_at=datetime.now().isoformat(timespec="seconds"))
    say(result.message)


def _check_timeout(timeout: float) -> None:
    if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        raise ActionNotAllowed(f"the promote timeout must be a positive number of seconds, not {timeout!r}")


def promote(
    svc: TaskService,
    name: str,
    *,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    cancel: threading.Event | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> PromoteResult:
    """Promote the task's DR database; finish within `timeout` seconds or roll back (PromoteRolledBack).

    A task left in Promoting by a process that died is recovered first (see recover_promote); a
    promote under way elsewhere raises PromoteAlreadyRunning.
    """
    _check_timeout(timeout)
    store = svc.store
    say = _sayer(store, name, on_progress)
    task = ResolvedTask.load(svc, name)  # the one keyring read of this promote
    record = task.record
    if record.status is Status.PROMOTING:
        recovery = _recover(svc, task, say, on_progress)
        if recovery.result is not None:
            return recovery.result
        record = svc.get(name)
        task = ResolvedTask(record, task.spec)
    reason = why_not(Action.PROMOTE, record.status)
    if reason:
        raise ActionNotAllowed(reason)
    if record.phase != "incremental":
        raise ActionNotAllowed(f"task {name} has not finished its initial copy; there is nothing consistent to promote yet")
    source = _connect_or_none(task.spec.source, read_timeout=max(10, int(timeout) + 5))
    if source is None and not force:
        estimate = _failover_estimate(record, task.spec)
        raise ActionNotAllowed(
            f"the service database of task {name} cannot be reached, so a switchover (RPO 0) is impossible. "
            f"A forced failover (--force) would promote the DR database as it is. {estimate.message}"
        )
    token = uuid.uuid4().hex
    with _ACTIVE_LOCK:
        _ACTIVE.add(token)  # before the store says Promoting: a thread of ours must find us alive
    try:
        plan = _plan(svc, task, source)
        mode = plan.mode
        facts = {"step": "started", "mode": mode, "timeout": timeout, "previous_status": record.status.value,
                 "previous_last_error": record.last_error}  # fmt: skip
        journal = _Journal(store, name, _new_journal(token, **facts))
        if not store.set_status_if(name, {record.status}, Status.PROMOTING, extra={JOURNAL: journal.data}):
            current = svc.get(name)
            if current.status is Status.PROMOTING:
                raise PromoteAlreadyRunning(name, _owner_text(current.extra.get(JOURNAL)))
            raise ActionNotAllowed(f"task {name} changed to {current.status.label} meanwhile; check it and promote again")
        journal.start_beating()
        for line in plan.lines():
            say(line)
        say("promote started: " + ("planned switchover" if mode == "switchover" else "forced failover (service database unreachable)")
            + f", deadline {timeout:g} s")  # fmt: skip
        promotion = _Promotion(svc, task, journal, say, timeout=timeout, cancel=cancel, on_progress=on_progress)
        promotion.source, source = source, None
        try:
            result = promotion.switchover(plan) if mode == "switchover" else promotion.failover(plan)
        except _Abort as abort:
            promotion.roll_back(str(abort))
        except (DrsError, pymysql.err.MySQLError, OSError) as exc:
            promotion.roll_back(_describe(exc))
        except BaseException as exc:  # a bug or an interrupt: still never leave the service read-only
            promotion.roll_back(f"{type(exc).__name__}: {exc}")
        finally:
            promotion.close()
            journal.stop_beating()
        _finish_promoted(store, name, result, journal, say)
        return result
    finally:
        if source is not None:
            source.close()
        with _ACTIVE_LOCK:
            _ACTIVE.discard(token)


# ---- recovery of a promote whose process died ------------------------------------------------------


@dataclass(frozen=True)
class _Recovery:
    message: str
    result: PromoteResult | None = None  # set when the recovery finished the promote


def _recover(svc: TaskService, task: ResolvedTask, say: LogFn, on_progress: Callable[[str], None] | None) -> _Recovery:
    store, name = svc.store, task.name
    record = svc.get(name)
    if record.status is not Status.PROMOTING:
        return _Recovery(f"task {name} is not promoting ({record.status.label}): nothing to recover")
    old = dict(record.extra.get(JOURNAL) or {})
    if old and _owner_alive(old):
        raise PromoteAlreadyRunning(name, _owner_text(old))
    token = uuid.uuid4().hex
    with _ACTIVE_LOCK:
        _ACTIVE.add(token)
    try:
        claim = {**old, **_new_journal(token), "started_at": old.get("started_at"), "step": old.get("step", "started"),
                 "recovering": {"pid": old.get("pid"), "host": old.get("host"), "step": old.get("step")}}  # fmt: skip
        claimed = store.set_status_if(
            name, {Status.PROMOTING}, Status.PROMOTING, extra={JOURNAL: claim},
            extra_guard=lambda extra: (extra.get(JOURNAL) or {}).get("token") == old.get("token"),
        )  # fmt: skip
        if not claimed:
            current = svc.get(name)
            if current.status is Status.PROMOTING:
                raise PromoteAlreadyRunning(name, _owner_text(current.extra.get(JOURNAL)))
            return _Recovery(f"task {name} was recovered meanwhile ({current.status.label})")
        journal = _Journal(store, name, claim)
        return _decide(svc, ResolvedTask(svc.get(name), task.spec), journal, old, say, on_progress)
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(token)


def _decide(svc: TaskService, task: ResolvedTask, journal: _Journal, old: dict[str, Any], say: LogFn,
            on_progress: Callable[[str], None] | None) -> _Recovery:  # fmt: skip
    """Finish the dead promote when the DR side already took over, else roll it back."""
    name = task.name
    step = old.get("step", "started")
    mode = old.get("mode", "switchover")
    final = _pos_from_json(old.get("source_final"))
    if not old:  # Promoting without a journal (an older DRS): assume a switchover that set read_only
        journal.update(source_read_only_before=ReadOnlyState(False, None).to_json())
    say(f"recovering the promote of task {name} left by {_owner_text(old)} (it died at step {step})", "warning")
    promotion = _Promotion(svc, task, journal, say, timeout=DEFAULT_TIMEOUT, cancel=None, on_progress=on_progress)
    try:
        try:
            target_cp = promotion.target_checkpoint()
            applied = target_cp.position if target_cp else None
            writable = not is_read_only(promotion.target_conn())
        except (_Abort, pymysql.err.MySQLError) as exc:
            if step == "finishing_target" or promotion.target_made_writable:
                # it may have become writable: making the service writable too could split the brain
                promotion.close()
                before = promotion.before or ReadOnlyState(False, None)
                stranded = PromoteStranded(
                    name, f"the promoting process died while making the DR database writable, and the DR database "
                    f"cannot be reached now ({_describe(exc)}) to tell whether it is; check it first", task.spec.source.address,
                    before.statements(),
                )  # fmt: skip
                svc.store.add_log(name, "error", "promote", str(stranded))
                svc.store.set_status_if(name, {Status.PROMOTING}, Status.FAILED, last_error=str(stranded))
                journal.update(step="stranded", reason="DR side unreachable during recovery")
                raise stranded from None
            promotion.roll_back(f"the promoting process ({_owner_text(old)}) died at step {step}; the DR database "
                                f"cannot be reached ({_describe(exc)})")  # fmt: skip
        reached = mode == "failover" or (final is not None and _reached(applied, final))
        if reached and not writable and mode == "switchover" and final is not None:
            moved = _source_moved_past(task.spec.source, final)
            if moved is not None:  # writes after read-only that no catch-up took: the DR side must not take over
                promotion.roll_back(f"the promoting process died at step {step}, and the service database's binlog "
                                    f"moved past the final position since ({final} -> {moved})")  # fmt: skip
        if reached and (writable or step == "finishing_target"):
            if not writable:
                target_applied, writable = promotion.finish_target()
            else:
                target_applied = applied
            message = (f"{mode} finished by recovery (the promoting process died at step {step}): DR database "
                       f"writable, applied up to {target_applied}")  # fmt: skip
            result = PromoteResult(name, mode, final, target_applied, writable, message,
                                   writes_after_read_only=bool(old.get("writes_after_read_only")),
                                   source_positions=(final,) if final else (), recovered=True)  # fmt: skip
            _finish_promoted(svc.store, name, result, journal, say)
            return _Recovery(message, result)
        promotion.roll_back(f"the promoting process ({_owner_text(old)}) died at step {step}, before the DR database "
                            "took over")  # fmt: skip
    except PromoteRolledBack as rolled:
        return _Recovery(f"recovered task {name}: {rolled}")
    except (DrsError, pymysql.err.MySQLError, OSError) as exc:
        if isinstance(exc, PromoteStranded | PromoteAlreadyRunning):
            raise
        try:
            promotion.roll_back(f"recovery failed: {_describe(exc)}")
        except PromoteRolledBack as rolled:
            return _Recovery(f"recovered task {name}: {rolled}")
    finally:
        promotion.close()


def _source_moved_past(source: Endpoint, final: BinlogPosition) -> BinlogPosition | None:
    """The service side's binlog position when it is past `final`; None when not (or unreachable)."""
    conn = _connect_or_none(source, CONTROL_TIMEOUT, 30)
    if conn is None:
        return None
    try:
        now = binlog_position(conn)
    except (pymysql.err.MySQLError, DrsError):
        return None
    finally:
        conn.close()
    return now if position_key(now) > position_key(final) else None


def recover_promote(svc: TaskService, name: str) -> str:
    """Decide what becomes of a task left in Promoting: refuse (PromoteAlreadyRunning) while its promote
    still runs; else finish it when the DR side already reached the final position (and is writable, or
    was being made so), else roll it back. Returns what was done; PromoteStranded when the service
    database cannot be made writable again."""
    return _recover(svc, ResolvedTask.load(svc, name), _sayer(svc.store, name, None), None).message


def recover_stale_promotes(svc: TaskService) -> list[str]:
    """At application start: recover every task in Promoting whose promote process is gone."""
    messages = []
    for record in svc.store.list_tasks():
        if record.status is not Status.PROMOTING:
            continue
        journal = record.extra.get(JOURNAL) or {}
        if journal and _owner_alive(journal):
            continue
        try:
            messages.append(recover_promote(svc, record.name))
        except DrsError as exc:
            messages.append(str(exc))
    return messages


# ---- drs promote -----------------------------------------------------------------------------------


def _timeout_arg(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: must be a positive number of seconds")
    return seconds


def cmd_promote(args: argparse.Namespace) -> int:
    svc = TaskService(args.home)
    if args.dry_run:
        plan = promote_plan(svc, args.name)
        if args.json:
            print(json.dumps(plan.to_json(), indent=2, ensure_ascii=False))
        else:
            print("\n".join(plan.lines()))
            print("dry run: nothing was changed")
        return 0
    cancel = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        cancel.set()  # rolls back at the next check; a second signal is no different

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        result = promote(svc, args.name, force=args.force, timeout=args.timeout, cancel=cancel,
                         on_progress=None if args.json else (lambda m: print(m, flush=True)))  # fmt: skip
    except (PromoteRolledBack, PromoteStranded) as exc:
        if args.json:
            status = svc.get(args.name).status.value
            print(json.dumps({"task": args.name, "rolled_back": isinstance(exc, PromoteRolledBack),
                              "stranded": isinstance(exc, PromoteStranded), "reason": exc.reason,
                              "message": str(exc), "status": status}, indent=2))  # fmt: skip
        raise
    final = svc.get(args.name)
    if args.json:
        print(json.dumps({**result.to_json(), "status": final.status.value}, indent=2))
    else:
        print(f"service final position: {result.source_final or 'unknown (service unreachable)'}")
        print(f"DR applied position:    {result.target_applied}")
        print(f"DR database writable:   {'yes' if result.target_writable else 'NO'}")
        if result.writes_after_read_only:
            print(f"writes after read-only: yes, caught up ({', '.join(str(p) for p in result.source_positions)})")
    return 0 if final.status is Status.PROMOTED and result.target_writable else 1


def register_cli(top: argparse._SubParsersAction, task_sub: argparse._SubParsersAction) -> None:
    p = top.add_parser(
        "promote", help="promote the DR database: switchover, or failover with --force",
        description="Exit codes: 0 promoted; 1 rolled back (service database writable again); 2 not allowed "
        "now or already promoting; 3 rollback failed too: the service database is still read-only.",
    )  # fmt: skip
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="failover when the service database is unreachable (may lose changes)")
    p.add_argument("--timeout", type=_timeout_arg, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"roll back when the DR side has not taken over within this (default {DEFAULT_TIMEOUT:g})")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print what the promote would do and whom it touches; change nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_promote)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
