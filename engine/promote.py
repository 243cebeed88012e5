"""Promote the DR database to primary: a planned switchover (RPO 0) or a forced failover.

Switchover: service side read-only, wait until the DR side has applied everything up to the
service's final binlog position, stop replication, DR side writable. Failover (service unreachable):
stop at the last applied position, DR side writable, and say what may have been lost.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from engine import checkpoint as cp
from engine.connect import (
    BinlogPosition,
    binlog_position,
    connect,
    is_read_only,
    quote_ident,
    server_info,
    set_read_only,
)
from engine.errors import ActionNotAllowed, ConnectError, DrsError, ReplicationError
from engine.lifecycle import stop_runner
from engine.status import Action, Status
from engine.tasks import TaskService

REACHABLE_TIMEOUT = 5


@dataclass(frozen=True)
class PromoteResult:
    task: str
    mode: str  # "switchover" | "failover"
    source_final: BinlogPosition | None
    target_applied: BinlogPosition | None
    target_writable: bool
    message: str

    def to_json(self) -> dict:
        data = asdict(self)
        for key in ("source_final", "target_applied"):
            pos = getattr(self, key)
            data[key] = None if pos is None else {"binlog_file": pos.file, "binlog_pos": pos.pos, "gtid": pos.gtid}
        return data


@dataclass(frozen=True)
class FailoverEstimate:
    last_applied: BinlogPosition | None
    last_applied_time: datetime | None
    delay_seconds: float | None
    message: str


def service_reachable(svc: TaskService, name: str) -> bool:
    spec = svc.spec_with_passwords(name)
    try:
        conn = connect(spec.source, connect_timeout=REACHABLE_TIMEOUT, read_timeout=REACHABLE_TIMEOUT)
    except ConnectError:
        return False
    conn.close()
    return True


def _target_checkpoint(svc: TaskService, name: str) -> cp.TargetCheckpoint | None:
    spec = svc.spec_with_passwords(name)
    conn = connect(spec.target)
    try:
        cp.ensure_meta(conn)
        return cp.read_checkpoint(conn, name)
    finally:
        conn.close()


def failover_estimate(svc: TaskService, name: str) -> FailoverEstimate:
    record = svc.get(name)
    try:
        target_cp = _target_checkpoint(svc, name)
    except ConnectError as exc:
        return FailoverEstimate(None, None, record.delay_seconds, f"the DR database cannot be reached either: {exc}")
    position = target_cp.position if target_cp else None
    when = datetime.fromtimestamp(target_cp.source_ts) if target_cp and target_cp.source_ts else None
    rate = record.events_per_second or 0.0
    delay = record.delay_seconds
    if position is None:
        return FailoverEstimate(None, None, delay, "the DR database has not finished its initial copy: promoting it now gives an incomplete database")
    lost = "no change known to be pending"
    if delay and delay > 0:
        lost = f"about {delay:.0f} s of service-side changes (~{delay * rate:.0f} transactions at the last rate of {rate:.1f}/s)"
    since = f" (service commit time {when:%Y-%m-%d %H:%M:%S})" if when else ""
    return FailoverEstimate(
        position,
        when,
        delay,
        f"The DR database has applied the service binlog up to {position}{since}. Changes committed on the "
        f"service database after that point and not yet received will be lost: {lost} when the task last reported.",
    )


def reverse_spec(svc: TaskService, name: str) -> dict:
    """A spec for the reverse task: the promoted DR database becomes the service side."""
    public = svc.get(name).spec.to_public_dict()
    base = f"{name}-reverse"[:50]
    candidate, n = base, 2
    while svc.store.name_taken(candidate):
        candidate = f"{base[:46]}-{n}"
        n += 1
    public.update(
        name=candidate,
        description=f"reverse of {name}"[:256],
        source={k: v for k, v in public["target"].items() if v is not None},
        target={k: v for k, v in public["source"].items() if v is not None},
        start="now",
    )
    return public


def _finish_target(svc: TaskService, name: str, log: Callable[[str], None]) -> tuple[BinlogPosition | None, bool]:
    """Make the DR side a primary: triggers held back created, events enabled, writable."""
    spec = svc.spec_with_passwords(name)
    conn = connect(spec.target)
    try:
        cp.ensure_meta(conn)
        target_cp = cp.read_checkpoint(conn, name)
        info = server_info(conn)
        with conn.cursor() as cur:
            for kind, db, obj, definition in cp.load_deferred(conn, name):
                try:
                    if kind == "trigger":
                        if db:
                            cur.execute(f"USE {quote_ident(db)}")
                        cur.execute(definition)
                        log(f"trigger {db}.{obj} created")
                    elif kind == "event":
                        cur.execute(f"ALTER EVENT {quote_ident(db)}.{quote_ident(obj)} ENABLE")
                        log(f"event {db}.{obj} enabled")
                except Exception as exc:  # noqa: BLE001 - one object must not block the promote
                    log(f"warning: {kind} {db}.{obj} could not be restored: {exc}")
            cur.execute("USE mysql")
        set_read_only(conn, False, info)
        writable = not is_read_only(conn)
        return (target_cp.position if target_cp else None), writable
    finally:
        conn.close()


def promote(
    svc: TaskService, name: str, *, force: bool = False, on_progress: Callable[[str], None] | None = None
) -> PromoteResult:
    record = svc.require(name, Action.PROMOTE)
    store = svc.store

    def say(message: str, level: str = "info") -> None:
        store.add_log(name, level, "promote", message)
        if on_progress:
            on_progress(message)

    if record.phase != "incremental":
        raise ActionNotAllowed(f"task {name} has not finished its initial copy; there is nothing consistent to promote yet")
    previous_status = record.status
    reachable = service_reachable(svc, name)
    if not reachable and not force:
        estimate = failover_estimate(svc, name)
        raise ActionNotAllowed(
            f"the service database of task {name} cannot be reached, so a switchover (RPO 0) is impossible. "
            f"A forced failover (--force) would promote the DR database as it is. {estimate.message}"
        )
    store.set_status(name, Status.PROMOTING)
    say("promote started: " + ("planned switchover" if reachable else "forced failover (service database unreachable)"))
    try:
        say("stopping the replication of the task")
        stop_runner(svc, name)
        spec = svc.spec_with_passwords(name)
        source_final: BinlogPosition | None = None
        if reachable:
            source = connect(spec.source)
            try:
                set_read_only(source, True, super_read_only=True)
                say("service database is now read-only")
                source_final = binlog_position(source)
            finally:
                source.close()
            say(f"waiting until the DR database has applied everything up to {source_final} (RPO 0)")
            from engine.runner import TaskRunner, position_key

            runner = TaskRunner(svc, name, on_stream_progress=lambda p: say(f"applied up to {p.binlog_file}:{p.binlog_pos}, delay {p.delay_seconds:.0f}s") if on_progress else None)
            runner.run(until=source_final)
            applied = _target_checkpoint(svc, name)
            if applied is None or applied.position is None or position_key(applied.position) < position_key(source_final):
                raise ReplicationError(
                    f"the DR database did not reach the service's final position {source_final} "
                    f"(applied: {applied.position if applied else None}); see the DR log"
                )
        else:
            estimate = failover_estimate(svc, name)
            say(estimate.message, "warning")
        target_applied, writable = _finish_target(svc, name, say)
        say(f"DR database is now writable (applied up to {target_applied})")
    except Exception as exc:
        message = str(exc) if isinstance(exc, DrsError) else f"{type(exc).__name__}: {exc}"
        say(f"promote failed: {message}", "error")
        store.set_status(name, Status.FAILED if previous_status is not Status.PAUSED else previous_status, last_error=f"promote failed: {message}")
        raise ReplicationError(f"promote of task {name} failed: {message}") from None
    mode = "switchover" if reachable else "failover"
    result = PromoteResult(
        name,
        mode,
        source_final,
        target_applied,
        writable,
        f"{mode} complete: DR database writable, applied up to {target_applied}"
        + (f"; service database read-only at {source_final}" if source_final else ""),
    )
    store.merge_extra(name, promote={**result.to_json(), "at": datetime.now().isoformat(timespec="seconds")})
    store.set_status(name, Status.PROMOTED, delay_seconds=0.0)
    say(result.message)
    return result


def cmd_promote(args: argparse.Namespace) -> int:
    svc = TaskService(args.home)
    result = promote(svc, args.name, force=args.force, on_progress=None if args.json else (lambda m: print(m, flush=True)))
    final = svc.get(args.name)
    if args.json:
        print(json.dumps({**result.to_json(), "status": final.status.value}, indent=2))
    else:
        print(f"service final position: {result.source_final or 'unknown (service unreachable)'}")
        print(f"DR applied position:    {result.target_applied}")
        print(f"DR database writable:   {'yes' if result.target_writable else 'NO'}")
    return 0 if final.status is Status.PROMOTED and result.target_writable else 1


def register_cli(top: argparse._SubParsersAction, task_sub: argparse._SubParsersAction) -> None:
    p = top.add_parser("promote", help="promote the DR database: switchover, or failover with --force")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="failover when the service database is unreachable (may lose changes)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_promote)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
