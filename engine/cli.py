"""`drs`: the headless command-line face of the engine (for scripts, servers and tests).

Exit codes: 0 success, 2 invalid input or action not allowed (message on stderr naming the field),
1 any other failure. Never a traceback for a user error.

Quick to start: the engine's modules are imported by the command that needs them, and `task list` /
`task show` read the store over the stdlib sqlite3 (engine.store_read), not SQLAlchemy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from engine.errors import DrsError
from engine.records import dumps

if TYPE_CHECKING:
    from engine.store_read import StoreReader
    from engine.tasks import TaskService

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2
LOGS_LIMIT_MAX = 1_000_000  # the store keeps far fewer entries per task (engine.store.LOG_KEEP_ENTRIES)
GREP_MAX = 1000  # SQLite refuses LIKE patterns beyond 50,000 bytes; nobody greps for more than a line


def clip(text: str, limit: int = 500) -> str:
    """A message line that echoes a huge value (a 100,000-character task name) is cut in the middle, keeping
    what the line starts with (the flag) and ends with (what is allowed)."""
    half = limit // 2
    return "\n".join(
        line
        if len(line) <= limit
        else f"{line[:half]} [... {len(line) - 2 * half} characters ...] {line[-half:]}"
        for line in str(text).split("\n")
    )


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep the wording short
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


def _service(args: argparse.Namespace) -> TaskService:
    from engine.tasks import TaskService

    return TaskService(args.home)


def _quick_reader(args: argparse.Namespace) -> StoreReader | None:
    """The store over stdlib sqlite3, or None when TaskService must open the home instead: no store yet,
    a schema to migrate, an unusable secret-store setting, or a task for the store to end (a write)."""
    from engine.paths import resolve_home
    from engine.store_read import StoreReader, StoreUnreadable

    if os.environ.get("DRS_SECRET_BACKEND", "auto") not in ("auto", "keyring", "file"):
        return None  # TaskService says what is wrong with it
    try:
        reader = StoreReader(resolve_home(args.home))
    except (StoreUnreadable, OSError, ValueError):
        return None
    try:
        if not reader.has_expired_creation_failures():
            return reader
    except Exception:  # noqa: BLE001 - whatever it is, the full store reports it properly
        pass
    reader.close()
    return None


def _secret_backend_name(home: Any) -> str:
    """Which secret store `drs task show` names. With the file forced there is no keyring to ask, and
    importing engine.secrets (keyring, cryptography) would cost more than the rest of the command."""
    if os.environ.get("DRS_SECRET_BACKEND") == "file":
        return ENCRYPTED_FILE
    from engine.secrets import SecretStore

    return SecretStore(home).backend_name


ENCRYPTED_FILE = (
    "encrypted file"  # engine.secrets.EncryptedFileBackend.name (tests/test_cli_parity.py checks)
)


def _print_json(data: Any) -> None:
    print(dumps(data))


# ---- task ------------------------------------------------------------------------------------


def cmd_task_create(args: argparse.Namespace) -> int:
    from engine.spec import load_spec_file

    spec = load_spec_file(args.spec)
    svc = _service(args)
    if svc.store.name_taken(spec.name):
        from engine.errors import FieldError, SpecInvalid

        raise SpecInvalid(
            [FieldError("name", f"a task named {spec.name!r} already exists; names must be unique")]
        )
    if not args.skip_checks:
        from engine import precheck

        results = precheck.run_prechecks(spec, other_tasks=[t.spec for t in svc.store.list_tasks()])
        failed = [r for r in results if r.result == "failed"]
        if failed:
            print(f"task {spec.name} not created: {len(failed)} pre-check item(s) failed", file=sys.stderr)
            for r in failed:
                print(f"  - {r.item}: {r.reason} (fix: {r.fix})", file=sys.stderr)
            return EXIT_INVALID
    record = svc.create(spec)
    print(f"task {record.name} created: {record.status.label} (passwords in {svc.secrets.backend_name})")
    return EXIT_OK


def cmd_task_list(args: argparse.Namespace) -> int:
    import sqlite3

    tasks = None
    reader = _quick_reader(args)
    if reader is not None:
        try:
            tasks = reader.list_tasks()
        except sqlite3.Error:
            tasks = None  # (locked too long, damaged...) the full store says what is wrong
        finally:
            reader.close()
    if tasks is None:
        tasks = _service(args).store.list_tasks()
    if args.json:
        _print_json([t.to_json() for t in tasks])
        return EXIT_OK
    if not tasks:
        print("no tasks")
        return EXIT_OK
    print(f"{'NAME':<24} {'STATUS':<30} {'PROGRESS':>8} {'DELAY':>8}  SERVICE -> DR")
    for t in tasks:
        delay = "" if t.delay_seconds is None else f"{t.delay_seconds:.0f}s"
        print(
            f"{t.name:<24} {t.status.label:<30} {t.progress_percent:>7.1f}% {delay:>8}  "
            f"{t.spec.source.address} -> {t.spec.target.address}"
        )
    return EXIT_OK


def task_json(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """What `drs task show --json` prints (also `drs task modify --json`)."""
    import sqlite3

    from engine import health

    reader = _quick_reader(args)
    if reader is not None:
        try:
            record = reader.get_task(name)
            data = record.to_json()
            data["secret_store"] = _secret_backend_name(reader.path.parent)
            data["delay_seconds"] = health.effective_delay(record)
            data["health"] = health.evaluate(reader, record).to_json()  # type: ignore[arg-type]  # (reads as Store)
            return data
        except sqlite3.Error:
            pass  # the full store says what is wrong
        finally:
            reader.close()
    svc = _service(args)
    record = svc.store.get_task(name)
    data = record.to_json()
    data["secret_store"] = svc.secrets.backend_name
    # the delay grows with the clock when nobody applies (runner gone, paused, failed)
    data["delay_seconds"] = health.effective_delay(record)
    data["health"] = health.evaluate(svc.store, record).to_json()
    return data


def cmd_task_show(args: argparse.Namespace) -> int:
    data = task_json(args, args.name)
    if args.json:
        _print_json(data)
        return EXIT_OK
    for key, value in data.items():
        print(
            f"{key:>18}: {json.dumps(value, default=str, ensure_ascii=False) if isinstance(value, dict | list) else value}"
        )
    return EXIT_OK


def cmd_task_delete(args: argparse.Namespace) -> int:
    if not args.yes:
        print(
            "refusing to delete without --yes (this removes the task, its log and its passwords)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    svc = _service(args)
    from engine import lifecycle

    lifecycle.delete_task(svc, args.name, lift_read_only=args.lift_read_only)
    print(f"task {args.name} deleted")
    return EXIT_OK


def cmd_task_start(args: argparse.Namespace) -> int:
    record = _service(args).start(args.name)
    print(f"task {args.name}: {record.status.label} (the desktop app runs it, or `drs run {args.name}`)")
    return EXIT_OK


# `drs task modify` flags that set one side's connection detail: flag -> modify_connection keyword
CONNECTION_FLAGS = {"host": "host", "port": "port", "user": "user", "tls": "tls", "ca-file": "ca_file",
                    "password-env": "password"}  # fmt: skip


def _connection_fields(args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The SIDE=VALUE flags grouped by side, and what is wrong with them (each naming its flag)."""
    from engine.spec import Secret, shown_value

    fields: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for flag, key in CONNECTION_FLAGS.items():
        for raw in getattr(args, flag.replace("-", "_")) or []:
            side, sep, value = raw.partition("=")
            if not sep or side not in ("source", "target"):
                problems.append(f"--{flag}: {shown_value(raw)}: give SIDE=VALUE, SIDE being source or target "
                                f"(e.g. --{flag} target=...)")  # fmt: skip
                continue
            if key in fields.get(side, {}):
                problems.append(f"--{flag}: {side} given twice")
                continue
            if key == "password":  # the password itself never goes on a command line (ps, shell history)
                if not value:
                    problems.append(
                        f"--{flag}: {side}= must name an environment variable holding the password"
                    )
                    continue
                if not os.environ.get(value):
                    problems.append(
                        f"--{flag}: environment variable {shown_value(value)} is not set or empty"
                    )
                    continue
                fields.setdefault(side, {})[key] = Secret(os.environ[value])
            else:
                fields.setdefault(side, {})[key] = value
    return fields, problems


