"""The DRS Desktop main window: the task table a DBA keeps open all day, its actions, and its workers.

The store is read off the GUI thread (TaskManager) every few seconds and merged into the model;
running tasks replicate in WorkerRegistry's QThreads; every action asks engine.status first.
"""

from __future__ import annotations

import html
import inspect
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import shiboken6
from PySide6.QtCore import QByteArray, QCoreApplication, QEventLoop, QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QStyle,
    QSystemTrayIcon,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine.errors import DrsError, PromoteAlreadyRunning, PromoteRolledBack, PromoteStranded
from engine.status import ACTION_LABELS, RUNNING, Action, Status, allowed_actions
from engine.store import DrLogEntry, TaskRecord
from engine.tasks import TaskService

from .dialogs import (
    ConnectionDialog,
    DeleteTaskDialog,
    FailoverDialog,
    FlowControlDialog,
    PromoteProgressDialog,
    StoppingTasksDialog,
    SwitchoverDialog,
    TaskDetailsDialog,
    show_message,
)
from .empty_state import EmptyStateOverlay
from .menus import MenuBar, build_menu_bar
from .sandbox_actions import SandboxLauncher
from .service_actions import ServiceActions
from .settings import gui_settings, remember
from .task_model import (
    Column,
    ProgressDelegate,
    RowUpdate,
    StoreRows,
    TaskFilterProxy,
    TaskTableModel,
    load_icon,
)
from .taskman import TaskManager
from .workers import STOP_ALL_TIMEOUT_MS, WorkerRegistry

WINDOW_TITLE = "DRS Desktop — Disaster Recovery Tasks"
REFRESH_MS = 2000
REFRESH_SOON_MS = 250  # a worker's signal: the store is read again this soon (one read for a burst)
EXPIRY_CHECK_S = 60.0  # creation failures older than three days are ended at most this often
SCHEDULE_MS = 3000

# Toolbar and menu order; icon file and shortcuts per action (QKeySequence objects need the QApplication,
# so they are built with the actions).
TASK_ACTIONS: list[tuple[Action, str, list[Any]]] = [
    (Action.START, "start", ["Ctrl+Shift+S"]),
    (Action.PAUSE, "pause", ["Ctrl+P"]),
    (Action.RESUME, "resume", ["Ctrl+Shift+R"]),
    (Action.RETRY, "retry", ["Ctrl+Shift+T"]),
    (Action.MODIFY_CONNECTION, "connection", ["Ctrl+Shift+C"]),
    (Action.MODIFY_FLOW_CONTROL, "flow", ["Ctrl+Shift+F"]),
    (Action.PROMOTE, "promote", ["Ctrl+Shift+P"]),  # opens the plan first: nothing changes on the key alone
    (Action.DELETE, "delete", [QKeySequence.StandardKey.Delete]),
    (Action.VIEW, "details", [Qt.Key.Key_Return, Qt.Key.Key_Enter]),
    (Action.COMPARE, "compare", ["Ctrl+Shift+D"]),
    (Action.SKIP_EVENT, "resume", ["Ctrl+Shift+K"]),  # shows the transaction; Cancel is the default
]
NO_SELECTION = "Select a task first"
NOTE_MS = 10_000  # a status-bar note goes after this; the permanent widgets (alarms, workers, store) stay
# What the window remembers between runs (gui_settings of its DRS home).
GEOMETRY_KEY, STATE_KEY = "window/geometry", "window/state"
HEADER_KEY, HEADER_COLUMNS_KEY = "table/header", "table/columns"
SORT_COLUMN_KEY, SORT_ORDER_KEY, SEARCH_KEY = "table/sortColumn", "table/sortOrder", "table/search"
# Default column widths in average characters (scaled to the font, so a large font still fits 1280 px).
COLUMN_CHARS = {
    Column.NAME: 16, Column.STATUS: 30, Column.RELATIONSHIP: 22, Column.SERVICE_DB: 19, Column.DR_DB: 19,
    Column.PROGRESS: 9, Column.DELAY: 9, Column.CREATED: 22,
}  # fmt: skip


