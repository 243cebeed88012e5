"""Page 5, Compare Parameters: the servers' parameters side by side, and applying chosen ones to the DR side.

engine.params compares and applies (on TaskManager threads); restart-only parameters come back with
the my.cnf line to add. This page never blocks Next: the DBA may keep differences on purpose.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTabBar,
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
    StatusLabel,
    check_state,
    error_text,
    guarded,
    is_checked,
)
from engine.errors import SpecInvalid
from engine.spec import parse_spec

Index = QModelIndex | QPersistentModelIndex
CATEGORY_ROLE = Qt.ItemDataRole.UserRole + 1
TABS = (("All parameters", None), ("Common parameters", "common"), ("Performance parameters", "performance"))


class ParamModel(RowTableModel):
    """One row per parameter; differing ones carry a checkbox ("apply to the DR database")."""

    COLUMNS = ("Apply", "Parameter", "Category", "Service value", "DR value", "Consistent", "Needs restart")
    selectionChanged = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.chosen: set[str] = set()

    def set_rows(self, rows: list[Any]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        names = {r.name for r in self.rows if not r.consistent}
        self.chosen &= names
        self.endResetModel()
        self.selectionChanged.emit()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        p = self.rows[index.row()]
        col = index.column()
        if role == CATEGORY_ROLE:
            return p.category
        if role == Qt.ItemDataRole.CheckStateRole and col == 0 and not p.consistent:
            return check_state(p.name in self.chosen)
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                "",
                p.name,
                p.category.capitalize(),
                _show(p.source_value),
                _show(p.target_value),
                "Yes" if p.consistent else "No",
                "Yes" if p.needs_restart else "No",
            )[col]
        if role == Qt.ItemDataRole.ToolTipRole and col in (3, 4):
            return _show(p.source_value if col == 3 else p.target_value)
        if role == Qt.ItemDataRole.ForegroundRole and col == 5:
            return QBrush(semantic_colour(OK_COLOUR if p.consistent else ERROR_COLOUR))
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == 0 and not self.rows[index.row()].consistent:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.CheckStateRole or index.column() != 0:
            return False
        p = self.rows[index.row()]
        if p.consistent:
            return False
        if is_checked(value):
            self.chosen.add(p.name)
        else:
            self.chosen.discard(p.name)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
        self.selectionChanged.emit()
        return True

    def chosen_names(self) -> list[str]:
        return [r.name for r in self.rows if r.name in self.chosen]

    def row_of(self, name: str) -> int:
        return next((i for i, r in enumerate(self.rows) if r.name == name), -1)


def _show(value: Any) -> str:
    return "(not set)" if value is None else str(value)


class CategoryFilter(QSortFilterProxyModel):
    """The tabs: all, common or performance parameters."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.category: str | None = None

    def set_category(self, category: str | None) -> None:
        self.category = category
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if self.category is None:
            return True
        index = self.sourceModel().index(source_row, 0, source_parent)
        return self.sourceModel().data(index, CATEGORY_ROLE) == self.category


class ParamsPage(QWizardPage):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTitle("Compare Parameters")
        self.setSubTitle(
            "Parameters of the service and DR databases. Differences do not block the task; tick the ones to "
            "copy to the DR database."
        )
        self.model = ParamModel(self)
        self.proxy = CategoryFilter(self)
        self.proxy.setSourceModel(self.model)
        self.busy_count = 0
        self.compared_key: Any = None

        self.tabs = QTabBar()
        for text, _ in TABS:
            self.tabs.addTab(text)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.verticalHeader().setVisible(False)
        self.view.setTabKeyNavigation(False)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Values such as sql_mode are long: those two columns share the room left, elided, with a tooltip.
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.view.setWordWrap(False)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        self.reload_button = QPushButton("&Compare Again")
        self.apply_button = QPushButton("&Apply to DR database")
        self.apply_button.setEnabled(False)
        self.status = StatusLabel()
        self.results_text = QPlainTextEdit()
        self.results_text.setReadOnly(True)
        self.results_text.setMaximumHeight(90)
        self.results_text.setPlaceholderText("Results of Apply to DR database appear here.")
        self.results_text.setTabChangesFocus(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.reload_button)
        buttons.addWidget(self.busy)
        buttons.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.results_text)

        self.tabs.currentChanged.connect(lambda i: self.proxy.set_category(TABS[i][1]))
        self.model.selectionChanged.connect(self._update_buttons)
        self.reload_button.clicked.connect(self.compare)
        self.apply_button.clicked.connect(self.apply_chosen)

    def initializePage(self) -> None:
        key = self.wizard().spec_key()  # type: ignore[attr-defined]
        if key != self.compared_key:
            self.compare()

    def _spec(self) -> Any:
        try:
            return parse_spec(self.wizard().build_spec(start_now=True))  # type: ignore[attr-defined]
        except SpecInvalid as exc:
            self.status.show_failure(str(exc))
            return None

    def _busy(self, delta: int) -> None:
        self.busy_count += delta
        self.busy.setVisible(self.busy_count > 0)
        self._update_buttons()

    def _update_buttons(self) -> None:
        idle = self.busy_count == 0
        self.reload_button.setEnabled(idle)
        self.apply_button.setEnabled(idle and bool(self.model.chosen))

    def compare(self) -> None:
        spec = self._spec()
        if spec is None:
            return
        wizard = self.wizard()
        self.compared_key = wizard.spec_key()  # type: ignore[attr-defined]
        backend = wizard.backend  # type: ignore[attr-defined]
        self._busy(+1)
        self.status.show_plain("Reading parameters from both servers…")

        def done(rows: list[Any]) -> None:
            self._busy(-1)
            self.model.set_rows(rows)
            differing = sum(1 for r in rows if not r.consistent)
            text = f"{len(rows)} parameters compared, {differing} differ."
            if differing:
                self.status.show_plain(text)
            else:
                self.status.show_ok(text)

        def failed(exc: BaseException) -> None:
            self._busy(-1)
            self.compared_key = None
            self.status.show_failure(f"Cannot compare parameters: {error_text(exc)}")

        wizard.taskman.run(lambda: backend.compare_params(spec), guarded(self, done), guarded(self, failed))  # type: ignore[attr-defined]

    def apply_chosen(self) -> None:
        names = self.model.chosen_names()
        spec = self._spec()
        if not names or spec is None:
            return
        wizard = self.wizard()
        backend = wizard.backend  # type: ignore[attr-defined]
        self._busy(+1)
        self.status.show_plain(f"Applying {len(names)} parameter(s) to the DR database…")

        def done(results: list[Any]) -> None:
            self._busy(-1)
            self.show_apply_results(results)
            self.model.chosen.clear()
            self.compare()

        def failed(exc: BaseException) -> None:
            self._busy(-1)
            self.status.show_failure(f"Cannot apply parameters: {error_text(exc)}")

        wizard.taskman.run(
            lambda: backend.apply_params(spec, names), guarded(self, done), guarded(self, failed)
        )  # type: ignore[attr-defined]

    def show_apply_results(self, results: list[Any]) -> None:
        lines = []
        for r in results:
            if r.applied:
                lines.append(f"{r.name}: applied ({r.value})" + (f" — {r.message}" if r.message else ""))
            elif r.mycnf_line:
                lines.append(f"{r.name}: needs a restart — add to my.cnf [mysqld]: {r.mycnf_line}")
            else:
                lines.append(f"{r.name}: not applied — {r.message}")
        self.results_text.setPlainText("\n".join(lines))

    def isComplete(self) -> bool:
        return True
