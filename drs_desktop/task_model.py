"""The task table: a model over TaskRecords (updated in place, never reset), a search proxy, a progress cell.

Records come from the store through TaskManager refreshes; live progress and delay from the workers'
signals are merged into the same rows between refreshes.
"""

from __future__ import annotations

from dataclasses import replace
from enum import IntEnum
from functools import cache
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPalette, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
)

from engine.status import Status
from engine.store import TaskRecord

RESOURCES = Path(__file__).resolve().parent.parent / "resources"

# One colour per status family, as the reference console shows them.
STATUS_COLOURS: dict[Status, tuple[str, str]] = {
    Status.CREATING: ("grey", "#8a8f98"),
    Status.CONFIGURATION: ("grey", "#8a8f98"),
    Status.PENDING_START: ("grey", "#8a8f98"),
    Status.STARTING: ("blue", "#2f7fd8"),
    Status.INITIALIZING: ("blue", "#2f7fd8"),
    Status.REPLICATING: ("green", "#2ea44f"),
    Status.PAUSED: ("amber", "#e0a100"),
    Status.FAILED: ("red", "#d73a49"),
    Status.PROMOTING: ("purple", "#8256d0"),
    Status.PROMOTED: ("teal", "#1b9aaa"),
    Status.CREATION_FAILED: ("red", "#d73a49"),
    Status.ENDED: ("grey", "#8a8f98"),
}

RELATIONSHIP_LABELS = {"standby": "Current side as standby", "active": "Current side as active"}

RecordRole = Qt.ItemDataRole.UserRole + 1  # the TaskRecord of the row
ProgressRole = Qt.ItemDataRole.UserRole + 2  # percent (float) while the initial copy runs, else None
SortRole = Qt.ItemDataRole.UserRole + 3
NameRole = Qt.ItemDataRole.UserRole + 4
SearchRole = Qt.ItemDataRole.UserRole + 5  # name and tags, lower case, for the search box
HealthRole = Qt.ItemDataRole.UserRole + 6  # "ok" | "warning" | "alarm", or None before health is known

# Text colours of the status cell for a task in warning or alarm: clear enough on light and dark bases.
HEALTH_COLOURS = {"warning": "#c2410c", "alarm": "#dc2626"}
HEALTH_LABELS = {"warning": "Warning", "alarm": "Alarm"}


class Column(IntEnum):
    NAME = 0
    STATUS = 1
    RELATIONSHIP = 2
    SERVICE_DB = 3
    DR_DB = 4
    PROGRESS = 5
    DELAY = 6
    CREATED = 7
    TAGS = 8


HEADERS = {
    Column.NAME: "Name",
    Column.STATUS: "Status",
    Column.RELATIONSHIP: "DR relationship",
    Column.SERVICE_DB: "Service DB",
    Column.DR_DB: "DR DB",
    Column.PROGRESS: "Progress",
    Column.DELAY: "Delay",
    Column.CREATED: "Created",
    Column.TAGS: "Tags",
}


def resource(*parts: str) -> Path:
    return RESOURCES.joinpath(*parts)


@cache
def load_icon(name: str, fallback_colour: str = "#8a8f98") -> QIcon:
    """An icon from resources/icons/<name>.svg; a plain dot when the file is not installed."""
    path = resource("icons", f"{name}.svg")
    icon = QIcon(str(path)) if path.exists() else QIcon()
    if icon.isNull() or not icon.availableSizes() and icon.pixmap(16, 16).isNull():
        pixmap = QPixmap(16, 16)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(QColor(fallback_colour))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(2, 2, 12, 12)
        painter.end()
        icon = QIcon(pixmap)
    return icon


def status_icon(status: Status) -> QIcon:
    colour, hex_colour = STATUS_COLOURS[status]
    return load_icon(f"status-{colour}", hex_colour)


