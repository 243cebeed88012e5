"""The "Data comparison" tab on two real servers: a Values compare finds a row deleted on the DR side,
the history lists and drills down into runs, exports write the key, Cancel stops a run, Apply fix (after
a confirmation defaulting to No) makes a re-run consistent, and the window's Compare opens the tab."""

from __future__ import annotations

import pytest
from conftest import make_spec
from dr_helpers import ODD_DB, wait_for
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from test_compare import RunnerThread, build_source

from drs_desktop.compare_tab import CompareTab, FixSqlDialog, parse_scope
from drs_desktop.details import TaskDetailsDialog
from drs_desktop.main_window import MainWindow
from drs_desktop.taskman import TaskManager
from engine import compare
from engine.spec import parse_spec
from engine.status import Action, Status
from tests.test_cli import spec_dict

WAIT_MS = 60_000
NAME = "cmp-task"


@pytest.fixture
def pair(dbs, service):
    """A task past its initial copy (a real run), runner stopped: the DR side equals the service side."""
    build_source(dbs.source)
    service.create(parse_spec(make_spec(dbs, NAME, databases=["shop", ODD_DB])))
    with RunnerThread(service, NAME):
        wait_for(lambda: service.store.get_task(NAME).status is Status.REPLICATING, 120, 0.2, "replicating")
    return service


@pytest.fixture
def open_tab(qtbot, service):
    """A CompareTab over the real store and its own TaskManager, as the details dialog builds it."""
    taskman = TaskManager()
    tabs: list[CompareTab] = []

    def _open(name: str = NAME) -> CompareTab:
        tab = CompareTab(name, service, taskman, status=service.store.get_task(name).status)
        qtbot.addWidget(tab)
        tab.resize(900, 560)
        tab.show()
        with qtbot.waitSignal(tab.historyLoaded, timeout=WAIT_MS):
            pass  # the constructor asked for the history; its answer is queued for the event loop
        tabs.append(tab)
        return tab

    yield _open
    for tab in tabs:
        tab.cancel()
    taskman.wait_idle()


