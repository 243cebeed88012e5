"""Small widgets and helpers the wizard pages share: the inline error label, check-state reading.

No rules here: messages come from engine.spec validators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLayout, QVBoxLayout, QWidget

from drs_desktop.colours import semantic_colour

# semantic colour roles (drs_desktop.colours): the shade is picked for the palette when the text is shown
ERROR_COLOUR = "error"
OK_COLOUR = "ok"
WARN_COLOUR = "warning"
MASK = "********"


def colour_rule(role: str) -> str:
    """A `color:` style rule for a semantic role, in the shade that reads on the current palette."""
    return f"color: {semantic_colour(role).name()};"


class ErrorLabel(QLabel):
    """The red line under a field; empty (and taking no room) when the field is fine."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet(colour_rule(ERROR_COLOUR))
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setVisible(False)

    def show_error(self, message: str | None) -> None:
        self.setStyleSheet(colour_rule(ERROR_COLOUR))  # the palette may have changed since
        self.setText(message or "")
        self.setVisible(bool(message))


class StatusLabel(QLabel):
    """A result line: green for success, red for failure, plain while working."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def show_ok(self, text: str) -> None:
        self.setStyleSheet(colour_rule(OK_COLOUR))
        self.setText(text)

    def show_failure(self, text: str) -> None:
        self.setStyleSheet(colour_rule(ERROR_COLOUR))
        self.setText(text)

    def show_plain(self, text: str) -> None:
        self.setStyleSheet("")
        self.setText(text)


def is_checked(value: Any) -> bool:
    """A CheckStateRole value as PySide6 hands it over (enum or int) is Checked."""
    if isinstance(value, Qt.CheckState):
        return value == Qt.CheckState.Checked
    try:
        return int(value) == Qt.CheckState.Checked.value
    except (TypeError, ValueError):
        return False


def check_state(on: bool) -> Qt.CheckState:
    return Qt.CheckState.Checked if on else Qt.CheckState.Unchecked


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def error_text(exc: BaseException) -> str:
    """What the user sees for a failed background job: the engine's own message, no traceback."""
    from engine.errors import DrsError

    if isinstance(exc, DrsError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def with_error(field: QWidget | QLayout, error: ErrorLabel) -> QVBoxLayout:
    """A field with its error line right under it (a form row of its own would leave a gap)."""
    box = QVBoxLayout()
    box.setSpacing(2)
    box.setContentsMargins(0, 0, 0, 0)
    if isinstance(field, QLayout):
        box.addLayout(field)
    else:
        box.addWidget(field)
    box.addWidget(error)
    return box


def guarded(owner: Any, callback: Callable[..., None]) -> Callable[..., None]:
    """A job's callback that does nothing once its page is gone (the wizard deletes itself on close)."""

    def call(*args: Any) -> None:
        if shiboken6.isValid(owner):
            callback(*args)

    return call
