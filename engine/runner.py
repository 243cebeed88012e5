"""The loop that runs one DR task: initial copy, then binlog streaming and apply, until told to stop.

It owns the task's status in the store (the GUI and `drs task show` read it), reconnects with
backoff when either server goes away, and resumes from the DR-side checkpoint after any stop or
crash. Used by the GUI's workers and by `drs run`.
"""

from __future__ import annotations

import argparse
import gc
import os
import queue
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import pymysql

from engine import checkpoint as cp
from engine import metrics
from engine.apply import Applier
from engine.connect import BinlogPosition
from engine.errors import AccessDenied, ApplyConflict, ConnectError, DrsError, ReplicationError, Unreplicable
from engine.feed import Feed, ReaderLost, open_feed
from engine.progress import CopyProgress, StreamProgress
from engine.status import RUNNING, Status
from engine.store import Checkpoint, DrLogEntry
from engine.stream import Heartbeat, Transaction, reader_server_id
from engine.tasks import TaskService

BATCH_ROWS = 5000  # row changes grouped into one DR-side commit while catching up
PROGRESS_EVERY = 1.0  # seconds between store updates of delay and throughput
# Reconnect attempts at most 5 s apart: health must turn back to ok within 30 s of a server's return.
MAX_BACKOFF = 5.0
HEARTBEAT_EVERY = 2.0  # runner_heartbeat writes, in every state (health calls a runner dead after 15 s)
PROBE_EVERY = 2.5  # both servers are probed this often for health, whatever the apply loop is doing
PROBE_TIMEOUT = 4  # seconds; a probe must not hold the monitor up for long
BINLOG_CHECK_EVERY = 60.0  # binlog retention on the service side vs the checkpoint
DR_PING_EVERY = 5.0  # an idle apply session pings the DR server to notice it is gone
# No event nor heartbeat (the source sends one every second when idle) for this long: the stream is
# dead (a frozen server, a network that dropped us without a reset). Generous: one huge event
# (a big BLOB row) on a slow link arrives in one piece and must not be taken for a dead stream.
STREAM_SILENCE = 30.0
CAUGHT_UP_GRACE = 3.0  # seconds a heartbeat vouches for "nothing left to apply"
AUTO_RETRIES = 3  # for errors that are not network errors (those are retried without limit)
QUEUE_ITEMS = 2000
# How long a thread may hold the GIL while another waits for it. The apply thread waits on the DR server
# several times a batch and, woken, must get the GIL back from the busy binlog reader: at Python's
# default 5 ms each wake-up could wait up to 5 ms. Measured on the catch-up bench, 9 pairs each:
# DRS/native 0.87 (median) at 5 ms, 0.98 at 0.5 ms. Process-wide, and only ever lowered.
GIL_SWITCH_SECONDS = 0.0005

# While a task runs, the objects the process held when it started (modules, classes, the store's ORM,
# the GUI) are moved out of the cyclic garbage collector's sight (gc.freeze), and given back when the
# last task of the process ends. The binlog reader makes ~40 container objects per source transaction,
# so full collections ran every few thousand transactions, and each walked that whole unchanging heap
# again: catch-up of 200k changes, 6 alternating pairs, 2.32-2.76 s -> 1.77-2.45 s, every pair faster.
# Refcounting still frees frozen objects; only a cycle among them waits until the unfreeze.
_frozen_runs = 0
_frozen_lock = threading.Lock()


@contextmanager
def _startup_heap_frozen() -> Iterator[None]:
    global _frozen_runs
    with _frozen_lock:
        if _frozen_runs == 0:
            gc.freeze()
        _frozen_runs += 1
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen_runs -= 1
            if _frozen_runs == 0:
                gc.unfreeze()


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
    from engine.server_errors import connection_lost

    if isinstance(exc, ConnectError):
        return exc.__class__.__name__ != "AccessDenied"
    if isinstance(exc, ReplicationError) and isinstance(exc.__cause__, pymysql.err.MySQLError):
        # the initial copy wraps its server errors: a connection lost while copying is a network error
        return connection_lost(exc.__cause__)
    if isinstance(exc, pymysql.err.MySQLError):
        return connection_lost(exc)
    # pymysql turns a dropped socket into OperationalError 2013/2006 and the feed turns a reader that
    # lost its socket mid-packet into ReaderLost (a ConnectionError): only these are network errors.
    return isinstance(exc, ConnectionError | TimeoutError | OSError | EOFError)


