"""Helpers shared by the GUI tests that run real replication: main windows that close after the test,
and a small database to replicate."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from drs_desktop.main_window import MainWindow
from engine.tasks import TaskService

LONG_MS = 120_000


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
