"""The main window's dialogs: delete, promote (switchover/failover, progress, result), modify connection
details, modify flow control, task details with the DR log.

Every dialog is opened with open() (window-modal, never exec()), so the GUI and tests keep running;
the window connects `accepted` to the follow-up work, which runs off the GUI thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.spec import FlowControl, TimeWindow, check_max_mb_s, check_windows, parse_clock
from engine.store import LOG_LEVELS, DrLogEntry, TaskRecord

from .rowmodel import RowTableModel
from .task_model import RELATIONSHIP_LABELS, format_delay, format_tags, status_icon


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


class LogTableModel(RowTableModel):
    """DR log entries: time, level, component, message."""

    COLUMNS = ("Time", "Level", "Component", "Description")

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        entry = self.row_at(index)
        if entry is None:
            return None
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if column == 0:
                return f"{entry.time:%Y-%m-%d %H:%M:%S}"
            if column == 1:
                return entry.level.capitalize()
            if column == 2:
                return entry.component
            if column == 3:
                return entry.message
        if role == Qt.ItemDataRole.UserRole:
            return entry.level
        return None

    def set_entries(self, entries: Iterable[DrLogEntry]) -> None:
        self.beginResetModel()
        self.rows = list(entries)
        self.endResetModel()

    def append(self, entry: DrLogEntry) -> None:
        row = len(self.rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self.rows.append(entry)
        self.endInsertRows()


class TableProgressModel(RowTableModel):
    """Per-table progress of the initial full copy (from the task's stored copy summary)."""

    COLUMNS = ("Database", "Table", "Rows copied", "Rows (estimated)", "State")

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        row = self.row_at(index)
        if row is None or role != Qt.ItemDataRole.DisplayRole:
            return None
        state = "Done" if row.get("done") else ("Copying" if row.get("rows_done") else "Waiting")
        return (row["database"], row["table"], f"{row['rows_done']:,}", f"{row['rows_estimated']:,}", state)[index.column()]

    def set_tables(self, tables: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = list(tables)
        self.endResetModel()


class LogLevelProxy(QSortFilterProxyModel):
    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._level: str | None = None

    def set_level(self, level: str | None) -> None:
        self.beginFilterChange()
        self._level = level
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if self._level is None:
            return True
        index = self.sourceModel().index(source_row, 1, source_parent)
        return index.data(Qt.ItemDataRole.UserRole) == self._level


def record_settings(record: TaskRecord) -> list[tuple[str, str]]:
    """Every setting and state worth showing, as label/value pairs; never a password."""
    spec = record.spec
    fc = spec.flow_control
    if fc is None:
        flow = "Off"
    else:
        flow = f"{fc.max_mb_s} MB/s " + (", ".join(str(w) for w in fc.windows) if fc.windows else "all day")
    cp = record.checkpoint
    checkpoint = "none yet" if cp.binlog_file is None else f"{cp.binlog_file}:{cp.binlog_pos}"
    if cp.gtid:
        checkpoint += f" (GTID {cp.gtid})"
    rows = [
        ("Name", spec.name),
        ("Description", spec.description or "—"),
        ("Status", record.status.label),
        ("Phase", record.phase),
        ("DR relationship", RELATIONSHIP_LABELS.get(spec.relationship, spec.relationship)),
        (
            "Network",
            {"public": "Public network", "vpn": "VPN or Direct Connect"}.get(spec.network, spec.network),
        ),
        (
            "Service DB",
            f"{spec.source_engine} {spec.source.address}, user {spec.source.user}, TLS {spec.source.tls}",
        ),
        (
            "DR DB",
            f"{spec.target_engine} {spec.target.address}, user {spec.target.user}, TLS {spec.target.tls}",
        ),
        ("Databases", ", ".join(spec.databases) if spec.databases is not None else "all user databases"),
        ("Flow control", flow),
        ("Migrate definer to user", "Yes" if spec.migrate_definer else "No"),
        ("Start", "upon creation" if spec.start_at is None else f"{spec.start_at:%Y-%m-%d %H:%M}"),
        ("Tags", format_tags(spec.tags) or "—"),
        (
            "Progress",
            f"{record.progress_percent:.1f}% ({record.rows_copied:,} of {record.rows_total:,} rows)",
        ),
        ("Delay", format_delay(record.delay_seconds) or "—"),
        ("Checkpoint", checkpoint),
        ("Last error", record.last_error or "—"),
        ("Created", f"{record.created_at:%Y-%m-%d %H:%M:%S}"),
        ("Status changed", f"{record.status_changed_at:%Y-%m-%d %H:%M:%S}"),
    ]
    promote = record.extra.get("promote")
    if promote:
        rows.append(
            (
                "Promote",
                ", ".join(f"{k}: {v}" for k, v in promote.items())
                if isinstance(promote, dict)
                else str(promote),
            )
        )
    return rows


class TaskDetailsDialog(QDialog):
    """Every setting and the state of one task, and its DR log filtered by level."""

    def __init__(self, record: TaskRecord, parent: QWidget | None = None):
        super().__init__(parent)
        self.name = record.name
        self.setWindowTitle(f"Task Details — {record.name}")
        self.resize(820, 560)
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)

        basic = QWidget()
        self.form = QFormLayout(basic)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.values: dict[str, QLabel] = {}
        for label, _ in record_settings(record):
            value = _wrapped("")
            self.values[label] = value
            self.form.addRow(f"{label}:", value)
        self.tabs.addTab(basic, "Basic information")

        copy_page = QWidget()
        copy_layout = QVBoxLayout(copy_page)
        self.copy_summary = QLabel("")
        copy_layout.addWidget(self.copy_summary)
        self.copy_model = TableProgressModel(self)
        self.copy_view = QTableView()
        self.copy_view.setModel(self.copy_model)
        self.copy_view.verticalHeader().setVisible(False)
        self.copy_view.setAlternatingRowColors(True)
        self.copy_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        copy_layout.addWidget(self.copy_view, 1)
        self.tabs.addTab(copy_page, "Initial copy")

        log_page = QWidget()
        log_layout = QVBoxLayout(log_page)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Level:"))
        self.level_combo = QComboBox()
        self.level_combo.addItem("All levels", None)
        for level in LOG_LEVELS:
            self.level_combo.addItem(level.capitalize(), level)
        self.level_combo.currentIndexChanged.connect(
            lambda: self.log_proxy.set_level(self.level_combo.currentData())
        )
        bar.addWidget(self.level_combo)
        bar.addStretch(1)
        log_layout.addLayout(bar)
        self.log_model = LogTableModel(self)
        self.log_proxy = LogLevelProxy(self)
        self.log_proxy.setSourceModel(self.log_model)
        self.log_view = QTableView()
        self.log_view.setModel(self.log_proxy)
        self.log_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.log_view.verticalHeader().setVisible(False)
        self.log_view.setAlternatingRowColors(True)
        header = self.log_view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        log_layout.addWidget(self.log_view, 1)
        self.tabs.addTab(log_page, "DR log")

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
        self.set_record(record)

    def set_record(self, record: TaskRecord) -> None:
        for label, value in record_settings(record):
            widget = self.values.get(label)
            if widget is None:
                widget = _wrapped("")
                self.values[label] = widget
                self.form.addRow(f"{label}:", widget)
            widget.setText(value)
        self.values["Status"].setText(record.status.label)
        copy = record.extra.get("copy") or {}
        self.copy_model.set_tables(copy.get("tables", []))
        if copy:
            eta = copy.get("eta_seconds")
            self.copy_summary.setText(
                f"{record.rows_copied:,} of about {record.rows_total:,} rows, "
                f"{copy.get('rows_per_second', 0):,.0f} rows/s"
                + ("" if eta is None or record.phase != "initial" else f", about {eta:,.0f} s to go")
            )
        else:
            self.copy_summary.setText("The initial full copy has not started yet.")
        self.setWindowIcon(status_icon(record.status))

    def set_logs(self, entries: Iterable[DrLogEntry]) -> None:
        self.log_model.set_entries(entries)
        self.log_view.scrollToBottom()

    def append_log(self, entry: DrLogEntry) -> None:
        self.log_model.append(entry)

    def settings_text(self) -> str:
        return "\n".join(f"{label}: {w.text()}" for label, w in self.values.items())
