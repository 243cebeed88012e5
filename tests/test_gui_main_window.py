"""The main window as a DBA sees it: the task table, search, status bar, actions per status, dialogs.

Tasks are put straight into a store in the statuses under test (no replication runs here; see
test_gui_workers.py for that); the window is driven with clicks, keys and its actions.
"""

from __future__ import annotations

import os
import re
from datetime import time

import pytest
from gui_helpers import open_windows, refreshed
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QCheckBox, QDialogButtonBox, QGroupBox, QLineEdit

from drs_desktop.dialogs import ConnectionDialog, DeleteTaskDialog, FlowControlDialog, TaskDetailsDialog
from drs_desktop.main_window import NO_SELECTION, MainWindow
from drs_desktop.task_model import Column, ProgressRole, SortRole
from engine.spec import FlowControl, TimeWindow, parse_spec
from engine.status import ACTION_LABELS, Action, Status, why_not
from engine.store import Checkpoint
from engine.tasks import TaskService
from tests.conftest import make_spec

WAIT_MS = 20_000

# name, status, tags, store fields
TASKS = [
    (
        "orders-dr",
        Status.REPLICATING,
        {"env": "prod", "team": "sales"},
        {"phase": "incremental", "delay_seconds": 3.0},
    ),
    ("billing-dr", Status.INITIALIZING, {"env": "prod"}, {"phase": "initial", "progress_percent": 40.0}),
    ("crm-dr", Status.PAUSED, {"env": "staging"}, {"phase": "incremental", "delay_seconds": 12.0}),
    ("reports-dr", Status.FAILED, {"owner": "bi"}, {"phase": "incremental"}),
    ("hr-dr", Status.CONFIGURATION, {}, {}),
    ("legacy-dr", Status.PROMOTED, {"env": "old"}, {"phase": "done"}),
    ("inventory-dr", Status.CREATION_FAILED, {"env": "test"}, {}),
]


def add_task(
    svc: TaskService, servers, name: str, status: Status, tags: dict | None = None, **fields
) -> None:
    svc.create(parse_spec(make_spec(servers, name, tags=tags or {})), status=Status.CONFIGURATION)
    if status is not Status.CONFIGURATION or fields:
        last_error = "MySQL error 1146: Table 'shop.x' doesn't exist" if status is Status.FAILED else None
        svc.store.set_status(name, status, last_error=last_error, **fields)


@pytest.fixture
def open_window(qtbot, service):
    """Main windows over `service` without replication workers, each shown once its first refresh is in."""
    yield from open_windows(qtbot, service, autostart=False)


@pytest.fixture
def populated(service, servers):
    for name, status, tags, fields in TASKS:
        add_task(service, servers, name, status, tags, **fields)
    service.store.save_checkpoint("orders-dr", Checkpoint("binlog.000007", 4242, None))
    return service


def cell(window: MainWindow, name: str, column: Column, role=Qt.ItemDataRole.DisplayRole):
    row = window.model.row_of(name)
    assert row is not None, f"{name} is not in the table"
    return window.model.index(row, column).data(role)


def select(qtbot, window: MainWindow, name: str) -> None:
    assert window.select_task(name)
    qtbot.waitUntil(lambda: window.current_record() is not None and window.current_record().name == name)


# ---- the table ---------------------------------------------------------------------------------
def test_table_shows_every_task_with_its_status_words_icon_endpoints_progress_and_delay(
    open_window, populated, servers
):
    window = open_window()
    assert window.model.rowCount() == len(TASKS)
    headers = [window.model.headerData(c, Qt.Orientation.Horizontal) for c in Column]
    assert headers == [
        "Name",
        "Status",
        "DR relationship",
        "Service DB",
        "DR DB",
        "Progress",
        "Delay",
        "Created",
        "Tags",
    ]
    labels = {name: cell(window, name, Column.STATUS) for name, *_ in TASKS}
    assert labels == {
        "orders-dr": "Disaster recovery in progress",
        "billing-dr": "Initializing",
        "crm-dr": "Paused",
        "reports-dr": "Disaster recovery failed",
        "hr-dr": "Configuration",
        "legacy-dr": "Promoted — DR is primary",  # (how: see tests/test_gui_rows.py)
        "inventory-dr": "Creation failed",
    }
    src, tgt = servers.source.endpoint, servers.target.endpoint
    assert cell(window, "orders-dr", Column.SERVICE_DB) == f"{src.host}:{src.port}"
    assert cell(window, "orders-dr", Column.DR_DB) == f"{tgt.host}:{tgt.port}"
    assert cell(window, "orders-dr", Column.RELATIONSHIP) == "Current side as standby"
    assert cell(window, "orders-dr", Column.TAGS) == "env=prod, team=sales"
    # the initial phase shows a progress bar (the delegate paints ProgressRole), the incremental a delay
    assert cell(window, "billing-dr", Column.PROGRESS, ProgressRole) == pytest.approx(40.0)
    assert cell(window, "billing-dr", Column.PROGRESS) == "40%"
    assert cell(window, "billing-dr", Column.DELAY) == ""
    assert cell(window, "orders-dr", Column.PROGRESS, ProgressRole) is None
    assert cell(window, "orders-dr", Column.DELAY) == "3 s"
    assert cell(window, "hr-dr", Column.DELAY) == ""
    # the failure reason is one hover away
    assert "1146" in cell(window, "reports-dr", Column.STATUS, Qt.ItemDataRole.ToolTipRole)

    # each status has a coloured dot: green in progress, red failed, amber paused
    def colour(name: str):
        icon = cell(window, name, Column.STATUS, Qt.ItemDataRole.DecorationRole)
        assert icon is not None and not icon.isNull()
        return icon.pixmap(16, 16).toImage().pixelColor(8, 8)

    green, red, amber = colour("orders-dr"), colour("reports-dr"), colour("crm-dr")
    assert green.green() > green.red() and red.red() > red.green() and amber.red() > amber.blue()
    assert colour("inventory-dr") == red
    assert cell(window, "orders-dr", Column.NAME, Qt.ItemDataRole.DecorationRole) is None


