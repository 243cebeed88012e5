"""Unexpected errors: a redacted report in `<home>/crash-reports/` and a dialog; the app keeps running.

`sys.excepthook` (which PySide6 also calls for an exception raised in a slot or a virtual method) and
`threading.excepthook` write the report at once and show the dialog on the GUI thread. A report never holds
a password (the tasks' stored passwords, `password=…`-style values, Secret reprs are masked) nor, unless the
user ticks "Include host names", a host name or IP address.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.tasks import TaskService

from .about import versions

if TYPE_CHECKING:
    from .main_window import MainWindow

REPORTS_DIR = "crash-reports"
MASK = "********"
HOST = "<host>"
MIN_PASSWORD_LENGTH = 4  # shorter "passwords" would mask random letters all over the traceback

_PASSWORD_VALUE = re.compile(
    r"""(?ix)
    (?P<key>\b(?:password|passwd|pwd|secret)\b['"]?\s*[=:]\s*)   # password=, "pwd": , secret:
    (?P<value>'[^']*'|"[^"]*"|b'[^']*'|[^\s,;)}\]'"]+)
    """
)
_SECRET_REPR = re.compile(r"Secret\((?:'[^']*'|\"[^\"]*\"|[^)]*)\)")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\w)")
_HOST_VALUE = re.compile(r"(?i)(?P<key>\bhost(?:name)?\b['\"]?\s*[=:]\s*['\"]?)(?P<value>[A-Za-z0-9_.:-]+)")
_AT_HOST = re.compile(r"(?<=@)[A-Za-z0-9_.-]+(?=:\d)")  # user@host:port, as ConnectError names a server
_SERVER_ON = re.compile(r"(?i)(?<=server on ')[^']+(?=')")  # pymysql: Can't connect to MySQL server on 'x'


def redact(
    text: str, *, passwords: Iterable[str] = (), hosts: Iterable[str] = (), include_hosts: bool = False
) -> str:
    """`text` with every password masked and, unless include_hosts, every host name or address as <host>."""
    for password in sorted({p for p in passwords if len(p) >= MIN_PASSWORD_LENGTH}, key=len, reverse=True):
        for form in {password, repr(password)[1:-1]}:  # as typed, and as a repr() escapes it
            text = text.replace(form, MASK)
    text = _PASSWORD_VALUE.sub(lambda m: m.group("key") + MASK, text)
    text = _SECRET_REPR.sub(f"Secret('{MASK}')", text)
    if include_hosts:
        return text
    for host in sorted({h for h in hosts if len(h) >= 3 and h != "localhost"}, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-]|\.\w)", HOST, text)
    text = _HOST_VALUE.sub(lambda m: m.group("key") + HOST, text)
    text = _AT_HOST.sub(HOST, text)
    text = _SERVER_ON.sub(HOST, text)
    return _IPV4.sub(HOST, text)


@dataclass(frozen=True)
class CrashReport:
    """What went wrong, and what the redaction must hide; render() is the only way out as text."""

    when: datetime
    traceback_text: str
    versions: tuple[tuple[str, str], ...]
    tasks: tuple[str, ...]  # "orders-dr: Disaster recovery in progress (incremental, replicating here)"
    hosts: tuple[str, ...] = ()
    passwords: tuple[str, ...] = field(default=(), repr=False)

    def render(self, *, include_hosts: bool = False) -> str:
        lines = [
            f"DRS Desktop crash report, {self.when:%Y-%m-%d %H:%M:%S}",
            "Passwords are masked"
            + ("." if include_hosts else "; host names and addresses are shown as <host>."),
            "",
            "Versions:",
            *(f"  {what}: {version}" for what, version in self.versions),
            "",
            "Tasks:",
            *(f"  {line}" for line in self.tasks or ("(none)",)),
            "",
            self.traceback_text.rstrip(),
            "",
        ]
        return redact(
            "\n".join(lines), passwords=self.passwords, hosts=self.hosts, include_hosts=include_hosts
        )

    def redacted_traceback(self) -> str:
        return redact(self.traceback_text, passwords=self.passwords, hosts=self.hosts)


def report_path(home: Path, when: datetime) -> Path:
    """<home>/crash-reports/crash-YYYYmmdd-HHMMSS.txt (-2, -3… when several come in the same second)."""
    folder = home / REPORTS_DIR
    path = folder / f"crash-{when:%Y%m%d-%H%M%S}.txt"
    n = 2
    while path.exists():
        path = folder / f"crash-{when:%Y%m%d-%H%M%S}-{n}.txt"
        n += 1
    return path


class CrashHandler(QObject):
    """Installs the hooks; writes the report where it happens, shows the dialog on the GUI thread."""

    reported = Signal(object, object)  # CrashReport, Path: queued to the GUI thread

    def __init__(self, service: TaskService, window: MainWindow | None = None):
        super().__init__()
        self.service = service
        self.window = window
        self.dialog: CrashDialog | None = None
        self.last_path: Path | None = None
        self._previous_hook: Callable[..., Any] | None = None
        self._previous_thread_hook: Callable[..., Any] | None = None
        self._handling = threading.local()
        self.reported.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        self._previous_hook, sys.excepthook = sys.excepthook, self.handle
        self._previous_thread_hook, threading.excepthook = threading.excepthook, self._handle_thread

    def uninstall(self) -> None:
        if sys.excepthook == self.handle and self._previous_hook is not None:
            sys.excepthook = self._previous_hook
        if threading.excepthook == self._handle_thread and self._previous_thread_hook is not None:
            threading.excepthook = self._previous_thread_hook

    def _handle_thread(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    def handle(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt) or getattr(self._handling, "active", False):
            if self._previous_hook is not None:
                self._previous_hook(exc_type, exc, tb)
            return
        self._handling.active = True
        try:
            report = self.build_report(exc_type, exc, tb)
            path = self.write(report)
            print(f"drs-desktop: unexpected error, report saved to {path}", file=sys.stderr)
            print(report.redacted_traceback(), file=sys.stderr)
            self.reported.emit(report, path)
        except Exception:  # noqa: BLE001 - the crash path itself failed: fall back to Python's own report
            if self._previous_hook is not None:
                self._previous_hook(exc_type, exc, tb)
        finally:
            self._handling.active = False

    def build_report(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> CrashReport:
        records = self.window.model.records() if self.window is not None else []
        running = set(self.window.registry.running()) if self.window is not None else set()
        tasks = tuple(
            f"{r.name}: {r.status.label} ({r.status.value}, phase {r.phase}"
            + (", replicating here)" if r.name in running else ")")
            for r in records
        )
        hosts = {endpoint.host for r in records for endpoint in (r.spec.source, r.spec.target)}
        hosts |= {name for name in (socket.gethostname(), socket.getfqdn()) if name}
        return CrashReport(
            when=datetime.now(),
            traceback_text="".join(traceback.format_exception(exc_type, exc, tb)),
            versions=tuple(versions(self.service)),
            tasks=tasks,
            hosts=tuple(sorted(hosts)),
            passwords=tuple(self._known_passwords([r.name for r in records])),
        )

    def _known_passwords(self, names: list[str]) -> list[str]:
        """The tasks' passwords, to mask them wherever they appear (skipped when the store cannot answer)."""
        found: list[str] = []
        for name in names:
            for side in ("source", "target"):
                try:
                    secret = self.service.secrets.get_password(name, side)
                except Exception:  # noqa: BLE001, S112 - the patterns below still mask password=… values
                    continue
                if secret:
                    found.append(secret.reveal())
        return found

    def write(self, report: CrashReport, *, include_hosts: bool = False, path: Path | None = None) -> Path:
        path = path or report_path(Path(self.service.home), report.when)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report.render(include_hosts=include_hosts), encoding="utf-8")
        self.last_path = path
        return path

    def _show(self, report: CrashReport, path: Path) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.add_later_report(path)  # one dialog at a time, however many errors follow
            return
        parent = self.window if self.window is not None and self.window.isVisible() else None
        self.dialog = CrashDialog(self, report, path, parent)
        self.dialog.show()


