"""Page 4, Check Task: runs engine.precheck.run_prechecks on a TaskManager thread and shows each item.

Next only at a 100% success rate: every item passed, and every item that needs confirmation ticked by
the user. Progress comes from the worker thread through a queued signal, never by touching a widget.
Failed items are listed first, then those needing confirmation, then the passed ones, so what blocks
the task is what the DBA sees.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from drs_desktop.colours import semantic_colour
from drs_desktop.rowmodel import RowTableModel
from drs_desktop.wizard.common import (
    ERROR_COLOUR,
    OK_COLOUR,
    WARN_COLOUR,
    StatusLabel,
    check_state,
    error_text,
    guarded,
    is_checked,
)
from engine.errors import SpecInvalid
from engine.spec import parse_spec

RESULT_TEXT = {"passed": "Passed", "failed": "Failed", "confirm": "Needs confirmation"}
RESULT_COLOUR = {"passed": OK_COLOUR, "failed": ERROR_COLOUR, "confirm": WARN_COLOUR}
# Display order of the results: what blocks first; the engine's order is kept within each group.
RESULT_ORDER = {"failed": 0, "confirm": 1, "passed": 2}


def blocking_first(results: list[Any]) -> list[Any]:
    return sorted(results, key=lambda r: RESULT_ORDER.get(r.result, 1))  # sorted() is stable


def counts_text(results: list[Any]) -> str:
    """ "2 failed, 1 warning, 20 passed" (a warning is an item that needs the user's confirmation)."""
    failed = sum(1 for r in results if r.result == "failed")
    passed = sum(1 for r in results if r.result == "passed")
    warnings = len(results) - failed - passed
    return f"{failed} failed, {warnings} warning{'' if warnings == 1 else 's'}, {passed} passed"


Index = QModelIndex | QPersistentModelIndex


class PrecheckModel(RowTableModel):
    """Pre-check results; the first column is the user's confirmation for "confirm" items."""

    COLUMNS = ("Confirmed", "Check item", "Result", "Reason", "How to fix")
    confirmationsChanged = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.confirmed: set[int] = set()

    @property
    def results(self) -> list[Any]:
        return self.rows

    def set_results(self, results: list[Any]) -> None:
        self.beginResetModel()
        self.rows = blocking_first(list(results))
        self.confirmed = set()
        self.endResetModel()
        self.confirmationsChanged.emit()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.results):
            return None
        r = self.results[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.CheckStateRole and col == 0 and r.result == "confirm":
            return check_state(index.row() in self.confirmed)
        if role == Qt.ItemDataRole.DisplayRole:
            return ("", r.item, RESULT_TEXT.get(r.result, r.result), r.reason, r.fix)[col]
        if role == Qt.ItemDataRole.ToolTipRole and col in (3, 4):
            return (r.reason, r.fix)[col - 3]
        if role == Qt.ItemDataRole.ForegroundRole and col == 2:
            role_name = RESULT_COLOUR.get(r.result)
            return QBrush(semantic_colour(role_name)) if role_name else None
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == 0 and self.results[index.row()].result == "confirm":
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.CheckStateRole or index.column() != 0:
            return False
        if self.results[index.row()].result != "confirm":
            return False
        if is_checked(value):
            self.confirmed.add(index.row())
        else:
            self.confirmed.discard(index.row())
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
        self.confirmationsChanged.emit()
        return True

    # -- the page's questions -------------------------------------------------------------------
    def settled(self) -> int:
        """Items that count as successful: passed, or confirmed by the user."""
        return sum(
            1
            for i, r in enumerate(self.results)
            if r.result == "passed" or (r.result == "confirm" and i in self.confirmed)
        )

    def success_rate(self) -> int:
        if not self.results:
            return 0
        return int(100 * self.settled() / len(self.results))  # floor: 99.9% is not 100%

    def row_of(self, item_text: str) -> int:
        return next((i for i, r in enumerate(self.results) if r.item == item_text), -1)

    def first_row_of(self, result: str) -> int:
        return next((i for i, r in enumerate(self.results) if r.result == result), -1)


class ProgressRelay(QObject):
    """Lives on the GUI thread; the worker's on_progress emits here, Qt queues it to the GUI."""

    progress = Signal(int, int, str)


class CheckPage(QWizardPage):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTitle("Check Task")
        self.setSubTitle(
            "Pre-checks on both servers. Every item must pass; items marked for confirmation need your tick."
        )
        self.model = PrecheckModel(self)
        self.relay = ProgressRelay(self)
        self.running = False
        self.run_id = 0
        self.stop_event: threading.Event | None = None
        self.checked_key: Any = None

        top = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.current_label = QLabel("")
        self.again_button = QPushButton("&Check Again")
        top.addWidget(self.progress, 1)
        top.addWidget(self.again_button)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setWordWrap(True)
        self.view.verticalHeader().setVisible(False)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.view.setColumnWidth(1, 210)
        self.view.setTabKeyNavigation(False)
        self.rate_label = QLabel("Success rate: –")
        font = self.rate_label.font()
        font.setBold(True)
        self.rate_label.setFont(font)
        self.counts_label = QLabel("")
        self.counts_label.setObjectName("precheckCounts")
        self.counts_label.setToolTip("A warning is an item that needs your confirmation (tick its box)")
        self.status = StatusLabel()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.current_label)
        layout.addWidget(self.view, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.rate_label)
        bottom.addWidget(self.counts_label)
        bottom.addWidget(self.status, 1)
        layout.addLayout(bottom)

        self.relay.progress.connect(self._on_progress)
        self.again_button.clicked.connect(self.run_checks)
        self.model.confirmationsChanged.connect(self._update_rate)
        self.model.modelReset.connect(self.view.resizeRowsToContents)

    def initializePage(self) -> None:
        # Checks are about the settings of pages 1-3; run again only when those changed.
        key = self.wizard().spec_key()  # type: ignore[attr-defined]
        if key != self.checked_key or not self.model.results:
            self.run_checks()

    def cleanupPage(self) -> None:
        self.cancel()

    def cancel(self) -> None:
        if self.stop_event is not None:
            self.stop_event.set()

    def run_checks(self) -> None:
        wizard = self.wizard()
        self.cancel()
        try:
            spec = parse_spec(wizard.build_spec(start_now=True))  # type: ignore[attr-defined]
        except SpecInvalid as exc:
            self.model.set_results([])
            self.status.show_failure(str(exc))
            return
        self.checked_key = wizard.spec_key()  # type: ignore[attr-defined]
        self.run_id += 1
        run_id = self.run_id
        stop = self.stop_event = threading.Event()
        self.running = True
        self.again_button.setEnabled(False)
        self.model.set_results([])
        self.progress.setRange(0, 0)
        self.current_label.setText("Starting the pre-checks…")
        self.status.show_plain("")
        self.completeChanged.emit()
        relay = self.relay
        backend = wizard.backend  # type: ignore[attr-defined]

        def on_progress(done: int, total: int, item: str) -> None:  # worker thread
            if not stop.is_set():
                relay.progress.emit(done, total, item)

        def done(results: list[Any]) -> None:
            if run_id != self.run_id:
                return
            self._finish()
            self.model.set_results(results)
            self.progress.setRange(0, max(1, len(results)))
            self.progress.setValue(len(results))
            self.current_label.setText(f"{len(results)} items checked.")
            self.show_first_problem()

        def failed(exc: BaseException) -> None:
            if run_id != self.run_id:
                return
            self._finish()
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.current_label.setText("")
            self.status.show_failure(f"The pre-check could not run: {error_text(exc)}")

        wizard.taskman.run(
            lambda: backend.run_prechecks(spec, on_progress, stop), guarded(self, done), guarded(self, failed)
        )  # type: ignore[attr-defined]

    def _finish(self) -> None:
        self.running = False
        self.stop_event = None
        self.again_button.setEnabled(True)
        self.completeChanged.emit()

    def _on_progress(self, done: int, total: int, item: str) -> None:
        if not self.running:
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.current_label.setText(f"Checking: {item}" if done < total else "Finishing…")

    def show_first_problem(self) -> None:
        """Select and scroll to the first failed item (else the first one needing confirmation)."""
        row = self.model.first_row_of("failed")
        if row < 0:
            row = self.model.first_row_of("confirm")
        if row < 0:
            return
        index = self.model.index(row, 1)
        self.view.setCurrentIndex(index)
        self.view.selectRow(row)
        self.view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtTop)

    def _update_rate(self) -> None:
        if self.model.results:
            rate = self.model.success_rate()
            failed = sum(1 for r in self.model.results if r.result == "failed")
            waiting = sum(
                1
                for i, r in enumerate(self.model.results)
                if r.result == "confirm" and i not in self.model.confirmed
            )
            self.rate_label.setText(f"Success rate: {rate}%")
            self.counts_label.setText(counts_text(self.model.results))
            if failed:
                self.status.show_failure(
                    f"{failed} item(s) failed: fix them on the servers, then Check Again."
                )
            elif waiting:
                self.status.show_plain(f"Tick the Confirmed box of {waiting} item(s) to go on.")
            else:
                self.status.show_ok("Every item passed or is confirmed.")
        else:
            self.rate_label.setText("Success rate: –")
            self.counts_label.setText("")
        self.view.resizeRowsToContents()
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.running and bool(self.model.results) and self.model.success_rate() == 100
