"""The main window's dialogs: delete, promote (plan and switchover/failover confirmation, progress,
outcome), stopping tasks on close, modify connection details, modify flow control. The task details dialog lives in drs_desktop.details (re-exported here).

Every dialog is opened with open() (window-modal, never exec()), so the GUI and tests keep running;
the window connects `accepted` to the follow-up work, which runs off the GUI thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.spec import Endpoint, FlowControl, TimeWindow, check_max_mb_s, check_windows, parse_clock
from engine.status import Status
from engine.store import TaskRecord

from .rowmodel import RowTableModel
from .task_model import format_delay


def show_message(parent: QWidget | None, title: str, text: str, *, error: bool = False) -> QMessageBox:
    """A non-blocking message box (open(), not exec()); deleted when closed."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical if error else QMessageBox.Icon.Information)
    box.setWindowTitle(title)
    box.setText(text)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def _wrapped(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class _ConfirmDialog(QDialog):
    """Text, optional extra widgets, and an OK button named for the action."""

    def __init__(
        self, title: str, text: str, ok_text: str, parent: QWidget | None = None, *, danger: bool = False
    ):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(480)
        self.layout_ = QVBoxLayout(self)
        self.text_label = _wrapped(text)
        self.text_label.setTextFormat(Qt.TextFormat.RichText)
        self.layout_.addWidget(self.text_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.addButton(ok_text, QDialogButtonBox.ButtonRole.AcceptRole)
        if danger:
            self.ok_button.setObjectName("dangerButton")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._extra_at = 1

    def add_widget(self, widget: QWidget) -> None:
        self.layout_.insertWidget(self._extra_at, widget)
        self._extra_at += 1

    def add_layout(self, layout: QLayout) -> None:
        self.layout_.insertLayout(self._extra_at, layout)
        self._extra_at += 1

    def finish_layout(self) -> None:
        self.layout_.addStretch(1)
        self.layout_.addWidget(self.buttons)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Statuses in which the task has made (or is making) the DR database read-only: only then may deleting it
# leave a read-only DR database behind. Not before it ran (configuration, pending start, creation
# failed), nor after a promote made the DR side writable (promoted) or the task ended.
DR_READ_ONLY_STATUSES = frozenset(
    {Status.STARTING, Status.INITIALIZING, Status.REPLICATING, Status.PAUSED, Status.FAILED}
)


class DeleteTaskDialog(_ConfirmDialog):
    """Confirms deleting a task (Cancel is the default: Enter does not delete); offers to lift read-only
    on the DR database where the task had set it."""

    def __init__(self, name: str, parent: QWidget | None = None, *, status: Status):
        super().__init__(
            "Delete Disaster Recovery Task",
            f"Delete the DR task <b>{_esc(name)}</b>?<br><br>Its settings, stored passwords, checkpoint and "
            "DR log are removed. The data already on the DR database stays there.",
            "Delete",
            parent,
            danger=True,
        )
        self.name = name
        self.status = status
        self.lift_read_only_box: QCheckBox | None = None
        if status in DR_READ_ONLY_STATUSES:
            self.lift_read_only_box = QCheckBox("Also make the DR database writable (lift read-only)")
            self.lift_read_only_box.setToolTip(
                "Runs SET GLOBAL read_only = OFF on the DR database before deleting: the task kept it "
                "read-only while it ran"
            )
            self.add_widget(self.lift_read_only_box)
        self.finish_layout()
        cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button.setAutoDefault(False)  # a focused Delete must not become the default either
        self.ok_button.setDefault(False)
        cancel.setDefault(True)
        cancel.setFocus()

    @property
    def lift_read_only(self) -> bool:
        return self.lift_read_only_box is not None and self.lift_read_only_box.isChecked()


SWITCHOVER_TEXT = (
    "Switch over the DR task <b>{name}</b>?<br><br>"
    "The service database will be made read-only, the DR database becomes writable once it has applied "
    "everything (RPO 0). Applications must then be pointed at the DR database."
)
FROZEN_BG = QColor("#fff1c2")  # databases outside the task that the server-wide read_only freezes too
FROZEN_FG = QColor("#7a4100")
DANGER_RED = "#b42318"


@dataclass(frozen=True)
class RoleChange:
    """One database on one server, as a promote changes it."""

    server: str  # "Service 10.0.0.11:3306" / "DR 10.8.0.21:3306"
    database: str
    now: str
    after: str
    frozen: bool = False  # not in the task: stops taking writes only because read_only is server-wide


def plan_changes(plan: Any) -> list[RoleChange]:
    """The rows of the role table from an engine.promote.PromotePlan."""
    every = "(every user database)"
    task_dbs = list(plan.task_databases) if plan.task_databases is not None else [every]
    rows: list[RoleChange] = []
    if plan.mode == "switchover":
        service = f"Service {plan.service_server}"
        rows += [RoleChange(service, db, "writable", "read-only") for db in task_dbs]
        rows += [
            RoleChange(service, db, "writable", "read-only (not in this task)", frozen=True)
            for db in plan.other_databases or ()
        ]
    else:
        rows.append(RoleChange(f"Service {plan.service_server}", "(all)", "unreachable", "not changed"))
    dr = f"DR {plan.dr_server}"
    rows += [RoleChange(dr, db, "read-only", "writable") for db in task_dbs]
    return rows


class PromotePlanModel(RowTableModel):
    """Which databases on which servers change role; the ones frozen beside the task are highlighted."""

    COLUMNS = ("Server", "Database", "Now", "After the promote")

    def set_changes(self, changes: list[RoleChange]) -> None:
        self.beginResetModel()
        self.rows = list(changes)
        self.endResetModel()

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        row: RoleChange | None = self.row_at(index)
        if row is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return (row.server, row.database, row.now, row.after)[index.column()]
        if row.frozen:
            if role == Qt.ItemDataRole.BackgroundRole:
                return FROZEN_BG
            if role == Qt.ItemDataRole.ForegroundRole:
                return FROZEN_FG
            if role == Qt.ItemDataRole.ToolTipRole:
                return (
                    f"{row.database} is not replicated by this task, but read_only applies to the whole "
                    "server: it stops taking writes while the service database is read-only"
                )
        return None


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else format_delay(value) or "0 s"


class _PromoteConfirmDialog(_ConfirmDialog):
    """The promote confirmation: what changes role (from engine.promote.promote_plan), what read_only
    freezes beside the task, the delay and the expected read-only time."""

    def __init__(self, title: str, text: str, ok_text: str, name: str, plan: Any,
                 parent: QWidget | None = None, *, danger: bool = False):  # fmt: skip
        super().__init__(title, text, ok_text, parent, danger=danger)
        self.setMinimumWidth(640)
        self.name = name
        self.plan = plan
        self.changes_model = PromotePlanModel(self)
        self.changes_model.set_changes(plan_changes(plan))
        self.changes_view = QTableView()
        self.changes_view.setObjectName("promoteChanges")
        self.changes_view.setModel(self.changes_model)
        self.changes_view.verticalHeader().setVisible(False)
        self.changes_view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.changes_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.changes_view.setWordWrap(False)
        header = self.changes_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.changes_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # As tall as its rows (up to 8; more scroll): no empty table area, no scrolling for a usual task.
        rows = self.changes_model.rowCount()
        row_height = self.changes_view.verticalHeader().defaultSectionSize()
        height = (
            header.sizeHint().height()
            + row_height * max(1, min(rows, 8))
            + 2 * self.changes_view.frameWidth()
        )
        self.changes_view.setFixedHeight(height)
        box = QGroupBox("What changes role")
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.changes_view)
        self.add_widget(box)

        self.frozen_label = _wrapped(self._frozen_text())
        self.frozen_label.setObjectName("frozenWarning")
        self.frozen_label.setTextFormat(Qt.TextFormat.RichText)
        self.frozen_label.setStyleSheet(
            f"QLabel#frozenWarning {{ background: {FROZEN_BG.name()}; color: {FROZEN_FG.name()};"
            " border: 1px solid #e0b44c; border-radius: 4px; padding: 6px; }"
        )
        self.frozen_label.setVisible(bool(self.frozen_label.text()))
        box_layout.addWidget(self.frozen_label)

        self.form = QFormLayout()
        self.delay_label = QLabel(_seconds(plan.delay_seconds))
        self.delay_label.setObjectName("planDelay")
        self.form.addRow("Current delay:", self.delay_label)
        self.add_layout(self.form)
        self.not_allowed_label = _wrapped(f"Promote is not available now: {plan.not_allowed}")
        self.not_allowed_label.setObjectName("errorText")
        self.not_allowed_label.setVisible(bool(plan.not_allowed))
        self.add_widget(self.not_allowed_label)
        self.ok_button.setEnabled(not plan.not_allowed)

    def _frozen_text(self) -> str:
        plan = self.plan
        parts = []
        if plan.mode == "switchover" and plan.other_databases:
            parts.append(
                f"<b>Also frozen:</b> read_only applies to the whole service server {_esc(plan.service_server)}, "
                f"so these databases outside the task stop taking writes too: "
                f"<b>{_esc(', '.join(plan.other_databases))}</b>."
            )
        if plan.other_tasks:
            items = "".join(
                f"<li><b>{_esc(t.name)}</b> ({_esc(t.status)}): {_esc(t.effect)}</li>"
                for t in plan.other_tasks
            )
            parts.append(f"<b>Other DR tasks affected:</b><ul style='margin: 0'>{items}</ul>")
        return "<br>".join(parts)


class SwitchoverDialog(_PromoteConfirmDialog):
    """Planned switchover (RPO 0): the plan, the expected read-only time and the deadline to roll back at."""

    def __init__(self, name: str, plan: Any, parent: QWidget | None = None, *, timeout: float = 60.0):
        super().__init__(
            "Promote (switchover)", SWITCHOVER_TEXT.format(name=_esc(name)), "Switch over", name, plan, parent
        )
        self.mode = "switchover"
        self.read_only_label = QLabel(f"about {_seconds(plan.read_only_estimate_seconds)}")
        self.read_only_label.setObjectName("planReadOnly")
        self.read_only_label.setToolTip("How long the service database is expected to refuse writes: "
                                        "the time the DR database needs to apply what it is behind")  # fmt: skip
        self.form.addRow("Expected read-only time:", self.read_only_label)
        self.deadline_spin = QSpinBox()
        self.deadline_spin.setObjectName("deadline")
        self.deadline_spin.setRange(5, 3600)
        self.deadline_spin.setSuffix(" s")
        self.deadline_spin.setValue(int(timeout))
        self.deadline_spin.setAccessibleName("Deadline in seconds")
        deadline_row = QHBoxLayout()
        deadline_row.addWidget(self.deadline_spin)
        deadline_row.addWidget(_wrapped("if the DR database has not caught up by then, the promote is rolled "
                                        "back and the service database made writable again"), 1)  # fmt: skip
        self.form.addRow("Deadline:", deadline_row)
        self.finish_layout()

    @property
    def timeout(self) -> float:
        return float(self.deadline_spin.value())


class FailoverDialog(_PromoteConfirmDialog):
    """The service database cannot be reached: promoting now may lose changes; says which."""

    def __init__(self, name: str, plan: Any, estimate_message: str, parent: QWidget | None = None):
        super().__init__(
            "Promote (failover)",
            f"The service database of <b>{_esc(name)}</b> cannot be reached, so a switchover without data loss "
            "is not possible.<br><br>Fail over: the DR database is made writable now, with what it has applied.",
            "Fail over",
            name,
            plan,
            parent,
            danger=True,
        )
        self.mode = "failover"
        self.estimate_label = _wrapped(estimate_message)
        self.estimate_label.setObjectName("estimate")
        box = QGroupBox("What may be lost")
        QVBoxLayout(box).addWidget(self.estimate_label)
        self.add_widget(box)
        self.finish_layout()

    @property
    def timeout(self) -> float:
        return 60.0


class PromoteProgressDialog(QDialog):
    """While the promote runs: its messages, the delay, the time against the deadline and Cancel (the
    engine rolls back). Then the outcome: promoted, rolled back, or stranded (service still read-only)."""

    reverseRequested = Signal(str)
    cancelRequested = Signal(str)

    def __init__(self, name: str, mode: str, parent: QWidget | None = None, *, timeout: float | None = None):
        super().__init__(parent)
        self.name = name
        self.mode = mode
        self.timeout = timeout
        self.finished_ok: bool | None = None
        self.outcome = ""  # "" while running; promoted | rolled_back | stranded | failed
        self._force_close = False
        self.setWindowTitle(f"Promote {name} ({mode})")
        self.setMinimumSize(680, 360)
        layout = QVBoxLayout(self)
        self.headline = QLabel(f"Promoting <b>{_esc(name)}</b> ({mode})…")
        layout.addWidget(self.headline)
        facts = QHBoxLayout()
        self.delay_label = QLabel("Delay: unknown")
        self.delay_label.setObjectName("promoteDelay")
        self.elapsed_label = QLabel("")
        self.elapsed_label.setObjectName("promoteElapsed")
        facts.addWidget(self.delay_label)
        facts.addStretch(1)
        facts.addWidget(self.elapsed_label)
        layout.addLayout(facts)
        self.messages = QListWidget()
        self.messages.setWordWrap(True)
        self.messages.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout.addWidget(self.messages, 1)
        self.result_label = _wrapped("")
        self.result_label.setVisible(False)
        layout.addWidget(self.result_label)
        self.stranded_box = QFrame()
        self.stranded_box.setObjectName("strandedBox")
        self.stranded_box.setStyleSheet(
            f"QFrame#strandedBox {{ background: #fde8e8; border: 2px solid {DANGER_RED}; border-radius: 4px; }}"
            " QFrame#strandedBox QLabel { color: #3b0d0c; }"  # a fixed light box: dark text in a dark scheme too
        )
        stranded_layout = QVBoxLayout(self.stranded_box)
        self.stranded_title = QLabel("The service database is STILL READ-ONLY")
        self.stranded_title.setObjectName("strandedTitle")
        self.stranded_title.setWordWrap(True)
        self.stranded_title.setStyleSheet(f"color: {DANGER_RED}; font-size: 14pt; font-weight: 700;")
        self.stranded_text = QPlainTextEdit()
        self.stranded_text.setObjectName("strandedText")
        self.stranded_text.setReadOnly(True)
        self.stranded_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.stranded_detail = _wrapped("")
        self.stranded_detail.setObjectName("strandedDetail")
        self.stranded_how = _wrapped("")
        stranded_layout.addWidget(self.stranded_title)
        stranded_layout.addWidget(self.stranded_detail)
        stranded_layout.addWidget(self.stranded_how)
        stranded_layout.addWidget(self.stranded_text)
        self.stranded_box.setVisible(False)
        layout.addWidget(self.stranded_box)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel promote")
        self.cancel_button.setObjectName("cancelPromote")
        self.cancel_button.setToolTip("Stop waiting: the promote is rolled back and the service database made "
                                      "writable again")  # fmt: skip
        self.cancel_button.clicked.connect(self.request_cancel)
        self.reverse_button = QPushButton("Create reverse task…")
        self.reverse_button.setToolTip(
            "Opens the wizard to replicate the promoted DR database back to the old service side"
        )
        self.reverse_button.setVisible(False)
        self.reverse_button.clicked.connect(lambda: self.reverseRequested.emit(self.name))
        self.close_button = QPushButton("Close")
        self.close_button.setEnabled(False)
        self.close_button.clicked.connect(self.accept)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.reverse_button)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        self._started = time.monotonic()
        self.clock = QTimer(self)
        self.clock.setInterval(1000)
        self.clock.timeout.connect(self._tick)
        self.clock.start()
        self._tick()

    @property
    def running(self) -> bool:
        return self.finished_ok is None

    def _tick(self) -> None:
        elapsed = time.monotonic() - self._started
        if not self.running:
            self.elapsed_label.setText(f"took {elapsed:.0f} s")
            return
        text = f"{elapsed:.0f} s elapsed"
        if self.timeout is not None:
            text += f" of the {self.timeout:.0f} s deadline"
        self.elapsed_label.setText(text)

    def set_delay(self, seconds: float | None) -> None:
        self.delay_label.setText(f"Delay: {_seconds(seconds)}")

    def add_message(self, message: str) -> None:
        self.messages.addItem(f"{datetime.now():%H:%M:%S}  {message}")
        self.messages.scrollToBottom()

    def request_cancel(self) -> None:
        if not self.running:
            return
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.add_message("Cancel requested: rolling back (the service database is made writable again)…")
        self.cancelRequested.emit(self.name)

    def _finish(self, ok: bool, outcome: str, headline: str) -> None:
        self.finished_ok = ok
        self.outcome = outcome
        self.clock.stop()
        self._tick()
        self.headline.setText(headline)
        self.cancel_button.setVisible(False)
        self.close_button.setEnabled(True)

    def show_result(self, result: Any) -> None:
        """result: engine.promote.PromoteResult."""
        self._finish(True, "promoted", f"<b>{_esc(self.name)}</b> promoted ({_esc(result.mode)})")
        self.delay_label.setVisible(False)  # nothing is replicated any more
        lines = [result.message]
        if result.source_final is not None:
            lines.append(f"Service database final position: {result.source_final}")
        if result.target_applied is not None:
            lines.append(f"DR database applied up to: {result.target_applied}")
        lines.append(
            "The DR database is writable."
            if result.target_writable
            else "The DR database is still read-only!"
        )
        self.result_label.setText("\n".join(lines))
        self.result_label.setVisible(True)
        self.reverse_button.setVisible(True)

    def show_rolled_back(self, reason: str) -> None:
        self._finish(False, "rolled_back", f"Promote of <b>{_esc(self.name)}</b> rolled back")
        self.result_label.setText(
            f"Promote rolled back: {reason.rstrip('.')}. The service database is writable again."
        )
        self.result_label.setObjectName("rolledBackText")
        self.result_label.setStyleSheet(
            "QLabel#rolledBackText { background: #e8f1fb; color: #0b2e55; border: 1px solid #9cc3ec;"
            " border-radius: 4px; padding: 8px; font-weight: 600; }"
        )
        self.result_label.setVisible(True)

    def show_stranded(self, message: str, statements: list[str] | None = None, server: str = "") -> None:
        """The rollback failed too: the service database refuses writes until someone lifts read-only.
        message: the engine's PromoteStranded text; statements: what lifts it, shown to be copied."""
        self._finish(
            False, "stranded", f"Promote of <b>{_esc(self.name)}</b> failed and could not be rolled back"
        )
        where = f" {server}" if server else ""
        self.stranded_title.setText(f"The service database{_esc(where)} is STILL READ-ONLY")
        self.stranded_detail.setText(message)
        self.stranded_how.setText(
            f"Applications cannot write to it. To lift read-only, run on{where or ' it'} as an administrator "
            "(select and copy):"
        )
        text = "\n".join(statements) if statements else message
        self.stranded_text.setPlainText(text)
        lines = max(2, min(8, text.count("\n") + 1 if statements else 6))
        self.stranded_text.setFixedHeight(self.stranded_text.fontMetrics().lineSpacing() * lines + 16)
        self.stranded_box.setVisible(True)
        self.setMinimumHeight(520)

    def show_error(self, message: str, *, headline: str | None = None) -> None:
        self._finish(False, "failed", headline or f"Promote of <b>{_esc(self.name)}</b> failed")
        self.result_label.setText(message)
        self.result_label.setObjectName("errorText")
        self.result_label.setVisible(True)

    def reject(self) -> None:
        # Esc or the title bar's close must not walk away from a promote under way: Cancel rolls back.
        if self.running:
            return
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.running and not self._force_close:
            event.ignore()
            return
        super().closeEvent(event)

    def force_close(self) -> None:
        """The window is closing (its registry cancels the promote): close even while running."""
        self._force_close = True
        self.clock.stop()
        self.close()