def test_search_box_filters_by_name_or_tag(qtbot, open_window, populated):
    window = open_window()
    qtbot.keyClicks(window.search_edit, "env=prod")
    assert sorted(window.visible_names()) == ["billing-dr", "orders-dr"]
    assert "(showing 2)" in window.counts_label.text()
    window.search_edit.clear()
    qtbot.keyClicks(window.search_edit, "CRM")
    assert window.visible_names() == ["crm-dr"]
    window.search_edit.clear()
    qtbot.keyClicks(window.search_edit, "staging")
    assert window.visible_names() == ["crm-dr"]
    window.search_edit.clear()
    assert len(window.visible_names()) == len(TASKS)


def test_sorting_by_status_and_delay(open_window, populated):
    window = open_window()
    window.table.sortByColumn(Column.DELAY, Qt.SortOrder.DescendingOrder)
    assert window.visible_names()[:2] == ["crm-dr", "orders-dr"]
    window.table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)
    assert window.visible_names() == sorted(name for name, *_ in TASKS)
    assert isinstance(window.proxy.index(0, Column.CREATED).data(SortRole), str)


def test_status_bar_counts_tasks_per_status_and_names_the_password_store(open_window, populated, service):
    window = open_window()
    text = window.counts_label.text()
    assert text.startswith("7 tasks")
    for label in ("1 Disaster recovery in progress", "1 Initializing", "1 Paused", "1 Creation failed"):
        assert label in text
    assert window.backend_label.text() == f"Passwords: {service.secrets.backend_name}"


def test_models_pass_qtmodeltester_and_refresh_updates_rows_in_place(
    qtbot, qtmodeltester, open_window, populated, servers
):
    window = open_window()
    qtmodeltester.check(window.model)
    qtmodeltester.check(window.proxy)
    resets: list[int] = []
    window.model.modelReset.connect(lambda: resets.append(1))
    select(qtbot, window, "crm-dr")

    # another process (e.g. `drs task resume`) changes the store: the row changes, selection stays
    populated.store.set_status("crm-dr", Status.REPLICATING)
    populated.delete("hr-dr")
    add_task(populated, servers, "newcomer-dr", Status.CONFIGURATION, {"env": "dev"})
    refreshed(qtbot, window)
    assert cell(window, "crm-dr", Column.STATUS) == "Disaster recovery in progress"
    assert window.model.row_of("hr-dr") is None
    assert cell(window, "newcomer-dr", Column.STATUS) == "Configuration"
    assert window.current_record().name == "crm-dr"
    assert resets == []
    qtmodeltester.check(window.model)


def test_creation_failures_older_than_three_days_end_on_refresh(qtbot, open_window, populated):
    from datetime import datetime, timedelta

    with populated.store.session_scope() as s:
        from sqlalchemy import update

        from engine.store import TaskRow

        s.execute(
            update(TaskRow)
            .where(TaskRow.name == "inventory-dr")
            .values(status_changed_at=datetime.now() - timedelta(days=3, minutes=1))
        )
    window = open_window()
    assert cell(window, "inventory-dr", Column.STATUS) == "Ended"