def _flow_control_arg(text: str) -> Any:
    """--flow-control: null/off, or JSON as the spec file's flow_control. Raises SpecInvalid."""
    from engine.errors import FieldError, SpecInvalid
    from engine.spec import parse_flow_control

    if text.strip().lower() in ("null", "off", "none"):
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecInvalid([FieldError("flow_control (--flow-control)", f"not valid JSON: {exc.msg}; give null (off) "
                                      'or {"max_mb_s": 20, "windows": [{"start": "08:00", "end": "18:00"}]}')]) from None  # fmt: skip
    flow, errors = parse_flow_control(raw)
    if errors:
        raise SpecInvalid([FieldError(f"{e.field} (--flow-control)", e.message) for e in errors])
    return flow


def _with_flags(exc: Any) -> Any:
    """A SpecInvalid whose fields (source.port) also name the flag that set them (--port)."""
    from engine.errors import FieldError, SpecInvalid

    flags = {key: flag for flag, key in CONNECTION_FLAGS.items()}
    renamed = []
    for e in exc.errors:
        key = e.field.partition(".")[2]
        flag = (
            "--flow-control"
            if e.field.startswith("flow_control")
            else f"--{flags[key]}"
            if key in flags
            else None
        )
        renamed.append(
            FieldError(f"{e.field} ({flag})" if flag and "(--" not in e.field else e.field, e.message)
        )
    return SpecInvalid(renamed)


