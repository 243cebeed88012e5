"""What the window remembers between runs (geometry, columns, sort, search, last connection fields).

One INI file per DRS home (`<home>/gui-settings.ini`) rather than Qt's per-user default: a DBA who runs
two homes (production and lab) gets two layouts, and tests with a temporary home never touch the user's
own settings. Passwords are never written here (the keyring holds them).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

SETTINGS_FILE = "gui-settings.ini"
# Keys that would hold a secret: refused by remember() whatever the caller passes.
_SECRET_WORDS = ("password", "passwd", "secret", "token")


def gui_settings(home: str | os.PathLike[str]) -> QSettings:
    """The QSettings of one DRS home (INI format, written on sync() and when the object goes away)."""
    return QSettings(str(Path(home) / SETTINGS_FILE), QSettings.Format.IniFormat)


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def remember(settings: QSettings, key: str, value: object) -> None:
    """settings.setValue, refusing any key that names a password (a bug, not a user error)."""
    if is_secret_key(key):
        raise ValueError(f"refusing to store {key!r} in the GUI settings: secrets go to the keyring")
    settings.setValue(key, value)