# ---- actions per status ------------------------------------------------------------------------
@pytest.mark.parametrize("name, status", [(n, s) for n, s, *_ in TASKS])
def test_context_menu_enables_what_the_status_allows_and_says_why_not(
    qtbot, open_window, populated, name, status
):
    window = open_window()
    assert window.select_task(name)
    rect = window.table.visualRect(window.proxy.index(window.proxy_row_of(name), Column.STATUS))
    window.table.customContextMenuRequested.emit(rect.center())  # what a right-click on the row does
    menu = window.context_menu
    assert menu.toolTipsVisible()
    items = {a.text(): a for a in menu.actions() if a.text()}
    for action in (Action.START, Action.PAUSE, Action.RESUME, Action.RETRY, Action.MODIFY_CONNECTION,
                   Action.MODIFY_FLOW_CONTROL, Action.PROMOTE, Action.DELETE, Action.VIEW):  # fmt: skip
        item = items[ACTION_LABELS[action]]
        reason = why_not(action, status)
        assert item.isEnabled() == (reason is None), f"{ACTION_LABELS[action]} in {status.label}"
        if reason:
            assert item.toolTip() == reason
            assert status.label in item.toolTip()
    assert items["Create Disaster Recovery Task"].isEnabled()
    assert items["Refresh"].isEnabled()
    menu.close()


def test_actions_say_select_a_task_when_nothing_is_selected(open_window, populated):
    window = open_window()
    window.table.clearSelection()
    window.table.setCurrentIndex(QModelIndex())
    window.update_actions()
    pause = window.task_actions[Action.PAUSE]
    assert not pause.isEnabled() and pause.toolTip() == NO_SELECTION
    assert window.task_actions[Action.PAUSE].shortcut().toString() == "Ctrl+P"
    assert window.refresh_action.shortcut().toString() == "F5"
    assert window.create_action.shortcut().toString() == "Ctrl+N"


# ---- dialogs -----------------------------------------------------------------------------------
def wait_dialog(qtbot, window: MainWindow, cls):
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(cls)), timeout=WAIT_MS)
    return next(d for d in window.findChildren(cls) if d.isVisible())


def test_delete_with_lift_read_only_removes_row_passwords_store_rows_and_makes_dr_writable(
    qtbot, open_window, service, dbs, memory_keyring
):
    add_task(service, dbs, "orders-dr", Status.PAUSED, {"env": "prod"}, phase="incremental")
    add_task(service, dbs, "keep-me-dr", Status.PAUSED)
    service.store.add_log("orders-dr", "info", "runner", "paused at binlog.000001:4")
    assert any(user.startswith("orders-dr/") for _svc, user in memory_keyring.items)
    dbs.target.sql("SET GLOBAL read_only = ON")
    window = open_window()
    window.activateWindow()
    select(qtbot, window, "orders-dr")
    window.table.setFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_Delete)
    dialog = wait_dialog(qtbot, window, DeleteTaskDialog)
    assert "orders-dr" in dialog.text_label.text()
    box = dialog.findChild(QCheckBox)
    assert box.text() == "Also make the DR database writable (lift read-only)"
    box.setChecked(True)
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS) as done:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert done.args == ["delete", "orders-dr"]
    assert window.model.row_of("orders-dr") is None
    assert window.model.row_of("keep-me-dr") is not None
    assert not service.store.name_taken("orders-dr")
    assert not any(user.startswith("orders-dr/") for _svc, user in memory_keyring.items)
    assert any(user.startswith("keep-me-dr/") for _svc, user in memory_keyring.items)
    assert dbs.target.sql("SELECT @@global.read_only")[0][0] == 0


def test_delete_cancelled_keeps_the_task(qtbot, open_window, populated):
    window = open_window()
    select(qtbot, window, "hr-dr")
    window.task_actions[Action.DELETE].trigger()
    dialog = wait_dialog(qtbot, window, DeleteTaskDialog)
    dialog.reject()
    refreshed(qtbot, window)
    assert window.model.row_of("hr-dr") is not None
    assert populated.store.name_taken("hr-dr")


def test_modify_flow_control_validates_ranges_then_saves(qtbot, open_window, populated):
    window = open_window()
    select(qtbot, window, "hr-dr")
    window.task_actions[Action.MODIFY_FLOW_CONTROL].trigger()
    dialog = wait_dialog(qtbot, window, FlowControlDialog)
    dialog.limit_box.setChecked(True)
    dialog.mb_spin.setValue(20)
    dialog.windows_edit.setText("18:00-08:00")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert dialog.isVisible()
    assert "start must be before end" in dialog.error_label.text()
    dialog.mb_spin.setValue(10000)
    dialog.windows_edit.setText("08:00-12:00, 14:00-18:00")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert "1 to 9999" in dialog.error_label.text()
    dialog.mb_spin.setValue(20)
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    fc = populated.get("hr-dr").spec.flow_control
    assert fc == FlowControl(20, (TimeWindow(time(8), time(12)), TimeWindow(time(14), time(18))))