def describe_error(exc: BaseException) -> str:
    """What the user reads: a DrsError's own message, else the exception type and text (no traceback)."""
    if isinstance(exc, DrsError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class MainWindow(QMainWindow):
    refreshed = Signal()  # after each refresh has been merged into the model
    actionDone = Signal(str, str)  # action value, task name: its background job finished fine
    actionFailed = Signal(str, str, str)  # action value, task name, message shown to the user

    def __init__(
        self,
        service: TaskService,
        taskman: TaskManager | None = None,
        parent: QWidget | None = None,
        *,
        autostart: bool = True,
        refresh_ms: int = REFRESH_MS,
        schedule_ms: int = SCHEDULE_MS,
    ):
        super().__init__(parent)
        self.service = service
        self.taskman = taskman or TaskManager(self)
        self.registry = WorkerRegistry(service, self)
        self.autostart = autostart
        self._refreshing = False
        self._refresh_again = False
        self._resumed_at_startup = False  # tasks left running were resumed (after the promote recovery)
        self._resume_pending = False
        self._closing = False
        self._shut_down = False
        self._details: dict[str, TaskDetailsDialog] = {}
        self._promote_dialogs: dict[str, PromoteProgressDialog] = {}  # running promotes, by task
        self.recovery_messages: list[str] | None = None  # what recover_stale_promotes did (None: not yet)
        self.stopping_dialog: StoppingTasksDialog | None = None
        self.last_message = ""
        # text of the last "task in alarm" notification (also when no tray exists)
        self.last_alarm_notice = ""
        self.last_skip_question = ""  # the transaction the last "Skip Failed Event" showed
        self._health_states: dict[str, str] | None = None  # None until the first refresh: the baseline
        self.tray: QSystemTrayIcon | None = None
        self.refresh_count = 0  # refreshes merged so far (tests and the screenshot script wait on it)
        self.crash_handler: Any = None  # drs_desktop.crash.CrashHandler, installed by app.main
        self.about_dialog: QWidget | None = None
        self.getting_started_box: QWidget | None = None
        self._columns_fitted = False  # default widths checked against the viewport on the first show

        self.setWindowTitle(WINDOW_TITLE)
        self.setWindowIcon(load_icon("app"))
        self.resize(1280, 560)

        self.model = TaskTableModel(self)
        self.proxy = TaskFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._build_table()
        self._build_actions()
        self._build_toolbar()
        self._build_status_bar()
        self.sandbox = SandboxLauncher(self)
        self.menus: MenuBar = build_menu_bar(self)
        self.service_actions = ServiceActions(self)
        self.menus.task_menu.addSeparator()
        self.menus.task_menu.addAction(self.service_actions.install_action)
        self.menus.task_menu.addAction(self.service_actions.remove_action)
        self.restore_layout()

        self.registry.copyProgress.connect(self._on_copy_progress)
        self.registry.streamProgress.connect(self._on_stream_progress)
        self.registry.statusChanged.connect(self._on_status_changed)
        self.registry.logEntry.connect(self._on_log_entry)
        self.registry.workerFinished.connect(self._on_worker_finished)
        self.registry.workerSkipped.connect(lambda name, why: self._note(why))
        self.registry.workerFailed.connect(lambda name, why: self._note(f"{name}: {why}"))
        self.registry.promoteStarted.connect(self._on_promote_started)

        self._init_row_refresh()
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(refresh_ms)
        self.refresh_timer.timeout.connect(self.refresh)
        self.refresh_timer.start()
        self.schedule_timer = QTimer(self)
        self.schedule_timer.setInterval(schedule_ms)
        self.schedule_timer.timeout.connect(self._start_scheduled)
        self.schedule_timer.start()
        self.update_actions()
        self.refresh()
        self._recover_promotes()  # then the tasks left running are resumed

    # -- layout ----------------------------------------------------------------------------------
    def _build_table(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 8, 8, 4)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search by task name or tag")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setObjectName("searchBox")
        self.search_edit.textChanged.connect(self.proxy.set_search)
        self.search_edit.textChanged.connect(lambda: self._update_status_bar())
        self.table = QTableView()
        self.table.setObjectName("taskTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(Column.CREATED, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(28)
        self.table.setItemDelegateForColumn(Column.PROGRESS, ProgressDelegate(self.table))
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)  # Tags takes what is left, so the row never needs scrolling
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        header.setMinimumSectionSize(48)
        for column, width in self.default_column_widths().items():
            self.table.setColumnWidth(column, width)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._show_context_menu)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self.update_actions())
        self.table.doubleClicked.connect(lambda _index: self.view_details())
        layout.addWidget(self.search_edit)
        layout.addWidget(self.table, 1)
        self.setCentralWidget(central)
        self.empty_state = EmptyStateOverlay(self.table)
        self.empty_state.createRequested.connect(lambda: self.open_create_wizard())
        self.empty_state.sandboxRequested.connect(lambda: self.sandbox.try_sandbox())
        self.empty_state.clearSearchRequested.connect(self.search_edit.clear)
        proxy = self.proxy
        for signal in (proxy.rowsInserted, proxy.rowsRemoved, proxy.modelReset, proxy.layoutChanged):
            signal.connect(self._update_empty_state)
        self.search_edit.textChanged.connect(self._update_empty_state)
        self.refreshed.connect(self._update_empty_state)

    def default_column_widths(self) -> dict[Column, int]:
        char = self.table.fontMetrics().averageCharWidth()
        padding = 2 * self.table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 14
        widths = {column: char * chars + padding for column, chars in COLUMN_CHARS.items()}
        widths[Column.STATUS] += 22  # the status dot
        return widths

    def fit_columns(self) -> None:
        """Shrink the default widths when they would not fit the table (a large font on a small screen):
        no horizontal scrolling at first sight; the user may still widen a column by hand."""
        header = self.table.horizontalHeader()
        # the stretched last column (Tags) keeps at least the default section size
        available = self.table.viewport().width() - header.defaultSectionSize()
        fixed = [c for c in COLUMN_CHARS if not header.isSectionHidden(c)]
        total = sum(header.sectionSize(c) for c in fixed)
        if available <= 0 or total <= available:
            return
        scale = available / total
        smallest = header.minimumSectionSize()
        for column in fixed:
            header.resizeSection(column, max(smallest, int(header.sectionSize(column) * scale)))

    def _update_empty_state(self, *_args: object) -> None:
        self.empty_state.update_for(self.proxy.rowCount(), self.search_edit.text(), self.refresh_count >= 1)

    def _build_actions(self) -> None:
        self.task_actions: dict[Action, QAction] = {}
        handlers: dict[Action, Callable[[], None]] = {
            Action.START: self.start_task,
            Action.PAUSE: self.pause_task,
            Action.RESUME: self.resume_task,
            Action.RETRY: self.retry_task,
            Action.MODIFY_CONNECTION: self.modify_connection,
            Action.MODIFY_FLOW_CONTROL: self.modify_flow_control,
            Action.PROMOTE: self.promote_task,
            Action.DELETE: self.delete_task,
            Action.VIEW: self.view_details,
            Action.COMPARE: self.compare_task,
            Action.SKIP_EVENT: self.skip_failed_event,
        }
        for action, icon, keys in TASK_ACTIONS:
            qaction = QAction(load_icon(icon), ACTION_LABELS[action], self)
            qaction.setObjectName(f"action_{action.value}")
            if keys:
                qaction.setShortcuts([QKeySequence(k) for k in keys])
            if action in (Action.DELETE, Action.VIEW):
                # Del and Enter belong to the table (the search box keeps its own Del and Enter).
                qaction.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.table.addAction(qaction)
            else:
                self.addAction(qaction)
            qaction.triggered.connect(handlers[action])
            self.task_actions[action] = qaction
        self.create_action = QAction(load_icon("create"), "Create Disaster Recovery Task", self)
        self.create_action.setObjectName("action_create")
        self.create_action.setShortcut(QKeySequence("Ctrl+N"))
        self.create_action.setToolTip("Create Disaster Recovery Task (Ctrl+N)")
        self.create_action.triggered.connect(self.open_create_wizard)
        self.addAction(self.create_action)
        self.refresh_action = QAction(load_icon("refresh"), "Refresh", self)
        self.refresh_action.setObjectName("action_refresh")
        self.refresh_action.setShortcut(QKeySequence(Qt.Key.Key_F5))
        self.refresh_action.setToolTip("Refresh (F5)")
        self.refresh_action.triggered.connect(self.refresh)
        self.addAction(self.refresh_action)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Tasks")
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        bar.addAction(self.create_action)
        bar.addSeparator()
        for action in (Action.START, Action.PAUSE, Action.RESUME, Action.RETRY):
            bar.addAction(self.task_actions[action])
        bar.addSeparator()
        bar.addAction(self.task_actions[Action.PROMOTE])
        bar.addAction(self.task_actions[Action.DELETE])
        bar.addAction(self.task_actions[Action.VIEW])
        bar.addSeparator()
        bar.addAction(self.refresh_action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar

    def _build_status_bar(self) -> None:
        self.counts_label = QLabel()
        self.counts_label.setObjectName("statusCounts")
        self.counts_label.setMinimumWidth(60)  # shrinks (clipped) before the alarm count does
        self.backend_label = QLabel()
        self.backend_label.setObjectName("secretBackend")
        self.workers_label = QLabel()
        self.workers_label.setObjectName("workerCount")
        self.alarm_label = QLabel()
        self.alarm_label.setObjectName("alarmCount")  # its red (per scheme) comes from app.semantic_rules
        # Counts are the normal widget (a note covers them for NOTE_MS); the alarm count is permanent, so
        # a note never hides it, and when the bar is narrow the per-status counts are what gets cut off.
        self.statusBar().addWidget(self.counts_label, 1)
        self.statusBar().addPermanentWidget(self.alarm_label)
        self.statusBar().addPermanentWidget(self.workers_label)
        self.statusBar().addPermanentWidget(self.backend_label)
        try:
            backend = self.service.secrets.backend_name
        except Exception:  # noqa: BLE001 - a broken keyring must not stop the window from opening
            backend = "unavailable"
        self.backend_label.setText(f"Passwords: {backend}")
        self._update_status_bar()

    def _update_status_bar(self) -> None:
        counts = self.model.status_counts()
        total = sum(counts.values())
        parts = [f"{counts[s]} {s.label}" for s in Status if counts.get(s)]
        text = f"{total} task{'s' if total != 1 else ''}"
        if parts:
            text += ": " + " · ".join(parts)
        shown = self.proxy.rowCount()
        if self.proxy.search() and shown != total:
            text += f"  (showing {shown})"
        health = self.model.health_counts()
        alarms, warnings = health.get("alarm", 0), health.get("warning", 0)
        self.counts_label.setText(text)
        self.alarm_label.setText(
            "  ·  ".join(
                part
                for part in (
                    f"{alarms} in alarm" if alarms else "",
                    f"{warnings} with warnings" if warnings else "",
                )
                if part
            )
        )
        running = len(self.registry.running())
        self.workers_label.setText(f"{running} replicating here" if running else "")

    def _note(self, message: str) -> None:
        self.last_message = message
        self.statusBar().showMessage(message, NOTE_MS)

    # -- selection and actions ---------------------------------------------------------------------
    def current_record(self) -> TaskRecord | None:
        index = self.table.selectionModel().currentIndex()
        rows = self.table.selectionModel().selectedRows()
        if rows:
            index = rows[0]
        if not index.isValid():
            return None
        name = self.proxy.index(index.row(), Column.NAME).data()
        return self.model.record(name) if name else None

    def select_task(self, name: str) -> bool:
        row = self.model.row_of(name)
        if row is None:
            return False
        proxy_index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not proxy_index.isValid():
            return False
        self.table.selectRow(proxy_index.row())
        self.table.setCurrentIndex(proxy_index)
        return True

    def update_actions(self) -> None:
        record = self.current_record()
        reasons = allowed_actions(record.status) if record else {}
        for action, qaction in self.task_actions.items():
            reason = reasons.get(action, NO_SELECTION) if record else NO_SELECTION
            qaction.setEnabled(reason is None)
            shortcut = qaction.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            label = ACTION_LABELS[action] + (f" ({shortcut})" if shortcut else "")
            qaction.setToolTip(label if reason is None else reason)
            qaction.setStatusTip(qaction.toolTip())
        if hasattr(self, "service_actions"):  # update_actions runs once before the menus exist
            self.service_actions.update(record)

    def build_context_menu(self) -> QMenu:
        """The right-click menu for the selected task (disabled items say why in their tooltip)."""
        self.update_actions()
        menu = QMenu(self)
        menu.setObjectName("taskContextMenu")
        menu.setToolTipsVisible(True)
        for action in (Action.START, Action.PAUSE, Action.RESUME, Action.RETRY, Action.SKIP_EVENT):
            menu.addAction(self.task_actions[action])
        menu.addSeparator()
        menu.addAction(self.task_actions[Action.MODIFY_CONNECTION])
        menu.addAction(self.task_actions[Action.MODIFY_FLOW_CONTROL])
        menu.addSeparator()
        menu.addAction(self.task_actions[Action.PROMOTE])
        menu.addAction(self.task_actions[Action.DELETE])
        menu.addSeparator()
        menu.addAction(self.service_actions.install_action)
        menu.addAction(self.service_actions.remove_action)
        menu.addSeparator()
        menu.addAction(self.task_actions[Action.VIEW])
        menu.addAction(self.task_actions[Action.COMPARE])
        menu.addSeparator()
        menu.addAction(self.create_action)
        menu.addAction(self.refresh_action)
        menu.aboutToHide.connect(menu.deleteLater)
        return menu

    def _show_context_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if index.isValid():
            self.table.selectRow(index.row())
            self.table.setCurrentIndex(index)
        menu = self.build_context_menu()
        self.context_menu = menu
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _selected_name(self, action: Action) -> str | None:
        record = self.current_record()
        if record is None:
            return None
        reason = allowed_actions(record.status).get(action)
        if reason:
            self._note(reason)
            return None
        return record.name

    # -- background jobs ---------------------------------------------------------------------------
    def _job(
        self,
        action: str,
        name: str,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        *,
        title: str | None = None,
    ) -> None:
        """Run an engine call off the GUI thread; errors are shown in a message box naming the task."""

        def done(result: Any) -> None:
            if on_done:
                on_done(result)
            self.actionDone.emit(action, name)
            self.refresh()

        def failed(exc: BaseException) -> None:
            message = describe_error(exc)
            self._note(f"{name}: {message}")
            if not self._closing:
                show_message(
                    self, title or f"{name}", f"{title or action} failed for {name}:\n{message}", error=True
                )
            self.actionFailed.emit(action, name, message)
            self.refresh()

        self.taskman.run(fn, done, failed)

    # -- refresh ---------------------------------------------------------------------------------
    def _init_row_refresh(self) -> None:
        self.store_rows = StoreRows(self.service)  # the store is the one source of every row
        self.destroyed.connect(self.store_rows.close)
        self._next_expiry_check = 0.0  # monotonic time of the next "end old creation failures" pass
        # worker signals ask for a re-read of the store; a burst of them makes one refresh
        self._refresh_soon = QTimer(self)
        self._refresh_soon.setSingleShot(True)
        self._refresh_soon.setInterval(REFRESH_SOON_MS)
        self._refresh_soon.timeout.connect(self.refresh)

    def refresh(self) -> None:
        """Merge what changed in the store into the table, read off the GUI thread: when the file has not
        changed nothing is read, else only the rows whose change counter moved (StoreRows)."""
        if self._closing:
            return
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing = True
        store, rows = self.service.store, self.store_rows
        expiry_due = time.monotonic() >= self._next_expiry_check
        if expiry_due:
            self._next_expiry_check = time.monotonic() + EXPIRY_CHECK_S

        def read() -> RowUpdate:
            if expiry_due:
                store.end_expired_creation_failures()  # a write: the rows it ends come with this read
            return rows.read()

        self.taskman.run(read, self._apply_records, self._refresh_failed)

    def _refresh_later(self) -> None:
        if not self._refresh_soon.isActive():
            self._refresh_soon.start()

    def _apply_records(self, update: RowUpdate) -> None:
        self._refreshing = False
        if self._closing:
            return
        if update.complete:
            self.model.set_records(update.changed)
            self.model.set_health(update.health)
        else:
            self.model.apply_changes(update.changed, update.removed)
            self.model.update_health(update.health, update.removed)
        self.model.tick()
        self._notify_alarms(self.model.health_by_name())
        self.refresh_count += 1
        for name, dialog in list(self._details.items()):
            record = self.model.record(name)
            if record is not None:
                dialog.set_record(record)
        if self._resume_pending:
            self._resume_at_startup(self.model.records())
        for name, progress in self._promote_dialogs.items():
            record = self.model.record(name)
            if record is not None and shiboken6.isValid(progress):
                progress.set_delay(record.delay_seconds)  # the promote's catch-up reports it to the store
        self._start_scheduled()
        self._update_status_bar()
        self.update_actions()
        self.refreshed.emit()
        if self._refresh_again:
            self._refresh_again = False
            self.refresh()

    def _notify_alarms(self, health: dict[str, Any]) -> None:
        """A desktop notification when a task goes into alarm: on the change only, not on every refresh.

        The first refresh is the baseline: tasks already in alarm when the window opens show in the table
        and status bar, without a notification each time the app starts.
        """
        states = {name: h.state for name, h in health.items()}
        previous, self._health_states = self._health_states, states
        if previous is None:
            return
        new = [
            name
            for name, state in states.items()
            if state == "alarm" and previous.get(name) != "alarm" and not self._own_runner_starting(name, health[name])
        ]
        if not new:
            return
        lines = [f"{name}: {'; '.join(health[name].reasons) or 'in alarm'}" for name in sorted(new)]
        title = "DR task in alarm" if len(new) == 1 else f"{len(new)} DR tasks in alarm"
        self.last_alarm_notice = f"{title}\n" + "\n".join(lines)
        self._note(f"{title}: {', '.join(sorted(new))}")
        if self.tray is None and QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(load_icon("app"), self)
            self.tray.setToolTip(WINDOW_TITLE)
            self.tray.messageClicked.connect(self._show_from_tray)
            self.tray.show()
        if self.tray is not None:
            self.tray.showMessage(title, "\n".join(lines), QSystemTrayIcon.MessageIcon.Critical, 15_000)

    def _own_runner_starting(self, name: str, health: Any) -> bool:
        """An alarm whose only reason is "no process is running this task" while this window's own worker is
        starting it (a task just created or resumed here): not worth a notification."""
        return self.registry.is_running(name) and all(
            reason.startswith("no process is running this task") for reason in health.reasons
        )

    def _show_from_tray(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def _refresh_failed(self, exc: BaseException) -> None:
        self._refreshing = False
        self._note(f"Could not read the task store: {describe_error(exc)}")
        if self._refresh_again:
            self._refresh_again = False
            self._refresh_later()

    def _start_scheduled(self) -> None:
        if self._closing or not self.autostart:
            return
        started = self.registry.start_due(self.model.records(), datetime.now())
        if started:
            self._note(f"Scheduled start: {', '.join(started)}")
            self._update_status_bar()

    # -- worker signals --------------------------------------------------------------------------
    # The runner writes progress, delay and status to the store before it signals; the signals only ask
    # for a (coalesced) refresh, which reads the rows that changed. The store stays the one source.
    def _on_copy_progress(self, name: str, progress: Any) -> None:
        self._refresh_later()

    def _on_stream_progress(self, name: str, progress: Any) -> None:
        self._refresh_later()

    def _on_status_changed(self, change: Any) -> None:
        self._refresh_later()

    def _on_log_entry(self, name: str, entry: DrLogEntry) -> None:
        dialog = self._details.get(name)
        if dialog is not None:
            dialog.append_log(entry)

    def _on_worker_finished(self, name: str, status: str) -> None:
        self._update_status_bar()
        self.refresh()

    # -- task actions ----------------------------------------------------------------------------
    def start_task(self) -> None:
        name = self._selected_name(Action.START)
        if name is None:
            return
        svc = self.service
        self._job(
            Action.START.value, name, lambda: svc.start(name), lambda _: self.registry.start(name), title="Start"
        )

    def pause_task(self) -> None:
        name = self._selected_name(Action.PAUSE)
        if name is None:
            return

        store = self.service.store

        def still_paused() -> None:
            # A runner crossing from the initial to the incremental phase at the moment of the pause
            # may have written its running status over ours; the pause request is still there.
            record = store.get_task(name)
            if record.control_request == "pause" and record.status in RUNNING:
                store.set_status(name, Status.PAUSED, expect=set(RUNNING))

        def paused(_: Any) -> None:
            self.model.patch(name, status=Status.PAUSED)
            self.update_actions()
            self.registry.stop_then(name, lambda: self.taskman.run(still_paused, lambda _: self.refresh()))

        self._job(Action.PAUSE.value, name, lambda: self.service.pause(name), paused, title="Pause")

    def resume_task(self) -> None:
        self._resume(Action.RESUME)

    def retry_task(self) -> None:
        self._resume(Action.RETRY)

    def _resume(self, action: Action) -> None:
        name = self._selected_name(action)
        if name is None:
            return
        title = ACTION_LABELS[action]

        def resumed(_: Any) -> None:
            self.registry.start(name)
            self._update_status_bar()

        # A worker still winding down from a pause must end first, or the new one would be refused.
        self.registry.stop_then(
            name,
            lambda: self._job(action.value, name, lambda: self.service.resume(name), resumed, title=title),
        )

    def modify_connection(self) -> None:
        name = self._selected_name(Action.MODIFY_CONNECTION)
        record = self.model.record(name) if name else None
        if record is None:
            return
        # The dialog saves through the engine itself (TaskService.modify_connection on this window's
        # TaskManager) and stays open on a refusal, to show it under the field it is about.
        dialog = ConnectionDialog(record, self, service=self.service, taskman=self.taskman)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def saved(task: str, sides: list[str]) -> None:
            which = " and ".join("service" if side == "source" else "DR" for side in sides)
            self._note(f"{task}: {which} connection details saved")
            self.actionDone.emit(Action.MODIFY_CONNECTION.value, task)
            self.refresh()

        dialog.saved.connect(saved)
        dialog.open()

    def modify_flow_control(self) -> None:
        name = self._selected_name(Action.MODIFY_FLOW_CONTROL)
        record = self.model.record(name) if name else None
        if record is None:
            return
        dialog = FlowControlDialog(record, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        svc = self.service

        def save() -> None:
            fc = dialog.flow_control()
            # the status rule, the values and the DR log entry are the engine's (a copy under way follows it)
            self._job(
                Action.MODIFY_FLOW_CONTROL.value,
                name,
                lambda: svc.modify_flow_control(name, fc),
                title="Modify Flow Control",
            )

        dialog.accepted.connect(save)
        dialog.open()

    def delete_task(self) -> None:
        name = self._selected_name(Action.DELETE)
        record = self.model.record(name) if name else None
        if name is None or record is None:
            return
        # the status decides whether lifting read-only on the DR database is offered
        dialog = DeleteTaskDialog(name, self, status=record.status)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def confirmed() -> None:
            lift = dialog.lift_read_only
            from engine.lifecycle import delete_task

            def deleted(_: Any) -> None:
                self.model.remove(name)
                details = self._details.pop(name, None)
                if details is not None:
                    details.close()
                self._update_status_bar()
                self.update_actions()
                self._note(f"Task {name} deleted")

            self._note(f"Deleting {name}…")
            self.registry.stop_then(
                name,
                lambda: self._job(
                    Action.DELETE.value,
                    name,
                    lambda: delete_task(self.service, name, lift_read_only=lift),
                    deleted,
                    title="Delete",
                ),
            )

        dialog.accepted.connect(confirmed)
        dialog.open()

    def view_details(self) -> None:
        record = self.current_record()
        if record is None:
            return
        dialog = self._details.get(record.name)
        if dialog is None:
            # The dialog reads its DR log and monitoring samples itself, through the window's TaskManager.
            dialog = TaskDetailsDialog(
                record, self, store=self.service.store, taskman=self.taskman, service=self.service
            )
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self._details[record.name] = dialog
            dialog.destroyed.connect(lambda *_, n=record.name: self._details.pop(n, None))
        dialog.show()
        dialog.raise_()

    def compare_task(self) -> None:
        """Compare opens the details on their Data comparison tab (where the run is started)."""
        name = self._selected_name(Action.COMPARE)
        if name is None:
            return
        self.view_details()
        dialog = self._details.get(name)
        if dialog is not None:
            dialog.show_tab(dialog.compare_tab)

    def skip_failed_event(self) -> None:
        """Show the transaction a failed task stopped before; on the DBA's yes, move the checkpoint past it."""
        name = self._selected_name(Action.SKIP_EVENT)
        if name is None:
            return
        from engine import skip

        svc = self.service

        def ask(group: Any) -> None:
            if self._closing:
                return
            box = QMessageBox(QMessageBox.Icon.Warning, f"Skip Failed Event — {name}",
                              "Skip exactly this source transaction? It will NOT be applied to the DR side: "
                              "do so only after handling it there by hand.", parent=self)  # fmt: skip
            box.setInformativeText(group.describe())
            box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            self.last_skip_question = group.describe()
            if self.confirm_skip(box) != QMessageBox.StandardButton.Yes:
                self._note(f"{name}: nothing skipped")
                return
            self._job("skip", name, lambda: skip.skip_event(svc, name, group),
                      lambda _: self._note(f"{name}: skipped {group.start.file}:{group.start.pos}; Retry to continue"),
                      title="Skip Failed Event")  # fmt: skip

        self._job("skip", name, lambda: skip.next_event(svc, name), ask, title="Skip Failed Event")

    def confirm_skip(self, box: QMessageBox) -> QMessageBox.StandardButton:
        """The DBA's answer (tests answer through this)."""
        return QMessageBox.StandardButton(box.exec())

    # -- promote ---------------------------------------------------------------------------------
    def promote_task(self) -> None:
        """Plan the promote off the GUI thread, show exactly what changes role, then run it under the registry."""
        name = self._selected_name(Action.PROMOTE)
        if name is None:
            return
        if self.registry.is_promoting(name):
            show_message(
                self, "Promote", f"Task {name} is already promoting: wait for that promote to finish."
            )
            return
        from engine import promote as promote_mod

        svc = self.service
        self._note(f"Planning the promote of {name}…")

        def plan() -> tuple[Any, str]:
            # Connects to both servers (an unreachable one costs its connect timeout): never on the GUI thread.
            the_plan = promote_mod.promote_plan(svc, name)
            estimate = promote_mod.failover_estimate(svc, name).message if the_plan.mode == "failover" else ""
            return the_plan, estimate

        def planned(result: tuple[Any, str]) -> None:
            if self._closing:
                return
            the_plan, estimate = result
            if the_plan.mode == "switchover":
                dialog: SwitchoverDialog | FailoverDialog = SwitchoverDialog(name, the_plan, self)
            else:
                dialog = FailoverDialog(name, the_plan, estimate, self)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            force = the_plan.mode == "failover"
            dialog.accepted.connect(lambda: self._run_promote(name, force, dialog.timeout, the_plan))
            self.promote_confirm = dialog
            dialog.open()

        def failed(exc: BaseException) -> None:
            self._note(f"{name}: {describe_error(exc)}")
            if not self._closing:
                show_message(
                    self, "Promote", f"Promote cannot start for {name}:\n{describe_error(exc)}", error=True
                )

        self.taskman.run(plan, planned, failed)

    def _run_promote(self, name: str, force: bool, timeout: float, plan: Any = None) -> None:
        mode = "failover" if force else "switchover"
        progress = PromoteProgressDialog(name, mode, self, timeout=timeout)
        progress.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        progress.reverseRequested.connect(self.open_reverse_wizard)
        if plan is not None:
            progress.set_delay(plan.delay_seconds)
        self.promote_dialog = progress
        was_running = self.registry.is_running(name)

        def message(text: str) -> None:
            if shiboken6.isValid(progress):
                progress.add_message(text)

        def done(result: Any, error: BaseException | None) -> None:
            self._promote_done(name, progress, result, error, was_running)

        progress.add_message("Stopping the task's replication worker at a checkpoint…")
        cancel = self.registry.run_promote(
            name, force=force, timeout=timeout, on_message=message, on_done=done
        )
        if cancel is None:
            progress.show_error(
                f"Task {name} is already promoting in this window: wait for that promote to finish."
            )
        else:
            self._promote_dialogs[name] = progress
            progress.cancelRequested.connect(self.registry.cancel_promote)
        progress.show()

    def _on_promote_started(self, name: str) -> None:
        dialog = self._promote_dialogs.get(name)
        if dialog is not None and shiboken6.isValid(dialog):
            dialog.add_message("Replication worker stopped; promoting…")

    def _promote_done(
        self,
        name: str,
        progress: PromoteProgressDialog,
        result: Any,
        error: BaseException | None,
        was_running: bool,
    ) -> None:
        """The outcome on the GUI thread: promoted, rolled back (service writable again), stranded
        (service STILL read-only: say how to lift it), already promoting elsewhere, or failed."""

        self._promote_dialogs.pop(name, None)
        shown = shiboken6.isValid(progress)
        if error is None:
            if shown:
                progress.show_result(result)
            self._note(f"{name}: {result.message}")
            self.actionDone.emit(Action.PROMOTE.value, name)
            self.refresh()
            return
        message = describe_error(error)
        if isinstance(error, PromoteStranded):
            if shown:
                progress.show_stranded(message, error.statements, error.server)
            self._note(f"{name}: promote failed and the service database is STILL READ-ONLY")
        elif isinstance(error, PromoteRolledBack):
            if shown:
                progress.show_rolled_back(error.reason)
            self._note(f"{name}: promote rolled back; the service database is writable again")
        elif isinstance(error, PromoteAlreadyRunning):
            if shown:
                progress.show_error(
                    f"Already promoting: {message}. This attempt changed nothing.",
                    headline=f"<b>{html.escape(name)}</b> is already promoting",
                )
        elif shown:
            progress.show_error(message)
        if not isinstance(error, PromoteStranded) and (was_running or self.autostart):
            # Rolled back (or never started): the task is back in its previous status; a running one
            # replicates again here, as before the promote.
            self._resume_task_worker(name)
        self.actionFailed.emit(Action.PROMOTE.value, name, message)
        self.refresh()

    def _resume_task_worker(self, name: str) -> None:
        store = self.service.store

        def restart(record: TaskRecord) -> None:
            if not self._closing and self.registry.resume_running([record]):
                self._update_status_bar()

        self.taskman.run(lambda: store.get_task(name), restart, lambda exc: self._note(describe_error(exc)))

    def _recover_promotes(self) -> None:
        """A promote cut off by a crash leaves its task in Promoting (and its service database maybe
        read-only): the engine rolls it back, off the GUI thread, before tasks are resumed here."""
        svc = self.service

        def recover() -> tuple[list[str], str | None, list[TaskRecord]]:
            messages: list[str] = []
            problem = None
            try:
                from engine.promote import recover_stale_promotes

                messages = list(recover_stale_promotes(svc))
            except Exception as exc:  # noqa: BLE001 - shown; the tasks are still resumed
                problem = describe_error(exc)
            return messages, problem, svc.store.list_tasks()  # read after the recovery: what to resume

        def recovered(result: tuple[list[str], str | None, list[TaskRecord]]) -> None:
            messages, problem, records = result
            self.recovery_messages = messages
            if self._closing:
                return
            if problem:
                self._note(f"Could not check for interrupted promotes: {problem}")
            if messages:
                self._note(" · ".join(messages))
                show_message(self, "Interrupted promote recovered", "\n\n".join(messages))
            self._resume_at_startup(records)
            self.refresh()

        def failed(exc: BaseException) -> None:  # the store itself could not be read
            self.recovery_messages = []
            self._note(f"Could not read the task store: {describe_error(exc)}")
            self._resume_pending = True  # the next refresh that works resumes the tasks

        self.taskman.run(recover, recovered, failed)

    def _resume_at_startup(self, records: list[TaskRecord]) -> None:
        self._resume_pending = False
        if self._closing or not self.autostart or self._resumed_at_startup:
            return
        self._resumed_at_startup = True
        started = self.registry.resume_running(records)
        if started:
            self._note(f"Resumed {', '.join(started)}")
            self._update_status_bar()

    # -- wizard ----------------------------------------------------------------------------------
    def open_create_wizard(self, prefill: dict[str, Any] | None = None) -> QWidget | None:
        try:
            from drs_desktop.wizard import CreateTaskWizard
        except ImportError:
            show_message(
                self,
                "Create Disaster Recovery Task",
                "The Create Disaster Recovery Task wizard is not available yet.",
            )
            return None
        kwargs: dict[str, Any] = {}
        if prefill and "prefill" in inspect.signature(CreateTaskWizard).parameters:
            kwargs["prefill"] = prefill
        wizard = CreateTaskWizard(self.service, self.taskman, self, **kwargs)
        wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        wizard.taskCreated.connect(self._on_task_created)
        wizard.creationFailed.connect(lambda *_: self.refresh())  # show the Creation failed row
        self.wizard = wizard
        wizard.open()
        return wizard

    def open_reverse_wizard(self, name: str) -> None:
        from engine import promote as promote_mod

        self.taskman.run(
            lambda: promote_mod.reverse_spec(self.service, name),
            lambda spec: self.open_create_wizard(prefill=spec),
            lambda exc: show_message(self, "Create reverse task", describe_error(exc), error=True),
        )

    def _on_task_created(self, name: str) -> None:
        store = self.service.store

        def created(record: TaskRecord) -> None:
            self._note(f"Task {name} created ({record.status.label})")
            if record.status in (Status.STARTING, Status.INITIALIZING, Status.REPLICATING):
                self.registry.start(name)
            self.refresh()

        self.taskman.run(lambda: store.get_task(name), created, lambda exc: self._note(describe_error(exc)))

    # -- closing ---------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop refreshing, stop every worker at a checkpoint and cancel a promote (the engine rolls it
        back), and let the background jobs finish. The threads stop on their own while a modal "Stopping
        N tasks…" dialog shows and events keep being processed here, so the window never freezes and
        this returns only once everything has ended (or STOP_ALL_TIMEOUT_MS passed)."""
        if self._closing:
            return
        self._closing = True
        self.refresh_timer.stop()
        self.schedule_timer.stop()
        busy = self.registry.busy()
        dialog: StoppingTasksDialog | None = None
        if busy:
            dialog = StoppingTasksDialog(busy, self.registry.promoting(), self)
            self.stopping_dialog = dialog
            dialog.show()
        registry_idle = False

        def update() -> None:
            if dialog is not None:
                dialog.set_remaining(self.registry.busy())

        def idle() -> None:
            nonlocal registry_idle
            registry_idle = True

        self.registry.workerFinished.connect(update)
        self.registry.promoteFinished.connect(update)
        self.registry.stop_all_then(idle)
        wake = QTimer(self)  # the thread pool has no "idle" signal: look again every 50 ms
        wake.setInterval(50)
        wake.start()
        deadline = time.monotonic() + STOP_ALL_TIMEOUT_MS / 1000
        # TaskManager jobs are short but may be in a connect: they end before the window goes too.
        while not (registry_idle and self.taskman.wait_idle(0)) and time.monotonic() < deadline:
            # processEvents, not a nested QEventLoop: widgets others scheduled for deletion
            # (deleteLater) outside this loop are not deleted under their owners' feet.
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
        wake.stop()
        wake.deleteLater()
        self.registry.workerFinished.disconnect(update)
        self.registry.promoteFinished.disconnect(update)
        if self.registry.busy():
            self._note(
                f"Still running after {STOP_ALL_TIMEOUT_MS // 1000} s: {', '.join(self.registry.busy())}"
            )
        if dialog is not None:
            update()
            dialog.hide()
            dialog.deleteLater()
        self._shut_down = True
        if self.tray is not None:
            self.tray.hide()

    # -- remembered layout ------------------------------------------------------------------------
    def save_layout(self) -> None:
        """Geometry, toolbar, columns (widths and order), sort and search into the home's gui settings."""
        settings = gui_settings(self.service.home)
        header = self.table.horizontalHeader()
        for key, value in (
            (GEOMETRY_KEY, self.saveGeometry()),
            (STATE_KEY, self.saveState()),
            (HEADER_KEY, header.saveState()),
            (HEADER_COLUMNS_KEY, len(Column)),
            (SORT_COLUMN_KEY, header.sortIndicatorSection()),
            (SORT_ORDER_KEY, header.sortIndicatorOrder().value),
            (SEARCH_KEY, self.search_edit.text()),
        ):
            remember(settings, key, value)
        settings.sync()

    def restore_layout(self) -> None:
        """What save_layout wrote last time (each part only when it is there and fits this version)."""
        settings = gui_settings(self.service.home)
        geometry, state, header_state = (settings.value(k) for k in (GEOMETRY_KEY, STATE_KEY, HEADER_KEY))
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        header = self.table.horizontalHeader()
        columns = settings.value(HEADER_COLUMNS_KEY, 0, type=int)
        if isinstance(header_state, QByteArray) and columns == len(Column):
            # the user's own widths: never shrunk behind their back
            self._columns_fitted = header.restoreState(header_state)
        column = settings.value(SORT_COLUMN_KEY, -1, type=int)
        if 0 <= column < len(Column):
            order = Qt.SortOrder(settings.value(SORT_ORDER_KEY, 0, type=int))
            self.table.sortByColumn(column, order)
        search = settings.value(SEARCH_KEY, "", type=str)
        if search:
            self.search_edit.setText(search)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._columns_fitted:
            self._columns_fitted = True
            QTimer.singleShot(0, self.fit_columns)  # once laid out: the viewport has its real width then

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing and not self._shut_down:
            event.ignore()  # a second close while the first one stops the tasks: that one closes the window
            return
        self.save_layout()
        self.shutdown()
        for dialog in list(self._details.values()):
            dialog.close()
        for progress in list(self._promote_dialogs.values()):
            if shiboken6.isValid(progress):
                progress.force_close()
        super().closeEvent(event)

    def proxy_row_of(self, name: str) -> int | None:
        row = self.model.row_of(name)
        if row is None:
            return None
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        return index.row() if index.isValid() else None

    def visible_names(self) -> list[str]:
        return [self.proxy.index(r, Column.NAME).data() for r in range(self.proxy.rowCount(QModelIndex()))]
