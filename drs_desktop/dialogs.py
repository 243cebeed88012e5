"""The main window's dialogs: delete, promote (switchover/failover, progress, result), modify connection
details, modify flow control. The task details dialog lives in drs_desktop.details (re-exported here).

Every dialog is opened with open() (window-modal, never exec()), so the GUI and tests keep running;
the window connects `accepted` to the follow-up work, which runs off the GUI thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.spec import FlowControl, TimeWindow, check_max_mb_s, check_windows, parse_clock
from engine.store import TaskRecord


def show_message(parent: QWidget | None, title: str, text: str, *, error: bool = False) -> QMessageBox:
    """A non-blocking message box (open(), not exec()); deleted when closed."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical if error else QMessageBox.Icon.Information)
    box.setWindowTitle(title)
    box.setText(text)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def _wrapped(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class _ConfirmDialog(QDialog):
    """Text, optional extra widgets, and an OK button named for the action."""

    def __init__(
        self, title: str, text: str, ok_text: str, parent: QWidget | None = None, *, danger: bool = False
    ):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(480)
        self.layout_ = QVBoxLayout(self)
        self.text_label = _wrapped(text)
        self.text_label.setTextFormat(Qt.TextFormat.RichText)
        self.layout_.addWidget(self.text_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.addButton(ok_text, QDialogButtonBox.ButtonRole.AcceptRole)
        if danger:
            self.ok_button.setObjectName("dangerButton")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._extra_at = 1

    def add_widget(self, widget: QWidget) -> None:
        self.layout_.insertWidget(self._extra_at, widget)
        self._extra_at += 1

    def finish_layout(self) -> None:
        self.layout_.addStretch(1)
        self.layout_.addWidget(self.buttons)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class DeleteTaskDialog(_ConfirmDialog):
    """Confirms deleting a task; optionally lifts read-only on the DR database."""

    def __init__(self, name: str, parent: QWidget | None = None):
        super().__init__(
            "Delete Disaster Recovery Task",
            f"Delete the DR task <b>{_esc(name)}</b>?<br><br>Its settings, stored passwords, checkpoint and "
            "DR log are removed. The data already on the DR database stays there.",
            "Delete",
            parent,
            danger=True,
        )
        self.name = name
        self.lift_read_only_box = QCheckBox("Make the DR database writable (lift read-only)")
        self.lift_read_only_box.setToolTip(
            "Runs SET GLOBAL read_only = OFF on the DR database before deleting"
        )
        self.add_widget(self.lift_read_only_box)
        self.finish_layout()

    @property
    def lift_read_only(self) -> bool:
        return self.lift_read_only_box.isChecked()


SWITCHOVER_TEXT = (
    "Switch over the DR task <b>{name}</b>?<br><br>"
    "The service database will be made read-only, the DR database becomes writable once it has applied "
    "everything (RPO 0). Applications must then be pointed at the DR database."
)


class SwitchoverDialog(_ConfirmDialog):
    def __init__(self, name: str, parent: QWidget | None = None):
        super().__init__(
            "Promote (switchover)", SWITCHOVER_TEXT.format(name=_esc(name)), "Switch over", parent
        )
        self.name = name
        self.mode = "switchover"
        self.finish_layout()


class FailoverDialog(_ConfirmDialog):
    """The service database cannot be reached: promoting now may lose changes; says which."""

    def __init__(self, name: str, estimate_message: str, parent: QWidget | None = None):
        super().__init__(
            "Promote (failover)",
            f"The service database of <b>{_esc(name)}</b> cannot be reached, so a switchover without data loss "
            "is not possible.<br><br>Fail over: the DR database is made writable now, with what it has applied.",
            "Fail over",
            parent,
            danger=True,
        )
        self.name = name
        self.mode = "failover"
        self.estimate_label = _wrapped(estimate_message)
        self.estimate_label.setObjectName("estimate")
        box = QGroupBox("What may be lost")
        QVBoxLayout(box).addWidget(self.estimate_label)
        self.add_widget(box)
        self.finish_layout()


class PromoteProgressDialog(QDialog):
    """Messages while the promote waits (service read-only, DR catching up); then the final positions."""

    reverseRequested = Signal(str)

    def __init__(self, name: str, mode: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.name = name
        self.mode = mode
        self.finished_ok: bool | None = None
        self.setWindowTitle(f"Promote {name} ({mode})")
        self.setMinimumSize(680, 340)
        layout = QVBoxLayout(self)
        self.headline = QLabel(f"Promoting <b>{_esc(name)}</b> ({mode})…")
        layout.addWidget(self.headline)
        self.messages = QListWidget()
        self.messages.setWordWrap(True)
        self.messages.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout.addWidget(self.messages, 1)
        self.result_label = _wrapped("")
        self.result_label.setVisible(False)
        layout.addWidget(self.result_label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.reverse_button = QPushButton("Create reverse task…")
        self.reverse_button.setToolTip(
            "Opens the wizard to replicate the promoted DR database back to the old service side"
        )
        self.reverse_button.setVisible(False)
        self.reverse_button.clicked.connect(lambda: self.reverseRequested.emit(self.name))
        self.close_button = QPushButton("Close")
        self.close_button.setEnabled(False)
        self.close_button.clicked.connect(self.accept)
        buttons.addWidget(self.reverse_button)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)

    def add_message(self, message: str) -> None:
        self.messages.addItem(f"{datetime.now():%H:%M:%S}  {message}")
        self.messages.scrollToBottom()

    def show_result(self, result: Any) -> None:
        """result: engine.promote.PromoteResult."""
        self.finished_ok = True
        self.headline.setText(f"<b>{_esc(self.name)}</b> promoted ({_esc(result.mode)})")
        lines = [result.message]
        if result.source_final is not None:
            lines.append(f"Service database final position: {result.source_final}")
        if result.target_applied is not None:
            lines.append(f"DR database applied up to: {result.target_applied}")
        lines.append(
            "The DR database is writable."
            if result.target_writable
            else "The DR database is still read-only!"
        )
        self.result_label.setText("\n".join(lines))
        self.result_label.setVisible(True)
        self.reverse_button.setVisible(True)
        self.close_button.setEnabled(True)

    def show_error(self, message: str) -> None:
        self.finished_ok = False
        self.headline.setText(f"Promote of <b>{_esc(self.name)}</b> failed")
        self.result_label.setText(message)
        self.result_label.setObjectName("errorText")
        self.result_label.setVisible(True)
        self.close_button.setEnabled(True)


class ConnectionDialog(QDialog):
    """New passwords for either side (the rest of a connection is fixed once a task has started)."""

    def __init__(self, record: TaskRecord, parent: QWidget | None = None):
        super().__init__(parent)
        self.name = record.name
        self.setWindowTitle(f"Modify Connection Details — {record.name}")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(500)
        layout = QVBoxLayout(self)
        layout.addWidget(
            _wrapped(
                "Enter the new password of the account on each side that changed; leave a field empty to keep it."
            )
        )
        self.edits: dict[str, QLineEdit] = {}
        for side, title, endpoint in (
            ("source", "Service database", record.spec.source),
            ("target", "DR database", record.spec.target),
        ):
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.addRow("Address:", QLabel(endpoint.address))
            form.addRow("User:", QLabel(endpoint.user))
            edit = QLineEdit()
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setPlaceholderText("unchanged")
            edit.setAccessibleName(f"{title} password")
            edit.textChanged.connect(self._update_ok)
            form.addRow("New password:", edit)
            self.edits[side] = edit
            layout.addWidget(box)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._update_ok()

    def _update_ok(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(
            any(e.text() for e in self.edits.values())
        )

    def passwords(self) -> dict[str, str]:
        """side -> new password, for the fields the user filled in."""
        return {side: e.text() for side, e in self.edits.items() if e.text()}


def parse_windows(text: str) -> tuple[list[TimeWindow], str | None]:
    """'08:00-12:00, 20:00-24:00' -> windows, or the error naming the broken range."""
    windows: list[TimeWindow] = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        start_text, sep, end_text = part.partition("-")
        start, end = parse_clock(start_text.strip()), parse_clock(end_text.strip())
        if not sep or start is None or end is None:
            return [], f"time range {part!r}: write it as HH:MM-HH:MM (e.g. 08:00-18:00)"
        windows.append(TimeWindow(start, end))
    return windows, check_windows(windows)


class FlowControlDialog(QDialog):
    """Flow control of the initial phase: off, or at most N MB/s all day or in up to three time ranges."""

    def __init__(self, record: TaskRecord, parent: QWidget | None = None):
        super().__init__(parent)
        self.name = record.name
        self.setWindowTitle(f"Modify Flow Control — {record.name}")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(480)
        current = record.spec.flow_control
        layout = QVBoxLayout(self)
        layout.addWidget(
            _wrapped("Flow control limits how fast the initial full copy reads from the service database.")
        )
        self.limit_box = QCheckBox("Limit the transfer rate")
        self.limit_box.setChecked(current is not None)
        layout.addWidget(self.limit_box)
        form = QFormLayout()
        self.mb_spin = QSpinBox()
        self.mb_spin.setRange(0, 99999)  # the validator, not the widget, says what is allowed
        self.mb_spin.setSuffix(" MB/s")
        self.mb_spin.setValue(current.max_mb_s if current else 10)
        form.addRow("Maximum rate:", self.mb_spin)
        self.windows_edit = QLineEdit(
            ", ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in current.windows) if current else ""
        )
        self.windows_edit.setPlaceholderText("all day, or e.g. 08:00-12:00, 14:00-18:00")
        form.addRow("Time ranges:", self.windows_edit)
        layout.addLayout(form)
        self.error_label = _wrapped("")
        self.error_label.setObjectName("errorText")
        self.error_label.setVisible(False)
        layout.addWidget(self.error_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.limit_box.toggled.connect(self._enable)
        self._enable(self.limit_box.isChecked())
        self._result: FlowControl | None = current

    def _enable(self, on: bool) -> None:
        self.mb_spin.setEnabled(on)
        self.windows_edit.setEnabled(on)

    def validate(self) -> str | None:
        if not self.limit_box.isChecked():
            self._result = None
            return None
        error = check_max_mb_s(self.mb_spin.value())
        if error:
            return f"Maximum rate: {error}"
        windows, error = parse_windows(self.windows_edit.text())
        if error:
            return f"Time ranges: {error}"
        self._result = FlowControl(self.mb_spin.value(), tuple(windows))
        return None

    def accept(self) -> None:
        error = self.validate()
        self.error_label.setText(error or "")
        self.error_label.setVisible(bool(error))
        if not error:
            super().accept()

    def flow_control(self) -> FlowControl | None:
        return self._result


# The details dialog and its log models moved to their own modules; these names stay importable here.
from .details import TableProgressModel, TaskDetailsDialog, record_settings  # noqa: E402
from .drlog_tab import LogFilterProxy, LogLevelProxy, LogTableModel  # noqa: E402

__all__ = [
    "ConnectionDialog", "DeleteTaskDialog", "FailoverDialog", "FlowControlDialog", "LogFilterProxy",
    "LogLevelProxy", "LogTableModel", "PromoteProgressDialog", "SwitchoverDialog", "TableProgressModel",
    "TaskDetailsDialog", "parse_windows", "record_settings", "show_message",
]  # fmt: skip
