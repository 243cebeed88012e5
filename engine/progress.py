"""Plain dataclasses the engine reports through callbacks (the GUI wraps them in Qt signals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TableProgress:
    database: str
    table: str
    rows_done: int
    rows_estimated: int
    bytes_done: int
    done: bool = False


@dataclass(frozen=True)
class CopyProgress:
    """Initial phase: overall and per-table progress."""

    rows_done: int
    rows_estimated: int
    bytes_done: int
    bytes_estimated: int
    rows_per_second: float
    bytes_per_second: float
    eta_seconds: float | None
    tables: tuple[TableProgress, ...] = ()

    @property
    def percent(self) -> float:
        if self.bytes_estimated > 0:
            return min(99.9, 100.0 * self.bytes_done / self.bytes_estimated)
        if self.rows_estimated > 0:
            return min(99.9, 100.0 * self.rows_done / self.rows_estimated)
        return 0.0


@dataclass(frozen=True)
class StreamProgress:
    """Incremental phase: how far behind the DR side is, and how fast it applies."""

    delay_seconds: float
    events_per_second: float
    rows_per_second: float
    transactions_applied: int
    binlog_file: str
    binlog_pos: int
    gtid: str | None = None


# level is one of info, warning, alarm, error; component names the module ("snapshot", "apply", ...)
LogFn = Callable[[str, str, str], None]
