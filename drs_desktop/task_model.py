"""The task table: a model over TaskRecords (updated in place, never reset), a search proxy, a progress cell.

The store is the one source of a row: the window's refresh hands over the records that changed there
(engine.store_read.TaskWatcher), and a worker's progress reaches a row by the runner's store write and
the refresh it triggers, never by patching the row. The model keeps its rows in the sort order itself
(the proxy only filters): sorting 1,000 rows is one Python sort, not thousands of lessThan calls.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

from drs_desktop.colours import semantic_colour
from engine.health import effective_delay
from engine.records import TaskRecord
from engine.status import RUNNING, Status
from engine.store_read import StoreUnreadable, TaskWatcher

if TYPE_CHECKING:
    from engine.tasks import TaskService


def _resources_dir() -> Path:
    """resources/ of the source tree (an editable install), or the copy inside a PyInstaller bundle,
    which unpacks its data under sys._MEIPASS rather than beside the package."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


RESOURCES = _resources_dir()

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
STATUS_ORDER = {status: i for i, status in enumerate(Status)}  # the Status column sorts by lifecycle
PROMOTE_MODES = {"switchover": "switchover", "failover": "failover"}  # engine.promote's PromoteResult.mode

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
                QPolygonF(
                    [QPointF(x + badge / 2, y), QPointF(size - 0.5, size - 0.5), QPointF(x, size - 0.5)]
                )
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


def promoted_tooltip(record: TaskRecord) -> str:
    promote = record.extra.get("promote") if isinstance(record.extra.get("promote"), dict) else {}
    mode, at = promote_mode(record), promote.get("at")
    how = {"switchover": "by a switchover (the service database was made read-only first, RPO 0)",
           "failover": "by a forced failover (the service database was unreachable)"}.get(mode or "", "")  # fmt: skip
    when = f" at {at}" if isinstance(at, str) else ""
    return (f"Promoted{' ' + how if how else ''}{when}: the DR database {record.spec.target.address} is the "
            f"primary now; {record.spec.source.address} no longer replicates to it")  # fmt: skip


def status_text(record: TaskRecord) -> str:
    """The status cell's words; a promoted task says which side is primary now, and how it came to be."""
    if record.status is Status.PROMOTED:
        mode = promote_mode(record)
        return f"{record.status.label} \u2014 DR is primary" + (f" ({mode})" if mode else "")
    return record.status.label


def promote_mode(record: TaskRecord) -> str | None:
    """ "switchover" or "failover" as engine.promote recorded the promote in the task's extra, else None."""
    promote = record.extra.get("promote")
    mode = promote.get("mode") if isinstance(promote, dict) else None
    return PROMOTE_MODES.get(mode) if isinstance(mode, str) else None


def shown_delay(record: TaskRecord, now: datetime | None = None) -> float | None:
    """The delay a DBA sees: engine.health.effective_delay, which grows with the clock while nobody
    applies (paused, failed, runner gone), as the details dialog and `drs task show` say too."""
    return effective_delay(record, now) if shows_delay(record) else None


def delay_grows(record: TaskRecord) -> bool:
    """Rows whose shown delay moves with the clock alone (repainted on every refresh)."""
    return shows_delay(record) and record.delay_seconds is not None and record.status is not Status.PROMOTING


def shows_delay(record: TaskRecord) -> bool:
    return record.phase == "incremental" and record.status in (
        Status.REPLICATING,
        Status.PAUSED,
        Status.FAILED,
        Status.PROMOTING,
    )


# Statuses whose health moves with the clock alone (heartbeat age, a growing delay, a server down for
# longer): evaluated on every refresh. Other tasks are evaluated when their row changes in the store.
HEALTH_MOVES_WITH_CLOCK = frozenset(RUNNING | {Status.PAUSED})


@dataclass
class RowUpdate:
    """What one refresh hands the model (built off the GUI thread by StoreRows.read)."""

    changed: list[TaskRecord] = field(default_factory=list)  # new or changed tasks (complete: every task)
    removed: list[str] = field(default_factory=list)
    health: dict[str, Any] = field(default_factory=dict)  # engine.health.Health of the tasks evaluated
    complete: bool = False  # `changed` is the whole store (the fallback path)


