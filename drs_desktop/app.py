"""`drs-desktop`: the QApplication, its style and colour scheme, the crash hook, and the main window.

`python -m drs_desktop [--home DIR] [--color-scheme light|dark|system]` does the same.
"""

from __future__ import annotations

import argparse
import sys
from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.errors import DrsError
from engine.tasks import TaskService

from .colours import SEMANTIC_COLOURS, is_dark, semantic_colour  # noqa: F401 - re-exported
from .settings import gui_settings, remember
from .task_model import load_icon, resource

APP_NAME = "DRS Desktop"
ColorScheme = Literal["light", "dark", "system"]
COLOR_SCHEMES: tuple[ColorScheme, ...] = ("system", "light", "dark")
COLOR_SCHEME_KEY = "view/colorScheme"
_SCHEME_PROPERTY = "drsColorScheme"

def dark_palette() -> QPalette:
    """A dark QPalette for Fusion, every role set (so no light default leaks into a dark window)."""
    window, base, text = QColor("#2b2c30"), QColor("#1f2024"), QColor("#e8e8ea")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor("#27282c"),
        QPalette.ColorRole.ToolTipBase: QColor("#3a3b40"),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor("#a0a2a8"),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor("#35363b"),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor("#ff8a80"),
        QPalette.ColorRole.Light: QColor("#4a4b51"),
        QPalette.ColorRole.Midlight: QColor("#404146"),
        QPalette.ColorRole.Mid: QColor("#5c5e66"),
        QPalette.ColorRole.Dark: QColor("#18191c"),
        QPalette.ColorRole.Shadow: QColor("#000000"),
        QPalette.ColorRole.Highlight: QColor("#3d6fb0"),
        QPalette.ColorRole.HighlightedText: QColor("#ffffff"),
        QPalette.ColorRole.Link: QColor("#7cb8ff"),
        QPalette.ColorRole.LinkVisited: QColor("#c0a0ff"),
    }
    for role, colour in roles.items():
        palette.setColor(role, colour)
    if hasattr(QPalette.ColorRole, "Accent"):  # Qt 6.6+
        palette.setColor(QPalette.ColorRole.Accent, QColor("#3d6fb0"))
    disabled = QColor("#7d7f86")
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor("#45464c"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Base, window)
    return palette


def semantic_rules(palette: QPalette) -> str:
    """Style rules whose colours depend on the scheme; style.qss itself holds layout and palette() only."""

    def c(role: str) -> str:
        return semantic_colour(role, palette).name()

    return f"""
QLabel#errorText {{ color: {c("error")}; }}
QLabel#alarmCount {{ color: {c("alarm")}; font-weight: 600; }}
QPushButton#dangerButton {{ background: {c("danger-button")}; color: white;
    border: 1px solid {c("danger-button-hover")}; border-radius: 4px; padding: 4px 14px; }}
QPushButton#dangerButton:hover {{ background: {c("danger-button-hover")}; }}
"""


def apply_style(app: QApplication) -> None:
    """Fusion everywhere (same look on every desktop), resources/style.qss (layout, palette() colours
    only) and the semantic colours for the current palette."""
    app.setStyle("Fusion")
    qss = resource("style.qss")
    sheet = qss.read_text(encoding="utf-8") if qss.exists() else ""
    # Setting the sheet again also re-polishes every widget, so palette(...) references follow a new scheme.
    app.setStyleSheet(sheet + semantic_rules(app.palette()))


def _set_style_hint(scheme: ColorScheme) -> None:
    """Tell Qt (6.8+) which scheme we show, so native dialogs and the title bar follow where supported."""
    hints = QGuiApplication.styleHints()
    if scheme == "system":
        if hasattr(hints, "unsetColorScheme"):
            hints.unsetColorScheme()
    elif hasattr(hints, "setColorScheme"):
        hints.setColorScheme(Qt.ColorScheme.Dark if scheme == "dark" else Qt.ColorScheme.Light)


def apply_color_scheme(app: QApplication, scheme: ColorScheme) -> None:
    """light: Fusion's light palette; dark: Fusion with dark_palette(); system: whatever the desktop says."""
    if scheme not in COLOR_SCHEMES:
        raise ValueError(f"colour scheme must be one of {', '.join(COLOR_SCHEMES)}, not {scheme!r}")
    _set_style_hint(scheme)
    if scheme == "dark":
        app.setPalette(dark_palette())
    else:
        app.setPalette(QPalette())  # back to the platform's palette (the system one)
        if scheme == "light" and is_dark(app.palette()):
            # The desktop is dark but light was asked for: Fusion's own palette is the light one.
            app.setPalette(app.style().standardPalette())
    app.setProperty(_SCHEME_PROPERTY, scheme)
    apply_style(app)


def current_color_scheme(app: QApplication | None = None) -> ColorScheme:
    app = app or QApplication.instance()  # type: ignore[assignment]
    value = app.property(_SCHEME_PROPERTY) if app is not None else None
    return value if value in COLOR_SCHEMES else "system"


def remembered_color_scheme(home: object) -> ColorScheme:
    value = gui_settings(home).value(COLOR_SCHEME_KEY, "system")  # type: ignore[arg-type]
    return value if value in COLOR_SCHEMES else "system"


def remember_color_scheme(home: object, scheme: ColorScheme) -> None:
    settings = gui_settings(home)  # type: ignore[arg-type]
    remember(settings, COLOR_SCHEME_KEY, scheme)
    settings.sync()


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
        "--color-scheme",
        choices=COLOR_SCHEMES,
        help="light, dark, or the desktop's (system); default: the one chosen last in View > Colour Scheme, "
        "else system",
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
    apply_color_scheme(app, args.color_scheme or remembered_color_scheme(service.home))
    from .crash import install_crash_handler
    from .main_window import MainWindow

    window = MainWindow(service, autostart=not args.screenshot)
    uninstall = install_crash_handler(service, window)
    window.show()
    if args.screenshot:

        def shoot() -> None:
            window.grab().save(args.screenshot)
            print(f"drs-desktop: window saved to {args.screenshot}")
            app.quit()

        window.refreshed.connect(shoot)
    code = app.exec()
    window.save_layout()  # also when the app ends without a close event (a signal, the session ending)
    window.shutdown()
    uninstall()
    service.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
