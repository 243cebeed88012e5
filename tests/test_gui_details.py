"""The task details a DBA opens to analyse a task: the DR log tab (filters, live updates, CSV export), the
Monitoring tab (charts of delay/RTO/throughput from real samples), and health in the task table.

Real widgets, a real SQLite store; samples are recorded through engine.metrics and log entries through
store.add_log (from this process and from another one), as the runner writes them.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from drs_desktop.colours import semantic_colour
from drs_desktop.dialogs import TaskDetailsDialog
from drs_desktop.main_window import MainWindow
from drs_desktop.task_model import Column, HealthRole, status_icon
from drs_desktop.taskman import TaskManager
from engine.metrics import MetricSample, record_sample
from engine.spec import parse_spec
from engine.status import Status
from engine.store import DrLogRow
from tests.gui_helpers import refreshed
from tests.test_cli import spec_dict

WAIT_MS = 20_000
REPO = Path(__file__).resolve().parents[1]
NOW = datetime.now()


def add_task(service, name: str = "orders-dr", status: Status = Status.REPLICATING, **fields) -> None:
    service.create(parse_spec(spec_dict(name, tags={})), status=Status.CONFIGURATION)
    service.store.set_status(name, status, **fields)


def backdate(store, message: str, when: datetime) -> None:
    from sqlalchemy import update

    with store.session_scope() as s:
        s.execute(update(DrLogRow).where(DrLogRow.message == message).values(time=when))


@pytest.fixture
def open_details(qtbot, service):
    """Opens the details dialog of a task over the real store, with its own TaskManager."""
    taskman = TaskManager()
    dialogs: list[TaskDetailsDialog] = []

    def _open(name: str = "orders-dr") -> TaskDetailsDialog:
        dialog = TaskDetailsDialog(service.store.get_task(name), store=service.store, taskman=taskman)
        qtbot.addWidget(dialog)
        dialog.resize(960, 640)
        dialog.show()
        dialogs.append(dialog)
        return dialog

    yield _open
    for dialog in dialogs:
        dialog.close()
    taskman.wait_idle()


@pytest.fixture
def logged(service):
    """orders-dr with entries over a week, as the runner would have written them."""
    add_task(service)
    for age, level, component, message in [
        (timedelta(days=3), "info", "runner", "initial full DR started"),
        (timedelta(hours=5), "warning", "apply", "table audit_log has no primary key"),
        (timedelta(minutes=40), "error", "runner", "Connection lost to the service database; reconnecting"),
        (timedelta(minutes=2), "info", "runner", "reconnected at binlog.000042:1234"),
    ]:
        service.store.add_log("orders-dr", level, component, message)
        backdate(service.store, message, NOW - age)
    return service


def shown_messages(dialog: TaskDetailsDialog) -> list[str]:
    proxy = dialog.log_proxy
    return [proxy.index(r, 3).data() for r in range(proxy.rowCount())]


def write_log_from_another_process(home: Path, message: str) -> None:
    code = (
        "import sys; from engine.store import Store; s = Store(sys.argv[1]); "
        "s.add_log('orders-dr', 'warning', 'runner', sys.argv[2]); s.close()"
    )
    subprocess.run([sys.executable, "-c", code, str(home), message], check=True, cwd=REPO, timeout=60)


# ---- DR log tab ---------------------------------------------------------------------------------
def test_log_tab_filters_by_level_time_range_and_text(qtbot, qtmodeltester, open_details, logged):
    dialog = open_details()
    dialog.show_tab(dialog.log_tab)
    qtbot.waitUntil(lambda: dialog.log_model.rowCount() == 5, timeout=WAIT_MS)  # 4 + "task created"
    qtmodeltester.check(dialog.log_model)
    assert dialog.log_tab.count_label.text() == "5 entries"
    error_row = shown_messages(dialog).index("Connection lost to the service database; reconnecting")
    level_cell = dialog.log_proxy.index(error_row, 1)
    assert level_cell.data() == "Error"
    assert level_cell.data(Qt.ItemDataRole.ForegroundRole) == semantic_colour("error")

    with qtbot.waitSignal(dialog.log_tab.loaded, timeout=WAIT_MS):
        dialog.level_combo.setCurrentIndex(dialog.level_combo.findData("warning"))
    assert shown_messages(dialog) == ["table audit_log has no primary key"]

    with qtbot.waitSignal(dialog.log_tab.loaded, timeout=WAIT_MS):
        dialog.level_combo.setCurrentIndex(0)
    with qtbot.waitSignal(dialog.log_tab.loaded, timeout=WAIT_MS):
        dialog.log_tab.time_combo.setCurrentIndex(dialog.log_tab.time_combo.findData(3600))
    assert shown_messages(dialog) == [
        f"task created ({Status.CONFIGURATION.label})",
        "Connection lost to the service database; reconnecting",
        "reconnected at binlog.000042:1234",
    ]
    with qtbot.waitSignal(dialog.log_tab.loaded, timeout=WAIT_MS):
        dialog.log_tab.time_combo.setCurrentIndex(dialog.log_tab.time_combo.findData(15 * 60))
    assert shown_messages(dialog) == [f"task created ({Status.CONFIGURATION.label})", "reconnected at binlog.000042:1234"]
    with qtbot.waitSignal(dialog.log_tab.loaded, timeout=WAIT_MS):
        dialog.log_tab.time_combo.setCurrentIndex(dialog.log_tab.time_combo.findData(7 * 86400))
    assert len(shown_messages(dialog)) == 5

    # text search, typed: the proxy narrows at once, the store answers after the typing pause
    with qtbot.waitSignal(dialog.log_tab.loaded, timeout=WAIT_MS):
        qtbot.keyClicks(dialog.log_tab.search_edit, "CONNECT")
    assert shown_messages(dialog) == [
        "Connection lost to the service database; reconnecting",
        "reconnected at binlog.000042:1234",
    ]
    assert dialog.log_model.rowCount() == 2  # loaded from the store with the filter, not just hidden
    dialog.log_tab.search_edit.clear()
    qtbot.waitUntil(lambda: dialog.log_model.rowCount() == 5, timeout=WAIT_MS)


def test_log_search_finds_entries_older_than_the_rows_loaded(qtbot, open_details, service, monkeypatch):
    import drs_desktop.drlog_tab as drlog_tab

    monkeypatch.setattr(drlog_tab, "LOAD_LIMIT", 10)
    add_task(service)
    service.store.add_log("orders-dr", "error", "apply", "Duplicate entry 42 for key PRIMARY")
    for i in range(30):
        service.store.add_log("orders-dr", "info", "apply", f"applied batch {i}")
    dialog = open_details()
    dialog.show_tab(dialog.log_tab)
    qtbot.waitUntil(lambda: dialog.log_model.rowCount() == 10, timeout=WAIT_MS)
    assert "Duplicate entry 42 for key PRIMARY" not in shown_messages(dialog)
    with qtbot.waitSignal(dialog.log_tab.loaded, timeout=WAIT_MS):
        dialog.log_tab.search_edit.setText("duplicate")
    assert shown_messages(dialog) == ["Duplicate entry 42 for key PRIMARY"]


def test_log_tab_appends_live_entries_once_and_polls_other_processes_while_visible(
    qtbot, open_details, logged, home
):
    dialog = open_details()
    tab = dialog.log_tab
    tab.poll_timer.setInterval(100)
    dialog.show_tab(tab)
    qtbot.waitUntil(lambda: dialog.log_model.rowCount() == 5, timeout=WAIT_MS)
    assert tab.poll_timer.isActive()

    # this process's worker: the window hands the entry over; the poll then reads it again: shown once
    entry = logged.store.add_log("orders-dr", "info", "apply", "applied 120 rows")
    dialog.append_log(entry)
    assert shown_messages(dialog)[-1] == "applied 120 rows"
    with qtbot.waitSignal(tab.polled, timeout=WAIT_MS):
        pass
    assert shown_messages(dialog).count("applied 120 rows") == 1

    # another process (e.g. `drs run`) writes to the same store
    write_log_from_another_process(home, "written by drs run")
    qtbot.waitUntil(lambda: "written by drs run" in shown_messages(dialog), timeout=WAIT_MS)
    assert dialog.log_view.verticalScrollBar().value() == dialog.log_view.verticalScrollBar().maximum()

    # a live entry that does not match the filters stays hidden
    with qtbot.waitSignal(tab.loaded, timeout=WAIT_MS):
        dialog.level_combo.setCurrentIndex(dialog.level_combo.findData("error"))
    dialog.append_log(logged.store.add_log("orders-dr", "info", "apply", "not an error"))
    assert "not an error" not in shown_messages(dialog)
    dialog.append_log(logged.store.add_log("orders-dr", "error", "apply", "a new error"))
    assert shown_messages(dialog)[-1] == "a new error"

    # no polling while another tab is in front
    dialog.show_tab(dialog.basic_tab)
    qtbot.waitUntil(lambda: not tab.poll_timer.isActive(), timeout=WAIT_MS)


def test_export_csv_writes_the_entries_matching_the_filters(qtbot, open_details, logged, tmp_path):
    dialog = open_details()
    tab = dialog.log_tab
    dialog.show_tab(tab)
    qtbot.waitUntil(lambda: dialog.log_model.rowCount() == 5, timeout=WAIT_MS)
    with qtbot.waitSignal(tab.loaded, timeout=WAIT_MS):
        tab.time_combo.setCurrentIndex(tab.time_combo.findData(86400))
    path = tmp_path / "orders-dr.csv"
    with qtbot.waitSignal(tab.exported, timeout=WAIT_MS) as exported:
        tab.export_csv(str(path))
    assert exported.args == [str(path), 4]
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time", "level", "component", "message"]
    assert [r[3] for r in rows[2:]] == [
        "table audit_log has no primary key",
        "Connection lost to the service database; reconnecting",
        "reconnected at binlog.000042:1234",
    ]
    assert rows[2][1:3] == ["warning", "apply"]
    assert "4 entries exported to orders-dr.csv" in tab.count_label.text()
    with qtbot.waitSignal(tab.exportFailed, timeout=WAIT_MS) as failed:
        tab.export_csv(str(tmp_path / "missing-dir" / "x.csv"))
    assert "Cannot export the DR log" in failed.args[0]
    assert tab.export_button.isEnabled()


# ---- Monitoring tab --------------------------------------------------------------------------------
def sample(age: timedelta, delay: float | None, rows: float, rto: float | None = 2.0) -> MetricSample:
    return MetricSample(NOW - age, delay, rto, rows, rows / 10, rows * 150)


@pytest.fixture
def sampled(service):
    add_task(service, phase="incremental", delay_seconds=1.0)
    for s in [
        sample(timedelta(days=5), 900.0, 100.0, None),
        sample(timedelta(hours=6), 60.0, 1000.0),
        sample(timedelta(hours=3), None, 1500.0, None),  # delay unknown then (a gap in the line)
        sample(timedelta(minutes=30), 4.0, 2000.0),
        sample(timedelta(seconds=20), 1.5, 2500.0, 3.0),
    ]:
        record_sample(service.store, "orders-dr", s)
    return service


def curve_points(tab, attribute: str) -> int:
    xs, _ys = tab.curves[attribute].getData()
    return 0 if xs is None else len(xs)


def test_monitoring_tab_charts_the_samples_of_1h_24h_and_7d(qtbot, open_details, sampled):
    dialog = open_details()
    tab = dialog.monitoring_tab
    assert tab.charts is None  # pyqtgraph only once the tab is shown
    with qtbot.waitSignal(tab.updated, timeout=WAIT_MS) as updated:
        dialog.show_tab(tab)
    assert updated.args == [2]  # the last hour
    assert tab.charts is not None and tab.charts.isVisible()
    assert set(tab.curves) == {"delay_seconds", "rto_seconds", "rows_per_second", "events_per_second",
                               "bytes_per_second"}  # fmt: skip
    assert curve_points(tab, "rows_per_second") == 2
    _xs, ys = tab.curves["rows_per_second"].getData()
    assert list(ys) == [2000.0, 2500.0]
    text = tab.current_label.text()
    assert "Delay (RPO) <b>2 s</b>" in text and "RTO <b>3 s</b>" in text and "<b>2,500</b> rows/s" in text
    assert "250 events/s" in text and "375.0 kB/s" in text
    # the x axis spans the whole range, even where there are no samples
    (x0, x1), _ = tab.plots["delay"].viewRange()
    assert x1 - x0 == pytest.approx(3600, rel=0.05)

    with qtbot.waitSignal(tab.updated, timeout=WAIT_MS) as updated:
        tab.set_range(86400)
    assert updated.args == [4]
    _xs, delays = tab.curves["delay_seconds"].getData()
    assert delays[0] == 60.0 and delays[1] != delays[1]  # NaN: no line through an unknown delay
    with qtbot.waitSignal(tab.updated, timeout=WAIT_MS) as updated:
        tab.set_range(7 * 86400)
    assert updated.args == [5]
    (x0, x1), _ = tab.plots["bytes"].viewRange()  # the plots share the time axis
    assert x1 - x0 == pytest.approx(7 * 86400, rel=0.05)
    dialog.grab()  # paints without errors


def test_monitoring_tab_updates_live_with_a_new_sample(qtbot, open_details, sampled):
    dialog = open_details()
    tab = dialog.monitoring_tab
    with qtbot.waitSignal(tab.updated, timeout=WAIT_MS):
        dialog.show_tab(tab)
    tab.poll_timer.setInterval(100)
    assert tab.poll_timer.isActive()
    record_sample(sampled.store, "orders-dr", MetricSample(datetime.now(), 42.0, 7.0, 9000.0, 900.0, 3e6))
    qtbot.waitUntil(lambda: len(tab.samples) == 3, timeout=WAIT_MS)
    assert "Delay (RPO) <b>42 s</b>" in tab.current_label.text()
    assert "<b>9,000</b> rows/s" in tab.current_label.text() and "3.0 MB/s" in tab.current_label.text()
    assert curve_points(tab, "bytes_per_second") == 3
    dialog.show_tab(dialog.log_tab)
    qtbot.waitUntil(lambda: not tab.poll_timer.isActive(), timeout=WAIT_MS)


def test_monitoring_tab_without_samples_says_so(qtbot, open_details, service):
    add_task(service, "orders-dr", Status.CONFIGURATION)
    dialog = open_details()
    tab = dialog.monitoring_tab
    with qtbot.waitSignal(tab.updated, timeout=WAIT_MS) as updated:
        dialog.show_tab(tab)
    assert updated.args == [0]
    assert "No monitoring samples" in tab.current_label.text()


def test_pyqtgraph_is_not_imported_until_the_monitoring_tab_is_shown():
    code = (
        "import sys; import drs_desktop.app, drs_desktop.main_window, drs_desktop.details; "
        "sys.exit(1 if 'pyqtgraph' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=60).returncode == 0


# ---- health in the task table ------------------------------------------------------------------------
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def status_cell(window: MainWindow, name: str, role):
    return window.model.index(window.model.row_of(name), Column.STATUS).data(role)


def test_health_shows_in_the_status_cell_the_status_bar_and_a_notice_on_the_change_to_alarm(
    qtbot, qtmodeltester, service
):
    stale = datetime.now() - timedelta(minutes=10)
    add_task(service, "orders-dr", Status.REPLICATING, phase="incremental", delay_seconds=1.0,
             runner_pid=dead_pid(), runner_heartbeat=stale)  # fmt: skip
    add_task(service, "crm-dr", Status.PAUSED, phase="incremental", delay_seconds=5.0)
    add_task(service, "hr-dr", Status.CONFIGURATION)
    add_task(service, "billing-dr", Status.REPLICATING, phase="incremental", delay_seconds=1.0,
             runner_pid=None, runner_heartbeat=datetime.now())  # fmt: skip
    service.store.update_task("billing-dr", runner_pid=os.getpid())
    window = MainWindow(service, autostart=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.refresh_count >= 1, timeout=WAIT_MS)
    qtmodeltester.check(window.model)

    assert status_cell(window, "orders-dr", HealthRole) == "alarm"
    assert status_cell(window, "crm-dr", HealthRole) == "warning"
    assert status_cell(window, "hr-dr", HealthRole) == "ok"
    assert status_cell(window, "billing-dr", HealthRole) == "ok"
    assert status_cell(window, "orders-dr", Qt.ItemDataRole.ForegroundRole) == semantic_colour("alarm")
    assert status_cell(window, "crm-dr", Qt.ItemDataRole.ForegroundRole) == semantic_colour("warning")
    assert status_cell(window, "hr-dr", Qt.ItemDataRole.ForegroundRole) is None  # the palette's text colour
    tip = status_cell(window, "orders-dr", Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Disaster recovery in progress\nAlarm:\n• no process is running this task")
    assert "paused" in status_cell(window, "crm-dr", Qt.ItemDataRole.ToolTipRole)

    def image(name: str):
        return status_cell(window, name, Qt.ItemDataRole.DecorationRole).pixmap(16, 16).toImage()

    plain = status_icon(Status.REPLICATING).pixmap(16, 16).toImage()
    assert image("billing-dr") == plain
    assert image("orders-dr") != plain  # the alarm badge
    assert image("orders-dr").pixelColor(12, 12).red() > 200  # a red badge in the lower right corner
    assert image("orders-dr").pixelColor(8, 8) == plain.pixelColor(8, 8)  # the status colour stays

    assert window.alarm_label.text() == "1 in alarm  ·  1 with warnings"
    # tasks already in alarm when the window opens are not announced (the first refresh is the baseline)
    assert window.last_alarm_notice == ""

    # billing-dr's runner dies: one notice, on the change only
    service.store.update_task("billing-dr", runner_pid=dead_pid(), runner_heartbeat=stale)
    refreshed(qtbot, window)
    assert status_cell(window, "billing-dr", HealthRole) == "alarm"
    assert window.alarm_label.text() == "2 in alarm  ·  1 with warnings"
    assert window.last_alarm_notice.startswith("DR task in alarm\nbilling-dr: no process is running this task")
    assert "billing-dr" in window.last_message
    window.last_alarm_notice = ""
    refreshed(qtbot, window)
    assert window.last_alarm_notice == ""  # still in alarm: no second notice

    # back to normal, then into alarm again: a new notice
    service.store.update_task("billing-dr", runner_pid=os.getpid(), runner_heartbeat=datetime.now())
    refreshed(qtbot, window)
    assert status_cell(window, "billing-dr", HealthRole) == "ok"
    assert window.alarm_label.text() == "1 in alarm  ·  1 with warnings"
    service.store.set_status("billing-dr", Status.FAILED, last_error="MySQL error 1146")
    refreshed(qtbot, window)
    assert "billing-dr: the task failed: MySQL error 1146" in window.last_alarm_notice
    window.shutdown()
    window.close()


def test_details_dialog_opened_from_the_window_reads_its_log_and_gets_live_entries(qtbot, service):
    add_task(service, "orders-dr", Status.PAUSED, phase="incremental")
    service.store.add_log("orders-dr", "info", "runner", "paused at binlog.000001:4")
    window = MainWindow(service, autostart=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.refresh_count >= 1, timeout=WAIT_MS)
    assert window.select_task("orders-dr")
    window.view_details()
    dialog = window._details["orders-dr"]
    qtbot.waitUntil(lambda: "paused at binlog.000001:4" in shown_messages(dialog), timeout=WAIT_MS)
    # a worker's entry goes through the window's signal handler to the open dialog
    window._on_log_entry("orders-dr", service.store.add_log("orders-dr", "warning", "apply", "from a worker"))
    assert shown_messages(dialog)[-1] == "from a worker"
    tabs = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert tabs[:4] == ["Basic information", "Initial copy", "Monitoring", "DR log"]  # more may follow
    dialog.close()
    qtbot.waitUntil(lambda: "orders-dr" not in window._details, timeout=WAIT_MS)
    window.shutdown()
    window.close()


def test_delay_alarm_threshold_is_edited_in_the_monitoring_tab(qtbot, open_details, sampled):
    from engine.health import delay_threshold, evaluate

    sampled.store.merge_extra("orders-dr", delay_threshold=120.0)
    dialog = open_details()
    tab = dialog.monitoring_tab
    qtbot.waitUntil(lambda: tab.threshold_spin.value() == 120, timeout=WAIT_MS)  # the task's own value
    tab.threshold_spin.setValue(1)
    tab.threshold_save.click()
    qtbot.waitUntil(lambda: "Saved" in tab.threshold_note.text(), timeout=WAIT_MS)
    record = sampled.store.get_task("orders-dr")
    assert delay_threshold(record) == 1.0
    # the task's delay (1 s and growing: nobody runs it) is now measured against 1 s
    # (over the threshold, or over half of it: "delay threshold 1 s" / "delay threshold (1 s)")
    reasons = evaluate(sampled.store, record).reasons
    assert any(re.search(r"delay threshold \(?1 s\b", r) for r in reasons), reasons
