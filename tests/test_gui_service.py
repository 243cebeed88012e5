"""The window with a task run by a background service's process: shown and controlled like its own
(Pause and Resume reach that process through the store), and Stop Background Service hands the task
back to the window's own worker. As in test_user_service, the unit's ExecStart is started by the test
(no systemd user manager runs here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gui_helpers import LONG_MS, open_windows, seed
from test_runner_e2e import ENV, create_task
from test_user_service import _run_unit

from drs_desktop.main_window import MainWindow
from engine import user_service
from engine.status import Action, Status
from engine.tasks import TaskService


@pytest.fixture
def file_service(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TaskService]:
    """A TaskService whose passwords are in the home's encrypted file, where the service process finds them."""
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setitem(ENV, "XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    svc = TaskService(home)
    yield svc
    svc.close()


@pytest.fixture
def window(qtbot, file_service: TaskService) -> Iterator[Callable[..., MainWindow]]:
    yield from open_windows(qtbot, file_service)


def _status(svc: TaskService, name: str) -> Status:
    return svc.store.get_task(name).status


def test_window_controls_a_task_run_by_its_background_service(qtbot, dbs, home, tmp_path, file_service, window):
    seed(dbs.source, "shop")
    create_task(home, dbs, "bg-dr", tmp_path, databases=["shop"])
    user_service.install(home, "bg-dr", start=False)
    proc = _run_unit(home, "bg-dr")
    try:
        qtbot.waitUntil(lambda: _status(file_service, "bg-dr") is Status.REPLICATING, timeout=LONG_MS)
        win = window(autostart=True)
        assert win.select_task("bg-dr")
        win.update_actions()
        assert not win.registry.is_running("bg-dr")  # the service's process runs it, not this window
        assert win.service_actions.remove_action.isEnabled()
        assert not win.service_actions.install_action.isEnabled()

        win.task_actions[Action.PAUSE].trigger()
        qtbot.waitUntil(lambda: _status(file_service, "bg-dr") is Status.PAUSED, timeout=LONG_MS)
        assert proc.poll() is None and not win.registry.is_running("bg-dr")
        dbs.source.sql("INSERT INTO shop.kv VALUES (10, 'while paused')")
        qtbot.waitUntil(lambda: win.model.record("bg-dr").status is Status.PAUSED, timeout=LONG_MS)

        win.task_actions[Action.RESUME].trigger()
        qtbot.waitUntil(
            lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.kv WHERE id = 10")[0][0] == 1, timeout=LONG_MS
        )
        assert proc.poll() is None and not win.registry.is_running("bg-dr")

        # Stop Background Service: the process ends, the unit is gone, this window runs the task now
        win.service_actions.remove_action.trigger()
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=LONG_MS)
        assert proc.returncode == 0
        assert not user_service.unit_path("bg-dr").exists()
        qtbot.waitUntil(lambda: win.registry.is_running("bg-dr"), timeout=LONG_MS)
        dbs.source.sql("INSERT INTO shop.kv VALUES (11, 'after the hand-back')")
        qtbot.waitUntil(
            lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.kv WHERE id = 11")[0][0] == 1, timeout=LONG_MS
        )
        assert "no longer runs in the background" in win.service_actions.last_message
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_in_background_without_a_systemd_manager_says_why_and_keeps_replicating(
    qtbot, dbs, home, tmp_path, file_service, window
):
    seed(dbs.source, "shop")
    create_task(home, dbs, "bg2-dr", tmp_path, databases=["shop"])
    win = window(autostart=True)
    qtbot.waitUntil(lambda: _status(file_service, "bg2-dr") is Status.REPLICATING, timeout=LONG_MS)
    assert win.select_task("bg2-dr")
    win.update_actions()
    assert win.service_actions.install_action.isEnabled()
    win.service_actions.install_action.trigger()
    qtbot.waitUntil(lambda: bool(win.service_actions.last_message), timeout=LONG_MS)
    unit = user_service.unit_path("bg2-dr")
    assert unit.exists()
    if "now runs in the background" not in win.service_actions.last_message:
        # no user manager (containers, CI): the message says how to start it, and the window runs the task again
        assert "systemctl --user" in win.service_actions.last_message
        qtbot.waitUntil(lambda: win.registry.is_running("bg2-dr"), timeout=LONG_MS)
        dbs.source.sql("INSERT INTO shop.kv VALUES (20, 'still replicating')")
        qtbot.waitUntil(
            lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.kv WHERE id = 20")[0][0] == 1, timeout=LONG_MS
        )
