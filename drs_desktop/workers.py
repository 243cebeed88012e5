"""Long-running replication in the GUI: one QThread per running task around engine.runner.TaskRunner,
and one per promote around engine.promote.promote (whose catch-up is a runner too).

The engine's callbacks are turned into Qt signals (delivered queued on the GUI thread); no widget is
touched from a worker. WorkerRegistry is the one owner of these threads: start, stop, promote, stop all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import DrsError, TaskNotFound
from engine.lifecycle import pid_alive
from engine.status import RUNNING, Status
from engine.store import TaskRecord
from engine.tasks import TaskService

STOP_ALL_TIMEOUT_MS = 60_000
PROMOTE_TIMEOUT_S = 60.0


class PromoteNotStarted(DrsError):
    """The promote was cancelled (or the window closed) before it changed anything."""


class ReplicationWorker(QThread):
    """Runs one task's TaskRunner on its own thread until the task pauses, fails, is promoted or stopped."""

    copyProgress = Signal(str, object)  # task name, engine.progress.CopyProgress
    streamProgress = Signal(str, object)  # task name, engine.progress.StreamProgress
    statusChanged = Signal(object)  # engine.runner.StatusChange
    logEntry = Signal(str, object)  # task name, engine.store.DrLogEntry
    skipped = Signal(str, str)  # task name, why it was not run (another process runs it)
    failed = Signal(str, str)  # task name, message (the runner itself could not run)

    def __init__(self, service: TaskService, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.service = service
        self.name = name
        self.final_status: Status | None = None
        self._lock = threading.Lock()
        self._stop_requested = False
        self._runner = None
        self.setObjectName(f"drs-worker-{name}")

    def stop(self) -> None:
        """Thread-safe: the runner ends at its next safe point, saving its checkpoint."""
        with self._lock:
            self._stop_requested = True
            runner = self._runner
        if runner is not None:
            runner.stop()

    @property
    def stop_requested(self) -> bool:
        with self._lock:
            return self._stop_requested

    def run(self) -> None:  # on the worker thread
        name = self.name
        store = self.service.store
        try:
            record = store.get_task(name)
            if pid_alive(record.runner_pid):
                self.final_status = record.status
                self.skipped.emit(name, f"task {name} is already being run by process {record.runner_pid}")
                return
            from engine.runner import TaskRunner

            runner = TaskRunner(
                self.service,
                name,
                on_copy_progress=lambda p: self.copyProgress.emit(name, p),
                on_stream_progress=lambda p: self.streamProgress.emit(name, p),
                on_status=self.statusChanged.emit,
                on_log=lambda entry: self.logEntry.emit(name, entry),
            )
            with self._lock:
                self._runner = runner
                stop_now = self._stop_requested
            if stop_now:
                self.final_status = record.status
                return
            self.final_status = runner.run()
        except TaskNotFound:
            self.final_status = None  # deleted under us: nothing to record
        except Exception as exc:  # noqa: BLE001 - whatever broke, the task is marked failed with why
            message = str(exc) if isinstance(exc, DrsError) else f"{type(exc).__name__}: {exc}"
            try:
                store.set_status(name, Status.FAILED, last_error=message, expect=set(RUNNING))
                store.add_log(name, "error", "runner", message)
            except DrsError:
                pass
            self.final_status = Status.FAILED
            self.failed.emit(name, message)


class PromoteWorker(QThread):
    """Runs engine.promote.promote for one task. Setting `cancel` makes the engine roll back (service
    database writable again, task back to its previous status) and raise PromoteRolledBack."""

    message = Signal(str, str)  # task name, progress message

    def __init__(
        self,
        service: TaskService,
        name: str,
        *,
        force: bool,
        timeout: float,
        cancel: threading.Event,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.service = service
        self.name = name
        self.force = force
        self.timeout = timeout
        self.cancel = cancel
        self.result: Any = None  # engine.promote.PromoteResult on success
        self.error: BaseException | None = None
        self.setObjectName(f"drs-promote-{name}")

    def run(self) -> None:  # on the worker thread
        name = self.name
        try:
            from engine.promote import promote

            self.result = promote(
                self.service,
                name,
                force=self.force,
                timeout=self.timeout,
                cancel=self.cancel,
                on_progress=lambda message: self.message.emit(name, message),
            )
        except Exception as exc:  # noqa: BLE001 - handed to the GUI thread, which shows it
            self.error = exc


@dataclass
class _Entry:
    worker: ReplicationWorker
    after_stop: list[Callable[[], None]] = field(default_factory=list)


PromoteDone = Callable[[Any, BaseException | None], None]  # (PromoteResult | None, error | None)


@dataclass
class _Promote:
    cancel: threading.Event
    on_message: Callable[[str], None] | None
    on_done: PromoteDone | None
    worker: PromoteWorker | None = None  # None while the task's replication worker is still stopping


class WorkerRegistry(QObject):
    """Owns every replication worker of the window; forwards their signals with the task name."""

    copyProgress = Signal(str, object)
    streamProgress = Signal(str, object)
    statusChanged = Signal(object)
    logEntry = Signal(str, object)
    workerStarted = Signal(str)
    workerFinished = Signal(str, str)  # task name, final status value ("" when the task is gone)
    workerSkipped = Signal(str, str)
    workerFailed = Signal(str, str)
    promoteStarted = Signal(str)  # the promote thread of the task started (its worker has stopped)
    promoteFinished = Signal(str)  # task name; the outcome went to run_promote's on_done first

    def __init__(self, service: TaskService, parent: QObject | None = None):
        super().__init__(parent)
        self.service = service
        self._entries: dict[str, _Entry] = {}
        self._promotes: dict[str, _Promote] = {}
        self._closing = False  # stop_all_then was called: nothing new starts
        self._when_idle: list[Callable[[], None]] = []

    def is_running(self, name: str) -> bool:
        return name in self._entries

    def running(self) -> list[str]:
        return sorted(self._entries)

    def is_promoting(self, name: str) -> bool:
        return name in self._promotes

    def promoting(self) -> list[str]:
        return sorted(self._promotes)

    def busy(self) -> list[str]:
        """Tasks with a thread of this registry: replicating, or being promoted."""
        return sorted(set(self._entries) | set(self._promotes))

    def worker(self, name: str) -> ReplicationWorker | None:
        entry = self._entries.get(name)
        return entry.worker if entry else None

    def start(self, name: str) -> bool:
        """Start a worker for the task; False when one already runs it (or it is being promoted here)."""
        if name in self._entries or name in self._promotes or self._closing:
            return False
        worker = ReplicationWorker(self.service, name)
        worker.copyProgress.connect(self.copyProgress)
        worker.streamProgress.connect(self.streamProgress)
        worker.statusChanged.connect(self.statusChanged)
        worker.logEntry.connect(self.logEntry)
        worker.skipped.connect(self.workerSkipped)
        worker.failed.connect(self.workerFailed)
        worker.finished.connect(self._on_worker_finished)
        self._entries[name] = _Entry(worker)
        worker.start()
        self.workerStarted.emit(name)
        return True

    def stop(self, name: str, wait: bool = True, timeout_ms: int = STOP_ALL_TIMEOUT_MS) -> bool:
        """Ask the task's worker to stop; with wait, block until it has (the app-close path)."""
        entry = self._entries.get(name)
        if entry is None:
            return True
        entry.worker.stop()
        if not wait:
            return False
        done = entry.worker.wait(timeout_ms)
        if done:
            self._finished(entry.worker)
        return done

    def stop_then(self, name: str, callback: Callable[[], None]) -> None:
        """Stop the task's worker without blocking the GUI; call back once it has ended."""
        entry = self._entries.get(name)
        if entry is None:
            callback()
            return
        entry.after_stop.append(callback)
        entry.worker.stop()

    def stop_all(self, timeout_ms: int = STOP_ALL_TIMEOUT_MS) -> bool:
        """Stop every worker (each saves its checkpoint), cancel every promote (the engine rolls it
        back) and wait for them on this thread; True when all ended. The window closes through
        stop_all_then instead, which does not block the event loop."""
        self._request_stop_all()
        entries = list(self._entries.values())
        deadline = datetime.now().timestamp() + timeout_ms / 1000

        def left() -> int:
            return max(0, int((deadline - datetime.now().timestamp()) * 1000))

        all_done = True
        for entry in entries:
            if entry.worker.wait(left()):
                self._finished(entry.worker)  # a promote waiting for it sees its cancel and ends
            else:
                all_done = False
        for promote in list(self._promotes.values()):
            worker = promote.worker
            if worker is None:
                all_done = False  # its replication worker did not stop in time
            elif worker.wait(left()):
                self._promote_finished(worker)
            else:
                all_done = False
        return all_done

    def stop_all_then(self, callback: Callable[[], None]) -> list[str]:
        """Stop every worker and cancel every promote without blocking; call back (on the GUI thread)
        once all have ended. Nothing new starts afterwards: this is the app-close path. Returns the
        tasks being stopped."""
        self._closing = True
        names = self.busy()
        self._request_stop_all()
        self._when_idle.append(callback)
        self._check_idle()
        return names

    def _request_stop_all(self) -> None:
        for promote in self._promotes.values():
            promote.cancel.set()
        for entry in self._entries.values():
            entry.worker.stop()

    def _check_idle(self) -> None:
        if self._when_idle and not self.busy():
            callbacks, self._when_idle = self._when_idle, []
            for callback in callbacks:
                callback()

    @Slot()
    def _on_worker_finished(self) -> None:
        worker = self.sender()
        if isinstance(worker, ReplicationWorker):
            self._finished(worker)

    def _finished(self, worker: ReplicationWorker) -> None:
        entry = self._entries.get(worker.name)
        if entry is None or entry.worker is not worker:
            return  # already handled (stop with wait, then the queued finished signal)
        worker.wait()  # run() has returned; this only joins the thread
        del self._entries[worker.name]
        status = worker.final_status.value if worker.final_status else ""
        worker.deleteLater()
        self.workerFinished.emit(worker.name, status)
        for callback in entry.after_stop:
            callback()
        self._check_idle()

    # -- promote ------------------------------------------------------------------------------------
    def run_promote(
        self,
        name: str,
        *,
        force: bool = False,
        timeout: float = PROMOTE_TIMEOUT_S,
        cancel: threading.Event | None = None,
        on_message: Callable[[str], None] | None = None,
        on_done: PromoteDone | None = None,
    ) -> threading.Event | None:
        """Promote the task on a thread this registry owns: the task's replication worker is stopped
        first (without blocking), then engine.promote.promote runs with `cancel`. Setting it (cancel_promote,
        stop_all, stop_all_then) makes the engine roll back. on_message(text) and on_done(result, error)
        are called on the GUI thread. Returns the cancel Event; None when this registry already promotes
        the task or is closing."""
        if name in self._promotes or self._closing:
            return None
        entry = _Promote(cancel or threading.Event(), on_message, on_done)
        self._promotes[name] = entry
        # The engine's catch-up is a runner of its own: ours must have saved its checkpoint and ended.
        self.stop_then(name, lambda: self._start_promote(name, entry, force, timeout))
        return entry.cancel

    def cancel_promote(self, name: str) -> bool:
        """Ask the running promote of the task to roll back; False when none runs here."""
        entry = self._promotes.get(name)
        if entry is None:
            return False
        entry.cancel.set()
        return True

    def _start_promote(self, name: str, entry: _Promote, force: bool, timeout: float) -> None:
        if self._promotes.get(name) is not entry:
            return
        if entry.cancel.is_set():
            del self._promotes[name]
            self._report_promote(name, entry, None, PromoteNotStarted(
                f"promote of task {name} cancelled before it started; nothing was changed"))  # fmt: skip
            return
        worker = PromoteWorker(self.service, name, force=force, timeout=timeout, cancel=entry.cancel)
        worker.message.connect(self._on_promote_message)
        worker.finished.connect(self._on_promote_finished)
        entry.worker = worker
        worker.start()
        self.promoteStarted.emit(name)

    @Slot(str, str)
    def _on_promote_message(self, name: str, message: str) -> None:
        entry = self._promotes.get(name)
        if entry is not None and entry.on_message is not None:
            entry.on_message(message)

    @Slot()
    def _on_promote_finished(self) -> None:
        worker = self.sender()
        if isinstance(worker, PromoteWorker):
            self._promote_finished(worker)

    def _promote_finished(self, worker: PromoteWorker) -> None:
        entry = self._promotes.get(worker.name)
        if entry is None or entry.worker is not worker:
            return  # already handled (stop_all waited for it, then the queued finished signal)
        worker.wait()
        del self._promotes[worker.name]
        worker.deleteLater()
        self._report_promote(worker.name, entry, worker.result, worker.error)

    def _report_promote(self, name: str, entry: _Promote, result: Any, error: BaseException | None) -> None:
        if entry.on_done is not None:
            entry.on_done(result, error)
        self.promoteFinished.emit(name)
        self._check_idle()

    # -- which tasks should run ---------------------------------------------------------------------
    def resume_running(self, records: Iterable[TaskRecord]) -> list[str]:
        """Start every task left in a running status (the app was closed while it ran)."""
        started = []
        for record in records:
            if (
                record.status in RUNNING
                and not self.is_running(record.name)
                and not pid_alive(record.runner_pid)
                and self.start(record.name)
            ):
                started.append(record.name)
        return started

    def start_due(self, records: Iterable[TaskRecord], now: datetime | None = None) -> list[str]:
        """Start scheduled tasks (Pending start) whose start time has come."""
        now = now or datetime.now()
        started = []
        for record in records:
            at = record.spec.start_at
            # Pending start whose time has come, or Starting (created by `drs task create` while the
            # window was open) with nobody running it.
            due = (record.status is Status.PENDING_START and at is not None and at <= now) or record.status is Status.STARTING
            if (
                due
                and not self.is_running(record.name)
                and not pid_alive(record.runner_pid)
                and self.start(record.name)
            ):
                started.append(record.name)
        return started