class StoppingTasksDialog(QDialog):
    """Shown while the closing window stops its tasks (each at a checkpoint) and cancels a promote."""

    def __init__(self, names: list[str], promoting: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.names = list(names)
        self.setWindowTitle("DRS Desktop — closing")
        self.setWindowModality(Qt.WindowModality.ApplicationModal)
        self.setMinimumWidth(440)
        layout = QVBoxLayout(self)
        count = len(self.names)
        self.headline = QLabel(f"<b>Stopping {count} task{'s' if count != 1 else ''}…</b>")
        self.headline.setObjectName("stoppingHeadline")
        layout.addWidget(self.headline)
        text = "Each task saves its checkpoint and continues from there when DRS Desktop starts again."
        if promoting:
            text += (f" The promote of {', '.join(promoting)} is cancelled and rolled back: its service "
                     "database is made writable again.")  # fmt: skip
        layout.addWidget(_wrapped(text))
        self.progress = QProgressBar()
        self.progress.setRange(0, max(1, count))
        self.progress.setValue(0)
        self.progress.setFormat("%v of %m stopped")
        layout.addWidget(self.progress)
        self.waiting_label = _wrapped("")
        self.waiting_label.setObjectName("stillStopping")
        layout.addWidget(self.waiting_label)
        self.set_remaining(self.names)

    def set_remaining(self, remaining: list[str]) -> None:
        left = [n for n in self.names if n in set(remaining)]
        self.progress.setValue(len(self.names) - len(left))
        self.waiting_label.setText(f"Waiting for: {', '.join(left)}" if left else "All stopped.")

    def reject(self) -> None:
        pass  # closing goes on until every task has stopped (Esc does nothing)


SIDE_TITLES = {"source": "Service database", "target": "DR database"}
CONNECTION_FIELDS = ("host", "port", "user", "password", "tls", "ca_file")


class ConnectionSideBox(QGroupBox):
    """One side's connection in the Modify Connection dialog, each field with its error line under it."""

    def __init__(self, side: str, endpoint: Endpoint, parent: QWidget | None = None):
        super().__init__(SIDE_TITLES[side], parent)
        from drs_desktop.wizard.pages_task import TLS_CHOICES  # the wizard's own choices and words

        self.side = side
        self.endpoint = endpoint  # what is stored now; a field equal to it is not sent
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        title = SIDE_TITLES[side]
        self.host_edit = QLineEdit(endpoint.host)
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65535)  # 0 can be typed so the spec's rule says what is wrong
        self.port_spin.setValue(endpoint.port)
        self.user_edit = QLineEdit(endpoint.user)
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("unchanged")
        self.tls_combo = QComboBox()
        for value, text in TLS_CHOICES:
            self.tls_combo.addItem(text, value)
        self.tls_combo.setCurrentIndex(max(0, self.tls_combo.findData(endpoint.tls)))
        self.ca_edit = QLineEdit(endpoint.ca_file or "")
        self.ca_edit.setPlaceholderText("CA certificate file (PEM)")
        self.ca_browse = QPushButton("Browse…")
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_edit, 1)
        ca_row.addWidget(self.ca_browse)
        self.errors: dict[str, QLabel] = {}
        for name, label, field in (
            ("host", "Host or domain name:", self.host_edit),
            ("port", "Port:", self.port_spin),
            ("user", "Database user:", self.user_edit),
            ("password", "New password:", self.password_edit),
            ("tls", "TLS (SSL):", self.tls_combo),
            ("ca_file", "CA file:", ca_row),
        ):
            if isinstance(field, QWidget):
                field.setAccessibleName(f"{title} {label.rstrip(':').lower()}")
            error = _wrapped("")
            error.setObjectName("errorText")
            error.setVisible(False)
            self.errors[name] = error
            box = QVBoxLayout()
            box.setSpacing(2)
            if isinstance(field, QLayout):
                box.addLayout(field)
            else:
                box.addWidget(field)
            box.addWidget(error)
            form.addRow(label, box)
        self.tls_combo.currentIndexChanged.connect(self._tls_changed)
        self.ca_browse.clicked.connect(self._browse_ca)
        self._tls_changed()

    @property
    def tls(self) -> str:
        return str(self.tls_combo.currentData())

    def _tls_changed(self) -> None:
        verify = self.tls == "verify_ca"
        self.ca_edit.setEnabled(verify)
        self.ca_browse.setEnabled(verify)

    def _browse_ca(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(
            self, "CA certificate", "", "Certificates (*.pem *.crt);;All files (*)"
        )
        if path:
            self.ca_edit.setText(path)

    def values(self) -> dict[str, Any]:
        ca_file = self.ca_edit.text().strip() or None
        return {
            "host": self.host_edit.text().strip(),
            "port": self.port_spin.value(),
            "user": self.user_edit.text(),
            "password": self.password_edit.text(),
            "tls": self.tls,
            "ca_file": ca_file if self.tls == "verify_ca" else None,
        }

    def changes(self) -> dict[str, Any]:
        """The fields that differ from what is stored (a password only when one was typed)."""
        now = self.values()
        e = self.endpoint
        stored = {
            "host": e.host,
            "port": e.port,
            "user": e.user,
            "tls": e.tls,
            "ca_file": e.ca_file if e.tls == "verify_ca" else None,
        }
        changed = {k: v for k, v in now.items() if k != "password" and v != stored[k]}
        if now["password"]:
            changed["password"] = now["password"]
        if "tls" in changed and now["tls"] == "verify_ca":
            changed["ca_file"] = now["ca_file"]  # a CA file belongs to verify_ca: send them together
        return changed

    def field_errors(self) -> dict[str, str]:
        """The spec's own rules (engine.spec), asked before anything is sent."""
        from drs_desktop.wizard.pages_task import ca_file_error
        from engine.spec import check_host, check_password, check_port, check_user

        v = self.values()
        errors = {"host": check_host(v["host"]), "port": check_port(v["port"]), "user": check_user(v["user"])}
        if v["password"]:
            errors["password"] = check_password(v["password"])
        if v["tls"] == "verify_ca":
            errors["ca_file"] = ca_file_error(v["ca_file"] or "")
        return {k: m for k, m in errors.items() if m}

    def show_errors(self, errors: dict[str, str]) -> None:
        for name, label in self.errors.items():
            label.setText(errors.get(name, ""))
            label.setVisible(bool(errors.get(name)))

    def saved(self) -> None:
        """The engine took this side's changes: they are the stored values from now on."""
        v = self.values()
        self.endpoint = Endpoint(v["host"], v["port"], v["user"], tls=v["tls"], ca_file=v["ca_file"])
        self.password_edit.clear()


@dataclass(frozen=True)
class ConnectionSaveOutcome:
    """What a Save did: the sides stored, and the side that failed with its error (if one did)."""

    saved: tuple[str, ...]
    failed_side: str | None = None
    error: BaseException | None = None


class ConnectionDialog(QDialog):
    """Host, port, user, password and TLS of either side of a task, saved through the engine
    (TaskService.modify_connection, which checks it is still the same server) off the GUI thread.
    The dialog closes once every changed side is stored; a refused field is shown under the field."""

    saved = Signal(str, list)  # task name, sides stored

    def __init__(
        self,
        record: TaskRecord,
        parent: QWidget | None = None,
        *,
        service: Any = None,
        taskman: Any = None,
    ):
        super().__init__(parent)
        self.name = record.name
        self.service = service
        self.taskman = taskman
        self.saving = False
        self.setWindowTitle(f"Modify Connection Details — {record.name}")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(760)
        layout = QVBoxLayout(self)
        layout.addWidget(
            _wrapped(
                "Change where the task reaches each server, or the account it uses. It must still be the same "
                "server (the engine checks); leave a password empty to keep it."
            )
        )
        self.boxes = {
            "source": ConnectionSideBox("source", record.spec.source),
            "target": ConnectionSideBox("target", record.spec.target),
        }
        sides = QHBoxLayout()
        for box in self.boxes.values():
            sides.addWidget(box, 1)
            for edit in (box.host_edit, box.user_edit, box.password_edit, box.ca_edit):
                edit.textChanged.connect(self._update_save)
            box.port_spin.valueChanged.connect(self._update_save)
            box.tls_combo.currentIndexChanged.connect(self._update_save)
        layout.addLayout(sides)
        # the password fields by side, as the dialog had them when it asked for passwords only
        self.edits = {side: box.password_edit for side, box in self.boxes.items()}
        self.progress_label = _wrapped("")
        self.progress_label.setVisible(False)
        layout.addWidget(self.progress_label)
        self.status_label = _wrapped("")
        self.status_label.setObjectName("errorText")
        self.status_label.setVisible(False)
        layout.addWidget(self.status_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._update_save()

    def _update_save(self) -> None:
        self.save_button.setEnabled(not self.saving and any(b.changes() for b in self.boxes.values()))

    def passwords(self) -> dict[str, str]:
        """side -> new password, for the fields the user filled in."""
        return {side: e.text() for side, e in self.edits.items() if e.text()}

    def changes(self) -> dict[str, dict[str, Any]]:
        return {side: c for side, box in self.boxes.items() if (c := box.changes())}

    def _show_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))

    def _show_progress(self, text: str) -> None:
        self.progress_label.setText(text)
        self.progress_label.setVisible(bool(text))

    def save(self) -> None:
        """Check the fields with the spec's rules, then hand the changed sides to the engine."""
        if self.saving:
            return
        errors = {side: box.field_errors() for side, box in self.boxes.items()}
        for side, box in self.boxes.items():
            box.show_errors(errors[side])
        if any(errors.values()):
            self._show_status("Correct the marked fields.")
            return
        changes = self.changes()
        if not changes:
            return
        if self.service is None or self.taskman is None:  # nothing to save through: a display-only dialog
            self._show_status("This dialog cannot save here.")
            return
        self.saving = True
        self._update_save()
        self._show_status("")
        self._show_progress("Checking the new connection details…")
        service, name = self.service, self.name

        def work() -> ConnectionSaveOutcome:  # a TaskManager thread
            stored: list[str] = []
            for side, fields in changes.items():
                try:
                    service.modify_connection(name, side, **fields)
                except Exception as exc:  # shown by the dialog, field by field where it can
                    return ConnectionSaveOutcome(tuple(stored), side, exc)
                stored.append(side)
            return ConnectionSaveOutcome(tuple(stored))

        self.taskman.run_for(self, work, self._saved, self._failed)

    def _saved(self, outcome: ConnectionSaveOutcome) -> None:
        self.saving = False
        self._show_progress("")
        for side in outcome.saved:
            self.boxes[side].saved()
        if outcome.saved:
            self.saved.emit(self.name, list(outcome.saved))
        if outcome.failed_side is None or outcome.error is None:
            self._show_status("")
            self.accept()
            return
        self._show_error(outcome.failed_side, outcome.error, outcome.saved)
        self._update_save()

    def _failed(self, exc: BaseException) -> None:  # the job itself broke (not one side's refusal)
        self.saving = False
        self._show_progress("")
        self._show_status(f"Saving failed: {_error_text(exc)}")
        self._update_save()

    def _show_error(self, side: str, exc: BaseException, saved: tuple[str, ...]) -> None:
        from engine.errors import SpecInvalid

        box = self.boxes[side]
        prefix = f"{SIDE_TITLES[saved[0]]} saved. " if saved else ""
        if isinstance(exc, SpecInvalid):
            shown: dict[str, str] = {}
            others: list[str] = []
            for err in exc.errors:
                parts = err.field.split(".")
                where = parts[0] if parts[0] in self.boxes else side
                field = parts[-1]
                if field in CONNECTION_FIELDS and where == side:
                    shown[field] = err.message
                elif field in CONNECTION_FIELDS:
                    self.boxes[where].show_errors({field: err.message})
                else:
                    others.append(str(err))
            box.show_errors(shown)
            rest = "; ".join(others) or "correct the marked fields"
            self._show_status(f"{prefix}{SIDE_TITLES[side]} not saved: {rest}.")
        else:
            box.show_errors({})
            self._show_status(f"{prefix}{SIDE_TITLES[side]} not saved: {_error_text(exc)}")


