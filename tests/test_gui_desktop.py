"""The main window as a desktop application: remembered layout, menus, colour schemes, About, the crash
dialog, the empty table, status-bar notes, and a 1280 px screen.

Tasks here point at addresses nobody connects to (no replication runs), except the About test, which asks
the suite's real servers for their versions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from gui_helpers import open_windows, refreshed
from PySide6.QtCore import QByteArray, QPoint, Qt, QTimer, qVersion
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox

import drs_desktop.main_window as main_window_module
from drs_desktop.about import PENDING, UNREACHABLE
from drs_desktop.app import apply_color_scheme
from drs_desktop.crash import install_crash_handler
from drs_desktop.settings import SETTINGS_FILE, gui_settings, remember
from drs_desktop.task_model import Column, resource
from engine.spec import parse_spec
from engine.status import Action, Status, why_not
from engine.tasks import TaskService
from tests.conftest import free_port, make_spec

WAIT_MS = 20_000
HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b")


def fake_spec(
    name: str, *, host: str = "10.0.0.5", password: str = "not-a-real-pw", tags: dict | None = None
) -> dict:
    endpoint = {"port": 3306, "user": "drs", "password": password, "tls": "off"}
    return {
        "name": name, "description": f"DR copy of {name}", "relationship": "standby", "network": "public",
        "source": {**endpoint, "host": host}, "target": {**endpoint, "host": "10.8.0.9"},
        "flow_control": None, "migrate_definer": True, "start": "now", "tags": tags or {},
    }  # fmt: skip


def add_task(svc: TaskService, name: str, status: Status, **spec_fields) -> None:
    svc.create(parse_spec(fake_spec(name, **spec_fields)), status=Status.CONFIGURATION)
    if status is not Status.CONFIGURATION:
        svc.store.set_status(name, status, phase="incremental" if status is Status.PAUSED else "none")


@pytest.fixture
def few_tasks(service: TaskService) -> TaskService:
    add_task(service, "orders-dr", Status.PAUSED, tags={"env": "prod", "team": "sales"})
    add_task(service, "billing-dr", Status.CONFIGURATION, tags={"env": "prod"})
    add_task(
        service, "warehouse-inventory-dr", Status.CONFIGURATION, tags={"env": "staging", "owner": "logistics"}
    )
    return service


@pytest.fixture
def open_window(qtbot, service):
    """Main windows over `service` without replication workers, each shown once its first refresh is in."""
    yield from open_windows(qtbot, service, autostart=False)


@pytest.fixture
def restore_app_look(qapp):
    """A test that changes the colour scheme puts the application's look back afterwards."""
    sheet, style, palette = qapp.styleSheet(), qapp.style().name(), QPalette(qapp.palette())
    yield
    qapp.setStyle(style)
    qapp.setPalette(palette)
    qapp.setStyleSheet(sheet)
    qapp.setProperty("drsColorScheme", None)


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""

    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())

    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# ---- remembered layout -------------------------------------------------------------------------