def run(qtbot, tab: CompareTab, level: str, scope: str = "") -> compare.CompareReport | None:
    tab.set_level(level)
    tab.scope_edit.setText(scope)
    with qtbot.waitSignal(tab.finished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
        assert tab.is_running() and not tab.start_button.isEnabled() and tab.cancel_button.isEnabled()
    assert not tab.is_running() and tab.start_button.isEnabled()
    return blocker.args[0]


def differences(tab: CompareTab) -> list[tuple]:
    m = tab.differences_model
    return [m.index(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(m.rowCount())]


def summary(tab: CompareTab) -> dict[str, tuple]:
    m = tab.summary_model
    return {m.index(r, 1).data(): tuple(m.index(r, c).data() for c in range(m.columnCount())) for r in range(m.rowCount())}


def history(tab: CompareTab) -> list[tuple]:
    m = tab.run_model
    return [tuple(m.index(r, c).data() for c in range(m.columnCount())) for r in range(m.rowCount())]


def test_values_compare_finds_the_deleted_row_then_history_drills_down_and_exports(
    qtbot, qtmodeltester, open_tab, pair, dbs, tmp_path
):
    dbs.target.sql("DELETE FROM shop.orders WHERE id = 17")
    tab = open_tab()
    assert tab.run_model.rowCount() == 0 and not tab.csv_button.isEnabled()

    report = run(qtbot, tab, "values")
    assert report is not None and report.status == "finished"
    assert tab.verdict() == "1 difference"
    assert differences(tab) == [("shop.orders", "missing", [17])]
    assert tab.differences_model.index(0, 2).data() == "[17]"
    orders = summary(tab)["shop.orders"]
    assert orders == ("table", "shop.orders", "Inconsistent", "3,000", "2,999", "")
    assert summary(tab)["shop.lines"][2:5] == ("Consistent", "900", "900")
    assert tab.fix_button.isEnabled() and tab.apply_button.isEnabled()
    for model in (tab.differences_model, tab.summary_model, tab.run_model):
        qtmodeltester.check(model)

    # a row-count run of one table; the scope is kept in the history
    qtbot.waitUntil(lambda: tab.run_model.rowCount() == 1, timeout=WAIT_MS)
    run(qtbot, tab, "rows", "shop.orders")
    assert [d[:2] for d in differences(tab)] == [("shop.orders", "count")]
    assert tab.summary_title.text() == "Tables: service rows vs DR rows"
    qtbot.waitUntil(lambda: tab.run_model.rowCount() == 2, timeout=WAIT_MS)
    runs = history(tab)  # newest first
    assert runs[0][1:] == ("Row counts", "1 difference", "shop.orders")
    assert runs[1][1:3] == ("Values", "1 difference") and runs[1][3].startswith("shop")
    assert tab.selected_run_id() == tab.report.run_id  # the new run is the selected one
    qtmodeltester.check(tab.run_model)

    # drill down: selecting the older run loads it (off the GUI thread) into the results
    with qtbot.waitSignal(tab.reportShown, timeout=WAIT_MS):
        tab.history_view.selectRow(1)
    assert tab.report.level == "values" and tab.report.run_id == report.run_id
    assert differences(tab) == [("shop.orders", "missing", [17])]
    assert summary(tab)["shop.orders"][3:5] == ("3,000", "2,999")

    csv_path, html_path = tmp_path / "run.csv", tmp_path / "run.html"
    with qtbot.waitSignal(tab.exported, timeout=WAIT_MS):
        tab.export_csv(csv_path)
    with qtbot.waitSignal(tab.exported, timeout=WAIT_MS):
        tab.export_html(html_path)
    assert "shop.orders,missing,[17]" in csv_path.read_text()
    html = html_path.read_text()
    assert "shop.orders" in html and "[17]" in html and "missing" in html

    # fix SQL is shown read-only, never run by showing it
    dialog = tab.show_fix_sql()
    assert isinstance(dialog, FixSqlDialog) and dialog.text.isReadOnly()
    assert "REPLACE INTO `shop`.`orders`" in dialog.text.toPlainText()
    dialog.close()
    assert dbs.target.sql("SELECT COUNT(*) FROM shop.orders WHERE id = 17") == [(0,)]


def test_a_table_outside_the_task_fails_with_the_reason(qtbot, open_tab, pair):
    tab = open_tab()
    assert run(qtbot, tab, "values", "shop.nope") is None
    assert tab.verdict().startswith("Failed: ") and "shop.nope" in tab.verdict()
    tab.scope_edit.setText("orders")  # no database: refused before anything runs
    tab.start()
    assert not tab.is_running() and "db.table" in tab.verdict()
    with pytest.raises(ValueError):
        parse_scope("shop.")
    assert parse_scope(" shop.orders , shop.lines ") == ["shop.orders", "shop.lines"]
    assert parse_scope("  ") is None


def test_cancel_stops_a_running_values_compare(qtbot, open_tab, pair, monkeypatch):
    real = compare.run_compare

    def held(*args, on_progress, cancel, **kwargs):
        def progress(p):
            on_progress(p)
            cancel.wait(WAIT_MS / 1000)  # hold the compare at its first chunk until Cancel is clicked

        return real(*args, on_progress=progress, cancel=cancel, **kwargs)

    monkeypatch.setattr(compare, "run_compare", held)
    tab = open_tab()
    tab.chunk_rows = 100
    tab.set_level("values")
    with qtbot.waitSignal(tab.finished, timeout=WAIT_MS) as blocker:
        tab.start_button.click()
        qtbot.waitUntil(lambda: tab.progress_bar.value() >= 1, timeout=WAIT_MS)
        assert tab.progress_bar.maximum() > 10  # 3,000 orders in chunks of 100, and more
        assert tab.progress_bar.format().startswith(f"{100 // tab.progress_bar.maximum()}%  {ODD_DB}.")  # 1st table
        qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].status == "cancelled"
    assert tab.verdict() == "Cancelled"
    qtbot.waitUntil(lambda: tab.run_model.rowCount() == 1, timeout=WAIT_MS)
    assert history(tab)[0][2] == "Cancelled"


def test_apply_fix_asks_first_then_a_rerun_is_consistent(qtbot, open_tab, pair, dbs, monkeypatch):
    dbs.target.sql("DELETE FROM shop.orders WHERE id = 17", "UPDATE shop.orders SET amount = 1 WHERE id = 42")
    tab = open_tab()
    run(qtbot, tab, "values")
    assert tab.verdict() == "2 differences"
    questions: list[tuple[str, QMessageBox.StandardButton]] = []
    answers: list[QMessageBox.StandardButton] = [QMessageBox.StandardButton.No]

    def question(parent, title, text, buttons, default):
        questions.append((text, default))
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    assert tab.apply_fix() is False  # declined: nothing runs
    text, default = questions[0]
    assert default == QMessageBox.StandardButton.No
    assert "2 statements on the DR side" in text
    assert dbs.target.sql("SELECT COUNT(*) FROM shop.orders WHERE id = 17") == [(0,)]

    answers[:] = [QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Yes]  # apply, then re-run
    with (
        qtbot.waitSignal(tab.finished, timeout=WAIT_MS) as rerun,
        qtbot.waitSignal(tab.fixApplied, timeout=WAIT_MS) as applied,
    ):
        qtbot.mouseClick(tab.apply_button, Qt.MouseButton.LeftButton)
    assert applied.args == [2]
    assert "Run the values compare again" in questions[-1][0] and questions[-1][1] == QMessageBox.StandardButton.Yes
    assert rerun.args[0].consistent and tab.verdict() == "Consistent"
    assert differences(tab) == [] and not tab.apply_button.isEnabled()
    assert dbs.target.sql("SELECT amount FROM shop.orders WHERE id = 42") == dbs.source.sql(
        "SELECT amount FROM shop.orders WHERE id = 42"
    )


def test_objects_level_lists_every_object_with_its_status(qtbot, qtmodeltester, open_tab, pair, dbs):
    dbs.target.sql("DROP VIEW shop.big_orders", "CREATE TABLE shop.stray (id INT PRIMARY KEY)")
    tab = open_tab()
    run(qtbot, tab, "objects")
    qtmodeltester.check(tab.summary_model)
    objects = summary(tab)
    assert objects["shop.orders"][:3] == ("table", "shop.orders", "Consistent")
    assert objects["shop.vat"][:3] == ("function", "shop.vat", "Consistent")
    assert objects["shop.big_orders"][:3] == ("view", "shop.big_orders", "Missing")
    assert objects["shop.stray"][:3] == ("table", "shop.stray", "Extra")
    assert tab.summary_title.text() == "Objects"
    assert {(t, k) for t, k, _ in differences(tab)} == {("shop.big_orders", "object"), ("shop.stray", "object")}
    assert tab.verdict() == "2 differences"


def test_start_is_disabled_with_the_reason_when_compare_is_not_allowed(qtbot, open_tab, service):
    service.create(parse_spec(spec_dict("idle", tags={})), status=Status.CONFIGURATION)
    tab = open_tab("idle")
    assert not tab.start_button.isEnabled()
    assert "Compare is not available while the task is Configuration" in tab.start_button.toolTip()
    tab.set_status(Status.PAUSED)
    assert tab.start_button.isEnabled() and not tab.cancel_button.isEnabled()
    alone = CompareTab("idle", None, None)  # a dialog opened without the service cannot compare
    qtbot.addWidget(alone)
    assert not alone.start_button.isEnabled() and "task service" in alone.start_button.toolTip()


def test_the_compare_action_opens_the_details_on_the_data_comparison_tab(qtbot, service):
    service.create(parse_spec(spec_dict("orders-dr", tags={})), status=Status.CONFIGURATION)
    service.store.set_status("orders-dr", Status.REPLICATING)
    window = MainWindow(service, autostart=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.refresh_count >= 1, timeout=WAIT_MS)
    assert window.select_task("orders-dr")
    qtbot.waitUntil(lambda: window.task_actions[Action.COMPARE].isEnabled(), timeout=WAIT_MS)
    window.task_actions[Action.COMPARE].trigger()
    dialog = window._details["orders-dr"]
    assert isinstance(dialog, TaskDetailsDialog) and dialog.isVisible()
    assert dialog.tabs.currentWidget() is dialog.compare_tab
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Data comparison"
    assert dialog.compare_tab.start_button.isEnabled()  # the dialog has the service: compare can run
    assert Action.COMPARE in {a for a, q in window.task_actions.items() if q in window.build_context_menu().actions()}
    dialog.close()
    window.shutdown()