def cmd_task_modify(args: argparse.Namespace) -> int:
    """Flow control and connection details, checked in full before anything is written."""
    from engine.errors import SpecInvalid
    from engine.tasks import describe_flow_control

    fields, problems = _connection_fields(args)
    for problem in problems:
        print(clip(f"drs task modify: {problem}"), file=sys.stderr)
    if problems:
        return EXIT_INVALID
    flow_given = args.flow_control is not None
    if not flow_given and not fields:
        print("drs task modify: nothing to modify: give --flow-control, --host, --port, --user, --password-env, "
              "--tls or --ca-file", file=sys.stderr)  # fmt: skip
        return EXIT_INVALID
    flow = _flow_control_arg(args.flow_control) if flow_given else None
    svc = _service(args)
    try:
        if flow_given:
            svc.check_flow_control(args.name, flow)
        plans = [svc.plan_connection_change(args.name, side, **values) for side, values in fields.items()]
    except SpecInvalid as exc:
        raise _with_flags(exc) from None
    done = []
    if flow_given:
        svc.modify_flow_control(args.name, flow)
        done.append(f"flow control {describe_flow_control(flow)}")
    for plan in plans:
        svc.apply_connection_change(plan)
        done.append(f"{plan.side} {', '.join(plan.changes) or 'unchanged'}")
    if args.json:
        _print_json(task_json(args, args.name))
    else:
        print(f"task {args.name} modified: {'; '.join(done)}")
    return EXIT_OK


def cmd_task_check(args: argparse.Namespace) -> int:
    from engine.precheck import cmd_task_check as run_check

    return run_check(args)


def cmd_task_params(args: argparse.Namespace) -> int:
    from engine.params import cmd_task_params as run_params

    return run_params(args)


def cmd_task_pause(args: argparse.Namespace) -> int:
    _service(args).pause(args.name)
    print(f"task {args.name} paused")
    return EXIT_OK


def cmd_task_resume(args: argparse.Namespace) -> int:
    _service(args).resume(args.name)
    print(f"task {args.name} resumed")
    return EXIT_OK


def cmd_task_skip(args: argparse.Namespace) -> int:
    """Move a failed task's checkpoint past the one source transaction the DBA has handled by hand."""
    from engine import skip

    try:
        event = skip.parse_event(args.event)
    except ValueError as exc:
        print(clip(f"drs task skip: --event: {exc}"), file=sys.stderr)
        return EXIT_INVALID
    svc = _service(args)
    group = skip.find_event(svc, args.name, event)
    print(f"the next source transaction of task {args.name}: {group.describe()}")
    if not args.yes:
        print(
            "drs task skip: not skipped; the DR database must already be as this transaction would leave it "
            "(or must not have it): check, then run again with --yes",
            file=sys.stderr,
        )
        return EXIT_INVALID
    skip.skip_event(svc, args.name, group)
    print(
        f"skipped: checkpoint now at {group.end.file}:{group.end.pos}; the task stays failed until retried (drs task resume {args.name})"
    )
    return EXIT_OK


