"""Skip Failed Event from the task window: the DBA sees the transaction the task stopped before and
must say yes (Cancel is the default) before the checkpoint moves past it."""

from __future__ import annotations

from conftest import make_spec
from dr_helpers import wait_for
from PySide6.QtWidgets import QMessageBox
from test_gui_main_window import WAIT_MS, open_window, select  # noqa: F401 - fixture
from test_incremental import RunnerThread

from engine.spec import parse_spec
from engine.status import Action, Status


def test_skip_failed_event_shows_the_transaction_and_asks_first(qtbot, dbs, service, open_window, monkeypatch):  # noqa: F811
    dbs.source.sql("CREATE DATABASE shop", "CREATE TABLE shop.a (id INT PRIMARY KEY, v INT)", "INSERT INTO shop.a VALUES (1, 1)")
    service.create(parse_spec(make_spec(dbs, "skip-gui", databases=["shop"])))
    with RunnerThread(service, "skip-gui") as run:
        wait_for(lambda: service.store.get_task("skip-gui").status is Status.REPLICATING, 120, 0.2, "replicating")
        dbs.target.sql("INSERT INTO shop.a VALUES (99, 1)")  # a rogue row on the DR side breaks the next DDL
        dbs.source.sql("ALTER TABLE shop.a ADD UNIQUE KEY uv (v)")
        run.thread.join(120)
    record = service.store.get_task("skip-gui")
    assert record.status is Status.FAILED and "1062" in (record.last_error or "")
    before = record.checkpoint.binlog_pos

    window = open_window()
    select(qtbot, window, "skip-gui")
    action = window.task_actions[Action.SKIP_EVENT]
    assert action.isEnabled()
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes]
    defaults: list[QMessageBox.StandardButton] = []

    def answer(box: QMessageBox) -> QMessageBox.StandardButton:
        defaults.append(box.standardButton(box.defaultButton()))
        return answers.pop(0)

    monkeypatch.setattr(window, "confirm_skip", answer)
    action.trigger()
    qtbot.waitUntil(lambda: "nothing skipped" in window.last_message, timeout=WAIT_MS)
    assert "ALTER TABLE shop.a ADD UNIQUE KEY uv (v)" in window.last_skip_question
    assert defaults == [QMessageBox.StandardButton.Cancel]
    assert service.store.get_task("skip-gui").checkpoint.binlog_pos == before

    dbs.target.sql("DELETE FROM shop.a WHERE id = 99", "ALTER TABLE shop.a ADD UNIQUE KEY uv (v)")  # handled by hand
    action.trigger()
    qtbot.waitUntil(lambda: "Retry to continue" in window.last_message, timeout=WAIT_MS)
    after = service.store.get_task("skip-gui")
    assert after.status is Status.FAILED and after.checkpoint.binlog_pos > before
    assert any(e.message.startswith("DBA skipped event") for e in service.store.logs("skip-gui"))
    # not allowed outside a failure: the action says why
    service.store.set_status("skip-gui", Status.PAUSED)
    window.refresh()
    qtbot.waitUntil(lambda: not action.isEnabled(), timeout=WAIT_MS)
