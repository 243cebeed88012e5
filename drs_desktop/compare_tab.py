"""The "Data comparison" tab of the task details: compare objects, row counts or values of both sides.

A compare runs off the GUI thread (progress and Cancel); every run is kept in the task's history, from
which a run loads for drill-down and export. Fix SQL is shown for review and runs only on confirmation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine import compare
from engine.compare import CompareProgress, CompareReport
from engine.status import Action, Status, why_not

from .rowmodel import RowTableModel
from .task_model import load_icon
from .taskman import TaskManager

LEVEL_CHOICES: tuple[tuple[str, str], ...] = (("Objects", "objects"), ("Row counts", "rows"), ("Values", "values"))
LEVEL_LABELS = {value: label for label, value in LEVEL_CHOICES}
OBJECT_STATUS_LABELS = {"consistent": "Consistent", "inconsistent": "Inconsistent", "missing": "Missing", "extra": "Extra"}
IDLE = "No compare running"
NO_SERVICE = "Comparing needs the task service (open the details from the main window)"
Index = QModelIndex | QPersistentModelIndex


def parse_scope(text: str) -> list[str] | None:
    """ "db.t1, db.t2" as a list (None: every table of the task); raises ValueError naming a bad entry."""
    tables = [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]
    for t in tables:
        if t.count(".") < 1 or t.startswith(".") or t.endswith("."):
            raise ValueError(f"{t!r}: write each table as db.table, comma-separated")
    return tables or None


def key_text(key: Any) -> str:
    return "" if key is None else json.dumps(key, default=str, ensure_ascii=False)


def verdict_of(report: CompareReport) -> str:
    if report.status == "cancelled":
        return "Cancelled"
    if report.status == "failed":
        return f"Failed: {report.error or 'see the DR log'}"
    if report.consistent:
        return "Consistent"
    n = len(report.differences)
    return f"{n} difference" + ("" if n == 1 else "s")


def run_result_text(run: dict[str, Any]) -> str:
    """The Result column of the history: what a stored run found."""
    summary = run.get("summary") or {}
    status = run.get("status")
    if status == "cancelled":
        return "Cancelled"
    if status == "failed":
        return "Failed" + (f": {summary['error']}" if summary.get("error") else "")
    if status != "finished" or not summary:
        return "Running" if run.get("finished_at") is None else str(status).capitalize()
    if summary.get("consistent"):
        return "Consistent"
    n = summary.get("differences", 0)
    return f"{n} difference" + ("" if n == 1 else "s")


class DifferenceModel(RowTableModel):
    """The differences of one report: where, what kind, which key, what differs."""

    COLUMNS = ("Table", "Kind", "Key", "Detail")

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        d = self.row_at(index)
        if d is None or not 0 <= index.column() < len(self.COLUMNS):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return (d.table, d.kind, key_text(d.key), d.detail)[index.column()]
        if role == Qt.ItemDataRole.UserRole:
            return (d.table, d.kind, d.key)  # what tests and callers compare against
        return None

    def set_differences(self, differences: list[Any]) -> None:
        self.beginResetModel()
        self.rows = list(differences)
        self.endResetModel()


class SummaryModel(RowTableModel):
    """Every object (object level) or every table with its row counts (rows and values levels)."""

    COLUMNS = ("Type", "Name", "Status", "Service", "DR", "Detail")

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_at(index)
        if row is None or not 0 <= index.column() < len(self.COLUMNS):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return row[index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (3, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def set_report(self, report: CompareReport | None) -> None:
        rows: list[tuple[str, ...]] = []
        if report is not None:
            for o in report.objects:
                # the CREATE statements are long: the Service/DR columns say only whether one exists
                rows.append((o.object_type, o.name, OBJECT_STATUS_LABELS.get(o.status, o.status.capitalize()), "", "", o.detail))
            for t in report.tables:
                counts = ["" if n is None else f"{n:,}" for n in (t.source_rows, t.target_rows)]
                rows.append(("table", t.table, t.status.capitalize(), *counts, t.note))
            for u in report.unverified:
                rows.append(("row", u, "Unverified", "", "", "changed during every recheck"))
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()


class RunModel(RowTableModel):
    """The task's compare runs, newest first: when, level, result, scope (last: it may be long)."""

    COLUMNS = ("When", "Level", "Result", "Scope")

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        run = self.row_at(index)
        if run is None or not 0 <= index.column() < len(self.COLUMNS):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            column = index.column()
            if column == 0:
                when = run["started_at"].replace("T", " ")
                return when if role == Qt.ItemDataRole.ToolTipRole else when[:16]  # seconds in the tooltip
            if column == 1:
                return LEVEL_LABELS.get(run["kind"], run["kind"])
            if column == 2:
                return run_result_text(run)
            return ", ".join((run.get("summary") or {}).get("scope") or []) or "—"
        if role == Qt.ItemDataRole.UserRole:
            return run["id"]
        return None

    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = sorted(runs, key=lambda r: r["id"], reverse=True)
        self.endResetModel()

    def row_of(self, run_id: int) -> int | None:
        return next((i for i, r in enumerate(self.rows) if r["id"] == run_id), None)


