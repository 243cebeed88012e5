"""The main window's menu bar: File, Task, View and Help.

The Task menu holds the very QActions of the toolbar and the context menu, so one `update_actions()`
enables them everywhere (and their tooltips say why one is disabled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox

from engine.status import Action

from .app import COLOR_SCHEMES, ColorScheme, apply_color_scheme, current_color_scheme, remember_color_scheme

if TYPE_CHECKING:
    from .main_window import MainWindow

COLOR_SCHEME_LABELS: dict[ColorScheme, str] = {"system": "&System", "light": "&Light", "dark": "&Dark"}

# The Task menu, in the context menu's order; None is a separator.
TASK_MENU: list[Action | None] = [
    Action.START, Action.PAUSE, Action.RESUME, Action.RETRY, Action.SKIP_EVENT, None,
    Action.MODIFY_CONNECTION, Action.MODIFY_FLOW_CONTROL, None,
    Action.PROMOTE, Action.DELETE, None,
    Action.VIEW, Action.COMPARE,
]  # fmt: skip

GETTING_STARTED = """<h3>Getting started</h3>
<ol>
<li><b>Try it first</b> without a server of your own: <i>Help ▸ Try with a Sandbox</i> starts two private
MariaDB servers on this machine (a service database with sample data and a steady trickle of writes, and an
empty DR database) and opens the wizard filled in for them.</li>
<li><b>Create a task</b> (<i>File ▸ New Task…</i>, Ctrl+N): name it, enter the service (source) and DR (target)
servers and <i>Test Connection</i> each, pick the databases, let the pre-checks run (confirm the items that ask
for it), compare the server parameters, then <i>Submit</i>.</li>
<li><b>Watch it</b>: the initial full copy shows its progress, then <i>Disaster recovery in progress</i> shows
the delay. Double-click a task for its details, DR log, monitoring charts and data comparison.</li>
<li><b>On the day of a disaster</b>: <i>Task ▸ Promote</i> makes the DR database the primary (switchover with
RPO 0 while the service side is alive, failover when it is not).</li>
</ol>
<p>Everything here also works headless with the <code>drs</code> command (<code>drs --help</code>); the README
describes both.</p>"""


@dataclass
class MenuBar:
    """The menus and the actions that only the menu bar has (the task actions belong to the window)."""

    file_menu: QMenu
    task_menu: QMenu
    view_menu: QMenu
    help_menu: QMenu
    new_task_action: QAction
    quit_action: QAction
    toolbar_action: QAction
    color_scheme_actions: dict[str, QAction]
    sandbox_action: QAction
    stop_sandbox_action: QAction
    getting_started_action: QAction
    about_action: QAction


def build_menu_bar(window: MainWindow) -> MenuBar:
    bar = window.menuBar()

    file_menu = bar.addMenu("&File")
    file_menu.setObjectName("fileMenu")
    # The toolbar's create_action holds Ctrl+N for the window; this entry names it the desktop way and owns
    # the same key only while its menu has focus (two window-wide Ctrl+N would cancel each other out).
    new_task = QAction(window.create_action.icon(), "&New Task…", window)
    new_task.setObjectName("action_new_task")
    new_task.setShortcut(window.create_action.shortcut())
    new_task.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    new_task.triggered.connect(lambda: window.open_create_wizard())
    file_menu.addAction(new_task)
    file_menu.addSeparator()
    quit_action = QAction("&Quit", window)
    quit_action.setObjectName("action_quit")
    quit_action.setShortcut(QKeySequence("Ctrl+Q"))
    quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    quit_action.triggered.connect(lambda: quit_app(window))
    window.addAction(quit_action)
    file_menu.addAction(quit_action)

    task_menu = bar.addMenu("&Task")
    task_menu.setObjectName("taskMenu")
    task_menu.setToolTipsVisible(True)  # a disabled item says why, as in the context menu
    task_menu.aboutToShow.connect(window.update_actions)
    for action in TASK_MENU:
        if action is None:
            task_menu.addSeparator()
        else:
            task_menu.addAction(window.task_actions[action])

    view_menu = bar.addMenu("&View")
    view_menu.setObjectName("viewMenu")
    view_menu.addAction(window.refresh_action)
    view_menu.addSeparator()
    toolbar_action = window.toolbar.toggleViewAction()
    toolbar_action.setText("Show &Toolbar")
    toolbar_action.setObjectName("action_show_toolbar")
    view_menu.addAction(toolbar_action)
    scheme_menu = view_menu.addMenu("&Colour Scheme")
    scheme_menu.setObjectName("colorSchemeMenu")
    group = QActionGroup(window)
    group.setExclusive(True)
    scheme_actions: dict[str, QAction] = {}
    current = current_color_scheme()
    for scheme in COLOR_SCHEMES:
        action = QAction(COLOR_SCHEME_LABELS[scheme], window)
        action.setObjectName(f"action_scheme_{scheme}")
        action.setCheckable(True)
        action.setChecked(scheme == current)
        action.triggered.connect(lambda _checked=False, s=scheme: choose_color_scheme(window, s))
        group.addAction(action)
        scheme_menu.addAction(action)
        scheme_actions[scheme] = action

    help_menu = bar.addMenu("&Help")
    help_menu.setObjectName("helpMenu")
    sandbox_action = QAction("Try with a &Sandbox…", window)
    sandbox_action.setObjectName("action_try_sandbox")
    sandbox_action.setStatusTip(
        "Start two private MariaDB servers on this machine and create a task between them"
    )
    sandbox_action.triggered.connect(window.sandbox.try_sandbox)
    stop_sandbox_action = QAction("S&top Sandbox", window)
    stop_sandbox_action.setObjectName("action_stop_sandbox")
    stop_sandbox_action.setStatusTip(
        "Stop the sandbox's MariaDB servers (their data stays for the next start)"
    )
    stop_sandbox_action.triggered.connect(window.sandbox.stop_sandbox)
    getting_started_action = QAction("&Getting Started", window)
    getting_started_action.setObjectName("action_getting_started")
    getting_started_action.setShortcut(QKeySequence(QKeySequence.StandardKey.HelpContents))
    getting_started_action.triggered.connect(lambda: show_getting_started(window))
    window.addAction(getting_started_action)
    about_action = QAction("&About DRS Desktop", window)
    about_action.setObjectName("action_about")
    about_action.setMenuRole(QAction.MenuRole.AboutRole)
    about_action.triggered.connect(lambda: show_about(window))
    for action in (sandbox_action, stop_sandbox_action):
        help_menu.addAction(action)
    help_menu.addSeparator()
    help_menu.addAction(getting_started_action)
    help_menu.addAction(about_action)

    return MenuBar(
        file_menu, task_menu, view_menu, help_menu, new_task, quit_action, toolbar_action, scheme_actions,
        sandbox_action, stop_sandbox_action, getting_started_action, about_action,
    )  # fmt: skip


def quit_app(window: MainWindow) -> None:
    """Quit = close the window (its workers stop at a checkpoint), then end the application."""
    if window.close():
        QApplication.quit()


def choose_color_scheme(window: MainWindow, scheme: ColorScheme) -> None:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_color_scheme(app, scheme)
    remember_color_scheme(window.service.home, scheme)


def show_getting_started(window: MainWindow) -> QMessageBox:
    box = QMessageBox(
        QMessageBox.Icon.Information, "Getting Started — DRS Desktop", GETTING_STARTED, parent=window
    )
    box.setObjectName("gettingStarted")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    window.getting_started_box = box
    return box


def show_about(window: MainWindow) -> None:
    from .about import AboutDialog

    dialog = AboutDialog(window.service, window.taskman, window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.about_dialog = dialog
    dialog.open()