def cmd_task_logs(args: argparse.Namespace) -> int:
    from engine.drlog import export_logs_csv, parse_when
    from engine.spec import shown_path

    bounds = {}
    for flag in ("since", "until"):
        value = getattr(args, flag)
        if value is not None:
            try:
                bounds[flag] = parse_when(value)
            except ValueError as exc:
                print(clip(f"drs task logs: --{flag}: {exc}"), file=sys.stderr)
                return EXIT_INVALID
            except OverflowError:  # e.g. 99999999999d: before the year 1
                print(
                    clip(f"drs task logs: --{flag}: {value!r} reaches back beyond the calendar"),
                    file=sys.stderr,
                )
                return EXIT_INVALID
    if not 1 <= args.limit <= LOGS_LIMIT_MAX:
        print(
            f"drs task logs: --limit: must be from 1 to {LOGS_LIMIT_MAX} (got {args.limit})", file=sys.stderr
        )
        return EXIT_INVALID
    if args.grep is not None and len(args.grep) > GREP_MAX:
        print(f"drs task logs: --grep: at most {GREP_MAX} characters (got {len(args.grep)})", file=sys.stderr)
        return EXIT_INVALID
    entries = _service(args).store.logs(
        args.name, level=args.level, text=args.grep, limit=args.limit, **bounds
    )
    if args.csv is not None:  # "--csv ''" is a mistake to report, not a request for no file
        try:
            count = export_logs_csv(entries, args.csv)
        except OSError as exc:
            print(
                f"drs task logs: --csv: cannot write {shown_path(args.csv)}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_INVALID
        except ValueError:  # NUL in the file name
            print(
                f"drs task logs: --csv: cannot write {shown_path(args.csv)}: a file name cannot contain NUL",
                file=sys.stderr,
            )
            return EXIT_INVALID
        print(f"{count} log entries written to {args.csv}", file=sys.stderr if args.json else sys.stdout)
        if not args.json:
            return EXIT_OK
    if args.json:
        _print_json([{"time": e.time.isoformat(timespec="seconds"), "level": e.level, "component": e.component,
                      "message": e.message} for e in entries])  # fmt: skip
        return EXIT_OK
    for e in entries:
        print(f"{e.time:%Y-%m-%d %H:%M:%S} {e.level.upper():<7} {e.component:<10} {e.message}")
    return EXIT_OK


def cmd_task_health(args: argparse.Namespace) -> int:
    """Exit code for Nagios/cron: 0 ok, 1 warning, 2 alarm (2 also for an unknown task, with its message)."""
    from engine import health

    svc = _service(args)
    if args.delay_threshold is not None:
        try:
            seconds = float(args.delay_threshold)
            if not seconds > 0 or seconds == float("inf"):
                raise ValueError
        except ValueError:
            print(
                clip(
                    f"drs task health: --delay-threshold: {args.delay_threshold!r} is not a positive number of seconds"
                ),
                file=sys.stderr,
            )
            return EXIT_INVALID
        svc.store.get_task(args.name)  # unknown task: its own message
        health.set_delay_threshold(svc.store, args.name, seconds)
    record = svc.store.get_task(args.name)
    result = health.evaluate(svc.store, record)
    if args.json:
        _print_json({"name": record.name, **result.to_json(), "delay_seconds": health.effective_delay(record),
                     "delay_threshold": health.delay_threshold(record)})  # fmt: skip
    else:
        print(f"{record.name}: {result.state.upper()}")
        for reason in result.reasons:
            print(f"  - {reason}")
    return result.exit_code


def cmd_task_metrics(args: argparse.Namespace) -> int:
    from datetime import datetime

    from engine import metrics

    try:
        since = datetime.now() - metrics.parse_duration(args.since)
    except ValueError as exc:
        print(clip(f"drs task metrics: --since: {exc}"), file=sys.stderr)
        return EXIT_INVALID
    except OverflowError:  # e.g. 99999999999d: before the year 1
        print(
            clip(f"drs task metrics: --since: {args.since!r} reaches back beyond the calendar"),
            file=sys.stderr,
        )
        return EXIT_INVALID
    rows = metrics.samples(_service(args).store, args.name, since=since)
    if args.json:
        _print_json([r.to_json() for r in rows])
        return EXIT_OK
    if not rows:
        print(f"no samples in the last {args.since} (samples are taken while the task replicates)")
        return EXIT_OK

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    print(
        f"{'TIME':<19} {'RES':>4} {'DELAY s':>9} {'RTO s':>9} {'ROWS/s':>10} {'EVENTS/s':>10} {'BYTES/s':>12}"
    )
    for r in rows:
        print(f"{r.time:%Y-%m-%d %H:%M:%S} {r.resolution or 'raw':>4} {num(r.delay_seconds):>9} {num(r.rto_seconds):>9} "
              f"{r.rows_per_second:>10.1f} {r.events_per_second:>10.1f} {r.bytes_per_second:>12.0f}")  # fmt: skip
    return EXIT_OK


def _register_subcommands(
    top: argparse._SubParsersAction, task_sub: argparse._SubParsersAction, command: str | None
) -> None:
    """The modules that own a command add its parser; only the one asked for is imported, so that
    `drs task list` or `drs compare` does not pay for the rest of the engine (None: every one). The task
    actions' parsers (check and params included) are build_parser's: `drs task ...` imports none of them."""
    if command in (None, "run"):
        from engine import runner

        runner.register_cli(top, task_sub)
    if command in (None, "promote"):
        from engine import promote

        promote.register_cli(top, task_sub)
    if command in (None, "compare"):
        from engine import compare

        compare.register_cli(top, task_sub)
    if command in (None, "sandbox"):
        from engine import sandbox

        sandbox.register_cli(top, task_sub)
    if command in (None, "service"):
        from engine import user_service

        user_service.register_cli(top, task_sub)


COMMANDS = ("task", "run", "promote", "compare", "service", "sandbox")


def _command_of(argv: list[str]) -> str | None:
    """The top-level command in argv (after --home DIR), or None when there is none or it is unknown."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--home":
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return arg if arg in COMMANDS else None
    return None


def build_parser(command: str | None = None) -> ArgumentParser:
    parser = ArgumentParser(
        prog="drs", description="DRS Desktop: real-time disaster recovery for MySQL-family databases"
    )
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="DRS home (task store, secrets); default $DRS_HOME or the per-user data dir",
    )
    top = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    top.required = True

    task = top.add_parser("task", help="create, list, show, delete, pause, resume DR tasks")
    task_sub = task.add_subparsers(dest="task_command", metavar="ACTION", parser_class=ArgumentParser)
    task_sub.required = True

    p = task_sub.add_parser("create", help="create a DR task from a JSON spec file")
    p.add_argument("--spec", required=True, metavar="FILE")
    p.add_argument("--skip-checks", action="store_true", help="create even when pre-check items fail")
    p.set_defaults(func=cmd_task_create)

    # these two commands belong to engine.precheck and engine.params, which are imported when they run
    p = task_sub.add_parser("check", help="run the pre-check items of a task spec against both servers")
    p.add_argument("--spec", required=True, metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON array of {item, result, reason, fix}")
    p.set_defaults(func=cmd_task_check)

    p = task_sub.add_parser(
        "params", help="compare server parameters of both sides; apply service values to the DR side"
    )
    p.add_argument("--spec", required=True, metavar="FILE")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--apply",
        nargs="+",
        metavar="NAME",
        help="set these parameters on the DR database to the service values",
    )
    p.set_defaults(func=cmd_task_params)

    p = task_sub.add_parser("list", help="list DR tasks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_list)

    p = task_sub.add_parser("show", help="show one DR task")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_show)

    p = task_sub.add_parser(
        "health", help="health of a DR task: ok/warning/alarm and why (exit 0/1/2, for Nagios)"
    )
    p.add_argument("name")
    p.add_argument(
        "--delay-threshold", metavar="SECONDS", help="set the task's delay alarm threshold (default 300)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_health)

    p = task_sub.add_parser("metrics", help="delay, RTO estimate and throughput samples of a DR task")
    p.add_argument("name")
    p.add_argument(
        "--since", metavar="DURATION", default="1h", help="how far back: 90s, 15m, 1h, 24h, 7d (default 1h)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_metrics)

    p = task_sub.add_parser("delete", help="delete a DR task and its stored passwords")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p.add_argument("--lift-read-only", action="store_true", help="make the DR database writable again")
    p.set_defaults(func=cmd_task_delete)

    p = task_sub.add_parser("start", help="start a DR task in Configuration or Pending start (now)")
    p.add_argument("name")
    p.set_defaults(func=cmd_task_start)

    p = task_sub.add_parser("modify", help="modify a DR task's flow control or connection details")
    p.add_argument("name")
    p.add_argument("--flow-control", metavar="JSON",
                   help='as in the spec file, e.g. \'{"max_mb_s": 20, "windows": [{"start": "08:00", "end": "18:00"}]}\', '
                        "or null/off")  # fmt: skip
    for flag, example in (("host", "HOST"), ("port", "PORT"), ("user", "USER"), ("tls", "off|required|verify_ca"),
                          ("ca-file", "PATH"), ("password-env", "VAR")):  # fmt: skip
        p.add_argument(f"--{flag}", action="append", metavar=f"SIDE={example}",
                       help="SIDE is source or target" + ("; the password is read from environment variable VAR"
                                                          if flag == "password-env" else ""))  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the task (as task show --json)")
    p.set_defaults(func=cmd_task_modify)

    p = task_sub.add_parser("pause", help="pause a running DR task")
    p.add_argument("name")
    p.set_defaults(func=cmd_task_pause)

    p = task_sub.add_parser("resume", help="resume a paused (or retry a failed) DR task")
    p.add_argument("name")
    p.set_defaults(func=cmd_task_resume)

    p = task_sub.add_parser(
        "skip", help="move a failed task's checkpoint past one source transaction handled by hand"
    )
    p.add_argument("name")
    p.add_argument(
        "--event",
        required=True,
        metavar="FILE:POS",
        help="the failed transaction, as the task's last error names it",
    )
    p.add_argument(
        "--yes", action="store_true", help="confirm the skip (without it: show the transaction only)"
    )
    p.set_defaults(func=cmd_task_skip)

    p = task_sub.add_parser("logs", help="show the DR log of a task")
    p.add_argument("name")
    p.add_argument("--level", choices=["info", "warning", "alarm", "error"])
    p.add_argument(
        "--since", metavar="WHEN", help="from this time: ISO date-time, or a duration ago (15m, 1h, 7d)"
    )
    p.add_argument("--until", metavar="WHEN", help="up to this time: ISO date-time, or a duration ago")
    p.add_argument(
        "--grep", metavar="TEXT", help="only entries whose message or component contains TEXT (any case)"
    )
    p.add_argument("--limit", type=int, default=200, help="the newest N matching entries (default 200)")
    p.add_argument(
        "--csv", metavar="FILE", help="write the entries to FILE as CSV (time,level,component,message)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_logs)

    _register_subcommands(top, task_sub, command)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    if args.home is not None and (not args.home.strip() or "\x00" in args.home or len(args.home) > 4096):
        # "" would silently mean the default home; no path has a NUL or more than 4096 characters
        shown = args.home if len(args.home) <= 200 else f"{args.home[:200]}... ({len(args.home)} characters)"
        print(f"drs: --home: {shown!r} is not a directory name; give the DRS home directory", file=sys.stderr)
        return EXIT_INVALID
    try:
        return int(args.func(args) or 0)
    except DrsError as exc:
        print(clip(f"drs: {exc}"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("drs: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or a broken environment: one line for the user, not a traceback
        if os.environ.get("DRS_DEBUG"):
            raise
        print(
            clip(f"drs: unexpected error ({type(exc).__name__}): {exc} (set DRS_DEBUG=1 for details)"),
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
