"""A newcomer with no server of their own: the empty window's "Try with a Sandbox" starts two private
MariaDB servers, the wizard opens filled in for them, and the task they create replicates.

The sandbox's servers are started by engine.sandbox (not the suite's fixtures); whatever happens, the
finalizer stops the window's workers first, then `engine.sandbox.stop(home, wipe=True)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox, QWizard

from drs_desktop.main_window import MainWindow
from drs_desktop.task_model import Column
from engine import sandbox
from engine.status import Status
from engine.tasks import TaskService

START_MS = 180_000  # two servers initialized from scratch and the sample data loaded, on a shared machine
PAGE_MS = 60_000


@pytest.fixture
def sandbox_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")  # the sandbox and the window share one secret store
    yield home
    sandbox.stop(home, wipe=True)  # after the window's teardown (fixtures end in reverse): no server left


@pytest.fixture
def window(qtbot, sandbox_home: Path) -> Iterator[MainWindow]:
    service = TaskService(sandbox_home)
    main = MainWindow(service)  # autostart: the created task replicates in this window's workers
    qtbot.addWidget(main)
    main.show()
    qtbot.waitUntil(lambda: main.refresh_count >= 1, timeout=PAGE_MS)
    yield main
    main.close()  # stops the workers at a checkpoint before the sandbox's servers go
    main.taskman.wait_idle()
    service.close()


def click_next(qtbot, wizard: QWizard) -> None:
    before = wizard.currentId()
    button = wizard.button(QWizard.WizardButton.NextButton)
    qtbot.waitUntil(button.isEnabled, timeout=PAGE_MS)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert wizard.currentId() == before + 1


def test_connection(qtbot, box) -> str:
    qtbot.mouseClick(box.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: box.running_key is None and box.result_label.text() != "Connecting…", timeout=PAGE_MS
    )
    return box.result_label.text()


test_connection.__test__ = False  # a helper, not a test


def test_a_newcomer_tries_the_sandbox_from_the_empty_window_and_gets_a_replicating_task(
    qtbot, window: MainWindow, sandbox_home: Path
):
    overlay = window.empty_state
    assert overlay.isVisible() and overlay.sandbox_button.isVisible()
    qtbot.mouseClick(overlay.sandbox_button, Qt.MouseButton.LeftButton)
    progress = window.sandbox.progress_dialog
    assert progress is not None and progress.isVisible()
    assert progress.labelText().startswith("Starting two private MariaDB servers…")
    assert progress.isModal() or progress.windowModality() != Qt.WindowModality.NonModal

    def wizard_open() -> bool:
        wizard = getattr(window, "wizard", None)
        return bool(window.sandbox.last_error) or (wizard is not None and wizard.isVisible())

    qtbot.waitUntil(wizard_open, timeout=START_MS)
    assert not window.sandbox.last_error
    assert window.sandbox.progress_dialog is None  # closed once the servers were up
    assert window.sandbox.messages, "the engine's progress messages were shown"
    wizard = window.wizard
    assert sandbox.status(sandbox_home).running

    # Page 1: the task, filled in
    assert wizard.task_page.name_edit.text() == sandbox.SANDBOX_TASK
    click_next(qtbot, wizard)
    # Page 2: both sandbox servers answer with the passwords the sandbox generated
    page = wizard.connections_page
    for box in (page.source_box, page.target_box):
        assert box.host_edit.text() == "127.0.0.1"
        assert "Connection successful: MariaDB" in test_connection(qtbot, box)
    qtbot.mouseClick(page.agreement, Qt.MouseButton.LeftButton, pos=QPoint(8, page.agreement.height() // 2))
    click_next(qtbot, wizard)
    # Page 3: the sample database is the one chosen
    configure = wizard.configure_page
    qtbot.waitUntil(lambda: not configure.loading, timeout=PAGE_MS)
    assert configure.checked_databases() == [sandbox.status(sandbox_home).database]
    click_next(qtbot, wizard)
    # Page 4: the pre-checks pass on the sandbox (items that ask for confirmation are confirmed)
    checks = wizard.check_page
    qtbot.waitUntil(lambda: not checks.running, timeout=PAGE_MS)
    assert not [r.item for r in checks.model.results if r.result == "failed"]
    for row, result in enumerate(checks.model.results):
        if result.result == "confirm":
            checks.view.setCurrentIndex(checks.model.index(row, 0))
            qtbot.keyClick(checks.view, Qt.Key.Key_Space)
    click_next(qtbot, wizard)
    # Page 5: parameters compared; Page 6: start now, Submit
    click_next(qtbot, wizard)
    assert wizard.start_page.now_radio.isChecked()
    with qtbot.waitSignal(wizard.taskCreated, timeout=PAGE_MS) as created:
        qtbot.mouseClick(wizard.button(QWizard.WizardButton.FinishButton), Qt.MouseButton.LeftButton)
    assert created.args == [sandbox.SANDBOX_TASK]

    # The row appears and reaches "Disaster recovery in progress", replicated by this window's worker.
    def status_shown() -> str | None:
        row = window.model.row_of(sandbox.SANDBOX_TASK)
        return None if row is None else window.model.index(row, Column.STATUS).data()

    qtbot.waitUntil(lambda: status_shown() == Status.REPLICATING.label, timeout=START_MS)
    assert window.registry.is_running(sandbox.SANDBOX_TASK)
    assert not overlay.isVisible()
    record = window.service.store.get_task(sandbox.SANDBOX_TASK)
    servers = sandbox.status(sandbox_home).servers
    assert (record.spec.source.host, record.spec.source.port) == ("127.0.0.1", servers["service"].port)
    assert (record.spec.target.host, record.spec.target.port) == ("127.0.0.1", servers["dr"].port)

    # Help > Stop Sandbox: this window's worker stops at a checkpoint first, then the servers go.
    window.menus.stop_sandbox_action.trigger()
    qtbot.waitUntil(lambda: window.last_message.startswith("Sandbox stopped"), timeout=START_MS)
    assert not window.registry.is_running(sandbox.SANDBOX_TASK)
    stopped = sandbox.status(sandbox_home)
    assert not stopped.running and not any(server.running for server in stopped.servers.values())
    assert window.isVisible()  # the desktop app was not taken for the task's runner process


def test_without_mariadb_the_sandbox_says_what_to_install(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("DRS_MARIADBD", str(tmp_path / "no-such-mariadbd"))
    window.menus.sandbox_action.trigger()
    qtbot.waitUntil(lambda: bool(window.sandbox.last_error), timeout=PAGE_MS)
    box = window.sandbox.error_box
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert box.windowTitle() == "MariaDB server not installed"
    assert "apt-get install mariadb-server" in box.text() and "Traceback" not in box.text()
    assert window.sandbox.progress_dialog is None
    assert not sandbox.status(window.service.home).running
    box.close()
