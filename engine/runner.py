"""The loop that runs one DR task: initial copy, then binlog streaming and apply, until told to stop.

It owns the task's status in the store (the GUI and `drs task show` read it), reconnects with
backoff when either server goes away, and resumes from the DR-side checkpoint after any stop or
crash. Used by the GUI's workers and by `drs run`.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pymysql

from engine import checkpoint as cp
from engine.apply import Applier
from engine.connect import BinlogPosition
from engine.errors import ConnectError, DrsError
from engine.feed import ReaderLost, open_feed
from engine.progress import CopyProgress, StreamProgress
from engine.status import RUNNING, Status
from engine.store import Checkpoint, DrLogEntry
from engine.stream import Heartbeat, Transaction, reader_server_id
from engine.tasks import TaskService

BATCH_ROWS = 5000  # row changes grouped into one DR-side commit while catching up
PROGRESS_EVERY = 1.0  # seconds between store updates of delay and throughput
MAX_BACKOFF = 30.0
AUTO_RETRIES = 3  # for errors that are not network errors (those are retried without limit)
QUEUE_ITEMS = 2000


@dataclass(frozen=True)
class StatusChange:
    task: str
    status: Status
    phase: str
    message: str | None = None


class _StopRequested(Exception):
    pass


def position_key(position: BinlogPosition) -> tuple[int, str, int]:
    """Order binlog positions: by file sequence number, then offset."""
    stem, _, suffix = position.file.rpartition(".")
    return (int(suffix) if suffix.isdigit() else 0, stem, position.pos)


def _transient(exc: BaseException) -> bool:
    """Errors worth a reconnect (the server or network went away), as opposed to data errors."""
    from engine.apply import connection_lost

    if isinstance(exc, ConnectError):
        return exc.__class__.__name__ != "AccessDenied"
    if isinstance(exc, pymysql.err.MySQLError):
        return connection_lost(exc)
    return isinstance(exc, ConnectionError | TimeoutError | OSError | EOFError | AttributeError | struct_error())


def struct_error() -> type:
    import struct

    return struct.error


class TaskRunner:
    """Runs one task on the calling thread; `stop()` from any thread ends `run()` at a checkpoint."""

    def __init__(
        self,
        svc: TaskService,
        name: str,
        *,
        on_copy_progress: Callable[[CopyProgress], None] | None = None,
        on_stream_progress: Callable[[StreamProgress], None] | None = None,
        on_status: Callable[[StatusChange], None] | None = None,
        on_log: Callable[[DrLogEntry], None] | None = None,
        parallel: int = 4,
    ):
        self.svc = svc
        self.name = name
        self.on_copy_progress = on_copy_progress
        self.on_stream_progress = on_stream_progress
        self.on_status = on_status
        self.on_log = on_log
        self.parallel = parallel
        self._stop = threading.Event()
        self._until: BinlogPosition | None = None
        self._in_step_at: float | None = None  # when the DR side was last known to be `delay` behind
        self.position: BinlogPosition | None = None
        self.delay_seconds: float | None = None

    # -- public ---------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, until: BinlogPosition | None = None, wait_when_paused: bool = False) -> Status:
        store = self.svc.store
        record = store.get_task(self.name)
        if record.status in (Status.FAILED,):
            store.set_status(
                self.name, Status.STARTING if record.phase != "incremental" else Status.REPLICATING
            )
            self.log("info", "runner", "retrying the failed task from its checkpoint")
        elif record.status in (Status.CONFIGURATION, Status.PENDING_START):
            start_at = record.spec.start_at
            if record.status is Status.PENDING_START and start_at and start_at > datetime.now() and until is None:
                self.log("info", "runner", f"scheduled: the task starts at {start_at:%Y-%m-%d %H:%M}")
                while datetime.now() < start_at:
                    if self._stop.wait(min(5.0, max(0.1, (start_at - datetime.now()).total_seconds()))):
                        return store.get_task(self.name).status
                    if store.get_task(self.name).status is not Status.PENDING_START:
                        return store.get_task(self.name).status
            store.set_status(self.name, Status.STARTING)
        elif record.status not in RUNNING and until is None:
            if record.status is Status.PAUSED and wait_when_paused:
                if not self._wait_resumed():
                    return store.get_task(self.name).status
            else:
                return record.status
        self._until = until
        store.update_task(
            self.name, runner_pid=os.getpid(), runner_heartbeat=datetime.now(), control_request=None
        )
        try:
            return self._run(until, wait_when_paused)
        finally:
            try:
                store.update_task(self.name, runner_pid=None)
            except DrsError:
                pass  # the task was deleted while we ran

    # -- internals ------------------------------------------------------------------------------
    def log(self, level: str, component: str, message: str) -> None:
        try:
            entry = self.svc.store.add_log(self.name, level, component, message)
        except DrsError:
            return
        if self.on_log:
            self.on_log(entry)

    def _set_status(self, status: Status, phase: str, message: str | None = None, **fields) -> None:
        if self._until is not None and status is not Status.FAILED:
            # catching up for promote: the status stays Promoting
            self.svc.store.update_task(self.name, phase=phase, **fields)
            return
        # A running status only replaces a running status: a pause (or promote) that came in
        # meanwhile wins, and the loop sees it at its next control check.
        expect = set(RUNNING) if status in RUNNING else None
        changed = self.svc.store.set_status(
            self.name, status, last_error=message if status is Status.FAILED else None, expect=expect, phase=phase, **fields
        )
        if not changed:
            self.svc.store.update_task(self.name, phase=phase, **fields)
            return
        if self.on_status:
            self.on_status(StatusChange(self.name, status, phase, message))

    def _wait_resumed(self) -> bool:
        """`drs run` on a paused task waits for `drs task resume` (or a stop)."""
        self.log("info", "runner", "task is paused; waiting for resume")
        while not self._stop.wait(1.0):
            status = self.svc.store.get_task(self.name).status
            if status in RUNNING:
                return True
            if status not in (Status.PAUSED,):
                return False
        return False

    def _sleep_unless_stopped(self, seconds: float) -> bool:
        """Wait before a retry; True when a stop (ours, or asked through the store) came meanwhile."""
        deadline = time.monotonic() + seconds
        while not self._stop.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return False
            try:
                if self._control() is not None:
                    return True
            except DrsError:
                return True  # the task is gone
        return True

    def _control(self) -> str | None:
        """What the user asked through the store: 'stop', 'pause' or None."""
        record = self.svc.store.get_task(self.name)
        if record.control_request == "stop":
            return "stop"
        if self._until is not None:
            return None
        if record.status is Status.PAUSED or record.control_request == "pause":
            return "pause"
        if record.status not in RUNNING:
            return "stop"
        return None

    def _run(self, until: BinlogPosition | None, wait_when_paused: bool) -> Status:
        backoff = 1.0
        retries = 0
        while True:
            spec = self.svc.spec_with_passwords(self.name)
            applier = Applier(
                spec.target,
                self.name,
                databases=spec.databases,
                migrate_definer=spec.migrate_definer,
                log=self.log,
            )
            try:
                applier.open()
                applier.ensure_ready(read_only=True)
                target_cp = applier.checkpoint()
                if target_cp is None or target_cp.phase != "incremental":
                    target_cp = self._initial_phase(spec, applier)
                result = self._incremental_phase(spec, applier, target_cp, until)
                if result is Status.PAUSED and wait_when_paused:
                    applier.close()
                    if self._wait_resumed():
                        continue
                    return self.svc.store.get_task(self.name).status
                return result
            except _StopRequested:
                return self.svc.store.get_task(self.name).status
            except Exception as exc:  # noqa: BLE001 - every failure is classified and logged below
                if self._stop.is_set():
                    return self.svc.store.get_task(self.name).status
                if _transient(exc):
                    self._report_out_of_touch()
                    self.log(
                        "alarm",
                        "runner",
                        f"connection lost ({_describe(exc)}); reconnecting in {backoff:.0f}s",
                    )
                    if self._sleep_unless_stopped(backoff):
                        return self.svc.store.get_task(self.name).status
                    backoff = min(MAX_BACKOFF, backoff * 2)
                    continue
                message = _describe(exc)
                if retries < AUTO_RETRIES and not _binlog_gone(exc):
                    # as the reference service: a few automatic retries before the task fails
                    retries += 1
                    self.log("alarm", "runner", f"{message}; automatic retry {retries} of {AUTO_RETRIES} in {backoff:.0f}s")
                    if self._sleep_unless_stopped(backoff):
                        return self.svc.store.get_task(self.name).status
                    backoff = min(MAX_BACKOFF, backoff * 2)
                    continue
                self.log("error", "runner", message)
                self._set_status(Status.FAILED, self.svc.store.get_task(self.name).phase, message)
                return Status.FAILED
            finally:
                applier.close()

    def _initial_phase(self, spec, applier: Applier) -> cp.TargetCheckpoint:
        from engine import snapshot

        self._set_status(Status.INITIALIZING, "initial", progress_percent=0.0, rows_copied=0)
        self.log("info", "runner", "initial full DR started")
        assert applier.conn is not None
        with applier.conn.cursor() as cur:
            cp.write_checkpoint(cur, self.name, "initial", None)
        applier.conn.commit()
        last_store = 0.0

        def progress(p: CopyProgress) -> None:
            nonlocal last_store
            now = time.monotonic()
            if now - last_store >= 0.5 or p.rows_done >= p.rows_estimated:
                last_store = now
                self.svc.store.update_task(
                    self.name,
                    progress_percent=p.percent,
                    rows_copied=p.rows_done,
                    rows_total=p.rows_estimated,
                    bytes_copied=p.bytes_done,
                    runner_heartbeat=datetime.now(),
                )
                # per-table progress, throughput and ETA for `drs task show` and the details view
                self.svc.store.merge_extra(self.name, copy=copy_summary(p))
                if self._control() is not None:
                    self._stop.set()
            if self.on_copy_progress:
                self.on_copy_progress(p)

        try:
            result = snapshot.run_initial_copy(
                spec, on_progress=progress, log=self.log, stop=self._stop, parallel=self.parallel
            )
        except snapshot.CopyInterrupted:
            self.log("info", "runner", "initial full DR interrupted; it starts over when the task runs again")
            raise _StopRequested() from None
        with applier.conn.cursor() as cur:
            for statement in result.deferred_triggers:
                db, name = _trigger_identity(statement)
                cp.save_deferred(cur, self.name, "trigger", db, name, statement)
            for db, event in result.disabled_events:
                cp.save_deferred(cur, self.name, "event", db, event, "ENABLE")
            cp.write_checkpoint(cur, self.name, "incremental", result.position)
        applier.conn.commit()
        self.svc.store.update_task(
            self.name,
            progress_percent=100.0,
            rows_copied=result.rows,
            rows_total=result.rows,
            bytes_copied=result.bytes,
        )
        self.svc.store.save_checkpoint(
            self.name, Checkpoint(result.position.file, result.position.pos, result.position.gtid)
        )
        self.log(
            "info",
            "runner",
            f"initial full DR completed: {result.tables} tables, {result.rows} rows in {result.seconds:.1f}s; "
            f"incremental DR starts at {result.position}",
        )
        return cp.TargetCheckpoint("incremental", result.position, False, 0, {})

    def _incremental_phase(
        self, spec, applier: Applier, target_cp: cp.TargetCheckpoint, until: BinlogPosition | None
    ) -> Status:
        assert target_cp.position is not None
        self.position = target_cp.position
        self._set_status(Status.REPLICATING, "incremental", progress_percent=100.0)
        self.log("info", "runner", f"incremental DR from {self.position}")
        if until is not None and position_key(self.position) >= position_key(until):
            return Status.REPLICATING
        feed = open_feed(spec.source, self.position, server_id=reader_server_id(self.name), databases=spec.databases)
        replaying = target_cp.ddl_pending
        applied_txns = applied_rows = 0
        window_rows = window_events = 0
        window_start = last_report = time.monotonic()
        last_source_ts = target_cp.source_ts
        caught_up = False
        try:
            while True:
                if self._stop.is_set():
                    return Status.REPLICATING
                try:
                    item = feed.get(timeout=0.5)
                    if item is None:
                        raise ReaderLost("binlog reader ended")
                except queue.Empty:
                    if not feed.alive():
                        raise ReaderLost("binlog reader ended") from None
                    item = None
                batch: list[Transaction] = []
                batch_rows = 0
                ddl: Transaction | None = None
                piece: Transaction | None = None
                while item is not None:
                    if isinstance(item, BaseException):
                        raise item
                    if isinstance(item, Heartbeat):
                        caught_up = not batch and feed.empty()
                        if caught_up:
                            self._in_step_at = time.time()
                        if caught_up and self.position and position_key(item.position) > position_key(self.position):
                            batch.append(Transaction(end=item.position))  # checkpoint only
                    elif isinstance(item, Transaction):
                        if item.is_ddl:
                            ddl = item
                            break
                        if item.partial:
                            piece = item
                            break
                        if item.changes or item.end:
                            batch.append(item)
                            batch_rows += item.rows
                            if batch_rows >= BATCH_ROWS:
                                break
                    try:
                        item = feed.get_nowait()
                    except queue.Empty:
                        item = None
                if batch:
                    applier.apply_batch(batch)
                    last = batch[-1]
                    self.position = last.end
                    last_source_ts = last.timestamp or last_source_ts
                    if last.timestamp:
                        self._in_step_at = float(last.timestamp)  # applied up to this source commit
                    n = batch_rows
                    applied_txns += len(batch)
                    applied_rows += n
                    window_rows += n
                    window_events += len(batch)
                    caught_up = False
                if piece is not None:
                    # the rest of this source transaction follows; it commits with its last piece
                    applier.apply_piece(piece)
                    applied_rows += piece.rows
                    window_rows += piece.rows
                if ddl is not None:
                    previous = self.position
                    applier.apply_ddl(ddl, previous, replaying=replaying)
                    replaying = False
                    self.position = ddl.end
                    last_source_ts = ddl.timestamp or last_source_ts
                    window_events += 1
                now = time.monotonic()
                if until is not None and self.position and position_key(self.position) >= position_key(until):
                    self._report(now - window_start, window_rows, window_events, applied_txns, 0.0)
                    return Status.REPLICATING
                if now - last_report >= PROGRESS_EVERY:
                    if caught_up or not last_source_ts:
                        delay = 0.0
                    else:
                        delay = max(0.0, time.time() - last_source_ts)
                    self._report(now - window_start, window_rows, window_events, applied_txns, delay)
                    window_start, window_rows, window_events, last_report = now, 0, 0, now
                    control = self._control()
                    if control == "pause":
                        self.log("info", "runner", f"paused at {self.position}")
                        return Status.PAUSED
                    if control == "stop":
                        self.log("info", "runner", f"stopped at {self.position} on request")
                        return self.svc.store.get_task(self.name).status
        finally:
            feed.close()
            if self.position is not None:  # the store mirrors where the DR side really is
                self.svc.store.save_checkpoint(self.name, Checkpoint(self.position.file, self.position.pos, self.position.gtid))

    def _report_out_of_touch(self) -> None:
        """While reconnecting, the delay is at least the time since the DR side was last known in step."""
        if self._in_step_at is None:
            return
        delay = round(max(0.0, time.time() - self._in_step_at), 1)
        try:
            self.svc.store.update_task(self.name, delay_seconds=delay, events_per_second=0.0)
        except DrsError:
            pass

    def _report(self, seconds: float, rows: int, events: int, txns: int, delay: float) -> None:
        assert self.position is not None
        seconds = max(seconds, 1e-6)
        self.delay_seconds = delay
        self._in_step_at = time.time() - delay
        progress = StreamProgress(
            delay_seconds=delay,
            events_per_second=events / seconds,
            rows_per_second=rows / seconds,
            transactions_applied=txns,
            binlog_file=self.position.file,
            binlog_pos=self.position.pos,
            gtid=self.position.gtid,
        )
        self.svc.store.update_task(
            self.name,
            delay_seconds=round(delay, 1),
            events_per_second=round(progress.events_per_second, 1),
            runner_heartbeat=datetime.now(),
        )
        self.svc.store.save_checkpoint(
            self.name, Checkpoint(self.position.file, self.position.pos, self.position.gtid)
        )
        if self.on_stream_progress:
            self.on_stream_progress(progress)


def copy_summary(p: CopyProgress) -> dict:
    return {
        "rows_per_second": round(p.rows_per_second, 1),
        "bytes_per_second": round(p.bytes_per_second, 1),
        "eta_seconds": None if p.eta_seconds is None else round(p.eta_seconds, 1),
        "tables": [
            {"database": t.database, "table": t.table, "rows_done": t.rows_done, "rows_estimated": t.rows_estimated, "done": t.done}
            for t in p.tables
        ],
    }


def _trigger_identity(statement: str) -> tuple[str, str]:
    from engine.apply import _TRIGGER, _split_name

    m = _TRIGGER.match(statement)
    if not m:
        return "", statement[:64]
    return _split_name(m.group(1), "")


def _binlog_gone(exc: BaseException) -> bool:
    """The source no longer has the binlog the checkpoint points into (purged): retrying cannot help."""
    return isinstance(exc, pymysql.err.MySQLError) and bool(exc.args) and exc.args[0] == 1236


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DrsError):
        return str(exc)
    if _binlog_gone(exc):
        detail = exc.args[1] if len(exc.args) > 1 else ""
        return (
            "the service database no longer has the binlog this task must continue from (purged, or "
            f"binlog retention too short: {detail}); the changes since the checkpoint are lost to "
            "replication: delete the task and create it again for a new initial copy"
        )
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        return f"MySQL error {exc.args[0]}: {exc.args[1]}"
    return f"{type(exc).__name__}: {exc}"


# ---- CLI ---------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    svc = TaskService(args.home)
    record = svc.store.get_task(args.name)
    from engine.lifecycle import pid_alive

    if pid_alive(record.runner_pid):
        print(f"drs: task {args.name} is already being run by process {record.runner_pid}", file=sys.stderr)
        return 1
    runner = TaskRunner(svc, args.name, parallel=args.parallel)

    def on_signal(signum: int, _frame: object) -> None:
        runner.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if not args.quiet:
        runner.on_status = lambda change: print(
            f"{datetime.now():%H:%M:%S} {change.status.label}", flush=True
        )
    status = runner.run(wait_when_paused=True)
    final = svc.store.get_task(args.name)
    if status is Status.FAILED:
        print(f"drs: task {args.name} failed: {final.last_error}", file=sys.stderr)
        return 1
    cpd = final.checkpoint.as_dict()
    print(f"task {args.name}: {final.status.label}; checkpoint {cpd}")
    return 0


def register_cli(top: argparse._SubParsersAction, task_sub: argparse._SubParsersAction) -> None:
    p = top.add_parser("run", help="run a DR task in the foreground until stopped (SIGINT/SIGTERM)")
    p.add_argument("name")
    p.add_argument("--parallel", type=int, default=4, help="tables copied in parallel in the initial phase")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_run)
