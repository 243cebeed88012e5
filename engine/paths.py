"""Where a DRS home lives: `--home DIR`, else `DRS_HOME`, else the per-user data directory."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("DRS_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("drs-desktop", "DRS Desktop"))


def drs_argv() -> list[str]:
    """How to start the `drs` CLI as a child process: the `drs` program beside a frozen (PyInstaller) app,
    whose sys.executable is the app itself and runs no `-m`; else this Python with `-m engine.cli`."""
    import sys

    if getattr(sys, "frozen", False):
        exe = "drs.exe" if sys.platform == "win32" else "drs"
        return [os.path.join(os.path.dirname(sys.executable), exe)]
    return [sys.executable, "-m", "engine.cli"]
