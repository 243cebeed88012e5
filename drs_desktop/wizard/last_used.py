"""The connection fields a new wizard starts with: the last ones that passed Test Connection, per side.

Kept in the DRS home's GUI settings (drs_desktop.settings), never the password: remember() refuses a
key that names one, and only host, port, user, TLS mode and CA file are written.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings

from drs_desktop.settings import remember

GROUP = "wizard/last_connection"
FIELDS = ("host", "port", "user", "tls", "ca_file")
TLS_MODES = ("off", "required", "verify_ca")


def remember_connection(settings: QSettings, side: str, fields: dict[str, Any]) -> None:
    """Stores one side's fields (extra keys such as a password are ignored, never written)."""
    for name in FIELDS:
        value = fields.get(name)
        remember(settings, f"{GROUP}/{side}/{name}", "" if value is None else str(value))
    settings.sync()


def recall_connection(settings: QSettings, side: str) -> dict[str, Any]:
    """One side's remembered fields as a spec part ({} when nothing was remembered); values that do
    not fit (a port that is not a number, an unknown TLS mode) are left out rather than guessed."""
    stored = {name: settings.value(f"{GROUP}/{side}/{name}") for name in FIELDS}
    if not stored["host"]:
        return {}
    part: dict[str, Any] = {"host": str(stored["host"]), "user": str(stored["user"] or "")}
    try:
        part["port"] = int(str(stored["port"]))
    except ValueError:
        pass
    if stored["tls"] in TLS_MODES:
        part["tls"] = str(stored["tls"])
        part["ca_file"] = str(stored["ca_file"]) if stored["ca_file"] else None
    return part
