"""Task ▸ Run in Background / Stop Background Service: engine.user_service driven from the window.

Running in the background hands the task from this window's worker to a systemd user service (the
worker stops at a checkpoint first, so the two never run it at once); the row then shows it as run by
that process, and Pause/Resume/Retry/Promote/Delete reach it through the task store like any `drs run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence

from engine.status import RUNNING, Status

from .dialogs import show_message

if TYPE_CHECKING:
    from engine.store import TaskRecord

    from .main_window import MainWindow

# A background service makes sense while the task still has replication ahead of it.
SERVICE_STATUSES = frozenset({*RUNNING, Status.PAUSED, Status.FAILED, Status.PENDING_START, Status.CONFIGURATION})
TITLE = "Run in Background"


class ServiceActions:
    """The two actions and what they do; `update(record)` enables them for the selected task."""

    def __init__(self, window: MainWindow):
        self.window = window
        self.install_action = QAction("Run in &Background (systemd)…", window)
        self.install_action.setObjectName("action_service_install")
        self.install_action.setStatusTip(
            "Run this task in a systemd user service, so replication goes on when this window is closed"
        )
        self.install_action.setShortcut(QKeySequence("Ctrl+Shift+B"))
        self.install_action.triggered.connect(self.install)
        window.addAction(self.install_action)
        self.remove_action = QAction("Stop Background Ser&vice", window)
        self.remove_action.setObjectName("action_service_remove")
        self.remove_action.setStatusTip("Stop and remove the task's systemd user service (the task itself stays)")
        self.remove_action.setShortcut(QKeySequence("Ctrl+Shift+U"))
        self.remove_action.triggered.connect(self.remove)
        window.addAction(self.remove_action)
        self.last_message = ""  # what the last install/remove said (tests read it)

    def update(self, record: TaskRecord | None) -> None:
        from engine import user_service

        allowed = record is not None and record.status in SERVICE_STATUSES
        installed = record is not None and user_service.unit_path(record.name).exists()
        self.install_action.setEnabled(allowed and not installed)
        self.remove_action.setEnabled(installed)
        if record is not None and not allowed:
            self.install_action.setToolTip(f"not available while the task is {record.status.label}")

    def install(self) -> None:
        record = self.window.current_record()
        if record is None:
            return
        name = record.name
        home = self.window.service.home

        def install() -> str:
            from engine import user_service

            info = user_service.install(home, name)
            return f"Task {name} now runs in the background ({info.unit}: {info.active})"

        def done(message: str) -> None:
            self.last_message = message
            self.window._note(message)
            self.window.refresh()

        def failed(exc: BaseException) -> None:
            self.last_message = str(exc)
            show_message(self.window, TITLE, str(exc), error=True)
            # nobody runs it in the background: this window takes it back
            if record.status in RUNNING:
                self.window.registry.start(name)
            self.window.refresh()

        # hand over at a checkpoint: this window's worker stops before the service starts
        self.window.registry.stop_then(name, lambda: self.window.taskman.run(install, done, failed))

    def remove(self) -> None:
        record = self.window.current_record()
        if record is None:
            return
        name = record.name
        svc = self.window.service

        def remove() -> bool:
            from engine import user_service

            return user_service.remove(svc, name)

        def done(removed: bool) -> None:
            self.last_message = (
                f"Task {name} no longer runs in the background" if removed else f"Task {name} had no background service"
            )
            self.window._note(self.last_message)
            current = self.window.model.record(name)
            if removed and current is not None and current.status in RUNNING:
                self.window.registry.start(name)  # replication goes on, now in this window
            self.window.refresh()

        def failed(exc: BaseException) -> None:
            self.last_message = str(exc)
            show_message(self.window, "Stop Background Service", str(exc), error=True)

        self.window.taskman.run(remove, done, failed)
