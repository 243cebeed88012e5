"""Replication from the main window on two real servers: workers start, pause, resume, survive a restart
of the app, promote (switchover and forced failover) and delete, while the GUI stays responsive.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest
from PySide6.QtCore import QTimer

from drs_desktop.dialogs import DeleteTaskDialog, FailoverDialog, PromoteProgressDialog, SwitchoverDialog
from drs_desktop.main_window import MainWindow
from drs_desktop.task_model import Column
from engine.spec import parse_spec
from engine.status import Action, Status
from engine.tasks import TaskService
from tests.conftest import make_spec
from tests.gui_helpers import LONG_MS, open_windows, seed

REPLICATING = Status.REPLICATING.label


@pytest.fixture
def windows(qtbot, service):
    yield from open_windows(qtbot, service)


def add_task(svc: TaskService, servers, name: str, db: str, status: Status = Status.CONFIGURATION) -> None:
    svc.create(parse_spec(make_spec(servers, name, databases=[db], tags={"db": db})), status=status)


def status_of(window: MainWindow, name: str) -> str | None:
    row = window.model.row_of(name)
    return None if row is None else window.model.index(row, Column.STATUS).data()


def delay_of(window: MainWindow, name: str) -> str:
    row = window.model.row_of(name)
    return "" if row is None else window.model.index(row, Column.DELAY).data()


def replicating(window: MainWindow, name: str) -> bool:
    return status_of(window, name) == REPLICATING and delay_of(window, name).endswith("s")


def trigger(qtbot, window: MainWindow, name: str, action: Action) -> None:
    assert window.select_task(name)
    qtbot.waitUntil(lambda: window.current_record() is not None and window.current_record().name == name)
    qaction = window.task_actions[action]
    assert qaction.isEnabled(), qaction.toolTip()
    qaction.trigger()


def right_click(window: MainWindow, name: str) -> None:
    """Selects the row and opens its context menu, as a right-click does."""
    assert window.select_task(name)
    rect = window.table.visualRect(window.proxy.index(window.proxy_row_of(name), Column.NAME))
    window.table.customContextMenuRequested.emit(rect.center())


def menu_item(window: MainWindow, text: str):
    return next(a for a in window.context_menu.actions() if a.text() == text)


def wait_dialog(qtbot, window: MainWindow, cls, timeout: int = LONG_MS):
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(cls)), timeout=timeout)
    return next(d for d in window.findChildren(cls) if d.isVisible())


def rows_on(server, db: str) -> list[tuple]:
    try:
        return server.sql("SELECT id, v FROM kv ORDER BY id", database=db)
    except Exception:  # the database may not be there yet while the initial copy runs
        return []


class TickGaps:
    """A 50 ms QTimer on the GUI thread; the largest gap between ticks tells whether the loop stalled."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.largest = 0.0
        self.ticks = 0
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.monotonic()
        self.largest = max(self.largest, now - self.last)
        self.last = now
        self.ticks += 1

    def stop(self) -> None:
        self.timer.stop()


