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
