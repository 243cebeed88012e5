"""The "DR log" tab of the task details: filters by level, time range and text, live updates, CSV export.

Entries come from the task store, read off the GUI thread: once per filter change (so that the store,
not only the rows already loaded, answers a search) and every few seconds while the tab is visible
(entries written by other processes, e.g. `drs run`). Entries from this process's workers arrive
through `append()` as they are logged; an entry seen twice (signal and poll) is shown once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from drs_desktop.colours import semantic_colour
from engine.store import LOG_LEVELS, DrLogEntry, Store

from .rowmodel import RowTableModel
from .taskman import TaskManager

POLL_MS = 3000
SEARCH_DEBOUNCE_MS = 300
LOAD_LIMIT = 5000  # newest entries loaded per filter change; the store keeps at most 20,000 per task
MAX_ROWS = 10_000  # live appends beyond this drop the oldest rows, so a dialog open for days stays small
TIME_RANGES: tuple[tuple[str, int | None], ...] = (
    ("All time", None),
    ("Last 15 minutes", 15 * 60),
    ("Last hour", 3600),
    ("Last 24 hours", 86400),
    ("Last 7 days", 7 * 86400),
)
LEVEL_COLOURS = {"warning": "warning", "alarm": "alarm", "error": "error"}  # level: semantic colour role


class LogTableModel(RowTableModel):
    """DR log entries: time, level, component, message. Knows every entry it holds (no duplicates)."""

    COLUMNS = ("Time", "Level", "Component", "Description")

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._seen: set[DrLogEntry] = set()

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        entry = self.row_at(index)
        if entry is None or not 0 <= index.column() < len(self.COLUMNS):
            return None
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if column == 0:
                return f"{entry.time:%Y-%m-%d %H:%M:%S}"
            if column == 1:
                return entry.level.capitalize()
            if column == 2:
                return entry.component
            return entry.message
        if role == Qt.ItemDataRole.ForegroundRole and column == 1:
            role_name = LEVEL_COLOURS.get(entry.level)
            return semantic_colour(role_name) if role_name else None
        if role == Qt.ItemDataRole.UserRole:
            return entry.level
        return None

    def set_entries(self, entries: Iterable[DrLogEntry]) -> None:
        self.beginResetModel()
        self.rows = []
        self._seen = set()
        for entry in entries:
            if entry not in self._seen:
                self._seen.add(entry)
                self.rows.append(entry)
        self.endResetModel()

    def append(self, entry: DrLogEntry) -> bool:
        return self.extend([entry]) == 1

    def extend(self, entries: Iterable[DrLogEntry]) -> int:
        """Append the entries not shown yet; returns how many were new."""
        fresh: list[DrLogEntry] = []
        for entry in entries:
            if entry not in self._seen:
                self._seen.add(entry)
                fresh.append(entry)
        if not fresh:
            return 0
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
        self.rows.extend(fresh)
        self.endInsertRows()
        excess = len(self.rows) - MAX_ROWS
        if excess > 0:
            self.beginRemoveRows(QModelIndex(), 0, excess - 1)
            for entry in self.rows[:excess]:
                self._seen.discard(entry)
            del self.rows[:excess]
            self.endRemoveRows()
        return len(fresh)

    def newest_time(self) -> datetime | None:
        return max((e.time for e in self.rows), default=None)


class LogFilterProxy(QSortFilterProxyModel):
    """Level (exact), time (since) and text (message or component, any case) filters over the log."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._level: str | None = None
        self._since: datetime | None = None
        self._text = ""

    def _change(self, apply: Callable[[], None]) -> None:
        self.beginFilterChange()
        apply()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_level(self, level: str | None) -> None:
        self._change(lambda: setattr(self, "_level", level))

    def set_since(self, since: datetime | None) -> None:
        self._change(lambda: setattr(self, "_since", since))

    def set_text(self, text: str) -> None:
        self._change(lambda: setattr(self, "_text", text.strip().lower()))

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        entry = model.rows[source_row] if isinstance(model, LogTableModel) else None
        if entry is None:
            return True
        if self._level is not None and entry.level != self._level:
            return False
        if self._since is not None and entry.time < self._since:
            return False
        return not self._text or self._text in entry.message.lower() or self._text in entry.component.lower()


LogLevelProxy = LogFilterProxy  # the name the details dialog used before the time and text filters


