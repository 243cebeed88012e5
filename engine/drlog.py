"""DR log helpers shared by `drs task logs` and the desktop's DR log tab: CSV export and time parsing.

The log itself lives in the task store (engine.store: add_log, logs, retention).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from engine.store import DrLogEntry

CSV_HEADER = ("time", "level", "component", "message")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def export_logs_csv(entries: Iterable[DrLogEntry], path: str | os.PathLike[str]) -> int:
    """Write entries as CSV (header time,level,component,message; ISO times); returns the row count.

    UTF-8 with a BOM so that spreadsheet programs open non-ASCII messages correctly.
    """
    count = 0
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        for e in entries:
            writer.writerow((e.time.isoformat(sep=" ", timespec="seconds"), e.level, e.component, e.message))
            count += 1
    return count


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """'15m', '1h', '7d', '2w', '30s' mean that long ago; else an ISO date or date-time (local time).

    Raises ValueError with a message fit for the user.
    """
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        return (now or datetime.now()) - timedelta(seconds=amount * _UNIT_SECONDS[unit])
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (e.g. 15m, 1h, 7d) nor a date-time (e.g. 2025-03-01 14:00)"
        ) from None
    if value.tzinfo is not None:  # the store keeps local naive times
        value = value.astimezone().replace(tzinfo=None)
    return value