def test_two_tasks_replicate_pause_resume_and_resume_after_the_app_restarts(qtbot, dbs, service, windows):
    seed(dbs.source, "shop_a")
    seed(dbs.source, "shop_b")
    add_task(service, dbs, "shop-a-dr", "shop_a")
    add_task(service, dbs, "shop-b-dr", "shop_b")
    window = windows()
    ticks = TickGaps()
    trigger(qtbot, window, "shop-a-dr", Action.START)
    trigger(qtbot, window, "shop-b-dr", Action.START)
    qtbot.waitUntil(lambda: window.registry.running() == ["shop-a-dr", "shop-b-dr"], timeout=LONG_MS)
    qtbot.waitUntil(
        lambda: replicating(window, "shop-a-dr") and replicating(window, "shop-b-dr"), timeout=LONG_MS
    )
    assert rows_on(dbs.target, "shop_a") == [(1, "row 1"), (2, "row 2"), (3, "row 3")]

    # changes on the service side arrive on the DR side through each task
    dbs.source.sql("INSERT INTO kv VALUES (10, 'a live')", database="shop_a")
    dbs.source.sql("UPDATE kv SET v = 'b changed' WHERE id = 2", database="shop_b")
    qtbot.waitUntil(lambda: (10, "a live") in rows_on(dbs.target, "shop_a"), timeout=LONG_MS)
    qtbot.waitUntil(lambda: (2, "b changed") in rows_on(dbs.target, "shop_b"), timeout=LONG_MS)
    ticks.stop()
    assert ticks.ticks > 20
    assert ticks.largest < 1.0, f"the GUI event loop stalled for {ticks.largest:.2f}s while tasks replicated"

    # pause one task: its worker ends, the other keeps replicating; resume catches up
    trigger(qtbot, window, "shop-a-dr", Action.PAUSE)
    qtbot.waitUntil(lambda: not window.registry.is_running("shop-a-dr"), timeout=LONG_MS)
    qtbot.waitUntil(lambda: status_of(window, "shop-a-dr") == "Paused", timeout=LONG_MS)
    assert service.get("shop-a-dr").status is Status.PAUSED
    dbs.source.sql("INSERT INTO kv VALUES (11, 'while paused')", database="shop_a")
    dbs.source.sql("INSERT INTO kv VALUES (11, 'b still running')", database="shop_b")
    qtbot.waitUntil(lambda: (11, "b still running") in rows_on(dbs.target, "shop_b"), timeout=LONG_MS)
    assert (11, "while paused") not in rows_on(dbs.target, "shop_a")
    trigger(qtbot, window, "shop-a-dr", Action.RESUME)
    qtbot.waitUntil(lambda: (11, "while paused") in rows_on(dbs.target, "shop_a"), timeout=LONG_MS)
    qtbot.waitUntil(lambda: replicating(window, "shop-a-dr"), timeout=LONG_MS)

    # closing the app stops both workers at a checkpoint, leaving the tasks to resume
    window.close()
    assert window.registry.running() == []
    for name in ("shop-a-dr", "shop-b-dr"):
        record = service.get(name)
        assert record.status is Status.REPLICATING
        assert record.runner_pid is None
        assert record.checkpoint.binlog_file is not None
    dbs.source.sql("INSERT INTO kv VALUES (12, 'while the app was closed')", database="shop_a")

    again = windows()
    qtbot.waitUntil(lambda: again.registry.running() == ["shop-a-dr", "shop-b-dr"], timeout=LONG_MS)
    qtbot.waitUntil(
        lambda: (12, "while the app was closed") in rows_on(dbs.target, "shop_a"), timeout=LONG_MS
    )
    assert rows_on(dbs.target, "shop_a") == rows_on(dbs.source, "shop_a")
    assert rows_on(dbs.target, "shop_b") == rows_on(dbs.source, "shop_b")


def test_scheduled_task_starts_at_its_time(qtbot, dbs, service, windows):
    seed(dbs.source, "shop_s", rows=1)
    add_task(service, dbs, "sched-dr", "shop_s", status=Status.PENDING_START)
    service.store.update_task("sched-dr", start_at=datetime.now() + timedelta(seconds=1))
    window = windows(schedule_ms=200)
    assert status_of(window, "sched-dr") == "Pending start"
    qtbot.waitUntil(
        lambda: window.registry.is_running("sched-dr") or replicating(window, "sched-dr"), timeout=LONG_MS
    )
    qtbot.waitUntil(lambda: replicating(window, "sched-dr"), timeout=LONG_MS)
    assert rows_on(dbs.target, "shop_s") == [(1, "row 1")]


def test_task_run_by_another_process_is_not_started_twice(qtbot, dbs, service, windows):
    add_task(service, dbs, "elsewhere-dr", "shop_x", status=Status.REPLICATING)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        service.store.update_task("elsewhere-dr", runner_pid=other.pid)
        window = windows()
        assert not window.registry.is_running("elsewhere-dr")
        assert service.get("elsewhere-dr").runner_pid == other.pid != os.getpid()
    finally:
        other.kill()
        other.wait()


def test_promote_switchover_by_right_click_then_offer_reverse_task(qtbot, dbs, service, windows):
    seed(dbs.source, "oltp")
    add_task(service, dbs, "promo-dr", "oltp", status=Status.STARTING)
    window = windows()  # a task left in Starting is resumed when the window opens
    try:
        qtbot.waitUntil(lambda: replicating(window, "promo-dr"), timeout=LONG_MS)
        dbs.source.sql("INSERT INTO kv VALUES (100, 'written just before promote')", database="oltp")
        right_click(window, "promo-dr")
        item = menu_item(window, "Promote")
        assert item.isEnabled()
        item.trigger()
        window.context_menu.close()
        confirm = wait_dialog(qtbot, window, SwitchoverDialog)
        assert "RPO 0" in confirm.text_label.text() and "read-only" in confirm.text_label.text()
        with qtbot.waitSignal(window.actionDone, timeout=LONG_MS) as done:
            confirm.accept()
        assert done.args == ["promote", "promo-dr"]
        progress = wait_dialog(qtbot, window, PromoteProgressDialog)
        assert progress.finished_ok is True
        assert progress.messages.count() >= 3  # stopping, read-only, waiting/applied...
        assert "Service database final position" in progress.result_label.text()
        qtbot.waitUntil(lambda: status_of(window, "promo-dr") == "Promoted — DR is primary (switchover)", timeout=LONG_MS)
        assert not window.registry.is_running("promo-dr")
        # RPO 0: what was written before the promote is on the DR side, which now takes writes
        assert (100, "written just before promote") in rows_on(dbs.target, "oltp")
        assert dbs.target.sql("SELECT @@GLOBAL.read_only")[0][0] == 0
        assert dbs.source.sql("SELECT @@GLOBAL.read_only")[0][0] == 1
        dbs.target.sql("INSERT INTO kv VALUES (101, 'new primary')", database="oltp")

        from drs_desktop.wizard import CreateTaskWizard

        assert progress.reverse_button.isVisible()
        progress.reverse_button.click()
        wizard = wait_dialog(qtbot, window, CreateTaskWizard)
        # pre-filled from reverse_spec: the promoted DR side is the new service side
        assert wizard.task_page.name_edit.text() == "promo-dr-reverse"
        wizard.reject()
        progress.close()
    finally:
        dbs.source.sql("SET GLOBAL read_only = OFF")