class _ProgressRelay(QObject):
    """Carries the compare thread's progress to the GUI thread (a queued signal)."""

    progress = Signal(object)


class FixSqlDialog(QDialog):
    """The fix statements of a run, read-only, for review (and copying into a client)."""

    def __init__(self, report: CompareReport, parent: QWidget | None = None):
        super().__init__(parent)
        statements = report.fix_statements()
        self.setWindowTitle(f"Fix SQL — compare #{report.run_id} of {report.task}")
        self.resize(760, 480)
        layout = QVBoxLayout(self)
        note = QLabel(
            f"{len(statements)} statement(s) that would make the DR side equal to the service side. "
            "They are shown for review only; nothing has been run."
        )
        note.setWordWrap(True)
        layout.addWidget(note)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlainText("".join(compare.fix_sql_text(s) for s in statements) or "-- nothing to fix\n")
        layout.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text.toPlainText()))
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class CompareTab(QWidget):
    """Start a compare of one task, watch it, read its result, browse and export the history, fix."""

    finished = Signal(object)  # the report of a run started here (None when it failed)
    reportShown = Signal(object)  # a report (new or loaded from the history) is in the results views
    historyLoaded = Signal()
    exported = Signal(str)  # path
    fixApplied = Signal(int)  # statements run on the DR side

    def __init__(
        self,
        name: str,
        service: Any | None,
        taskman: TaskManager | None,
        parent: QWidget | None = None,
        *,
        status: Status | None = None,
    ):
        super().__init__(parent)
        self.name = name
        self.service = service
        self.taskman = taskman if taskman is not None or service is None else TaskManager(self)
        self.status = status
        self.report: CompareReport | None = None
        self.chunk_rows = compare.CHUNK_ROWS
        self.parallel = compare.PARALLEL_DEFAULT
        self._cancel: threading.Event | None = None
        self._busy = False  # a compare or a fix is running
        self._load_generation = 0
        self._build()
        self._update_buttons()
        if service is not None:
            self.reload_history()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Level:"))
        self.level_combo = QComboBox()
        for label, value in LEVEL_CHOICES:
            self.level_combo.addItem(label, value)
        self.level_combo.setToolTip(
            "Objects: databases, tables, columns, indexes, views, routines, triggers, events\n"
            "Row counts: COUNT(*) of each table\nValues: checksums of key ranges, split down to the rows that differ"
        )
        controls.addWidget(self.level_combo)
        controls.addWidget(QLabel("Tables:"))
        self.scope_edit = QLineEdit()
        self.scope_edit.setPlaceholderText("db.table, ... (empty: every table of the task)")
        self.scope_edit.setClearButtonEnabled(True)
        controls.addWidget(self.scope_edit, 1)
        self.start_button = QPushButton(load_icon("start"), "Start")
        self.start_button.clicked.connect(self.start)
        controls.addWidget(self.start_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running compare after the chunk in progress")
        self.cancel_button.clicked.connect(self.cancel)
        controls.addWidget(self.cancel_button)
        layout.addLayout(controls)

        status_row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(IDLE)
        self.progress_bar.setTextVisible(True)
        status_row.addWidget(self.progress_bar, 1)
        self.verdict_icon = QLabel()
        self.verdict_icon.setFixedSize(QSize(16, 16))
        status_row.addWidget(self.verdict_icon)
        self.verdict_label = QLabel("No compare shown yet")
        self.verdict_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict_label.setMinimumWidth(260)
        status_row.addWidget(self.verdict_label, 1)
        layout.addLayout(status_row)

        # history on the left; the selected (or just finished) run's differences and summary on the right
        splitter = QSplitter(Qt.Orientation.Horizontal)
        history = QWidget()
        history_layout = QVBoxLayout(history)
        history_layout.setContentsMargins(0, 0, 0, 0)
        history_layout.addWidget(QLabel("History"))
        self.run_model = RunModel(self)
        self.history_view = self._table(self.run_model)
        self.history_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.history_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)  # the scope gets what is left
        self.history_view.selectionModel().currentRowChanged.connect(self._run_selected)
        history_layout.addWidget(self.history_view, 1)
        splitter.addWidget(history)

        results = QSplitter(Qt.Orientation.Vertical)
        self.differences_model = DifferenceModel(self)
        self.results_view = self._table(self.differences_model)
        header = self.results_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in ((0, 130), (1, 70), (2, 110)):
            self.results_view.setColumnWidth(column, width)
        results.addWidget(self._titled("Differences", self.results_view))
        self.summary_model = SummaryModel(self)
        self.summary_view = self._table(self.summary_model)
        header = self.summary_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in ((0, 55), (1, 140), (2, 85), (3, 60), (4, 60)):
            self.summary_view.setColumnWidth(column, width)
        self.summary_title = QLabel("Objects and tables")
        results.addWidget(self._titled(self.summary_title, self.summary_view))
        splitter.addWidget(results)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([370, 530])
        layout.addWidget(splitter, 1)

        buttons = QHBoxLayout()
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(lambda: self._ask_export("CSV files (*.csv)", "csv", self.export_csv))
        self.html_button = QPushButton("Export HTML…")
        self.html_button.clicked.connect(lambda: self._ask_export("HTML files (*.html)", "html", self.export_html))
        self.fix_button = QPushButton("Show fix SQL…")
        self.fix_button.clicked.connect(self.show_fix_sql)
        self.apply_button = QPushButton("Apply fix…")
        self.apply_button.clicked.connect(lambda: self.apply_fix())
        for button in (self.csv_button, self.html_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.fix_button)
        buttons.addWidget(self.apply_button)
        layout.addLayout(buttons)

    @staticmethod
    def _table(model: RowTableModel) -> QTableView:
        view = QTableView()
        view.setModel(model)
        view.verticalHeader().setVisible(False)
        view.verticalHeader().setDefaultSectionSize(24)
        view.setAlternatingRowColors(True)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setWordWrap(False)
        return view

    @staticmethod
    def _titled(title: str | QLabel, view: QWidget) -> QWidget:
        box = QWidget()
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        box_layout.addWidget(title if isinstance(title, QLabel) else QLabel(title))
        box_layout.addWidget(view, 1)
        return box

    # -- state -------------------------------------------------------------------------------------
    def set_status(self, status: Status) -> None:
        """The task's status (the details dialog passes each refresh): it says whether a compare may run."""
        self.status = status
        self._update_buttons()

    def start_blocked_reason(self) -> str | None:
        if self.service is None:
            return NO_SERVICE
        if self.status is not None:
            return why_not(Action.COMPARE, self.status)
        return None

    def _update_buttons(self) -> None:
        reason = self.start_blocked_reason()
        running = self._cancel is not None
        self.start_button.setEnabled(reason is None and not self._busy)
        self.start_button.setToolTip(reason or ("A compare is running" if running else "Compare the service and DR sides"))
        self.cancel_button.setEnabled(running)
        self.level_combo.setEnabled(not self._busy)
        self.scope_edit.setEnabled(not self._busy)
        has_report = self.report is not None
        for button in (self.csv_button, self.html_button):
            button.setEnabled(has_report)
        fixes = len(self.report.fix_statements()) if self.report is not None else 0
        self.fix_button.setEnabled(fixes > 0)
        self.fix_button.setToolTip(f"{fixes} statement(s), for review" if fixes else "The shown run has nothing to fix")
        self.apply_button.setEnabled(fixes > 0 and reason is None and not self._busy)
        self.apply_button.setToolTip(
            reason if fixes and reason else (f"Run {fixes} statement(s) on the DR side (asks first)" if fixes else "The shown run has nothing to fix")
        )

    def level(self) -> str:
        return str(self.level_combo.currentData())

    def set_level(self, level: str) -> None:
        self.level_combo.setCurrentIndex(self.level_combo.findData(level))

    def _set_verdict(self, text: str, icon: str | None) -> None:
        # the state shows as a coloured status dot next to plain text in the palette's own colours,
        # so it reads in light and dark themes alike
        self.verdict_label.setText(text)
        self.verdict_label.setToolTip(text)
        font = QFont(self.verdict_label.font())
        font.setBold(icon is not None)
        self.verdict_label.setFont(font)
        if icon:
            self.verdict_icon.setPixmap(load_icon(icon).pixmap(16, 16))
        else:
            self.verdict_icon.clear()

    def _show_verdict(self, report: CompareReport) -> None:
        icon = {"cancelled": "status-amber", "failed": "status-red"}.get(report.status)
        if icon is None:
            icon = "status-green" if report.consistent else "status-red"
        when = f"#{report.run_id}, {LEVEL_LABELS.get(report.level, report.level)}, {report.started_at:%Y-%m-%d %H:%M:%S}"
        self._set_verdict(f"{verdict_of(report)}  ({when})", icon)

    def verdict(self) -> str:
        """The verdict alone (Consistent / N differences / Cancelled / Failed: ...), without the run's label."""
        return self.verdict_label.text().split("  (")[0]

    def show_report(self, report: CompareReport) -> None:
        self.report = report
        self.differences_model.set_differences(report.differences)
        self.summary_model.set_report(report)
        self.summary_title.setText(
            "Objects" if report.level == "objects" else "Tables: service rows vs DR rows"
        )
        self._show_verdict(report)
        self._update_buttons()
        self.reportShown.emit(report)

    # -- running a compare -------------------------------------------------------------------------
    def _run(self, fn: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[BaseException], None]) -> None:
        """Run off the GUI thread; the callbacks are skipped once this tab is gone (dialog closed)."""
        assert self.taskman is not None
        self.taskman.run_for(self, fn, on_done, on_error)

    def start(self) -> None:
        if self._busy or self.start_blocked_reason():
            return
        try:
            tables = parse_scope(self.scope_edit.text())
        except ValueError as exc:
            self._set_verdict(f"Failed: {exc}", "status-red")
            return
        svc, name, level = self.service, self.name, self.level()
        chunk_rows, parallel = self.chunk_rows, self.parallel
        cancel = threading.Event()
        self._cancel = cancel
        self._busy = True
        # a closed dialog stops its compare (the lambda holds the event, not the deleted tab)
        self.destroyed.connect(lambda *_: cancel.set())
        relay = _ProgressRelay()  # no parent: it lives on the GUI thread for as long as the job holds it
        relay.progress.connect(self._on_progress)
        self.progress_bar.setRange(0, 0)  # busy until the first chunk reports
        self.progress_bar.setFormat("Starting…")
        self._set_verdict(f"{LEVEL_LABELS[level]} compare running…", None)
        self._update_buttons()

        def work() -> CompareReport:
            return compare.run_compare(
                svc, name, level, tables, on_progress=relay.progress.emit, cancel=cancel,
                parallel=parallel, chunk_rows=chunk_rows,
            )  # fmt: skip

        def done(report: CompareReport) -> None:
            relay.deleteLater()
            self._finish()
            self.show_report(report)
            self.reload_history(select=report.run_id)
            self.finished.emit(report)

        def failed(exc: BaseException) -> None:
            relay.deleteLater()
            self._finish()
            self._set_verdict(f"Failed: {exc}", "status-red")
            self.reload_history()
            self.finished.emit(None)

        self._run(work, done, failed)

    def _finish(self) -> None:
        self._cancel = None
        self._busy = False
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(IDLE)
        self._update_buttons()

    def _on_progress(self, progress: CompareProgress) -> None:
        if self._cancel is None:
            return  # a late report of a run already finished
        self.progress_bar.setRange(0, max(1, progress.total))
        self.progress_bar.setValue(progress.done)
        # the percentage is spelled out: a "%p" or "%v" inside a table name must stay as it is
        current = progress.current.replace("%", "%\u200b")
        self.progress_bar.setFormat(f"{int(progress.percent)}%  {current}")

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self.progress_bar.setFormat("Cancelling…")

    def is_running(self) -> bool:
        return self._cancel is not None

    # -- history -------------------------------------------------------------------------------------
    def reload_history(self, select: int | None = None) -> None:
        """Read the task's runs (off the GUI thread); `select` a run without reloading it (it is shown)."""
        if self.service is None:
            return
        svc, name = self.service, self.name

        def loaded(runs: list[dict[str, Any]]) -> None:
            keep = select if select is not None else self.selected_run_id()
            view = self.history_view
            view.selectionModel().blockSignals(True)  # re-selecting is not a drill-down request
            self.run_model.set_runs(runs)
            row = self.run_model.row_of(keep) if keep is not None else None
            if row is not None:
                view.setCurrentIndex(self.run_model.index(row, 0))
                view.selectRow(row)
            view.selectionModel().blockSignals(False)
            self.historyLoaded.emit()

        self._run(lambda: compare.list_runs(svc, name), loaded, lambda exc: self._set_verdict(f"Cannot read the history: {exc}", "status-red"))

    def selected_run_id(self) -> int | None:
        index = self.history_view.currentIndex()
        return self.run_model.index(index.row(), 0).data(Qt.ItemDataRole.UserRole) if index.isValid() else None

    def _run_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        run_id = current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None
        if run_id is not None and (self.report is None or self.report.run_id != run_id):
            self.load_run(run_id)

    def load_run(self, run_id: int) -> None:
        """Drill down: load a stored run (off the GUI thread) into the results views."""
        if self.service is None:
            return
        svc, name = self.service, self.name
        self._load_generation += 1
        generation = self._load_generation

        def loaded(report: CompareReport) -> None:
            if generation == self._load_generation:  # the newest selection wins
                self.show_report(report)

        self._set_verdict(f"Loading run #{run_id}…", None)
        self._run(lambda: compare.load_report(svc, name, run_id), loaded, lambda exc: self._set_verdict(f"Failed: {exc}", "status-red"))

    # -- export -----------------------------------------------------------------------------------------
    def _ask_export(self, filter_: str, suffix: str, export: Callable[[str], None]) -> None:
        if self.report is None:
            return
        default = str(Path.home() / f"{self.name}-compare-{self.report.run_id or 'run'}.{suffix}")
        path, _ = QFileDialog.getSaveFileName(self, "Export compare run", default, filter_)
        if path:
            export(path)

    def export_csv(self, path: str | Path) -> None:
        """Write the shown run as CSV (off the GUI thread); `exported` says when it is written."""
        self._export(compare.export_csv, path)

    def export_html(self, path: str | Path) -> None:
        self._export(compare.export_html, path)

    def _export(self, write: Callable[[CompareReport, str | Path], None], path: str | Path) -> None:
        report = self.report
        if report is None:
            return
        self._run(
            lambda: write(report, path),
            lambda _: self.exported.emit(str(path)),
            lambda exc: QMessageBox.warning(self, "Export", f"Cannot write {path}:\n{exc}"),
        )

    # -- fix ----------------------------------------------------------------------------------------------
    def show_fix_sql(self) -> FixSqlDialog | None:
        if self.report is None:
            return None
        dialog = FixSqlDialog(self.report, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.fix_dialog = dialog
        return dialog

    def _ask(self, title: str, text: str, default_yes: bool) -> bool:
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        default = QMessageBox.StandardButton.Yes if default_yes else QMessageBox.StandardButton.No
        return QMessageBox.question(self, title, text, buttons, default) == QMessageBox.StandardButton.Yes

    def apply_fix(self) -> bool:
        """Run the shown run's fix statements on the DR side, after a confirmation whose default is No."""
        report = self.report
        if report is None or self._busy or self.start_blocked_reason():
            return False
        statements = report.fix_statements()
        if not statements:
            return False
        n = len(statements)
        question = (
            f"Run {n} statement{'s' if n != 1 else ''} on the DR side of task {self.name}?\n\n"
            f"They change the DR database (the fix of compare #{report.run_id}, {verdict_of(report).lower()}) "
            "in one transaction. Review them with Show fix SQL first."
        )
        if not self._ask("Apply fix", question, default_yes=False):
            return False
        svc, name = self.service, self.name
        self._busy = True
        self._set_verdict(f"Applying {n} fix statement(s)…", None)
        self._update_buttons()

        def applied(done: int) -> None:
            self._busy = False
            self._set_verdict(f"{done} fix statement(s) applied to the DR side", "status-green")
            self._update_buttons()
            self.fixApplied.emit(done)
            self.reload_history()
            again = f"{done} statement(s) applied. Run the {LEVEL_LABELS[report.level].lower()} compare again to check the DR side?"
            if self._ask("Apply fix", again, default_yes=True):
                self.set_level(report.level)
                self.start()

        def failed(exc: BaseException) -> None:
            self._busy = False
            self._set_verdict(f"Failed: {exc}", "status-red")
            self._update_buttons()

        self._run(lambda: compare.apply_fix(svc, name, statements), applied, failed)
        return True
