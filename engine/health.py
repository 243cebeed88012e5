"""Health of a DR task (ok / warning / alarm, with reasons a DBA can act on) from the facts in the store.

The runner records the facts (heartbeat, delay, servers unreachable since, binlog retention); evaluating
them is pure and cheap, so the GUI can call it every 2 s per task and `drs task health` for Nagios.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.status import RUNNING, Status

if TYPE_CHECKING:  # `drs task show` evaluates health over the quick reader (engine.store_read), no ORM
    from engine.store import Store, TaskRecord

DEFAULT_DELAY_THRESHOLD = 300.0
UNREACHABLE_ALARM_SECONDS = 15.0
RUNNER_STALE_SECONDS = 15.0  # the runner writes its heartbeat every few seconds in every state
BINLOG_MARGIN_WARNING = 3600.0  # warn when the checkpoint's binlog may be purged within this many seconds
OK, WARNING, ALARM = "ok", "warning", "alarm"
_RANK = {OK: 0, WARNING: 1, ALARM: 2}
SIDES = {"source": "service database", "target": "DR database"}


@dataclass(frozen=True)
class Health:
    state: str  # "ok" | "warning" | "alarm"
    reasons: tuple[str, ...]  # human sentences a DBA can act on; empty when ok

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "reasons": list(self.reasons)}

    @property
    def exit_code(self) -> int:
        """Nagios style: 0 ok, 1 warning, 2 alarm."""
        return _RANK[self.state]


def delay_threshold(record: TaskRecord) -> float:
    try:
        value = float(record.extra.get("delay_threshold", DEFAULT_DELAY_THRESHOLD))
    except (TypeError, ValueError):
        return DEFAULT_DELAY_THRESHOLD
    return value if value > 0 else DEFAULT_DELAY_THRESHOLD


def set_delay_threshold(store: Store, name: str, seconds: float) -> None:
    if not seconds > 0:
        raise ValueError(f"the delay threshold must be a positive number of seconds, not {seconds!r}")
    store.merge_extra(name, delay_threshold=float(seconds))


def _runner_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    if pid == os.getpid():
        return True  # the GUI runs tasks in threads of this very process; its heartbeat tells the rest
    from engine.lifecycle import pid_alive

    return pid_alive(pid)


def _age(then: datetime | None, now: datetime) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def runner_gone(record: TaskRecord, now: datetime) -> float | None:
    """For a task that should be running: seconds since its runner was last heard of when nobody runs it
    any more (dead process or stale heartbeat), else None."""
    if record.status not in RUNNING:
        return None
    age = _age(record.runner_heartbeat or record.status_changed_at, now) or 0.0
    if not _runner_alive(record.runner_pid) or age > RUNNER_STALE_SECONDS:
        return age
    return None


def effective_delay(record: TaskRecord, now: datetime | None = None) -> float | None:
    """The stored delay, growing with the clock while nobody applies (runner gone, paused, failed):
    the DR side stays where it was while the service side moves on (or might)."""
    if record.delay_seconds is None:
        return None
    now = now or datetime.now()
    since: datetime | None = None
    if record.status in RUNNING:
        if runner_gone(record, now) is not None:
            since = record.runner_heartbeat or record.status_changed_at
    elif record.status in (Status.PAUSED, Status.FAILED):
        since = record.status_changed_at
    return round(record.delay_seconds + (_age(since, now) or 0.0), 1)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def _binlog_reasons(facts: dict[str, Any], delay: float | None) -> list[tuple[str, str]]:
    """From what the runner last read on the service database (see TaskRunner's monitor)."""
    file = facts.get("checkpoint_file")
    if not file:
        return []
    if facts.get("gone"):
        return [(ALARM, f"the binlog {file} this task must continue from is no longer on the service database "
                        f"(oldest left: {facts.get('oldest')}); the task cannot catch up: delete it and create it again")]  # fmt: skip
    retention = facts.get("retention_seconds") or 0
    if retention <= 0 or file == facts.get("current"):
        return []  # no automatic purge, or the binlog is still being written (not purgeable yet)
    margin = retention - (delay or 0.0)
    oldest = " (the oldest one left)" if file == facts.get("oldest") else ""
    if margin < BINLOG_MARGIN_WARNING:
        return [(WARNING, f"the binlog {file}{oldest} this task still needs may be purged within "
                          f"{_duration(max(0.0, margin))}: the service database keeps binlogs {_duration(retention)} "
                          f"and the DR side is {_duration(delay or 0.0)} behind; raise binlog_expire_logs_seconds "
                          "or let the task catch up")]  # fmt: skip
    return []


def _compare_reasons(store: Store, name: str) -> list[tuple[str, str]]:
    try:
        run = store.latest_compare_run(name)
    except Exception:  # the compare tables are another module's; health must not fail on them
        return []
    if not run or run.get("status") != "finished" or not isinstance(run.get("summary"), dict):
        return []
    summary = run["summary"]
    if summary.get("consistent", True) is not False:
        return []
    n = summary.get("differences", summary.get("inconsistent"))
    count = f"{n} differences" if isinstance(n, int) else "differences"
    when = run.get("finished_at") or run.get("started_at")
    return [(WARNING, f"the last compare (run {run.get('id')}, {when}) found {count} between the service and DR "
                      f"databases: see `drs compare` and fix them, or run a new compare")]  # fmt: skip


def evaluate(store: Store, record: TaskRecord, now: datetime | None = None) -> Health:
    """Pure over the stored facts and pid liveness; a few SQLite reads at most."""
    now = now or datetime.now()
    found: list[tuple[str, str]] = []
    status = record.status
    delay = effective_delay(record, now)
    facts = record.extra.get("health") if isinstance(record.extra.get("health"), dict) else {}
    if status is Status.FAILED:
        found.append((ALARM, f"the task failed: {record.last_error or 'no error recorded'}; fix the cause and retry"))
    elif status is Status.PAUSED:
        found.append((WARNING, "the task is paused; the delay grows until it is resumed"))
    gone = runner_gone(record, now)
    if gone is not None:
        found.append((ALARM, f"no process is running this task (last heartbeat {gone:.0f} s ago): start it with "
                             f"`drs run {record.name}` or the desktop app"))  # fmt: skip
    if status in RUNNING or status is Status.PAUSED:
        if gone is None and status is not Status.PAUSED:
            for side, label in SIDES.items():
                since = _parse_time(facts.get(f"{side}_unreachable_since"))
                if since is None:
                    continue
                seconds = _age(since, now) or 0.0
                error = facts.get(f"{side}_error")
                detail = f" ({error})" if error else ""
                level = ALARM if seconds > UNREACHABLE_ALARM_SECONDS else WARNING
                found.append((level, f"the {label} has been unreachable for {seconds:.0f} s{detail}; "
                                     "the task reconnects by itself when it is back"))  # fmt: skip
        threshold = delay_threshold(record)
        if delay is not None and delay > threshold:
            found.append((ALARM, f"the DR side is {_duration(delay)} behind (delay threshold {_duration(threshold)})"))
        elif delay is not None and delay > threshold / 2:
            found.append((WARNING, f"the DR side is {_duration(delay)} behind, over half the delay threshold "
                                   f"({_duration(threshold)})"))  # fmt: skip
        if record.phase == "incremental" and isinstance(facts.get("binlog"), dict):
            found.extend(_binlog_reasons(facts["binlog"], delay))
    if status not in (Status.CREATING, Status.CREATION_FAILED, Status.ENDED, Status.CONFIGURATION):
        found.extend(_compare_reasons(store, record.name))
    state = max((level for level, _ in found), key=_RANK.__getitem__, default=OK)
    # the worst first: a DBA reads the top line
    reasons = tuple(text for _, text in sorted(found, key=lambda item: -_RANK[item[0]]))
    return Health(state, reasons)