def test_layout_columns_sort_search_and_toolbar_are_remembered_per_home(
    qtbot, open_window, few_tasks, service
):
    window = open_window()
    window.resize(720, 480)  # within the offscreen screen (800x600): restoreGeometry keeps a window on it
    header = window.table.horizontalHeader()
    header.moveSection(header.visualIndex(Column.TAGS), 1)  # Tags right after Name
    header.resizeSection(Column.NAME, 222)
    delay_x = header.sectionViewportPosition(Column.DELAY) + header.sectionSize(Column.DELAY) // 2
    for _ in range(2):  # two clicks on the Delay header: sorted by delay, the second click reverses it
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(delay_x, 5))
    order = header.sortIndicatorOrder()
    assert header.sortIndicatorSection() == Column.DELAY
    qtbot.keyClicks(window.search_edit, "prod")
    window.menus.toolbar_action.trigger()  # View > Show Toolbar off
    assert window.toolbar.isHidden()
    window.close()

    again = open_window()
    header = again.table.horizontalHeader()
    assert (again.width(), again.height()) == (720, 480)
    assert header.visualIndex(Column.TAGS) == 1
    assert header.sectionSize(Column.NAME) == 222
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (Column.DELAY, order)
    assert again.search_edit.text() == "prod"
    assert sorted(again.visible_names()) == ["billing-dr", "orders-dr"]
    assert again.toolbar.isHidden() and not again.menus.toolbar_action.isChecked()

    ini = Path(service.home) / SETTINGS_FILE
    settings = gui_settings(service.home)
    assert ini.exists() and settings.allKeys()
    assert not [key for key in settings.allKeys() if "password" in key.lower() or "passwd" in key.lower()]
    assert "password" not in ini.read_text(encoding="utf-8", errors="replace").lower()
    with pytest.raises(ValueError, match="secrets go to the keyring"):
        remember(settings, "wizard/source/password", "x")


def test_a_settings_file_from_another_version_does_not_break_the_columns(
    qtbot, open_window, few_tasks, service
):
    settings = gui_settings(service.home)
    settings.setValue("table/header", QByteArray(b"\x00garbage"))
    settings.setValue("table/columns", 3)  # written when the table had other columns
    settings.setValue("table/sortColumn", 42)
    settings.sync()
    window = open_window()
    header = window.table.horizontalHeader()
    assert [header.logicalIndex(v) for v in range(len(Column))] == list(Column)
    assert all(header.sectionSize(c) >= header.minimumSectionSize() for c in Column)


# ---- 1280 px ----------------------------------------------------------------------------------
def test_no_horizontal_scrolling_at_1280_by_800(qtbot, open_window, few_tasks):
    window = open_window()
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.table.viewport().width() > 1200)
    QApplication.processEvents()
    header = window.table.horizontalHeader()
    assert window.table.horizontalScrollBar().maximum() == 0
    assert header.length() <= window.table.viewport().width()
    # every column is wide enough for its header and the longest status a task shows here
    status_width = window.table.fontMetrics().horizontalAdvance(Status.PAUSED.label) + 20
    assert header.sectionSize(Column.STATUS) >= status_width


# ---- colour schemes ------------------------------------------------------------------------------
def test_the_style_sheet_takes_every_colour_from_the_palette():
    sheet = resource("style.qss").read_text(encoding="utf-8")
    assert not HEX_COLOUR.findall(sheet), HEX_COLOUR.findall(sheet)
    assert "palette(" in sheet


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrasts_with_its_background_in_both_schemes(
    qtbot, qapp, restore_app_look, open_window, service, scheme
):
    apply_color_scheme(qapp, scheme)
    window = open_window()
    dark = qapp.palette().color(QPalette.ColorRole.Window).lightnessF() < 0.5
    assert dark == (scheme == "dark")
    table = window.table.palette()
    for background in (QPalette.ColorRole.Base, QPalette.ColorRole.AlternateBase):
        assert contrast(table.color(QPalette.ColorRole.Text), table.color(background)) >= 4.5
    selected = contrast(
        table.color(QPalette.ColorRole.HighlightedText), table.color(QPalette.ColorRole.Highlight)
    )
    assert selected >= 3  # Fusion's own light highlight (white on #308cc6) is 3.7: readable, as every Qt app
    bar = window.statusBar()
    bar_background = bar.palette().color(bar.backgroundRole())
    for label in (window.counts_label, window.backend_label):
        assert contrast(label.palette().color(label.foregroundRole()), bar_background) >= 4.5, (
            label.objectName()
        )
    window.alarm_label.setText("1 in alarm")
    window.alarm_label.ensurePolished()
    alarm = window.alarm_label.palette().color(window.alarm_label.foregroundRole())
    assert alarm.red() > alarm.green() and contrast(alarm, bar_background) >= 4.5
    # the empty table's message is drawn on the table's base colour
    assert window.empty_state.isVisible()
    base = window.table.viewport().palette().color(QPalette.ColorRole.Base)
    for label in (window.empty_state.title, window.empty_state.text):
        assert contrast(label.palette().color(label.foregroundRole()), base) >= 4.5
    # what is on the screen follows: the table's pixels are dark in the dark scheme, light in the light one
    image: QImage = window.table.viewport().grab().toImage()
    corner = image.pixelColor(image.width() - 5, image.height() - 5)
    assert (corner.lightnessF() < 0.5) == dark