def test_modify_connection_details_stores_the_new_dr_password_only(qtbot, open_window, populated):
    window = open_window()
    old_source = populated.secrets.get_password("reports-dr", "source").reveal()
    select(qtbot, window, "reports-dr")
    window.task_actions[Action.MODIFY_CONNECTION].trigger()
    dialog = wait_dialog(qtbot, window, ConnectionDialog)
    titles = [g.title() for g in dialog.findChildren(QGroupBox)]
    assert titles == ["Service database", "DR database"]
    edits = list(dialog.edits.values())  # the password fields (host and user are plain fields)
    assert all(e.echoMode() == QLineEdit.EchoMode.Password for e in edits)
    save = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
    assert not save.isEnabled()
    qtbot.keyClicks(dialog.edits["target"], "New-DR-pw-9")
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS):
        save.click()
    assert populated.secrets.get_password("reports-dr", "target").reveal() == "New-DR-pw-9"
    assert populated.secrets.get_password("reports-dr", "source").reveal() == old_source
    assert any("target connection details modified" in e.message for e in populated.store.logs("reports-dr"))


def test_view_details_shows_settings_state_and_dr_log_by_level_never_a_password(
    qtbot, qtmodeltester, open_window, populated, servers
):
    populated.store.merge_extra(
        "orders-dr",
        copy={"rows_per_second": 52000.0, "bytes_per_second": 1.0, "eta_seconds": None, "tables": [
            {"database": "shop", "table": "orders", "rows_done": 1200, "rows_estimated": 1200, "done": True},
            {"database": "shop", "table": "lines", "rows_done": 0, "rows_estimated": 5000, "done": False},
        ]},
    )  # fmt: skip
    populated.store.add_log("orders-dr", "warning", "apply", "table audit has no primary key")
    populated.store.add_log("orders-dr", "error", "runner", "connection lost; reconnecting")
    window = open_window()
    select(qtbot, window, "orders-dr")
    window.activateWindow()
    window.table.setFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_Return)
    dialog = wait_dialog(qtbot, window, TaskDetailsDialog)
    qtbot.waitUntil(lambda: dialog.log_model.rowCount() >= 3, timeout=WAIT_MS)
    text = dialog.settings_text()
    assert "Name: orders-dr" in text
    assert "Status: Disaster recovery in progress" in text
    assert "Checkpoint: binlog.000007:4242" in text
    # the stored 3 s, grown with the clock while no runner applies (engine.health.effective_delay)
    assert (delay := re.search(r"Delay: (\d+) s", text)) and int(delay[1]) >= 3, text
    assert f"{servers.source.endpoint.host}:{servers.source.endpoint.port}" in text
    assert servers.source.endpoint.password.reveal() not in text
    assert dialog.log_proxy.rowCount() == dialog.log_model.rowCount()
    qtmodeltester.check(dialog.log_model)
    dialog.level_combo.setCurrentIndex(dialog.level_combo.findData("error"))
    assert dialog.log_proxy.rowCount() == 1
    assert dialog.log_proxy.index(0, 3).data() == "connection lost; reconnecting"
    # the initial copy, table by table
    qtmodeltester.check(dialog.copy_model)
    assert [dialog.copy_model.index(r, 4).data() for r in range(2)] == ["Done", "Waiting"]
    assert dialog.copy_model.index(0, 2).data() == "1,200"
    assert "52,000 rows/s" in dialog.copy_summary.text()
    dialog.close()


def test_create_action_opens_the_wizard(qtbot, open_window, populated):
    from drs_desktop.wizard import CreateTaskWizard

    window = open_window()
    window.create_action.trigger()
    wizard = wait_dialog(qtbot, window, CreateTaskWizard)
    assert wizard.windowTitle() == "Create Disaster Recovery Task"
    wizard.reject()


def test_drs_desktop_command_opens_the_window(tmp_path):
    """The front door: `drs-desktop` starts, shows its window over a home, and (here) saves it."""
    import subprocess
    import sys

    png = tmp_path / "window.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DRS_SECRET_BACKEND": "file"}
    result = subprocess.run(
        [sys.executable, "-m", "drs_desktop", "--home", str(tmp_path / "home"), "--screenshot", str(png)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert (tmp_path / "home" / "drs.sqlite3").exists()


def test_closing_with_nothing_running_shows_no_stopping_dialog(qtbot, open_window, populated):
    window = open_window()
    assert window.registry.busy() == []
    window.close()
    assert window.stopping_dialog is None
    assert not window.isVisible()
