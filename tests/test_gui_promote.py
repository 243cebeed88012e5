"""Promote from the main window as a DBA lives it: the plan says exactly which databases change role and
which others read_only freezes; Cancel rolls back (service writable again); a rollback that fails says
loudly the service is STILL READ-ONLY and how to lift it; closing the window with tasks running shows
"Stopping N tasks…" while the event loop keeps running, and cancels a promote.

The outcome cases run the window over a stand-in engine.promote.promote (fast, no servers written); the
cancel, close and plan cases run on the two real servers.
"""

from __future__ import annotations

import threading
import time

import pymysql
import pytest
import shiboken6
from PySide6.QtCore import Qt, QTimer

import engine.promote as promote_mod
from drs_desktop.dialogs import (
    FROZEN_BG,
    PromoteProgressDialog,
    StoppingTasksDialog,
    SwitchoverDialog,
)
from drs_desktop.main_window import MainWindow
from drs_desktop.task_model import Column
from engine.errors import PromoteAlreadyRunning, PromoteRolledBack, PromoteStranded
from engine.spec import parse_spec
from engine.status import Action, Status
from engine.tasks import TaskService
from tests.conftest import make_spec
from tests.gui_helpers import LONG_MS, open_windows, seed


@pytest.fixture
def windows(qtbot, service):
    yield from open_windows(qtbot, service)


def add_task(svc: TaskService, servers, name: str, db: str, status: Status = Status.CONFIGURATION) -> None:
    svc.create(parse_spec(make_spec(servers, name, databases=[db])), status=status)


def status_of(window: MainWindow, name: str) -> str | None:
    row = window.model.row_of(name)
    return None if row is None else window.model.index(row, Column.STATUS).data()


def replicating(window: MainWindow, name: str) -> bool:
    row = window.model.row_of(name)
    return (
        row is not None
        and status_of(window, name) == Status.REPLICATING.label
        and window.model.index(row, Column.DELAY).data().endswith("s")
    )


def trigger(qtbot, window: MainWindow, name: str, action: Action) -> None:
    assert window.select_task(name)
    qtbot.waitUntil(lambda: window.current_record() is not None and window.current_record().name == name)
    qaction = window.task_actions[action]
    assert qaction.isEnabled(), qaction.toolTip()
    qaction.trigger()


def wait_dialog(qtbot, window: MainWindow, cls, timeout: int = LONG_MS):
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(cls)), timeout=timeout)
    return next(d for d in window.findChildren(cls) if d.isVisible())


def read_only(server) -> int:
    return server.sql("SELECT @@GLOBAL.read_only")[0][0]


def table_rows(dialog: SwitchoverDialog) -> list[tuple[str, str, str, str]]:
    model = dialog.changes_model
    return [tuple(model.index(r, c).data() for c in range(4)) for r in range(model.rowCount())]


# ---- outcomes, over a stand-in engine --------------------------------------------------------------
PLAN = promote_mod.PromotePlan(
    task="orders-dr", mode="switchover", service_server="10.0.0.11:3306", dr_server="10.8.0.21:3306",
    task_databases=("shop",), other_databases=("crm",), other_tasks=(), delay_seconds=2.0,
    read_only_estimate_seconds=7.0,
)  # fmt: skip


@pytest.fixture
def stand_in(monkeypatch, service, servers):
    """A Replicating task (no worker) and engine.promote functions that record where they ran."""
    add_task(service, servers, "orders-dr", "shop", Status.CONFIGURATION)
    service.store.set_status("orders-dr", Status.REPLICATING, phase="incremental", delay_seconds=2.0)
    calls: dict[str, object] = {}

    def plan(svc, name):
        calls["plan_thread"] = threading.current_thread()
        return PLAN

    monkeypatch.setattr(promote_mod, "promote_plan", plan)
    return calls


def run_promote_with(qtbot, window: MainWindow, monkeypatch, behaviour) -> PromoteProgressDialog:
    def fake_promote(svc, name, *, force=False, timeout=60.0, cancel=None, on_progress=None):
        on_progress("service database is now read-only")
        return behaviour(name, timeout, cancel)

    monkeypatch.setattr(promote_mod, "promote", fake_promote)
    trigger(qtbot, window, "orders-dr", Action.PROMOTE)
    confirm = wait_dialog(qtbot, window, SwitchoverDialog)
    confirm.deadline_spin.setValue(45)
    confirm.accept()
    progress = wait_dialog(qtbot, window, PromoteProgressDialog)
    qtbot.waitUntil(lambda: not progress.running, timeout=LONG_MS)
    return progress