@cache
def health_icon(status: Status, state: str) -> QIcon:
    """The status icon with a badge: an orange triangle (warning) or a red disc (alarm), each with "!"."""
    base = status_icon(status)
    if state not in HEALTH_COLOURS:
        return base
    icon = QIcon()
    for size in (16, 24, 32):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.drawPixmap(0, 0, base.pixmap(size, size))
        badge = size * 0.5  # the lower right quarter: the status colour stays visible at the centre
        x = y = size - badge
        painter.setPen(QPen(QColor("white"), max(1.0, size / 16)))
        painter.setBrush(QColor(HEALTH_COLOURS[state]))
        if state == "alarm":
            painter.drawEllipse(QRectF(x, y, badge, badge).adjusted(0.5, 0.5, -0.5, -0.5))
        else:
            painter.drawPolygon(
                QPolygonF([QPointF(x + badge / 2, y), QPointF(size - 0.5, size - 0.5), QPointF(x, size - 0.5)])
            )
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(6, int(badge * 0.8)))
        painter.setFont(font)
        painter.setPen(QColor("white"))
        text_rect = QRectF(x, y + (badge * 0.08 if state == "warning" else 0), badge, badge)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, "!")
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def format_delay(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_tags(tags: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{k}={v}" if v else k for k, v in tags)


def shows_progress(record: TaskRecord) -> bool:
    """The progress bar is shown during the initial phase (and right before it starts)."""
    return record.status in (Status.STARTING, Status.INITIALIZING) or (
        record.phase == "initial" and record.status in (Status.PAUSED, Status.FAILED)
    )


def shows_delay(record: TaskRecord) -> bool:
    return record.phase == "incremental" and record.status in (
        Status.REPLICATING,
        Status.PAUSED,
        Status.FAILED,
        Status.PROMOTING,
    )


class TaskTableModel(QAbstractTableModel):
    """One row per task; `set_records()` diffs against what is shown (insert/remove/dataChanged)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._records: list[TaskRecord] = []
        self._rows: dict[str, int] = {}
        self._health: dict[str, Any] = {}  # name -> engine.health.Health, from the window's refresh

    # -- Qt model API ------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(Column)
        ):
            return HEADERS[Column(section)]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._records):
            return None
        if not 0 <= index.column() < len(Column):
            return None
        record = self._records[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(record, column)
        if column is Column.STATUS:
            state = self.health_state(record.name)
            if role == Qt.ItemDataRole.DecorationRole:
                return health_icon(record.status, state) if state in HEALTH_COLOURS else status_icon(record.status)
            if role == Qt.ItemDataRole.ForegroundRole and state in HEALTH_COLOURS:
                return QColor(HEALTH_COLOURS[state])
            if role == HealthRole:
                return state
            if role == Qt.ItemDataRole.ToolTipRole:
                return self._status_tooltip(record)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(record, column)
        if role == SortRole:
            return self._sort_key(record, column)
        if role == RecordRole:
            return record
        if role == NameRole:
            return record.name
        if role == ProgressRole and column is Column.PROGRESS:
            return float(record.progress_percent) if shows_progress(record) else None
        if role == SearchRole:
            return " ".join([record.name, *(f"{k}={v}" for k, v in record.spec.tags)]).lower()
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (Column.PROGRESS, Column.DELAY):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _display(record: TaskRecord, column: Column) -> str:
        spec = record.spec
        if column is Column.NAME:
            return record.name
        if column is Column.STATUS:
            return record.status.label
        if column is Column.RELATIONSHIP:
            return RELATIONSHIP_LABELS.get(spec.relationship, spec.relationship)
        if column is Column.SERVICE_DB:
            return spec.source.address
        if column is Column.DR_DB:
            return spec.target.address
        if column is Column.PROGRESS:
            if shows_progress(record):
                return f"{record.progress_percent:.0f}%"
            return "100%" if record.phase in ("incremental", "done") else ""
        if column is Column.DELAY:
            return format_delay(record.delay_seconds) if shows_delay(record) else ""
        if column is Column.CREATED:
            return f"{record.created_at:%Y-%m-%d %H:%M:%S}"
        if column is Column.TAGS:
            return format_tags(spec.tags)
        return ""

    @staticmethod
    def _tooltip(record: TaskRecord, column: Column) -> str | None:
        if column is Column.STATUS:
            if record.last_error and record.status in (Status.FAILED, Status.CREATION_FAILED):
                return f"{record.status.label}: {record.last_error}"
            if record.status is Status.PENDING_START and record.spec.start_at:
                return f"Starts at {record.spec.start_at:%Y-%m-%d %H:%M}"
            return record.status.label
        if column is Column.NAME and record.spec.description:
            return record.spec.description
        if column is Column.PROGRESS and shows_progress(record):
            return f"{record.rows_copied:,} of about {record.rows_total:,} rows copied"
        return None

    def _status_tooltip(self, record: TaskRecord) -> str | None:
        tip = self._tooltip(record, Column.STATUS)
        health = self._health.get(record.name)
        if health is None or health.state not in HEALTH_COLOURS:
            return tip
        reasons = "\n".join(f"• {reason}" for reason in health.reasons) or "• (no reason given)"
        return f"{tip}\n{HEALTH_LABELS[health.state]}:\n{reasons}"

    @staticmethod
    def _sort_key(record: TaskRecord, column: Column) -> Any:
        if column is Column.PROGRESS:
            return float(record.progress_percent if shows_progress(record) else -1)
        if column is Column.DELAY:
            return float(
                record.delay_seconds if shows_delay(record) and record.delay_seconds is not None else -1
            )
        if column is Column.CREATED:
            return record.created_at.isoformat()
        if column is Column.STATUS:
            return list(Status).index(record.status)
        return TaskTableModel._display(record, column).lower()

    # -- updates ---------------------------------------------------------------------------------
    def records(self) -> list[TaskRecord]:
        return list(self._records)

    def record(self, name: str) -> TaskRecord | None:
        row = self._rows.get(name)
        return None if row is None else self._records[row]

    def row_of(self, name: str) -> int | None:
        return self._rows.get(name)

    def set_records(self, records: list[TaskRecord]) -> None:
        """Bring the rows in line with a fresh list from the store, keeping row identity (and selection)."""
        fresh = {r.name: r for r in records}
        # Remove rows that are gone, from the bottom so row numbers stay valid while we go.
        for row in range(len(self._records) - 1, -1, -1):
            if self._records[row].name not in fresh:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._records[row]
                self.endRemoveRows()
        self._reindex()
        for row, old in enumerate(self._records):
            new = fresh[old.name]
            if new != old:
                self._records[row] = new
                self._changed(row)
        added = [r for r in records if r.name not in self._rows]
        if added:
            first = len(self._records)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            self._records.extend(added)
            self._reindex()
            self.endInsertRows()

    def remove(self, name: str) -> None:
        row = self._rows.get(name)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._records[row]
        self._reindex()
        self.endRemoveRows()

    def patch(self, name: str, **fields: Any) -> None:
        """Merge live values from a worker (status, phase, progress, delay) into a row."""
        row = self._rows.get(name)
        if row is None:
            return
        old = self._records[row]
        new = replace(old, **fields)
        if new != old:
            self._records[row] = new
            self._changed(row)

    def _changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))

    def _reindex(self) -> None:
        self._rows = {r.name: i for i, r in enumerate(self._records)}

    # -- health ----------------------------------------------------------------------------------
    def set_health(self, health: dict[str, Any]) -> None:
        """Health per task name (engine.health.Health); repaints the status cells whose health changed."""
        old, self._health = self._health, dict(health)
        for name, row in self._rows.items():
            if old.get(name) != self._health.get(name):
                index = self.index(row, Column.STATUS)
                self.dataChanged.emit(index, index)

    def health(self, name: str) -> Any | None:
        return self._health.get(name)

    def health_state(self, name: str) -> str | None:
        health = self._health.get(name)
        return None if health is None else health.state

    def health_counts(self) -> dict[str, int]:
        """Tasks per health state, for the tasks in the table."""
        counts: dict[str, int] = {}
        for r in self._records:
            state = self.health_state(r.name)
            if state is not None:
                counts[state] = counts.get(state, 0) + 1
        return counts

    def status_counts(self) -> dict[Status, int]:
        counts: dict[Status, int] = {}
        for r in self._records:
            counts[r.status] = counts.get(r.status, 0) + 1
        return counts


class TaskFilterProxy(QSortFilterProxyModel):
    """Sorts by each column's natural order; the search text matches a task's name or any tag."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._needle = ""
        self.setSortRole(SortRole)
        self.setDynamicSortFilter(True)

    def set_search(self, text: str) -> None:
        needle = text.strip().lower()
        if needle != self._needle:
            self.beginFilterChange()
            self._needle = needle
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def search(self) -> str:
        return self._needle

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if not self._needle:
            return True
        index = self.sourceModel().index(source_row, 0, source_parent)
        haystack = self.sourceModel().data(index, SearchRole) or ""
        return all(word in haystack for word in self._needle.split())

    def lessThan(
        self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex
    ) -> bool:
        a, b = left.data(SortRole), right.data(SortRole)
        if type(a) is not type(b):
            return str(a) < str(b)
        return a < b


class ProgressDelegate(QStyledItemDelegate):
    """Paints a progress bar in the Progress cell while a task copies its initial data."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        percent = index.data(ProgressRole)
        if percent is None:
            super().paint(painter, option, index)
            return
        # Selection background first, so the bar sits on the row's highlight like any other cell.
        style = option.widget.style() if option.widget else QApplication.style()
        background = QStyleOptionViewItem(option)
        self.initStyleOption(background, index)
        background.text = ""
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, background, painter, option.widget)
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(3, 3, -3, -3)
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = int(round(percent * 10))
        bar.text = f"{percent:.0f}%"
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        bar.palette = QPalette(option.palette)
        bar.palette.setColor(QPalette.ColorRole.Highlight, QColor("#2f7fd8"))
        bar.fontMetrics = option.fontMetrics
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)