def test_view_menu_colour_scheme_applies_at_once_and_is_remembered(
    qtbot, qapp, restore_app_look, open_window, service
):
    window = open_window()
    actions = window.menus.color_scheme_actions
    assert set(actions) == {"system", "light", "dark"}
    actions["dark"].trigger()
    assert qapp.palette().color(QPalette.ColorRole.Window).lightnessF() < 0.5
    assert gui_settings(service.home).value("view/colorScheme") == "dark"
    again = open_window()
    assert again.menus.color_scheme_actions["dark"].isChecked()
    actions["light"].trigger()
    assert qapp.palette().color(QPalette.ColorRole.Window).lightnessF() > 0.5
    assert gui_settings(service.home).value("view/colorScheme") == "light"


def test_drs_desktop_color_scheme_option(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DRS_SECRET_BACKEND": "file"}
    png = tmp_path / "dark.png"
    command = [sys.executable, "-m", "drs_desktop", "--home", str(tmp_path / "home")]
    result = subprocess.run([*command, "--color-scheme", "dark", "--screenshot", str(png)],
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    image = QImage(str(png))
    assert image.pixelColor(image.width() // 2, image.height() // 2).lightnessF() < 0.3  # the dark table
    wrong = subprocess.run(
        [*command, "--color-scheme", "purple"], capture_output=True, text=True, env=env, timeout=60
    )
    assert wrong.returncode == 2
    assert "--color-scheme" in wrong.stderr and "light" in wrong.stderr and "Traceback" not in wrong.stderr


# ---- menus ---------------------------------------------------------------------------------------
def test_menu_bar_offers_every_action_with_a_shortcut_enabled_as_the_status_allows(
    qtbot, open_window, few_tasks
):
    window = open_window()
    menus = window.menus
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Task", "View", "Help"]
    assert menus.new_task_action.text().replace("&", "") == "New Task…"
    assert menus.new_task_action.shortcut().toString() == "Ctrl+N"
    assert menus.quit_action.shortcut().toString() == "Ctrl+Q"
    task_items = [a for a in menus.task_menu.actions() if not a.isSeparator()]
    service_items = {window.service_actions.install_action, window.service_actions.remove_action}
    # the toolbar's and context menu's own actions, plus Run in Background / Stop Background Service
    assert set(task_items) == set(window.task_actions.values()) | service_items
    assert all(not a.shortcut().isEmpty() for a in task_items), [
        a.text() for a in task_items if a.shortcut().isEmpty()
    ]
    # no key is bound twice among the window's actions (a clash would silently disable both)
    bound = [a.shortcut().toString() for a in window.findChildren(type(menus.quit_action)) if not a.shortcut().isEmpty()
             and a.shortcutContext() != Qt.ShortcutContext.WidgetShortcut]  # fmt: skip
    assert len(bound) == len(set(bound)), bound
    assert window.select_task("orders-dr")
    menus.task_menu.aboutToShow.emit()
    for action, item in window.task_actions.items():
        reason = why_not(action, Status.PAUSED)
        assert item.isEnabled() == (reason is None), action
        if reason:
            assert item.toolTip() == reason
    assert (
        window.task_actions[Action.RESUME].isEnabled() and not window.task_actions[Action.PAUSE].isEnabled()
    )
    view = [a.text().replace("&", "") for a in menus.view_menu.actions() if not a.isSeparator()]
    assert view == ["Refresh", "Show Toolbar", "Colour Scheme"]
    assert window.refresh_action.shortcut().toString() == "F5"
    help_items = [a.text().replace("&", "") for a in menus.help_menu.actions() if not a.isSeparator()]
    assert help_items == ["Try with a Sandbox…", "Stop Sandbox", "Getting Started", "About DRS Desktop"]
    menus.getting_started_action.trigger()
    box = window.getting_started_box
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert "Try with a Sandbox" in box.text() and "New Task" in box.text()
    box.close()

    from drs_desktop.wizard import CreateTaskWizard

    menus.new_task_action.trigger()
    qtbot.waitUntil(
        lambda: any(w.isVisible() for w in window.findChildren(CreateTaskWizard)), timeout=WAIT_MS
    )
    window.wizard.reject()


def test_about_names_the_versions_and_asks_each_server(qtbot, open_window, service, servers):
    service.create(parse_spec(make_spec(servers, "orders-dr")), status=Status.CONFIGURATION)
    gone = {"host": "127.0.0.1", "port": free_port(), "user": "drs", "password": "x-pw-1234", "tls": "off"}
    service.create(parse_spec(make_spec(servers, "old-dr", source=gone)), status=Status.CONFIGURATION)
    window = open_window()
    window.menus.about_action.trigger()
    about = window.about_dialog
    assert about is not None and about.isVisible()
    versions = {what: label.text() for what, label in about.version_labels.items()}
    assert versions["Qt"] == qVersion()
    assert versions["Python"] == sys.version.split()[0]
    assert versions["DRS Desktop"] and versions["PySide6"] and versions["Platform"]
    assert versions["Password store"] == service.secrets.backend_name
    qtbot.waitUntil(lambda: len(about.server_labels) == 3, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: all(lb.text() != PENDING for lb in about.server_labels.values()), timeout=WAIT_MS)
    answers = {address: label.text() for address, label in about.server_labels.items()}
    assert answers[servers.source.endpoint.address].startswith("MariaDB 10.")
    assert answers[servers.target.endpoint.address].startswith("MariaDB 10.")
    assert answers[f"127.0.0.1:{gone['port']}"] == UNREACHABLE
    about.copy_to_clipboard()
    copied = QGuiApplication.clipboard().text()
    assert f"Qt: {qVersion()}" in copied and servers.source.endpoint.password.reveal() not in copied
    about.close()


# ---- crash dialog --------------------------------------------------------------------------------
@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_is_reported_redacted_and_the_app_keeps_running(qtbot, open_window, service):
    stored_password, typed_password, host = "S3cret-Stored-pw", "hunter2-typed", "db-primary.example.com"
    add_task(service, "orders-dr", Status.PAUSED, host=host, password=stored_password)
    window = open_window()

    def broken_slot() -> None:
        raise RuntimeError(
            f"cannot reach {host}:3306 (10.1.2.3) as drs with password={typed_password}; stored {stored_password}"
        )

    uninstall = install_crash_handler(service, window)
    try:
        QTimer.singleShot(0, broken_slot)
        handler = window.crash_handler
        qtbot.waitUntil(lambda: handler.dialog is not None and handler.dialog.isVisible(), timeout=WAIT_MS)
    finally:
        uninstall()
    dialog = handler.dialog
    path = handler.last_path
    assert path.parent == Path(service.home) / "crash-reports"
    assert re.fullmatch(r"crash-\d{8}-\d{6}\.txt", path.name)
    report = path.read_text(encoding="utf-8")
    assert "Traceback" in report and "RuntimeError" in report and "broken_slot" in report
    assert "orders-dr: Paused" in report and f"Qt: {qVersion()}" in report
    for secret in (stored_password, typed_password, host, "10.1.2.3"):
        assert secret not in report, secret
    assert "password=********" in report and "<host>:3306" in report
    assert dialog.report_text() == report

    # the window still works: a refresh goes through
    refreshed(qtbot, window)
    assert window.isVisible()

    qtbot.mouseClick(
        dialog.include_hosts, Qt.MouseButton.LeftButton, pos=QPoint(8, dialog.include_hosts.height() // 2)
    )
    assert dialog.include_hosts.isChecked()
    with_hosts = path.read_text(encoding="utf-8")
    assert host in with_hosts and "10.1.2.3" in with_hosts
    assert stored_password not in with_hosts and typed_password not in with_hosts
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == with_hosts
    dialog.close()


# ---- empty table ---------------------------------------------------------------------------------
def test_an_empty_table_says_how_to_begin_and_a_search_says_nothing_matches(qtbot, open_window, service):
    window = open_window()
    overlay = window.empty_state
    assert overlay.isVisible()
    assert overlay.title.text() == "No disaster recovery tasks yet"
    assert overlay.text.text()
    assert overlay.create_button.isVisible() and overlay.sandbox_button.isVisible()
    assert (
        overlay.create_button.text() == "Create Task…"
        and overlay.sandbox_button.text() == "Try with a Sandbox"
    )
    assert overlay.geometry() == window.table.viewport().geometry()

    from drs_desktop.wizard import CreateTaskWizard

    qtbot.mouseClick(overlay.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: any(w.isVisible() for w in window.findChildren(CreateTaskWizard)), timeout=WAIT_MS
    )
    window.wizard.reject()

    add_task(service, "orders-dr", Status.CONFIGURATION)
    refreshed(qtbot, window)
    assert not overlay.isVisible()

    qtbot.keyClicks(window.search_edit, "nothing-like-it")
    assert overlay.isVisible()
    assert overlay.title.text() == "No task matches 'nothing-like-it'"
    assert not overlay.create_button.isVisible() and overlay.clear_button.isVisible()
    qtbot.mouseClick(overlay.clear_button, Qt.MouseButton.LeftButton)
    assert window.search_edit.text() == "" and not overlay.isVisible()
    assert window.visible_names() == ["orders-dr"]


# ---- status bar ----------------------------------------------------------------------------------
def test_a_status_bar_note_goes_away_and_the_permanent_parts_stay(qtbot, open_window, few_tasks, monkeypatch):
    monkeypatch.setattr(main_window_module, "NOTE_MS", 200)
    window = open_window()
    bar = window.statusBar()
    window._note("Task orders-dr created (Configuration)")
    assert bar.currentMessage() == "Task orders-dr created (Configuration)"
    assert window.backend_label.isVisible()
    qtbot.waitUntil(lambda: bar.currentMessage() == "", timeout=WAIT_MS)
    assert window.counts_label.isVisible() and window.counts_label.text().startswith("3 tasks")
    assert window.backend_label.isVisible()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_meaningful_colours_read_on_both_schemes(qapp, restore_app_look, scheme):
    """Error, alarm, warning and success text (DR log levels, the health of a row, pre-check results,
    field errors) in the shade of the current scheme, against the table's and the window's backgrounds."""
    from drs_desktop.colours import semantic_colour
    from drs_desktop.wizard.common import ErrorLabel, StatusLabel

    apply_color_scheme(qapp, scheme)
    palette = qapp.palette()
    for role in ("error", "alarm", "warning", "ok"):
        for background in (QPalette.ColorRole.Base, QPalette.ColorRole.Window):
            assert contrast(semantic_colour(role), palette.color(background)) >= 4.5, (role, background)
    label = ErrorLabel()
    label.show_error("port: must be 1-65535")
    assert semantic_colour("error").name() in label.styleSheet()
    status = StatusLabel()
    status.show_ok("Connection successful")
    assert semantic_colour("ok").name() in status.styleSheet()
