"""Screenshots of the README's five-minute walkthrough, made by walking it: the empty window's Try with a
Sandbox, the wizard filled in for the sandbox's servers, the pre-checks, and the task replicating.

    .venv/bin/python scripts/sandbox_screenshots.py [--out docs/screenshots]

Starts the sandbox's two private MariaDB servers in a temporary DRS home and wipes them afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DRS_SECRET_BACKEND", "file")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QElapsedTimer, QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget, QWizard  # noqa: E402

from drs_desktop.app import apply_color_scheme, make_app  # noqa: E402
from drs_desktop.main_window import MainWindow  # noqa: E402
from drs_desktop.task_model import Column  # noqa: E402
from engine import sandbox  # noqa: E402
from engine.status import Status  # noqa: E402
from engine.tasks import TaskService  # noqa: E402

WAIT_MS = 180_000


def wait_until(app: QApplication, condition: Callable[[], object], ms: int = WAIT_MS, what: str = "") -> None:
    timer = QElapsedTimer()
    timer.start()
    while not condition():
        if timer.elapsed() > ms:
            raise SystemExit(f"timed out waiting for {what or 'the window'}")
        app.processEvents()
        QTest.qWait(20)


def save(widget: QWidget, path: Path) -> None:
    widget.grab().save(str(path))
    print(f"wrote {path}")


def click_next(app: QApplication, wizard: QWizard) -> None:
    button = wizard.button(QWizard.WizardButton.NextButton)
    wait_until(app, button.isEnabled, what="Next")
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def walk(app: QApplication, home: Path, out: Path) -> None:
    service = TaskService(home)
    window = MainWindow(service)
    window.resize(1280, 520)
    window.show()
    wait_until(app, lambda: window.refresh_count >= 1, what="the first refresh")
    QTest.mouseClick(window.empty_state.sandbox_button, Qt.MouseButton.LeftButton)
    wait_until(app, lambda: window.sandbox.progress_dialog is not None, what="the progress dialog")
    wait_until(
        app,
        lambda: window.sandbox.last_error or (getattr(window, "wizard", None) and window.wizard.isVisible()),
        what="the wizard",
    )
    if window.sandbox.last_error:
        raise SystemExit(f"the sandbox did not start: {window.sandbox.last_error}")
    wizard = window.wizard
    click_next(app, wizard)
    page = wizard.connections_page
    for box in (page.source_box, page.target_box):
        QTest.mouseClick(box.test_button, Qt.MouseButton.LeftButton)
        wait_until(app, lambda b=box: b.running_key is None and b.result_label.text() != "Connecting…", what="a test")
    QTest.mouseClick(page.agreement, Qt.MouseButton.LeftButton, pos=QPoint(8, page.agreement.height() // 2))
    app.processEvents()
    save(wizard, out / "sandbox-wizard-connections.png")
    click_next(app, wizard)
    wait_until(app, lambda: not wizard.configure_page.loading, what="the database list")
    click_next(app, wizard)
    checks = wizard.check_page
    wait_until(app, lambda: not checks.running, what="the pre-checks")
    for row, result in enumerate(checks.model.results):
        if result.result == "confirm":
            checks.view.setCurrentIndex(checks.model.index(row, 0))
            QTest.keyClick(checks.view, Qt.Key.Key_Space)
    app.processEvents()
    save(wizard, out / "sandbox-wizard-prechecks.png")
    click_next(app, wizard)
    click_next(app, wizard)
    QTest.mouseClick(wizard.button(QWizard.WizardButton.FinishButton), Qt.MouseButton.LeftButton)

    def status_shown() -> str | None:
        row = window.model.row_of(sandbox.SANDBOX_TASK)
        return None if row is None else window.model.index(row, Column.STATUS).data()

    wait_until(app, lambda: status_shown() == Status.REPLICATING.label, what="replicating")
    def delay_shown() -> str:
        row = window.model.row_of(sandbox.SANDBOX_TASK)
        return "" if row is None else str(window.model.index(row, Column.DELAY).data() or "")

    wait_until(app, delay_shown, what="the delay")  # the first monitor sample of the streaming task
    window.select_task(sandbox.SANDBOX_TASK)
    app.processEvents()
    save(window, out / "sandbox-replicating.png")
    window.close()
    window.taskman.wait_idle()
    service.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "screenshots"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = make_app()
    apply_color_scheme(app, "light")
    with tempfile.TemporaryDirectory(prefix="drs-sandbox-screens-") as tmp:
        home = Path(tmp) / "home"
        try:
            walk(app, home, out)
        finally:
            sandbox.stop(home, wipe=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