def test_outcomes_rolled_back_stranded_and_already_promoting_are_said_plainly(
    qtbot, windows, monkeypatch, stand_in
):
    window = windows(autostart=False)
    seen: dict[str, object] = {}

    def rolled_back(name, timeout, cancel):
        seen["timeout"], seen["thread"] = timeout, threading.current_thread()
        raise PromoteRolledBack(name, "the DR database did not catch up within the 45 s deadline")

    progress = run_promote_with(qtbot, window, monkeypatch, rolled_back)
    assert stand_in["plan_thread"] is not threading.main_thread()  # planned off the GUI thread
    assert seen["thread"] is not threading.main_thread() and seen["timeout"] == 45.0
    assert progress.outcome == "rolled_back"
    assert progress.result_label.text() == (
        "Promote rolled back: the DR database did not catch up within the 45 s deadline. "
        "The service database is writable again."
    )
    assert any("read-only" in progress.messages.item(i).text() for i in range(progress.messages.count()))
    assert not progress.cancel_button.isVisible() and progress.close_button.isEnabled()
    assert not window.registry.is_promoting("orders-dr")
    progress.close()

    statements = ["SET GLOBAL super_read_only = OFF;", "SET GLOBAL read_only = OFF;"]

    def stranded(name, timeout, cancel):
        raise PromoteStranded(name, "cancelled", "10.0.0.11:3306", statements, "connection refused")

    progress = run_promote_with(qtbot, window, monkeypatch, stranded)
    assert progress.outcome == "stranded"
    assert progress.stranded_box.isVisible()
    assert "STILL READ-ONLY" in progress.stranded_title.text()
    assert progress.stranded_text.toPlainText() == "\n".join(statements)
    assert progress.stranded_text.isReadOnly()  # selectable and copyable, not editable
    assert "STILL READ-ONLY" in window.last_message
    progress.close()

    def already(name, timeout, cancel):
        raise PromoteAlreadyRunning(name, "process 4242")

    progress = run_promote_with(qtbot, window, monkeypatch, already)
    assert progress.outcome == "failed"
    assert "already promoting" in progress.result_label.text()
    progress.close()


def test_promote_start_recovers_interrupted_promotes_off_the_gui_thread(qtbot, windows, monkeypatch, service):
    ran_on: list[threading.Thread] = []

    def recover(svc):
        ran_on.append(threading.current_thread())
        return [
            "task orders-dr was left promoting by a process that died: rolled back, service writable again"
        ]

    monkeypatch.setattr(promote_mod, "recover_stale_promotes", recover)
    window = windows(autostart=False)
    qtbot.waitUntil(lambda: window.recovery_messages is not None, timeout=LONG_MS)
    assert ran_on and ran_on[0] is not threading.main_thread()
    assert "rolled back" in window.last_message


# ---- on the two servers --------------------------------------------------------------------------
def test_plan_lists_task_databases_and_the_other_databases_read_only_freezes(
    qtbot, qtmodeltester, dbs, service, windows
):
    seed(dbs.source, "shop")
    seed(dbs.source, "payroll")  # not in the task: read_only freezes it too
    add_task(service, dbs, "shop-dr", "shop", status=Status.STARTING)
    window = windows()
    qtbot.waitUntil(lambda: replicating(window, "shop-dr"), timeout=LONG_MS)
    trigger(qtbot, window, "shop-dr", Action.PROMOTE)
    confirm = wait_dialog(qtbot, window, SwitchoverDialog)
    qtmodeltester.check(confirm.changes_model)
    src, tgt = dbs.source.endpoint, dbs.target.endpoint
    rows = table_rows(confirm)
    assert (f"Service {src.host}:{src.port}", "shop", "writable", "read-only") in rows
    assert (f"DR {tgt.host}:{tgt.port}", "shop", "read-only", "writable") in rows
    frozen = [r for r in range(len(rows)) if rows[r][1] == "payroll"]
    assert len(frozen) == 1 and rows[frozen[0]][0].startswith("Service")
    assert confirm.changes_model.index(frozen[0], 1).data(Qt.ItemDataRole.BackgroundRole) == FROZEN_BG
    assert not any(r[1] == "payroll" for r in rows if r[0].startswith("DR"))
    assert confirm.frozen_label.isVisible() and "payroll" in confirm.frozen_label.text()
    assert confirm.delay_label.text() == "unknown" or confirm.delay_label.text().endswith(" s")
    assert confirm.read_only_label.text().startswith("about ")
    assert confirm.deadline_spin.value() == 60
    confirm.reject()  # nothing changes
    assert read_only(dbs.source) == 0
    assert window.registry.is_running("shop-dr")


