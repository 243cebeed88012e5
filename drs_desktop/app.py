"""`drs-desktop`: the QApplication, its style, and the main window over one DRS home.

`python -m drs_desktop [--home DIR]` does the same.
"""

from __future__ import annotations

import argparse
import sys

from PySide6.QtWidgets import QApplication, QMessageBox

from engine.errors import DrsError
from engine.tasks import TaskService

from .task_model import load_icon, resource

APP_NAME = "DRS Desktop"


def apply_style(app: QApplication) -> None:
    """Fusion everywhere (same look on every desktop), plus resources/style.qss when installed."""
    app.setStyle("Fusion")
    qss = resource("style.qss")
    if qss.exists():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("drs-desktop")
    app.setDesktopFileName("drs-desktop")
    apply_style(app)
    app.setWindowIcon(load_icon("app"))
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="drs-desktop", description="Real-time disaster recovery for MySQL-family databases"
    )
    parser.add_argument(
        "--home", help="DRS home directory (default: $DRS_HOME or the per-user data directory)"
    )
    parser.add_argument(
        "--screenshot",
        metavar="PNG",
        help="open the window, save it to PNG once the task table is loaded, and quit (a smoke check)",
    )
    args, qt_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    app = make_app(sys.argv[:1] + qt_args)
    try:
        service = TaskService(args.home)
    except DrsError as exc:
        QMessageBox.critical(None, APP_NAME, f"Cannot open the DRS home:\n{exc}")
        print(f"drs-desktop: {exc}", file=sys.stderr)
        return 1
    from .main_window import MainWindow

    window = MainWindow(service, autostart=not args.screenshot)
    window.show()
    if args.screenshot:

        def shoot() -> None:
            window.grab().save(args.screenshot)
            print(f"drs-desktop: window saved to {args.screenshot}")
            app.quit()

        window.refreshed.connect(shoot)
    code = app.exec()
    window.shutdown()
    service.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
