"""The task details dialog: settings and state, the initial copy, monitoring charts and the DR log.

Each tab is built in its own method (and the larger ones live in their own modules: drlog_tab,
monitoring_tab), so that a new tab is one more `_build_..._tab()` call. Given the store and the window's
TaskManager, the dialog reads its DR log and samples by itself, off the GUI thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
from .task_model import RELATIONSHIP_LABELS, format_delay, format_tags, shown_delay, status_icon
from .taskman import TaskManager


def _value_label() -> QLabel:
    label = QLabel("")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


@dataclass(frozen=True)
class CopyTotals:
    """The initial copy as the details show it, from one source so its numbers add up: rows are the
    sums of the per-table rows of the task's copy summary; the percentage is of the data by size
    (bytes, as the engine measures progress: a table of wide rows weighs more than its row count)."""

    rows_done: int
    rows_estimated: int
    percent: float  # of the data, by size
    finished: bool


def copy_totals(record: TaskRecord) -> CopyTotals:
    tables = (record.extra.get("copy") or {}).get("tables") or []
    # over once the runner wrote 100 % (after indexes, views, routines) or the task streams
    finished = record.phase in ("incremental", "done") or record.progress_percent >= 100.0
    if tables:
        rows_done = sum(int(t.get("rows_done") or 0) for t in tables)
        rows_estimated = sum(int(t.get("rows_estimated") or 0) for t in tables)
    else:
        rows_done, rows_estimated = record.rows_copied, record.rows_total
    percent = 100.0 if finished else record.progress_percent
    return CopyTotals(rows_done, max(rows_done, rows_estimated), percent, finished)


def table_percent(row: dict[str, Any]) -> float:
    """One table's share copied, by its rows (a finished table is 100 % whatever its estimate said)."""
    if row.get("done"):
        return 100.0
    estimated = int(row.get("rows_estimated") or 0)
    return min(99.9, 100.0 * int(row.get("rows_done") or 0) / estimated) if estimated else 0.0


class TableProgressModel(RowTableModel):
    """Per-table progress of the initial full copy (from the task's stored copy summary)."""

    COLUMNS = ("Database", "Table", "Rows copied", "Rows (estimated)", "State", "Progress")

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        row = self.row_at(index)
        if row is None:
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (2, 3, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        state = "Done" if row.get("done") else ("Copying" if row.get("rows_done") else "Waiting")
        cells = (
            row["database"],
            row["table"],
            f"{row['rows_done']:,}",
            f"{row['rows_estimated']:,}",
            state,
            f"{table_percent(row):.1f} %",
        )
        return cells[index.column()]

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
        ("Progress", progress_text(copy_totals(record))),
        # as the task table shows it: engine.health.effective_delay, grown with the clock while nobody
        # applies (paused, failed, runner gone)
        ("Delay", format_delay(shown_delay(record)) or "—"),
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


def progress_text(totals: CopyTotals) -> str:
    about = "" if totals.finished else "about "
    return (
        f"{totals.percent:.1f} % of the data by size "
        f"({totals.rows_done:,} of {about}{totals.rows_estimated:,} rows copied)"
    )


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
            # the same totals as the Basic information tab, and the sums of the rows below
            totals = copy_totals(record)
            eta = copy.get("eta_seconds")
            self.copy_summary.setText(
                progress_text(totals)
                + f", {copy.get('rows_per_second', 0):,.0f} rows/s"
                + ("" if eta is None or totals.finished else f", about {eta:,.0f} s to go")
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