def poll_server(qtbot, condition, timeout_ms: int = LONG_MS, every_ms: int = 250) -> None:
    """waitUntil for a condition read from a server: a new connection every 10 ms competes with the
    promote's threads for the GIL and slows the catch-up down a lot; a few checks a second do not."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_ms} ms"
        qtbot.wait(every_ms)


def lock_waits(server) -> int:
    return server.sql("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'")[0][
        0
    ]


def start_blocked_promote(
    qtbot, dbs, service, window: MainWindow, name: str, holder
) -> PromoteProgressDialog:
    """A paused task with one change left to apply, whose DR-side row `holder` locks: the promote's
    catch-up waits on that lock with the service database read-only."""
    trigger(qtbot, window, name, Action.PAUSE)
    qtbot.waitUntil(lambda: not window.registry.is_running(name), timeout=LONG_MS)
    qtbot.waitUntil(lambda: status_of(window, name) == "Paused", timeout=LONG_MS)
    dbs.source.sql("UPDATE kv SET v = 'after the pause' WHERE id = 1", database="shop")
    holder.begin()
    with holder.cursor() as cur:
        cur.execute("SELECT * FROM shop.kv WHERE id = 1 FOR UPDATE")
    trigger(qtbot, window, name, Action.PROMOTE)
    confirm = wait_dialog(qtbot, window, SwitchoverDialog)
    confirm.deadline_spin.setValue(600)  # Cancel (or closing), not the deadline, ends it
    confirm.accept()
    progress = wait_dialog(qtbot, window, PromoteProgressDialog)
    poll_server(qtbot, lambda: lock_waits(dbs.target) >= 1)  # the catch-up is stuck on the lock
    assert read_only(dbs.source) == 1
    assert progress.running and window.registry.is_promoting(name)
    return progress


@pytest.fixture
def holder(dbs):
    """A second session on the DR server, to hold a row lock; rolled back and closed at the end."""
    conn = dbs.target.root()
    yield conn
    try:
        conn.rollback()
    except pymysql.err.Error:
        pass
    conn.close()


def test_cancel_while_the_dr_side_is_blocked_rolls_back(qtbot, dbs, service, windows, holder):
    seed(dbs.source, "shop")
    add_task(service, dbs, "blocked-dr", "shop", status=Status.STARTING)
    window = windows()
    qtbot.waitUntil(lambda: replicating(window, "blocked-dr"), timeout=LONG_MS)
    progress = start_blocked_promote(qtbot, dbs, service, window, "blocked-dr", holder)
    assert any("waiting until the DR database" in progress.messages.item(i).text()
               for i in range(progress.messages.count()))  # fmt: skip
    progress.cancel_button.click()
    assert not progress.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not progress.running, timeout=LONG_MS)
    assert progress.outcome == "rolled_back", (
        progress.result_label.text() or progress.stranded_text.toPlainText()
    )
    assert progress.result_label.text() == (
        "Promote rolled back: cancelled. The service database is writable again."
    )
    assert read_only(dbs.source) == 0
    assert service.get("blocked-dr").status is Status.PAUSED
    qtbot.waitUntil(lambda: status_of(window, "blocked-dr") == "Paused", timeout=LONG_MS)
    assert not window.registry.is_promoting("blocked-dr")
    progress.close()


class Ticks:
    """A QTimer on the GUI thread, counting the ticks seen while the stopping dialog shows."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.while_stopping = 0
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        dialog = self.window.stopping_dialog
        if dialog is not None and shiboken6.isValid(dialog) and dialog.isVisible():
            self.while_stopping += 1


def test_closing_with_running_tasks_shows_stopping_dialog_and_keeps_the_event_loop_running(
    qtbot, dbs, service, windows
):
    for db in ("shop_a", "shop_b"):
        seed(dbs.source, db)
        add_task(service, dbs, f"{db}-dr", db, status=Status.STARTING)
    window = windows()
    qtbot.waitUntil(
        lambda: replicating(window, "shop_a-dr") and replicating(window, "shop_b-dr"), timeout=LONG_MS
    )
    workers = [window.registry.worker(n) for n in ("shop_a-dr", "shop_b-dr")]
    ticks = Ticks(window)
    window.close()
    ticks.timer.stop()
    dialog = window.stopping_dialog
    assert isinstance(dialog, StoppingTasksDialog)
    assert dialog.names == ["shop_a-dr", "shop_b-dr"]
    assert ticks.while_stopping > 0  # the event loop ran while the tasks stopped
    assert window.registry.busy() == []
    assert all(not shiboken6.isValid(w) or w.isFinished() for w in workers)
    for name in ("shop_a-dr", "shop_b-dr"):
        record = service.get(name)
        assert record.status is Status.REPLICATING and record.runner_pid is None  # resumes next start


def test_closing_during_a_blocked_promote_cancels_it_and_rolls_back(qtbot, dbs, service, windows, holder):
    seed(dbs.source, "shop")
    add_task(service, dbs, "closing-dr", "shop", status=Status.STARTING)
    window = windows()
    qtbot.waitUntil(lambda: replicating(window, "closing-dr"), timeout=LONG_MS)
    progress = start_blocked_promote(qtbot, dbs, service, window, "closing-dr", holder)
    ticks = Ticks(window)
    window.close()
    ticks.timer.stop()
    assert window.stopping_dialog is not None and window.stopping_dialog.names == ["closing-dr"]
    assert ticks.while_stopping > 0
    assert window.registry.busy() == []
    assert read_only(dbs.source) == 0  # the promote rolled back before the window went
    record = service.get("closing-dr")
    assert record.status is Status.PAUSED
    assert progress.outcome == "rolled_back" or not shiboken6.isValid(progress)