class CrashDialog(QDialog):
    def __init__(self, handler: CrashHandler, report: CrashReport, path: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.handler = handler
        self.report = report
        self.path = path
        self.later_reports: list[Path] = []
        self.setWindowTitle("DRS Desktop — Unexpected Error")
        self.setObjectName("crashDialog")
        self.resize(760, 520)
        layout = QVBoxLayout(self)
        self.headline = QLabel(
            "<b>Something went wrong inside DRS Desktop.</b> The application keeps running; replication "
            "workers are not affected.<br>A report was saved (passwords masked). Please send it to your "
            "support contact."
        )
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.headline)
        self.path_label = QLabel()
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setWordWrap(True)
        layout.addWidget(self.path_label)
        self.text = QPlainTextEdit()
        self.text.setObjectName("crashReportText")
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout.addWidget(self.text, 1)
        self.include_hosts = QCheckBox("Include host names and addresses in the report")
        self.include_hosts.setChecked(False)
        self.include_hosts.toggled.connect(self._rewrite)
        layout.addWidget(self.include_hosts)
        buttons = QDialogButtonBox()
        self.save_button = QPushButton("Save…")
        self.copy_button = QPushButton("Copy")
        self.open_button = QPushButton("Open Folder")
        for button in (self.save_button, self.copy_button, self.open_button):
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.save_button.clicked.connect(self.save_as)
        self.copy_button.clicked.connect(self.copy)
        self.open_button.clicked.connect(self.open_folder)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._show_text()

    def _show_text(self) -> None:
        self.text.setPlainText(self.report.render(include_hosts=self.include_hosts.isChecked()))
        more = f" ({len(self.later_reports)} more since: same folder)" if self.later_reports else ""
        self.path_label.setText(f"Saved to {self.path}{more}")

    def _rewrite(self) -> None:
        """The file holds what the dialog shows: ticking the box writes the host names into it too."""
        self.handler.write(self.report, include_hosts=self.include_hosts.isChecked(), path=self.path)
        self._show_text()

    def add_later_report(self, path: Path) -> None:
        self.later_reports.append(path)
        self._show_text()

    def report_text(self) -> str:
        return self.text.toPlainText()

    def save_as(self) -> None:
        target, _filter = QFileDialog.getSaveFileName(self, "Save Crash Report", str(Path.home() / self.path.name),
                                                      "Text files (*.txt)")  # fmt: skip
        if target:
            Path(target).write_text(self.report_text(), encoding="utf-8")

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.report_text())

    def open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path.parent)))


def install_crash_handler(service: TaskService, window: MainWindow | None = None) -> Callable[[], None]:
    """Install the hooks for this app run; returns the function that puts the previous ones back."""
    handler = CrashHandler(service, window)
    handler.install()
    if window is not None:
        window.crash_handler = handler
    return handler.uninstall
