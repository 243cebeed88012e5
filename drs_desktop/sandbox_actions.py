"""Help ▸ Try with a Sandbox / Stop Sandbox: engine.sandbox driven from the window, never on the GUI thread.

Trying starts the two private MariaDB servers (progress in a modal dialog), then opens the creation wizard
filled in for them, so a newcomer walks wizard → pre-checks → replication with a server of their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog

from engine.errors import DrsError, TaskNotFound

if TYPE_CHECKING:
    from .main_window import MainWindow

STARTING_TEXT = "Starting two private MariaDB servers…"
INSTALL_COMMANDS = (
    "Debian/Ubuntu:  sudo apt-get install mariadb-server\n"
    "Fedora/RHEL:  sudo dnf install mariadb-server\n"
    "macOS (Homebrew):  brew install mariadb"
)


def mariadb_missing_text(detail: str) -> str:
    return (
        "The sandbox runs two private MariaDB servers on this machine, but the MariaDB server programs "
        f"(mariadbd) are not installed.\n\nInstall them, then try again:\n{INSTALL_COMMANDS}\n\n({detail})"
    )


class SandboxLauncher(QObject):
    """The window's sandbox actions; `progressed` carries engine messages from the worker thread."""

    progressed = Signal(str)

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.progress_dialog: QProgressDialog | None = None
        self.messages: list[str] = []  # what the last start reported (tests and the dialog read it)
        self.last_error = ""
        self.busy = False
        self.progressed.connect(self._on_progress)

    # -- Try with a Sandbox --------------------------------------------------------------------------
    def try_sandbox(self) -> None:
        if self.busy:
            if self.progress_dialog is not None:
                self.progress_dialog.raise_()
            return
        try:
            from engine import sandbox
        except ImportError:
            self._error("The sandbox is not part of this build of DRS Desktop.")
            return
        home = self.window.service.home
        self.busy = True
        self.messages = []
        self.last_error = ""
        dialog = QProgressDialog(STARTING_TEXT, "", 0, 0, self.window)
        dialog.setObjectName("sandboxProgress")
        dialog.setWindowTitle("Try with a Sandbox")
        # No Cancel: the servers come up in well under a minute, and stopping halfway helps no one.
        dialog.setCancelButton(None)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setMinimumWidth(480)
        self.progress_dialog = dialog
        dialog.show()
        emit = self.progressed.emit  # called on the worker thread; delivered queued to the GUI thread

        def start() -> tuple[dict[str, Any] | None, Any]:
            sandbox.start(home, create_task=False, progress=emit)
            existing = self._existing_task(sandbox.SANDBOX_TASK)
            return (None if existing is not None else sandbox.wizard_prefill(home)), existing

        self.window.taskman.run(start, self._started, self._start_failed)

    def _existing_task(self, name: str) -> Any:
        try:
            return self.window.service.store.get_task(name)
        except TaskNotFound:
            return None

    def _on_progress(self, message: str) -> None:
        self.messages.append(message)
        if self.progress_dialog is not None and shiboken6.isValid(self.progress_dialog):
            self.progress_dialog.setLabelText(f"{STARTING_TEXT}\n{message[:1].upper()}{message[1:]}…")

    def _close_progress(self) -> None:
        self.busy = False
        if self.progress_dialog is not None and shiboken6.isValid(self.progress_dialog):
            self.progress_dialog.close()
            self.progress_dialog.deleteLater()
        self.progress_dialog = None

    def _started(self, result: tuple[dict[str, Any] | None, Any]) -> None:
        self._close_progress()
        prefill, existing = result
        window = self.window
        if window._closing:
            return
        if existing is not None:
            # A second try: the sandbox task exists already; show it (its worker resumes if it should run).
            window._note(f"Sandbox servers running; task {existing.name} is {existing.status.label}")
            window.select_task(existing.name)
            if window.autostart and window.registry.resume_running([existing]):
                window._update_status_bar()
            return
        window._note("Sandbox servers running: create the task in the wizard (everything is filled in)")
        window.open_create_wizard(prefill=prefill)

    def _start_failed(self, exc: BaseException) -> None:
        self._close_progress()
        from engine.localserver import MariaDBNotInstalled

        if isinstance(exc, MariaDBNotInstalled):
            self._error(mariadb_missing_text(str(exc)), title="MariaDB server not installed")
        else:
            message = str(exc) if isinstance(exc, DrsError) else f"{type(exc).__name__}: {exc}"
            self._error(f"The sandbox could not start:\n{message}")

    # -- Stop Sandbox --------------------------------------------------------------------------------
    def stop_sandbox(self) -> None:
        """Stop this window's worker of the sandbox task at a checkpoint, then the servers and the trickle."""
        try:
            from engine import sandbox
        except ImportError:
            self._error("The sandbox is not part of this build of DRS Desktop.")
            return
        home = self.window.service.home
        self.window._note("Stopping the sandbox…")

        def stop() -> Any:
            return sandbox.stop(home)

        def stopped(_status: Any) -> None:
            self.window._note("Sandbox stopped (its data stays for the next try)")
            self.window.refresh()

        def failed(exc: BaseException) -> None:
            message = str(exc) if isinstance(exc, DrsError) else f"{type(exc).__name__}: {exc}"
            self._error(f"The sandbox could not stop:\n{message}")

        # The worker first: it would otherwise keep reconnecting to servers that are going away.
        self.window.registry.stop_then(
            sandbox.SANDBOX_TASK, lambda: self.window.taskman.run(stop, stopped, failed)
        )

    def _error(self, text: str, *, title: str = "Try with a Sandbox") -> None:
        self.last_error = text
        self.window._note(text.splitlines()[0])
        if not self.window._closing:
            box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=self.window)
            box.setObjectName("sandboxError")
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()
            self.error_box = box
