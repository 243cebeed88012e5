"""Long-running replication in the GUI: one QThread per running task around engine.runner.TaskRunner.

The runner's callbacks are turned into Qt signals (delivered queued on the GUI thread); no widget is
touched from a worker. WorkerRegistry is the one owner of these threads: start, stop, stop all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import DrsError, TaskNotFound
from engine.lifecycle import pid_alive
from engine.status import RUNNING, Status
from engine.store import TaskRecord
from engine.tasks import TaskService

STOP_ALL_TIMEOUT_MS = 60_000


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


@dataclass
class _Entry:
    worker: ReplicationWorker
    after_stop: list[Callable[[], None]] = field(default_factory=list)


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

    def __init__(self, service: TaskService, parent: QObject | None = None):
        super().__init__(parent)
        self.service = service
        self._entries: dict[str, _Entry] = {}

    def is_running(self, name: str) -> bool:
        return name in self._entries

    def running(self) -> list[str]:
        return sorted(self._entries)

    def worker(self, name: str) -> ReplicationWorker | None:
        entry = self._entries.get(name)
        return entry.worker if entry else None

    def start(self, name: str) -> bool:
        """Start a worker for the task; False when one already runs it."""
        if name in self._entries:
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
        """Stop every worker (each saves its checkpoint) and wait for them; True when all ended."""
        entries = list(self._entries.values())
        for entry in entries:
            entry.worker.stop()
        deadline = datetime.now().timestamp() + timeout_ms / 1000
        all_done = True
        for entry in entries:
            left = max(0, int((deadline - datetime.now().timestamp()) * 1000))
            if entry.worker.wait(left):
                self._finished(entry.worker)
            else:
                all_done = False
        return all_done

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