class DrLogTab(QWidget):
    """The DR log of one task. With a store it loads and polls by itself; without, callers feed it."""

    loaded = Signal()  # a load from the store (filter change) is shown
    polled = Signal(int)  # a poll finished; how many new entries it added
    exported = Signal(str, int)  # path, entries written
    exportFailed = Signal(str)  # message

    def __init__(
        self,
        name: str,
        store: Store | None = None,
        taskman: TaskManager | None = None,
        parent: QWidget | None = None,
        *,
        poll_ms: int = POLL_MS,
    ):
        super().__init__(parent)
        self.name = name
        self.store = store
        self.taskman = taskman if taskman is not None or store is None else TaskManager(self)
        self._generation = 0  # bumped per load, so a poll answered after a filter change is dropped
        self._polling = False
        self.last_export: tuple[str, int] | None = None

        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Level:"))
        self.level_combo = QComboBox()
        self.level_combo.setAccessibleName("Log level")
        self.level_combo.addItem("All levels", None)
        for level in LOG_LEVELS:
            self.level_combo.addItem(level.capitalize(), level)
        bar.addWidget(self.level_combo)
        bar.addSpacing(8)
        bar.addWidget(QLabel("Time:"))
        self.time_combo = QComboBox()
        self.time_combo.setAccessibleName("Time range")
        for label, seconds in TIME_RANGES:
            self.time_combo.addItem(label, seconds)
        bar.addWidget(self.time_combo)
        bar.addSpacing(8)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search messages")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setAccessibleName("Search the DR log")
        self.search_edit.setMinimumWidth(220)
        bar.addWidget(self.search_edit, 1)
        self.count_label = QLabel("")
        self.count_label.setObjectName("logCount")
        bar.addWidget(self.count_label)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the entries matching the filters as a CSV file")
        self.export_button.clicked.connect(self.choose_export_file)
        bar.addWidget(self.export_button)
        layout.addLayout(bar)

        self.model = LogTableModel(self)
        self.proxy = LogFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        header = self.view.horizontalHeader()
        for column in range(3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        layout.addWidget(self.view, 1)

        self.search_timer = QTimer(self)
        self.search_timer.setSingleShot(True)
        self.search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self.search_timer.timeout.connect(self.reload)
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(poll_ms)
        self.poll_timer.timeout.connect(self.poll)

        self.level_combo.currentIndexChanged.connect(self._filters_changed)
        self.time_combo.currentIndexChanged.connect(self._filters_changed)
        self.search_edit.textChanged.connect(self._search_changed)
        self.proxy.rowsInserted.connect(self._rows_shown)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        self._update_count()

    # -- filters ---------------------------------------------------------------------------------
    def level(self) -> str | None:
        return self.level_combo.currentData()

    def since(self) -> datetime | None:
        seconds = self.time_combo.currentData()
        return None if seconds is None else datetime.now() - timedelta(seconds=seconds)

    def text(self) -> str:
        return self.search_edit.text().strip()

    def _filters_changed(self) -> None:
        # The proxy answers at once from the loaded rows; the store then adds older matches.
        self.proxy.set_level(self.level())
        self.proxy.set_since(self.since())
        self.proxy.set_text(self.text())
        self.reload()

    def _search_changed(self) -> None:
        self.proxy.set_text(self.text())
        self.search_timer.start()

    # -- loading -------------------------------------------------------------------------------------
    def _run(self, fn: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[BaseException], None]) -> None:
        """Run off the GUI thread; the callbacks are skipped once this tab is gone (dialog closed)."""
        assert self.taskman is not None
        self.taskman.run_for(self, fn, on_done, on_error)

    def reload(self) -> None:
        """Load the newest entries matching the filters from the store (off the GUI thread)."""
        self.search_timer.stop()
        if self.store is None:
            return
        self._generation += 1
        generation = self._generation
        store, name = self.store, self.name
        level, since, text = self.level(), self.since(), self.text() or None

        def shown(entries: list[DrLogEntry]) -> None:
            if generation == self._generation:
                self.set_entries(entries)
                self.loaded.emit()

        self._run(
            lambda: store.logs(name, level=level, since=since, text=text, limit=LOAD_LIMIT),
            shown,
            lambda exc: self.count_label.setText(f"Cannot read the DR log: {exc}"),
        )

    def poll(self) -> None:
        """Pick up entries other processes wrote since the newest one shown."""
        if self.store is None or self._polling or not self.isVisible():
            return
        self._polling = True
        generation = self._generation
        store, name = self.store, self.name
        level, text = self.level(), self.text() or None
        newest, since = self.model.newest_time(), self.since()
        if newest is not None and (since is None or newest > since):
            since = newest

        def arrived(entries: list[DrLogEntry]) -> None:
            self._polling = False
            added = self.model.extend(entries) if generation == self._generation else 0
            self.polled.emit(added)

        def failed(_exc: BaseException) -> None:
            self._polling = False  # the next tick tries again; a locked store is usually brief

        self._run(lambda: store.logs(name, level=level, since=since, text=text, limit=LOAD_LIMIT), arrived, failed)

    def set_entries(self, entries: Iterable[DrLogEntry]) -> None:
        self.model.set_entries(entries)
        self.view.scrollToBottom()

    def append(self, entry: DrLogEntry) -> None:
        self.model.append(entry)

    def _rows_shown(self) -> None:
        # Follow new entries only when the user is already at the bottom (not while reading older ones).
        bar = self.view.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        self._update_count()
        if at_bottom:
            self.view.scrollToBottom()

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(f"{shown:,} entries" if shown == total else f"{shown:,} of {total:,} entries")

    # -- export ------------------------------------------------------------------------------------
    def choose_export_file(self) -> None:
        default = str(Path.home() / f"{self.name}-dr-log-{datetime.now():%Y%m%d-%H%M}.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export DR log", default, "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> None:
        """Write every entry matching the filters (from the store, not only those loaded) to a CSV file.

        Emits `exported(path, count)` or `exportFailed(message)`.
        """
        from engine.drlog import export_logs_csv

        level, since, text = self.level(), self.since(), self.text() or None
        if self.store is None:
            rows = [self.model.rows[self.proxy.mapToSource(self.proxy.index(r, 0)).row()] for r in range(self.proxy.rowCount())]
            self._exported(path, export_logs_csv(rows, path))
            return
        store, name = self.store, self.name
        self.export_button.setEnabled(False)
        self._run(
            lambda: export_logs_csv(store.logs(name, level=level, since=since, text=text, limit=None), path),
            lambda count: self._exported(path, count),
            self._export_failed,
        )

    def _exported(self, path: str, count: int) -> None:
        self.export_button.setEnabled(True)
        self.last_export = (path, count)
        self.count_label.setText(f"{count:,} entries exported to {Path(path).name}")
        self.exported.emit(path, count)

    def _export_failed(self, exc: BaseException) -> None:
        self.export_button.setEnabled(True)
        message = f"Cannot export the DR log: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
        self.count_label.setText(message)
        self.exportFailed.emit(message)

    # -- live updates only while visible -------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.store is not None:
            self.poll_timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        self.poll_timer.stop()
        super().hideEvent(event)
