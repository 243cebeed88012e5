"""Semantic colours (errors, alarms, warnings, success) that read on the current palette, light or dark.

One hue per meaning, two shades, each with a contrast of at least 4.5 against the window colour it is drawn
on; every widget that colours text by meaning asks here instead of hard-coding a shade that one palette
makes unreadable.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QGuiApplication, QPalette

SEMANTIC_COLOURS: dict[str, tuple[str, str]] = {  # role: (on a light palette, on a dark palette)
    "error": ("#b42318", "#ff8a80"),
    "alarm": ("#c81e1e", "#ff8a80"),
    "warning": ("#9a3412", "#fdba74"),
    "ok": ("#15692f", "#7ee2a0"),
    "danger-button": ("#c62828", "#c62828"),  # white text on it in both schemes
    "danger-button-hover": ("#a61f1f", "#a61f1f"),
}


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5


def semantic_colour(role: str, palette: QPalette | None = None) -> QColor:
    """The error/alarm/warning/ok colour that reads on `palette` (default: the application's)."""
    palette = palette or QGuiApplication.palette()
    light, dark = SEMANTIC_COLOURS[role]
    return QColor(dark if is_dark(palette) else light)