class StoreRows:
    """The table's rows as the store holds them: each read brings only what changed since the last one
    (engine.store_read.TaskWatcher), with the health of those rows and of the ones whose health moves
    with the clock. One read at a time, on a TaskManager thread."""

    def __init__(self, service: TaskService):
        self.service = service
        self._watcher: TaskWatcher | None = None
        self.full_reads = 0  # reads through the ORM fallback (a store this reader cannot serve)

    @property
    def rows_read(self) -> int:
        """Task rows read from the store so far (an unchanged store adds none)."""
        return 0 if self._watcher is None else self._watcher.rows_read

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    def read(self) -> RowUpdate:
        from engine.health import evaluate

        try:
            if self._watcher is None:
                self._watcher = TaskWatcher(self.service.home)
            changes = self._watcher.poll()
        except (StoreUnreadable, sqlite3.Error):
            self.close()
            store = self.service.store
            records = store.list_tasks()
            self.full_reads += 1
            return RowUpdate(records, [], _evaluate(evaluate, store, records, datetime.now()), complete=True)
        watcher = self._watcher
        fresh = {r.name for r in changes.changed}
        due = changes.changed + [
            r for r in watcher.records.values() if r.status in HEALTH_MOVES_WITH_CLOCK and r.name not in fresh
        ]
        return RowUpdate(changes.changed, changes.removed, _evaluate(evaluate, watcher, due, datetime.now()))


def _evaluate(evaluate: Any, store: Any, records: list[TaskRecord], now: datetime) -> dict[str, Any]:
    health: dict[str, Any] = {}
    for record in records:
        try:
            health[record.name] = evaluate(store, record, now)
        except Exception:  # noqa: BLE001 - one task's broken health check must not hide the others
            continue
    return health


