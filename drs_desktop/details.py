"""The task details dialog: settings and state, the initial copy, monitoring charts and the DR log.

Each tab is built in its own method (and the larger ones live in their own modules: drlog_tab,
monitoring_tab), so that a new tab is one more `_build_..._tab()` call. Given the store and the window's
TaskManager, the dialog reads its DR log and samples by itself, off the GUI thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.store import DrLogEntry, Store, TaskRecord
from engine.tasks import TaskService

from .compare_tab import CompareTab
from .drlog_tab import DrLogTab
from .monitoring_tab import MonitoringTab
from .rowmodel import RowTableModel
from .task_model import RELATIONSHIP_LABELS, format_delay, format_tags, status_icon
from .taskman import TaskManager


def _value_label() -> QLabel:
    label = QLabel("")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


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
    """Every setting and the state of one task, its initial copy, its monitoring charts and its DR log."""

    def __init__(
        self,
        record: TaskRecord,
        parent: QWidget | None = None,
        *,
        store: Store | None = None,
        taskman: TaskManager | None = None,
        service: TaskService | None = None,
    ):
        super().__init__(parent)
        self.name = record.name
        self.store = store
        self.taskman = taskman if taskman is not None or store is None else TaskManager(self)
        self.setWindowTitle(f"Task Details — {record.name}")
        self.resize(960, 640)
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)
        self._build_basic_tab(record)
        self._build_copy_tab()
        self._build_monitoring_tab()
        self._build_log_tab()
        # compare needs the task service (passwords, both servers); without one the tab says so
        self.compare_tab = CompareTab(self.name, service, self.taskman, status=record.status)
        self.tabs.addTab(self.compare_tab, "Data comparison")

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
        self.set_record(record)
        self.log_tab.reload()

    # -- tabs ------------------------------------------------------------------------------------
    def _build_basic_tab(self, record: TaskRecord) -> None:
        page = QWidget()
        self.form = QFormLayout(page)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.values: dict[str, QLabel] = {}
        for label, _ in record_settings(record):
            value = _value_label()
            self.values[label] = value
            self.form.addRow(f"{label}:", value)
        scroll = QScrollArea()  # many settings; the dialog may be small
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(page)
        self.basic_tab = scroll
        self.tabs.addTab(scroll, "Basic information")

    def _build_copy_tab(self) -> None:
        page = QWidget()
        copy_layout = QVBoxLayout(page)
        self.copy_summary = QLabel("")
        copy_layout.addWidget(self.copy_summary)
        self.copy_model = TableProgressModel(self)
        self.copy_view = QTableView()
        self.copy_view.setModel(self.copy_model)
        self.copy_view.verticalHeader().setVisible(False)
        self.copy_view.setAlternatingRowColors(True)
        self.copy_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        copy_layout.addWidget(self.copy_view, 1)
        self.copy_tab = page
        self.tabs.addTab(page, "Initial copy")

    def _build_monitoring_tab(self) -> None:
        self.monitoring_tab = MonitoringTab(self.name, self.store, self.taskman)
        self.tabs.addTab(self.monitoring_tab, "Monitoring")

    def _build_log_tab(self) -> None:
        self.log_tab = DrLogTab(self.name, self.store, self.taskman)
        # The names the dialog had before the tab was its own widget (tests and the window use them).
        self.log_model = self.log_tab.model
        self.log_proxy = self.log_tab.proxy
        self.log_view = self.log_tab.view
        self.level_combo = self.log_tab.level_combo
        self.tabs.addTab(self.log_tab, "DR log")

    def show_tab(self, widget: QWidget) -> None:
        self.tabs.setCurrentWidget(widget)

    # -- updates -----------------------------------------------------------------------------------
    def set_record(self, record: TaskRecord) -> None:
        for label, value in record_settings(record):
            widget = self.values.get(label)
            if widget is None:
                widget = _value_label()
                self.values[label] = widget
                self.form.addRow(f"{label}:", widget)
            widget.setText(value)
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
        self.compare_tab.set_status(record.status)

    def set_logs(self, entries: Iterable[DrLogEntry]) -> None:
        self.log_tab.set_entries(entries)

    def append_log(self, entry: DrLogEntry) -> None:
        self.log_tab.append(entry)

    def settings_text(self) -> str:
        return "\n".join(f"{label}: {w.text()}" for label, w in self.values.items())