def test_forced_failover_when_the_service_database_is_down(qtbot, dbs, service, windows):
    seed(dbs.source, "oltp")
    add_task(service, dbs, "fail-dr", "oltp", status=Status.STARTING)
    window = windows()
    try:
        qtbot.waitUntil(lambda: replicating(window, "fail-dr"), timeout=LONG_MS)
        dbs.source.sql("INSERT INTO kv VALUES (7, 'replicated before the crash')", database="oltp")
        qtbot.waitUntil(
            lambda: (7, "replicated before the crash") in rows_on(dbs.target, "oltp"), timeout=LONG_MS
        )
        dbs.source.stop()
        right_click(window, "fail-dr")
        menu_item(window, "Promote").trigger()
        window.context_menu.close()
        confirm = wait_dialog(qtbot, window, FailoverDialog)
        assert "cannot be reached" in confirm.text_label.text()
        assert confirm.estimate_label.text()  # last applied position and what may be lost
        with qtbot.waitSignal(window.actionDone, timeout=LONG_MS):
            confirm.accept()
        progress = wait_dialog(qtbot, window, PromoteProgressDialog)
        assert progress.finished_ok is True and progress.mode == "failover"
        qtbot.waitUntil(lambda: status_of(window, "fail-dr") == "Promoted — DR is primary (failover)", timeout=LONG_MS)
        assert service.get("fail-dr").extra["promote"]["mode"] == "failover"
        assert dbs.target.sql("SELECT @@GLOBAL.read_only")[0][0] == 0
        dbs.target.sql("INSERT INTO kv VALUES (8, 'written on the new primary')", database="oltp")
        progress.close()
    finally:
        if dbs.source.proc is None:
            dbs.source.start(dbs.base)


def test_delete_a_replicating_task_stops_its_worker_first(qtbot, dbs, service, windows, memory_keyring):
    seed(dbs.source, "gone")
    add_task(service, dbs, "gone-dr", "gone", status=Status.STARTING)
    window = windows()
    qtbot.waitUntil(lambda: replicating(window, "gone-dr"), timeout=LONG_MS)
    right_click(window, "gone-dr")
    menu_item(window, "Delete").trigger()
    window.context_menu.close()
    dialog = wait_dialog(qtbot, window, DeleteTaskDialog)
    dialog.lift_read_only_box.setChecked(True)
    with qtbot.waitSignal(window.actionDone, timeout=LONG_MS):
        dialog.accept()
    assert window.model.row_of("gone-dr") is None
    assert not window.registry.is_running("gone-dr")
    assert not service.store.name_taken("gone-dr")
    assert memory_keyring.items == {}
    assert dbs.target.sql("SELECT @@GLOBAL.read_only")[0][0] == 0
    assert rows_on(dbs.target, "gone") == rows_on(dbs.source, "gone")  # the DR data stays


def test_task_created_by_the_cli_while_the_window_is_open_starts(qtbot, dbs, service, windows):
    window = windows(refresh_ms=300, schedule_ms=300)
    seed(dbs.source, "clidb")
    # another shell runs `drs task create` (status Starting, nobody running it yet)
    add_task(TaskService(service.home), dbs, "cli-made", "clidb", status=Status.STARTING)
    qtbot.waitUntil(lambda: replicating(window, "cli-made"), timeout=LONG_MS)
    assert window.registry.is_running("cli-made")
    assert dbs.target.sql("SELECT COUNT(*) FROM clidb.kv") == [(3,)]
