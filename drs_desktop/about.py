"""About DRS Desktop: the versions a bug report needs — the app, Qt, PySide6, Python, the platform, the
secret backend, and the MySQL/MariaDB servers the stored tasks use (each asked off the GUI thread).
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.connect import connect, server_info
from engine.store import TaskRecord
from engine.tasks import TaskService

from .taskman import TaskManager

QUERY_TIMEOUT_S = 3  # a server that does not answer within this is shown as unreachable
PENDING = "…"
UNREACHABLE = "unreachable"


def app_version() -> str:
    try:
        return importlib.metadata.version("drs-desktop")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def secret_backend(service: TaskService) -> str:
    try:
        return service.secrets.backend_name
    except Exception:  # noqa: BLE001 - a broken keyring is itself the answer here
        return "unavailable"


def versions(service: TaskService | None) -> list[tuple[str, str]]:
    """(what, version) lines shared by this dialog and the crash report."""
    lines = [
        ("DRS Desktop", app_version()),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
        ("Python", sys.version.split()[0]),
        ("Platform", platform.platform()),
    ]
    if service is not None:
        lines.append(("Password store", secret_backend(service)))
    return lines


@dataclass(frozen=True)
class TaskServer:
    """One server the stored tasks use, and one task side whose credentials reach it."""

    address: str  # host:port
    uses: tuple[str, ...]  # "service of orders-dr", "DR of crm-dr"
    task: str
    side: str  # "source" | "target"


def task_servers(records: Iterable[TaskRecord]) -> list[TaskServer]:
    found: dict[str, TaskServer] = {}
    for record in records:
        for side, endpoint, role in (
            ("source", record.spec.source, "service"),
            ("target", record.spec.target, "DR"),
        ):
            use = f"{role} of {record.name}"
            known = found.get(endpoint.address)
            if known is None:
                found[endpoint.address] = TaskServer(endpoint.address, (use,), record.name, side)
            else:
                found[endpoint.address] = TaskServer(
                    known.address, (*known.uses, use), known.task, known.side
                )
    return sorted(found.values(), key=lambda s: s.address)


def server_version(service: TaskService, server: TaskServer, timeout: int = QUERY_TIMEOUT_S) -> str:
    """The server's product and version, e.g. "MariaDB 10.11.6" (connects with the task's credentials)."""
    spec = service.spec_with_passwords(server.task)
    endpoint = spec.source if server.side == "source" else spec.target
    conn = connect(endpoint, connect_timeout=timeout, read_timeout=timeout)
    try:
        return server_info(conn).label
    finally:
        conn.close()


class AboutDialog(QDialog):
    def __init__(self, service: TaskService, taskman: TaskManager, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.taskman = taskman
        self.setWindowTitle("About DRS Desktop")
        self.setObjectName("aboutDialog")
        self.server_labels: dict[str, QLabel] = {}
        layout = QVBoxLayout(self)
        title = QLabel(f"<b style='font-size:14pt'>DRS Desktop {app_version()}</b><br>"
                       "Real-time disaster recovery for MySQL-family databases")  # fmt: skip
        title.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(title)
        form = QFormLayout()
        self.version_labels: dict[str, QLabel] = {}
        for what, version in versions(service):
            label = QLabel(version)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.version_labels[what] = label
            form.addRow(f"{what}:", label)
        layout.addLayout(form)
        self.servers_box = QGroupBox("Servers of the stored tasks")
        self.servers_form = QFormLayout(self.servers_box)
        self.servers_status = QLabel("Reading the tasks…")
        self.servers_form.addRow(self.servers_status)
        layout.addWidget(self.servers_box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy these versions, for a bug report")
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(buttons)
        layout.addLayout(row)
        self.pending = 0
        store = service.store
        taskman.run_for(self, store.list_tasks, self._show_servers, self._tasks_failed)

    def _tasks_failed(self, exc: BaseException) -> None:
        self.servers_status.setText(f"Could not read the tasks: {exc}")

    def _show_servers(self, records: list[TaskRecord]) -> None:
        servers = task_servers(records)
        self.servers_status.setText("No tasks yet." if not servers else "")
        self.servers_status.setVisible(not servers)
        for server in servers:
            label = QLabel(PENDING)
            label.setObjectName("serverVersion")
            label.setToolTip(", ".join(server.uses))
            self.server_labels[server.address] = label
            self.servers_form.addRow(f"{server.address} ({', '.join(server.uses)}):", label)
            self.pending += 1
            self.taskman.run_for(
                self,
                lambda s=server: server_version(self.service, s),
                lambda version, a=server.address: self._server_answered(a, version),
                lambda exc, a=server.address: self._server_failed(a, exc),
            )

    def _server_answered(self, address: str, version: str) -> None:
        self.pending -= 1
        self.server_labels[address].setText(version)

    def _server_failed(self, address: str, exc: BaseException) -> None:
        self.pending -= 1
        label = self.server_labels[address]
        label.setText(UNREACHABLE)
        label.setToolTip(f"{label.toolTip()}\n{exc}")

    def text(self) -> str:
        lines = [f"{what}: {label.text()}" for what, label in self.version_labels.items()]
        lines += [f"Server {address}: {label.text()}" for address, label in self.server_labels.items()]
        return "\n".join(lines)

    def copy_to_clipboard(self) -> None:
        from PySide6.QtGui import QGuiApplication

        QGuiApplication.clipboard().setText(self.text())