class TaskTableModel(QAbstractTableModel):
    """One row per task; `set_records()` diffs against what is shown (insert/remove/dataChanged)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._records: list[TaskRecord] = []
        self._rows: dict[str, int] = {}
        self._health: dict[str, Any] = {}  # name -> engine.health.Health, from the window's refresh
        self._sort_column: Column | None = None
        self._delay_text: dict[str, str] = {}  # the delay each growing row last showed (tick)
        self._sort_order = Qt.SortOrder.AscendingOrder

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
                return (
                    health_icon(record.status, state)
                    if state in HEALTH_COLOURS
                    else status_icon(record.status)
                )
            if role == Qt.ItemDataRole.ForegroundRole and state in HEALTH_COLOURS:
                return semantic_colour(state)  # readable on a light or a dark palette
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
            return status_text(record)
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
            return format_delay(shown_delay(record))
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
            if record.status is Status.PROMOTED:
                return promoted_tooltip(record)
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
            delay = shown_delay(record)
            return float(-1 if delay is None else delay)
        if column is Column.CREATED:
            return record.created_at.isoformat()
        if column is Column.STATUS:
            return STATUS_ORDER[record.status]
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
        """Bring the rows in line with a complete list from the store, keeping row identity (and selection)."""
        fresh = {r.name: r for r in records}
        self.apply_changes(records, [r.name for r in self._records if r.name not in fresh])

    def apply_changes(self, changed: list[TaskRecord], removed: list[str]) -> None:
        """Merge what changed in the store: new or changed records, and the names of tasks gone. Rows keep
        their identity (and the selection); the sort order is kept."""
        gone = set(removed)
        # Remove rows that are gone, from the bottom so row numbers stay valid while we go.
        for row in range(len(self._records) - 1, -1, -1):
            if self._records[row].name in gone:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._records[row]
                self.endRemoveRows()
        if gone:
            self._reindex()
            for name in gone:
                self._health.pop(name, None)
                self._delay_text.pop(name, None)
        added = []
        for record in changed:
            row = self._rows.get(record.name)
            if row is None:
                added.append(record)
            elif record != self._records[row]:
                self._records[row] = record
                self._changed(row)
        if added:
            first = len(self._records)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            self._records.extend(added)
            self._reindex()
            self.endInsertRows()
        if changed:
            self._resort()

    def remove(self, name: str) -> None:
        row = self._rows.get(name)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._records[row]
        self._reindex()
        self.endRemoveRows()
        self._health.pop(name, None)

    def patch(self, name: str, **fields: Any) -> None:
        """Show an action's expected outcome at once (e.g. Paused) until the refresh brings the store's word."""
        row = self._rows.get(name)
        if row is None:
            return
        old = self._records[row]
        new = replace(old, **fields)
        if new != old:
            self._records[row] = new
            self._changed(row)
            self._resort()

    def tick(self) -> None:
        """Repaint what moves with the clock alone (a paused task's delay), where its text changed, and
        keep the order by it."""
        now = datetime.now()
        moved = False
        for row, record in enumerate(self._records):
            if not delay_grows(record):
                continue
            text = format_delay(shown_delay(record, now))
            if self._delay_text.get(record.name) != text:
                self._delay_text[record.name] = text
                index = self.index(row, Column.DELAY)
                # display text only: the proxy need not filter again (its filter role is SearchRole)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole])
                moved = True
        if moved and self._sort_column == Column.DELAY:
            self._resort()

    def _changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))

    def _reindex(self) -> None:
        self._rows = {r.name: i for i, r in enumerate(self._records)}

    # -- sorting ---------------------------------------------------------------------------------
    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Keep the rows ordered by this column from now on (the proxy asks; see TaskFilterProxy.sort)."""
        self._sort_column = Column(column) if 0 <= column < len(Column) else None
        self._sort_order = order
        self._resort()

    def sort_column(self) -> int:
        return -1 if self._sort_column is None else int(self._sort_column)

    def sort_order(self) -> Qt.SortOrder:
        return self._sort_order

    def _resort(self) -> None:
        """Reorder the rows when they are out of order (one Python sort over precomputed keys)."""
        column = self._sort_column
        if column is None or len(self._records) < 2:
            return
        keys = [self._sort_key(r, column) for r in self._records]
        # ties in the order the tasks were created, whichever the direction
        order = sorted(
            range(len(self._records)), key=lambda i: (self._records[i].created_at, self._records[i].id)
        )
        order.sort(key=keys.__getitem__, reverse=self._sort_order == Qt.SortOrder.DescendingOrder)
        if order == list(range(len(order))):
            return
        self.layoutAboutToBeChanged.emit()
        new_row = {old: new for new, old in enumerate(order)}
        persistent = self.persistentIndexList()
        self._records = [self._records[i] for i in order]
        self._reindex()
        self.changePersistentIndexList(
            persistent, [self.index(new_row[p.row()], p.column()) if p.isValid() else p for p in persistent]
        )
        self.layoutChanged.emit()

    # -- health ----------------------------------------------------------------------------------
    def set_health(self, health: dict[str, Any]) -> None:
        """Health of every task by name (engine.health.Health); repaints the status cells that changed."""
        self.update_health(health, [name for name in self._health if name not in health])

    def update_health(self, health: dict[str, Any], forget: list[str] | None = None) -> None:
        """Health of some tasks (the others keep theirs). Repaints the status cells whose state changed;
        the reasons show in the tooltip, which is read when it opens."""
        for name in forget or ():
            if self._health.pop(name, None) is not None and name in self._rows:
                index = self.index(self._rows[name], Column.STATUS)
                self.dataChanged.emit(index, index)
        for name, value in health.items():
            old = self._health.get(name)
            self._health[name] = value
            if old is None or old.state != value.state:
                row = self._rows.get(name)
                if row is not None:
                    index = self.index(row, Column.STATUS)
                    self.dataChanged.emit(index, index)

    def health(self, name: str) -> Any | None:
        return self._health.get(name)

    def health_by_name(self) -> dict[str, Any]:
        return dict(self._health)

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
    """Filters by the search text (a task's name or any tag). Sorting is the source model's: the view's
    sort request is handed to it, and this proxy keeps the source order."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._needle = ""
        self.setSortRole(SortRole)
        self.setFilterRole(SearchRole)  # what filterAcceptsRow reads: other roles changing need no refilter
        self.setDynamicSortFilter(True)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)

    def sortColumn(self) -> int:  # noqa: N802 - Qt's name
        source = self.sourceModel()
        return source.sort_column() if isinstance(source, TaskTableModel) else -1

    def sortOrder(self) -> Qt.SortOrder:  # noqa: N802 - Qt's name
        source = self.sourceModel()
        return source.sort_order() if isinstance(source, TaskTableModel) else Qt.SortOrder.AscendingOrder

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