def _error_text(exc: BaseException) -> str:
    """The engine's own message for its errors; anything else with its type (no traceback)."""
    from engine.errors import DrsError

    return str(exc) if isinstance(exc, DrsError) else f"{type(exc).__name__}: {exc}"


def parse_windows(text: str) -> tuple[list[TimeWindow], str | None]:
    """'08:00-12:00, 20:00-24:00' -> windows, or the error naming the broken range."""
    windows: list[TimeWindow] = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        start_text, sep, end_text = part.partition("-")
        start, end = parse_clock(start_text.strip()), parse_clock(end_text.strip())
        if not sep or start is None or end is None:
            return [], f"time range {part!r}: write it as HH:MM-HH:MM (e.g. 08:00-18:00)"
        windows.append(TimeWindow(start, end))
    return windows, check_windows(windows)


class FlowControlDialog(QDialog):
    """Flow control of the initial phase: off, or at most N MB/s all day or in up to three time ranges."""

    def __init__(self, record: TaskRecord, parent: QWidget | None = None):
        super().__init__(parent)
        self.name = record.name
        self.setWindowTitle(f"Modify Flow Control — {record.name}")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(480)
        current = record.spec.flow_control
        layout = QVBoxLayout(self)
        layout.addWidget(
            _wrapped("Flow control limits how fast the initial full copy reads from the service database.")
        )
        self.limit_box = QCheckBox("Limit the transfer rate")
        self.limit_box.setChecked(current is not None)
        layout.addWidget(self.limit_box)
        form = QFormLayout()
        self.mb_spin = QSpinBox()
        self.mb_spin.setRange(0, 99999)  # the validator, not the widget, says what is allowed
        self.mb_spin.setSuffix(" MB/s")
        self.mb_spin.setValue(current.max_mb_s if current else 10)
        form.addRow("Maximum rate:", self.mb_spin)
        self.windows_edit = QLineEdit(
            ", ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in current.windows) if current else ""
        )
        self.windows_edit.setPlaceholderText("all day, or e.g. 08:00-12:00, 14:00-18:00")
        form.addRow("Time ranges:", self.windows_edit)
        layout.addLayout(form)
        self.error_label = _wrapped("")
        self.error_label.setObjectName("errorText")
        self.error_label.setVisible(False)
        layout.addWidget(self.error_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.limit_box.toggled.connect(self._enable)
        self._enable(self.limit_box.isChecked())
        self._result: FlowControl | None = current

    def _enable(self, on: bool) -> None:
        self.mb_spin.setEnabled(on)
        self.windows_edit.setEnabled(on)

    def validate(self) -> str | None:
        if not self.limit_box.isChecked():
            self._result = None
            return None
        error = check_max_mb_s(self.mb_spin.value())
        if error:
            return f"Maximum rate: {error}"
        windows, error = parse_windows(self.windows_edit.text())
        if error:
            return f"Time ranges: {error}"
        self._result = FlowControl(self.mb_spin.value(), tuple(windows))
        return None

    def accept(self) -> None:
        error = self.validate()
        self.error_label.setText(error or "")
        self.error_label.setVisible(bool(error))
        if not error:
            super().accept()

    def flow_control(self) -> FlowControl | None:
        return self._result


# The details dialog and its log models moved to their own modules; these names stay importable here.
from .details import TableProgressModel, TaskDetailsDialog, record_settings  # noqa: E402
from .drlog_tab import LogFilterProxy, LogLevelProxy, LogTableModel  # noqa: E402

__all__ = [
    "ConnectionDialog", "DeleteTaskDialog", "FailoverDialog", "FlowControlDialog", "LogFilterProxy",
    "LogLevelProxy", "LogTableModel", "PromotePlanModel", "PromoteProgressDialog", "RoleChange",
    "StoppingTasksDialog", "SwitchoverDialog", "TableProgressModel", "TaskDetailsDialog", "parse_windows",
    "plan_changes", "record_settings", "show_message",
]  # fmt: skip