# Bugs, not circumstances: retrying cannot help, and looping on them as "connection lost" hides them.
PROGRAMMING_ERRORS: tuple[type[BaseException], ...] = (
    AttributeError, TypeError, KeyError, IndexError, NameError, AssertionError, ZeroDivisionError,
    NotImplementedError, RecursionError, struct.error,
)  # fmt: skip


def programming_error(exc: BaseException) -> bool:
    return isinstance(exc, PROGRAMMING_ERRORS) and not isinstance(exc, DrsError)


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
        self.position: BinlogPosition | None = None
        self.delay_seconds: float | None = None
        # Delay bookkeeping, in the service server's clock (epoch seconds): the DR side is known to hold
        # everything the source had committed up to `_synced_at` (the later of the last applied
        # commit's timestamp and the last heartbeat that came with nothing left to apply).
        self._clock_offset = 0.0  # service server clock minus ours
        self._synced_at: float | None = None
        self._caught_up = False  # the reader is at the end of the source binlog and all is applied
        # what the monitor thread reads: cumulative counters and the state of the loop
        self.mode = "starting"  # starting | copying | streaming | reconnecting | paused
        self.applied_rows = 0
        self.applied_events = 0
        self.applied_bytes = 0  # binlog bytes the applied positions advanced over
        self._feed: Feed | None = None
        self._bytes_before = 0  # read by feeds already closed
        # retry bookkeeping (see _run): the current attempt got going again; a reconnect is under way;
        # where the last automatically retried error struck; what is being applied right now
        self._stream_ok = False
        self._reconnecting = False
        self._retry_mark: tuple[BinlogPosition, bool] | None = None
        self._attempt_start: BinlogPosition | None = None
        self._attempt_end: BinlogPosition | None = None
        self.throttle = None  # the initial copy's engine.throttle.Throttle, once the copy started

    # -- public ---------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def source_now(self) -> float:
        """Now, in the service server's clock (as its binlog timestamps)."""
        return time.time() + self._clock_offset

    def current_delay(self) -> float | None:
        """Seconds the DR side is behind: 0 at the end of the source binlog, else the service server's
        now minus the point up to which the DR side is known to be in step (None: not known yet)."""
        if self._synced_at is None:
            return None
        behind = max(0.0, self.source_now() - self._synced_at)
        if self._caught_up and self.mode == "streaming" and behind < CAUGHT_UP_GRACE:
            return 0.0  # (heartbeats stopping - a stalled stream - make it grow again)
        return behind

    def bytes_read(self) -> int:
        feed = self._feed
        return self._bytes_before + (feed.bytes_read() if feed is not None else 0)

    def run(self, *, until: BinlogPosition | None = None, wait_when_paused: bool = False) -> Status:
        if sys.getswitchinterval() > GIL_SWITCH_SECONDS:
            sys.setswitchinterval(GIL_SWITCH_SECONDS)
        store = self.svc.store
        record = store.get_task(self.name)
        wait_first = False
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
                wait_first = True
            else:
                return record.status
        self._until = until
        store.update_task(
            self.name, runner_pid=os.getpid(), runner_heartbeat=datetime.now(), control_request=None
        )
        monitor = _Monitor(self)
        monitor.start()
        try:
            if wait_first and not self._wait_resumed():
                return store.get_task(self.name).status
            with _startup_heap_frozen():
                return self._run(until, wait_when_paused)
        finally:
            monitor.stop()
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
        self.mode = "paused"
        while not self._stop.wait(1.0):
            record = self.svc.store.get_task(self.name)
            if record.control_request == "stop":  # `drs task delete` waits for us
                return False
            if record.status in RUNNING:
                return True
            if record.status not in (Status.PAUSED,):
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
            self._attempt_start = self._attempt_end = None
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
                applier.ensure_ready(read_only=True, store=self.svc.store)
                target_cp = applier.checkpoint()
                if target_cp is None or target_cp.phase != "incremental":
                    target_cp = self._initial_phase(spec, applier)
                    # the copy is done: what failed during an earlier attempt of it is over (a copy
                    # failure sets no retry mark, so nothing else would count from zero again)
                    retries, self._retry_mark = 0, None
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
                # The attempt that just ended got going again (see _incremental_phase): what went wrong
                # before is over, so this failure starts with a short wait and a fresh retry count.
                if self._stream_ok:
                    backoff = 1.0
                if self._passed_retry_mark():
                    retries, self._retry_mark = 0, None
                self._stream_ok = False
                if programming_error(exc):
                    # a bug: fail at once with the trace where the DBA (and the report) can see it
                    message = f"internal error ({type(exc).__name__}: {exc}): please report it with the DR log"
                    self.log("error", "runner", f"{message}{self._failing_note()}\n{traceback.format_exc()}")
                    self._set_status(Status.FAILED, self.svc.store.get_task(self.name).phase, message + self._failing_note())
                    return Status.FAILED
                if _transient(exc):
                    self.mode = "reconnecting"
                    self._reconnecting = True
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
                message = _describe(exc) + self._failing_note()
                final = False  # a retry cannot help: fail at once
                if isinstance(exc, AccessDenied):
                    message = _access_denied_message(exc, spec, self.name)  # (no skip note: no transaction is at fault)
                else:
                    missing = self._missing_on_dr(spec, exc)
                    if missing:
                        message, final = _missing_on_dr_message(missing, exc), True
                # a purged binlog or a drifted DR side: a retry replays the same failure
                if retries < AUTO_RETRIES and not final and not _binlog_gone(exc) and not isinstance(exc, ApplyConflict | Unreplicable):
                    # as the reference service: a few automatic retries before the task fails
                    if retries == 0 and (self._attempt_end or self.position) is not None:
                        # retries count from zero again only once the DR side got past this point: the
                        # end of what failed, or (unknown end) anything beyond where it started
                        end = self._attempt_end
                        self._retry_mark = (end, False) if end is not None else (self.position, True)  # type: ignore[assignment]  # (one is set)
                    retries += 1
                    self.mode = "reconnecting"
                    self._reconnecting = True
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

    def _missing_on_dr(self, spec, exc: BaseException) -> list[str]:
        """Databases of the task the service side has and the DR side lost (dropped there by hand), when
        a change failed on a table or database not there. Binlog order rules out a database whose
        CREATE is still to come: a change to a database follows its creation. [] when not that case."""
        text = str(exc)
        if isinstance(exc, ApplyConflict | Unreplicable) or not (
            "does not exist" in text or "Unknown database" in text or "(1146)" in text or "(1049)" in text
        ):
            return []
        if self.svc.store.get_task(self.name).phase != "incremental":
            return []
        from engine.connect import META_DATABASE, connect
        from engine.spec import SYSTEM_DATABASES

        found: list[set[str]] = []
        try:
            for endpoint in (spec.source, spec.target):
                conn = connect(endpoint, connect_timeout=PROBE_TIMEOUT, read_timeout=PROBE_TIMEOUT)
                try:
                    with conn.cursor() as cur:
                        cur.execute("SHOW DATABASES")
                        found.append({_text(r[0]) for r in cur.fetchall()})
                finally:
                    conn.close()
        except Exception:  # noqa: BLE001 - only a better message is at stake
            return []
        source, target = found
        scope = spec.databases or sorted(d for d in source if d.lower() not in SYSTEM_DATABASES and d != META_DATABASE)
        return [d for d in scope if d in source and d not in target]

    def _passed_retry_mark(self) -> bool:
        """The DR side got past the point where the last automatically retried error struck."""
        if self._retry_mark is None or self.position is None:
            return False
        mark, strict = self._retry_mark
        here, there = position_key(self.position), position_key(mark)
        return here > there if strict else here >= there

    def _failing_note(self) -> str:
        """Which source transaction failed, so a DBA can look at it (and skip it once handled by hand)."""
        if self._attempt_start is None:
            return ""
        end = f", ending at {self._attempt_end.file}:{self._attempt_end.pos}" if self._attempt_end else ""
        return (
            f"; failed source transaction: the one at binlog {self._attempt_start.file}:{self._attempt_start.pos}{end} "
            f"(once handled by hand: drs task skip {self.name} --event {self._attempt_start.file}:{self._attempt_start.pos})"
        )

    def _initial_phase(self, spec, applier: Applier) -> cp.TargetCheckpoint:
        from engine import snapshot

        self.mode = "copying"
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

        from engine.throttle import Throttle

        # the DBA may change the flow control while the copy runs: the throttle reads it again from the store
        self.throttle = Throttle(spec.flow_control, sleep=self._stop.wait, flow_source=self._stored_flow_control)
        try:
            result = snapshot.run_initial_copy(
                spec, on_progress=progress, log=self.log, stop=self._stop, parallel=self.parallel, throttle=self.throttle
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

    def _stored_flow_control(self):
        return self.svc.store.get_task(self.name).spec.flow_control

    def _incremental_phase(
        self, spec, applier: Applier, target_cp: cp.TargetCheckpoint, until: BinlogPosition | None
    ) -> Status:
        assert target_cp.position is not None
        self.position = target_cp.position
        self._set_status(Status.REPLICATING, "incremental", progress_percent=100.0)
        self.log("info", "runner", f"incremental DR from {self.position}")
        if until is not None and position_key(self.position) >= position_key(until):
            return Status.REPLICATING
        self._clock_offset = measure_clock_offset(spec.source)
        if self._synced_at is None and target_cp.source_ts:
            self._synced_at = float(target_cp.source_ts)  # the last commit applied before this run
        feed = open_feed(spec.source, self.position, server_id=reader_server_id(self.name), databases=spec.databases)
        self._feed = feed
        self._caught_up = False
        self.mode = "streaming"
        replaying = target_cp.ddl_pending
        piece_open = False  # pieces of a big source transaction are applied but not committed yet
        applied_txns = 0
        window_rows = window_events = 0
        window_start = last_report = last_item = last_dr_contact = time.monotonic()
        # A batch sent to the DR server in one query and not read back yet (Applier.plan_batch): the
        # runner reads and plans the next batch meanwhile. It is finished (its counts checked, then
        # committed, or applied the careful way) before anything else uses the DR session, before the
        # runner waits for the source, and before its position is reported: self.position only ever
        # moves past a batch that committed.
        sent: tuple[list[Transaction], list[int | None], int, int] | None = None

        def account(batch: list[Transaction], markers: int, batch_rows: int) -> None:
            nonlocal applied_txns, window_rows, window_events, last_dr_contact
            previous = self.position
            last = batch[-1]
            self.position = last.end
            self.applied_bytes += _advance(previous, self.position)
            real = len(batch) - markers
            if last.timestamp:  # the commit's time (a checkpoint-only entry: its heartbeat's)
                self._synced_at = max(self._synced_at or 0.0, float(last.timestamp))
            applied_txns += real
            self.applied_rows += batch_rows
            self.applied_events += real
            window_rows += batch_rows
            window_events += real
            last_dr_contact = time.monotonic()

        def finish_sent() -> None:
            nonlocal sent
            if sent is None:
                return
            batch, checks, markers, batch_rows = sent
            sent = None
            self._attempt_start, self._attempt_end = self.position, batch[-1].end
            if not applier.finish_batch(checks):
                self._apply_batch(applier, batch, isolate=True)  # looks, names the conflict
            self._attempt_start = self._attempt_end = None
            account(batch, markers, batch_rows)

        try:
            while True:
                if self._stop.is_set():
                    finish_sent()
                    return Status.REPLICATING
                if sent is not None and feed.empty():
                    finish_sent()  # nothing to plan meanwhile: commit it before waiting for the source
                try:
                    item = feed.get(timeout=0.5)
                    if item is None:
                        raise ReaderLost("binlog reader ended")
                    last_item = time.monotonic()
                except queue.Empty:
                    if not feed.alive():
                        raise ReaderLost("binlog reader ended") from None
                    if time.monotonic() - last_item > STREAM_SILENCE:
                        # the source sends a heartbeat every second when idle: a silent stream is dead
                        # (a server that froze or a network that dropped us without a reset)
                        raise ReaderLost(f"no event or heartbeat from the service database for {STREAM_SILENCE:.0f}s") from None
                    item = None
                had_item = item is not None
                batch: list[Transaction] = []
                batch_rows = 0
                ddl: Transaction | None = None
                piece: Transaction | None = None
                heartbeat_at: float | None = None  # source time of a heartbeat taken in this round
                at_end = False  # the last item of this round was a heartbeat with nothing queued after it
                markers = 0  # checkpoint-only entries (for heartbeats) in the batch
                while item is not None:
                    if isinstance(item, BaseException):
                        raise item
                    if isinstance(item, Heartbeat):
                        # Everything before the heartbeat is applied or in `batch`: once the batch
                        # commits, the DR side holds all the source had when the heartbeat was sent.
                        heartbeat_at = time.time() - (time.monotonic() - item.received) + self._clock_offset
                        at_end = feed.empty()
                        if at_end and self.position and position_key(item.position) > position_key(self.position):
                            batch.append(Transaction(end=item.position, timestamp=int(heartbeat_at)))  # checkpoint only
                            markers += 1
                    elif isinstance(item, Transaction):
                        at_end = False
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
                    # planned while the batch before it still runs on the DR server
                    steps = applier.plan_batch(batch) if not piece_open else None
                    finish_sent()
                    if steps is not None:
                        sent = (batch, applier.send_batch(steps), markers, batch_rows)
                        if heartbeat_at is not None or at_end or ddl is not None or piece is not None:
                            finish_sent()  # what follows needs it committed (a heartbeat's delay, DDL, a piece)
                    else:
                        self._apply_batch(applier, batch, isolate=not piece_open)
                        piece_open = False
                        account(batch, markers, batch_rows)
                else:
                    finish_sent()
                if heartbeat_at is not None:
                    self._synced_at = max(self._synced_at or 0.0, heartbeat_at)
                if heartbeat_at is not None or batch or piece is not None or ddl is not None:
                    self._caught_up = at_end and piece is None and ddl is None
                if piece is not None:
                    # the rest of this source transaction follows; it commits with its last piece
                    self._attempt_start, self._attempt_end = self.position, None
                    applier.apply_piece(piece)
                    self._attempt_start = None
                    piece_open = True
                    self.applied_rows += piece.rows
                    window_rows += piece.rows
                    last_dr_contact = time.monotonic()
                if ddl is not None:
                    previous = self.position
                    self._attempt_start, self._attempt_end = previous, ddl.end
                    # only the DDL the crash left in flight (the first one, at the checkpoint) is a replay
                    applier.apply_ddl(ddl, previous, replaying=replaying and previous == target_cp.position)
                    self._attempt_start = self._attempt_end = None
                    replaying = False
                    self.position = ddl.end
                    self.applied_bytes += _advance(previous, self.position)
                    if ddl.timestamp:
                        self._synced_at = max(self._synced_at or 0.0, float(ddl.timestamp))
                    self.applied_events += 1
                    window_events += 1
                    last_dr_contact = time.monotonic()
                if had_item and not self._stream_ok:
                    # the source streams and the DR side took what came: running again
                    self._stream_ok = True
                    if self._reconnecting:
                        self._reconnecting = False
                        self.log("info", "runner", f"reconnected; incremental DR continues from {self.position}")
                now = time.monotonic()
                if sent is not None and (until is not None or now - last_report >= PROGRESS_EVERY):
                    finish_sent()
                if until is not None and self.position and position_key(self.position) >= position_key(until):
                    self._report(now - window_start, window_rows, window_events, applied_txns)
                    return Status.REPLICATING
                if now - last_report >= PROGRESS_EVERY:
                    if now - last_dr_contact >= DR_PING_EVERY:
                        # idle: make sure the DR server is still there (a dead one is noticed now,
                        # not at the next source write)
                        assert applier.conn is not None
                        applier.conn.ping(reconnect=False)
                        last_dr_contact = now
                    self._report(now - window_start, window_rows, window_events, applied_txns)
                    window_start, window_rows, window_events, last_report = now, 0, 0, now
                    control = self._control()
                    if control == "pause":
                        self.log("info", "runner", f"paused at {self.position}")
                        return Status.PAUSED
                    if control == "stop":
                        self.log("info", "runner", f"stopped at {self.position} on request")
                        return self.svc.store.get_task(self.name).status
        finally:
            self._feed = None
            self._bytes_before += feed.bytes_read()
            feed.close()
            if self.position is not None:  # the store mirrors where the DR side really is
                self.svc.store.save_checkpoint(self.name, Checkpoint(self.position.file, self.position.pos, self.position.gtid))

    def _apply_batch(self, applier: Applier, batch: list[Transaction], *, isolate: bool) -> None:
        """Apply a batch as one DR-side commit; when it fails on data, apply it one source transaction
        at a time (each commits with its checkpoint) so the failure names the transaction at fault and
        the checkpoint stands right before it (where `drs task skip` can take it past)."""
        if not isolate and len(batch) > 1:
            # the first entry ends a big transaction whose pieces are in the open DR-side transaction:
            # it commits alone, so a failure after it names the transaction at fault, not that one
            self._apply_batch(applier, batch[:1], isolate=False)
            self.position = batch[0].end
            batch, isolate = batch[1:], True
        self._attempt_start, self._attempt_end = self.position, batch[-1].end
        try:
            applier.apply_batch(batch)
        except DrsError:
            if not isolate or sum(1 for t in batch if t.changes) < 2:
                raise
            for txn in batch:
                self._attempt_start, self._attempt_end = self.position, txn.end
                applier.apply_batch([txn])
                self.position = txn.end
            # each applied on its own (the batch failed on its combined effect): all is committed
        self._attempt_start = self._attempt_end = None

    def _report_out_of_touch(self) -> None:
        """While reconnecting, the delay grows from the point the DR side was last known in step."""
        delay = self.current_delay()
        if delay is None:
            return
        self.delay_seconds = delay
        try:
            self.svc.store.update_task(self.name, delay_seconds=round(delay, 1), events_per_second=0.0)
        except DrsError:
            pass

    def _report(self, seconds: float, rows: int, events: int, txns: int) -> None:
        assert self.position is not None
        seconds = max(seconds, 1e-6)
        delay = self.current_delay()
        self.delay_seconds = delay
        progress = StreamProgress(
            delay_seconds=delay if delay is not None else 0.0,
            events_per_second=events / seconds,
            rows_per_second=rows / seconds,
            transactions_applied=txns,
            binlog_file=self.position.file,
            binlog_pos=self.position.pos,
            gtid=self.position.gtid,
        )
        self.svc.store.update_task(
            self.name,
            delay_seconds=None if delay is None else round(delay, 1),
            events_per_second=round(progress.events_per_second, 1),
            runner_heartbeat=datetime.now(),
        )
        self.svc.store.save_checkpoint(
            self.name, Checkpoint(self.position.file, self.position.pos, self.position.gtid)
        )
        if self.on_stream_progress:
            self.on_stream_progress(progress)


def measure_clock_offset(source) -> float:
    """The service server's clock minus ours, from the middle of one round trip (delays are computed
    in the service server's clock, so they do not depend on the desktop's clock being right)."""
    from engine.connect import connect

    conn = connect(source, connect_timeout=PROBE_TIMEOUT, read_timeout=PROBE_TIMEOUT)
    try:
        return _offset(conn)
    finally:
        conn.close()


def _offset(conn) -> float:
    from engine.connect import query_one

    before = time.time()
    server = float(query_one(conn, "SELECT UNIX_TIMESTAMP(NOW(6))"))
    after = time.time()
    return server - (before + after) / 2


def _advance(previous: BinlogPosition | None, current: BinlogPosition | None) -> int:
    """Binlog bytes between two applied positions (across a rotation: the offset in the new file)."""
    if previous is None or current is None:
        return 0
    if previous.file == current.file:
        return max(0, current.pos - previous.pos)
    return current.pos


class _Monitor:
    """Two daemon threads beside the apply loop, so health facts stay fresh whatever that loop is doing
    (copying, streaming, blocked on a server, backing off, paused):

    - beat: runner_heartbeat every HEARTBEAT_EVERY s; a metric sample every RAW_INTERVAL s while
      streaming or reconnecting; downsampling once a minute. SQLite only.
    - probe: both servers every PROBE_EVERY s with short timeouts (unreachable since ...), the service
      server's clock offset and binlog list (for the RTO), and the binlog retention once a minute.
    """

    def __init__(self, runner: TaskRunner):
        self.runner = runner
        self.store = runner.svc.store
        self.name = runner.name
        self._halt = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._beat, 0.5), name=f"monitor-beat-{runner.name}", daemon=True),
            threading.Thread(target=self._loop, args=(self._probe, PROBE_EVERY), name=f"monitor-probe-{runner.name}", daemon=True),
        ]  # fmt: skip
        self._conns: dict[str, object] = {}
        self._endpoints: dict[str, object] = {}  # the address each probe connection was opened to
        self._facts: dict = {}
        self._last_ok: dict[str, datetime] = {}
        self._binlogs: tuple[float, list[tuple[str, int]]] | None = None  # (monotonic when read, SHOW BINARY LOGS)
        self._next_beat = self._next_sample = self._next_downsample = self._next_binlog = 0.0
        self._last_counts: tuple[float, int, int, int, int] | None = None
        self._apply_rate: float | None = None  # binlog bytes/s the applier recently got through
        self._failed: set[str] = set()  # duties whose failure was logged already

    def start(self) -> None:
        try:  # facts of an earlier run (a server down then) are not facts any more
            self._facts = {}
            self.store.merge_extra(self.name, health={})
        except DrsError:
            pass
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._halt.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=PROBE_TIMEOUT + 1)  # daemon threads: a probe stuck in connect may stay behind
        for side in list(self._conns):
            self._drop(side)

    def _loop(self, duty, every: float) -> None:
        while not self._halt.is_set():
            try:
                duty()
                self._failed.discard(duty.__name__)
            except DrsError:
                if self._halt.is_set():
                    return
            except Exception as exc:  # noqa: BLE001 - monitoring must never take the runner down
                if duty.__name__ not in self._failed:
                    self._failed.add(duty.__name__)
                    self.runner.log("warning", "monitor", f"monitoring step failed: {_describe(exc)}")
            self._halt.wait(every)

    # -- beat ---------------------------------------------------------------------------------------
    def _beat(self) -> None:
        now = time.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + HEARTBEAT_EVERY
            self.store.update_task(self.name, runner_heartbeat=datetime.now())
        if self.runner.mode in ("streaming", "reconnecting"):
            if self._last_counts is None:
                self._last_counts = self._counts(now)
                self._next_sample = now + metrics.RAW_INTERVAL
            elif now >= self._next_sample:
                self._next_sample = now + metrics.RAW_INTERVAL
                self._sample(now)
        else:
            self._last_counts = None
        if now >= self._next_downsample:
            self._next_downsample = now + metrics.DOWNSAMPLE_EVERY
            metrics.downsample(self.store, self.name)

    def _counts(self, now: float) -> tuple[float, int, int, int, int]:
        r = self.runner
        return (now, r.applied_rows, r.applied_events, r.applied_bytes, r.bytes_read())

    def _sample(self, now: float) -> None:
        assert self._last_counts is not None
        current = self._counts(now)
        t0, rows0, events0, applied0, read0 = self._last_counts
        self._last_counts = current
        seconds = max(1e-6, now - t0)
        rows, events, applied, read = (max(0, a - b) for a, b in zip(current[1:], (rows0, events0, applied0, read0), strict=True))
        runner = self.runner
        streaming = runner.mode == "streaming"
        delay = runner.current_delay()
        if applied:
            rate = applied / seconds
            self._apply_rate = rate if self._apply_rate is None else 0.5 * self._apply_rate + 0.5 * rate
        rto = None
        position = runner.position
        if streaming and position is not None:
            backlog = None
            if self._binlogs is not None and now - self._binlogs[0] < 3 * PROBE_EVERY:
                backlog = metrics.backlog_bytes(self._binlogs[1], position.file, position.pos)
            rto = metrics.estimate_rto(backlog, self._apply_rate, runner._caught_up)
        sample = metrics.MetricSample(
            time=datetime.now(),
            delay_seconds=None if delay is None else round(delay, 2),
            rto_seconds=None if rto is None else round(rto, 2),
            rows_per_second=rows / seconds if streaming else 0.0,
            events_per_second=events / seconds if streaming else 0.0,
            bytes_per_second=read / seconds if streaming else 0.0,
        )
        metrics.record_sample(self.store, self.name, sample)
        if not streaming and delay is not None:
            # nobody applies: the delay shown everywhere grows with the clock
            self.store.update_task(self.name, delay_seconds=round(delay, 1), events_per_second=0.0)

    # -- probe --------------------------------------------------------------------------------------
    def _probe(self) -> None:
        spec = self.runner.svc.spec_with_passwords(self.name)
        changed = False
        for side, endpoint in (("source", spec.source), ("target", spec.target)):
            try:
                conn = self._conn(side, endpoint)
                if side == "source":
                    self.runner._clock_offset = _offset(conn)
                else:
                    conn.ping(reconnect=False)
            except Exception as exc:  # noqa: BLE001 - any failure means: not usable right now
                self._drop(side)
                if f"{side}_unreachable_since" not in self._facts:
                    since = self._last_ok.get(side, datetime.now())
                    self._facts[f"{side}_unreachable_since"] = since.isoformat(timespec="seconds")
                    changed = True
                error = _describe(exc)
                if self._facts.get(f"{side}_error") != error:
                    self._facts[f"{side}_error"] = error
                    changed = True
                continue
            self._last_ok[side] = datetime.now()
            if self._facts.pop(f"{side}_unreachable_since", None) is not None:
                changed = True
            self._facts.pop(f"{side}_error", None)
        if changed:
            self.store.merge_extra(self.name, health=dict(self._facts))
        if "source" in self._conns:
            try:
                self._read_binlogs(self._conns["source"])
            except pymysql.err.MySQLError as exc:
                from engine.server_errors import connection_lost

                if connection_lost(exc):
                    self._drop("source")  # the next probe says whether the server is gone
                elif "binlogs" not in self._failed:  # no privilege, binary logging off: no RTO, no retention check
                    self._failed.add("binlogs")
                    self.runner.log("warning", "monitor", f"cannot read the binlog list of the service database: {_describe(exc)}")

    def _conn(self, side: str, endpoint):
        conn = self._conns.get(side)
        if conn is not None and self._endpoints.get(side) != endpoint:
            self._drop(side)  # Modify Connection moved the task: probe where it goes now
            conn = None
        self._endpoints[side] = endpoint
        if conn is None:
            from engine.connect import connect

            conn = connect(endpoint, connect_timeout=PROBE_TIMEOUT, read_timeout=PROBE_TIMEOUT)
            self._conns[side] = conn
        return conn

    def _drop(self, side: str) -> None:
        conn = self._conns.pop(side, None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken
                pass

    def _read_binlogs(self, conn) -> None:
        from engine.connect import variables

        with conn.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            logs = [(_text(r[0]), int(r[1])) for r in cur.fetchall()]
        self._binlogs = (time.monotonic(), logs)
        now = time.monotonic()
        if now < self._next_binlog or not logs:
            return
        self._next_binlog = now + BINLOG_CHECK_EVERY
        position = self.runner.position
        file = position.file if position is not None else self.store.get_task(self.name).checkpoint.binlog_file
        if not file:
            return
        v = variables(conn, "binlog_expire_logs_seconds", "expire_logs_days")
        retention = float(v["binlog_expire_logs_seconds"] or 0) or float(v["expire_logs_days"] or 0) * 86400
        names = [n for n, _ in logs]
        gone = file not in names and position_key(BinlogPosition(file, 0)) < position_key(BinlogPosition(names[0], 0))
        self._facts["binlog"] = {
            "checked_at": datetime.now().isoformat(timespec="seconds"),
            "checkpoint_file": file,
            "oldest": names[0],
            "current": names[-1],
            "retention_seconds": retention,
            "gone": gone,
        }
        self.store.merge_extra(self.name, health=dict(self._facts))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


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
    from engine.ddl import analyze

    scope = analyze(statement, "")
    if scope.kind != "TRIGGER" or scope.target is None:
        return "", statement[:64]
    return scope.target


def _access_denied_message(exc: AccessDenied, spec, task: str) -> str:
    """Which server refused the task's user, and what the DBA does about it."""
    sides = (("service database", spec.source), ("DR database", spec.target))
    side, endpoint = next(((s, e) for s, e in sides if exc.endpoint == f"{e.user}@{e.address}"), (None, None))
    if side is None or endpoint is None:
        return str(exc)
    if "REPLICATION SLAVE" in exc.detail:
        fix = (f"grant it on the {side}: GRANT REPLICATION SLAVE ON *.* TO '{endpoint.user}'@'<host>'; "
               "(the account the task logs in as)")  # fmt: skip
    else:
        fix = (f"restore the user's password (or privileges) on the {side}, or give the task the new password "
               "(Modify Connection in the desktop app)")  # fmt: skip
    return (f"the {side} refused the task's user (access denied): {exc}. Fix: {fix}; then run the task again "
            f"(`drs run {task}`, or Retry in the desktop app): it resumes from its checkpoint")  # fmt: skip


def _missing_on_dr_message(missing: list[str], exc: BaseException) -> str:
    names = ", ".join(f"`{d}`" for d in missing)
    return (
        f"database {names} no longer exists on the DR database (dropped there?) while the service database still "
        f"has it ({_describe(exc)}): replication cannot rebuild it. Fix: delete the task and create it again for a "
        "new initial copy (or restore the DR database from a backup taken at the task's checkpoint, then run the task again)"
    )


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
    if args.service:
        return _serve(svc, args)
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


def _serve(svc: TaskService, args: argparse.Namespace) -> int:
    """`drs run NAME --service`: the process of a background service (engine.user_service), which runs the
    task again after a Retry or Resume instead of exiting, until the task is stopped, promoted or deleted."""
    from engine import user_service

    stop = threading.Event()
    current: list[TaskRunner] = []

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()
        for runner in current:
            runner.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def run_once() -> Status:
        runner = TaskRunner(svc, args.name, parallel=args.parallel)
        current[:] = [runner]
        if stop.is_set():
            return svc.store.get_task(args.name).status
        status = runner.run(wait_when_paused=True)
        if status is Status.FAILED:
            print(f"drs: task {args.name} failed: {svc.store.get_task(args.name).last_error}", file=sys.stderr, flush=True)
        return status

    def read_status() -> tuple[Status, str | None]:
        record = svc.store.get_task(args.name)
        return record.status, record.control_request

    def hold() -> None:
        # While waiting for the user (Retry, Resume, a scheduled start) the task stays ours: the window
        # then sends its requests through the store instead of starting a runner of its own.
        svc.store.update_task(args.name, runner_pid=os.getpid(), runner_heartbeat=datetime.now())

    try:
        return user_service.serve(args.name, run_once, read_status, hold, stop)
    finally:
        try:
            if svc.store.get_task(args.name).runner_pid == os.getpid():
                svc.store.update_task(args.name, runner_pid=None)
        except DrsError:
            pass


def register_cli(top: argparse._SubParsersAction, task_sub: argparse._SubParsersAction) -> None:
    p = top.add_parser("run", help="run a DR task in the foreground until stopped (SIGINT/SIGTERM)")
    p.add_argument("name")
    p.add_argument("--parallel", type=int, default=4, help="tables copied in parallel in the initial phase")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--service",
        action="store_true",
        help="background-service mode: wait through pauses and failures (Retry runs again) until the task is stopped, promoted or deleted",
    )
    p.set_defaults(func=cmd_run)
