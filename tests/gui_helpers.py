"""Helpers shared by the GUI tests that run real replication: main windows that close after the test,
and a small database to replicate."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from drs_desktop.main_window import MainWindow
from engine.tasks import TaskService

LONG_MS = 120_000
REFRESH_MS = 20_000


def refreshed(qtbot, window: MainWindow) -> None:
    """Wait for a refresh that read the store after the caller changed it. A refresh already in flight
    (started by the window's timer or the start-up recovery) may carry what the store held before, so
    it is let finish first; no event is processed between that wait and the new refresh."""
    qtbot.waitUntil(lambda: not window._refreshing, timeout=REFRESH_MS)
    before = window.refresh_count
    window.refresh()
    qtbot.waitUntil(lambda: window.refresh_count > before and not window._refreshing, timeout=REFRESH_MS)


def open_windows(qtbot, service: TaskService, **defaults) -> Iterator[Callable[..., MainWindow]]:
    """For a fixture: opens main windows over `service` (shown once first refreshed); closes them after.
    `defaults` are MainWindow arguments each window gets unless the call says otherwise (autostart=False:
    no replication workers)."""
    opened: list[MainWindow] = []

    def _open(**kwargs) -> MainWindow:
        window = MainWindow(service, **{**defaults, **kwargs})
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.refresh_count >= 1, timeout=LONG_MS)
        opened.append(window)
        return window

    yield _open
    for window in opened:
        window.close()


def seed(server, db: str, rows: int = 3) -> None:
    server.sql(f"CREATE DATABASE `{db}`")
    server.sql("CREATE TABLE kv (id INT PRIMARY KEY, v VARCHAR(64))", database=db)
    if rows:
        values = ",".join(f"({i}, 'row {i}')" for i in range(1, rows + 1))
        server.sql(f"INSERT INTO kv VALUES {values}", database=db)


def open_wizards(qtbot, home) -> Iterator[Callable[..., object]]:
    """For a fixture: opens Create Task wizards on one DRS home (prefill=None: as the toolbar opens one;
    backend: a stand-in for the servers' side); afterwards cancels their pre-checks and connection tests,
    closes them and waits for their jobs."""
    from drs_desktop.taskman import TaskManager
    from drs_desktop.wizard import CreateTaskWizard

    opened: list[tuple[CreateTaskWizard, TaskManager, TaskService]] = []

    def _open(prefill: dict | None = None, backend: object | None = None) -> CreateTaskWizard:
        service, taskman = TaskService(home), TaskManager()
        kwargs = {"backend": backend} if backend is not None else {}
        wiz = CreateTaskWizard(service, taskman, prefill=prefill, **kwargs)
        qtbot.addWidget(wiz)
        wiz.show()
        qtbot.waitExposed(wiz)
        opened.append((wiz, taskman, service))
        return wiz

    yield _open
    for wiz, taskman, service in opened:
        wiz.check_page.cancel()
        for box in (wiz.connections_page.source_box, wiz.connections_page.target_box):
            box.cancel_test()
        wiz.close()
        taskman.wait_idle()
        service.close()
