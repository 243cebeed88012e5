"""Small editable models of the wizard: text rows (tags, time ranges) and the checkable database list.

Plain QAbstract*Model subclasses holding Python values, so no item object's ownership is shared
between Python and Qt.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from drs_desktop.rowmodel import RowTableModel
from drs_desktop.wizard.common import check_state, human_size, is_checked

Index = QModelIndex | QPersistentModelIndex
NAME_ROLE = Qt.ItemDataRole.UserRole + 1


class TextRowsModel(RowTableModel):
    """Rows of editable text cells under fixed column titles."""

    def __init__(self, columns: tuple[str, ...], parent: QObject | None = None):
        super().__init__(parent)
        self.COLUMNS = columns
        self.rows: list[list[str]] = []

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self.rows[index.row()][index.column()]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        self.rows[index.row()][index.column()] = "" if value is None else str(value)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole])
        return True

    def append_row(self, values: tuple[str, ...] | list[str]) -> None:
        row = [str(v) for v in values][: len(self.COLUMNS)]
        row += [""] * (len(self.COLUMNS) - len(row))
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows))
        self.rows.append(row)
        self.endInsertRows()

    def remove_row(self, row: int) -> None:
        if 0 <= row < len(self.rows):
            self.beginRemoveRows(QModelIndex(), row, row)
            del self.rows[row]
            self.endRemoveRows()

    def set_rows(self, rows: list[tuple[str, ...]] | list[list[str]]) -> None:
        self.beginResetModel()
        self.rows = []
        for values in rows:
            row = [str(v) for v in values][: len(self.COLUMNS)]
            self.rows.append(row + [""] * (len(self.COLUMNS) - len(row)))
        self.endResetModel()

    def values(self) -> list[tuple[str, ...]]:
        return [tuple(r) for r in self.rows]


class DatabaseListModel(QAbstractListModel):
    """The service side's user databases with sizes, each with a check box ("protect this one")."""

    checksChanged = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.databases: list[tuple[str, int]] = []
        self.checked: set[str] = set()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.databases)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.databases):
            return None
        name, size = self.databases[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{name}    ({human_size(size)})"
        if role == Qt.ItemDataRole.CheckStateRole:
            return check_state(name in self.checked)
        if role == NAME_ROLE:
            return name
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.CheckStateRole:
            return False
        name = self.databases[index.row()][0]
        if is_checked(value):
            self.checked.add(name)
        else:
            self.checked.discard(name)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
        self.checksChanged.emit()
        return True

    def set_databases(self, databases: list[tuple[str, int]], checked: set[str] | None) -> None:
        """`checked=None` ticks every database."""
        self.beginResetModel()
        self.databases = list(databases)
        names = {n for n, _ in self.databases}
        self.checked = set(names) if checked is None else checked & names
        self.endResetModel()
        self.checksChanged.emit()

    def set_all(self, on: bool) -> None:
        self.checked = {n for n, _ in self.databases} if on else set()
        if self.databases:
            self.dataChanged.emit(
                self.index(0),
                self.index(len(self.databases) - 1),
                [Qt.ItemDataRole.CheckStateRole],
            )
        self.checksChanged.emit()

    def names(self) -> list[str]:
        return [n for n, _ in self.databases]

    def checked_names(self) -> list[str]:
        return [n for n, _ in self.databases if n in self.checked]

    def all_checked(self) -> bool:
        return all(n in self.checked for n, _ in self.databases)

    def total_size(self) -> int:
        return sum(size for _, size in self.databases)
