"""Value compare of a table pair with injected differences: `drs compare` beside `pt-table-sync --print`.

One run, on two private MariaDB servers (bench/servers.py): a `--rows` table is made on the source,
a DRS task copies it to the DR side (`drs run` until replicating, then paused and stopped), six
differences are injected on the DR side as root (2 rows changed in their last byte or digit, 2 rows
deleted, 2 rows added), then `drs compare NAME --level values --json` and `pt-table-sync --print`
(never --execute) are timed back to back, `--runs` times each, as separate processes (their start
counts). Both tools' findings are checked against the injected keys: every one found, nothing else.
Writes the section "Value compare vs pt-table-sync" of docs/benchmarks.md with the command.

    python bench/compare_bench.py [--rows 1000000] [--runs 3] [--quick] [--out docs/benchmarks.md] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from servers import (
    REPL_PASSWORD,
    REPL_USER,
    ROOT,
    BenchServers,
    MariaDBServer,
    bench_servers,
    ensure_tools,
    fill_from_sequence,
)

DB, TABLE = "bench", "t1"
TASK = "bench-compare"
GOAL, FLOOR = 4.0, 2.0
SECTION_START = "<!-- compare:start (written by bench/compare_bench.py; replaced when it runs again) -->"
SECTION_END = "<!-- compare:end -->"
NOTES_START = (
    "<!-- compare-notes:start (hand-written for the run above; kept when the section is regenerated) -->"
)
NOTES_END = "<!-- compare-notes:end -->"
CHUNK_FLOOR = 10_000  # rows per chunk of the server-side checksum reference

DDL = f"""CREATE TABLE `{DB}`.`{TABLE}` (
    id BIGINT NOT NULL PRIMARY KEY,
    qty INT NOT NULL,
    name VARCHAR(64) NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    note TEXT NULL,
    tag VARBINARY(16) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""


def log(message: str) -> None:
    print(f"{datetime.now():%H:%M:%S} {message}", flush=True)


# ---- the table pair --------------------------------------------------------------------------------


def make_table(source: MariaDBServer, rows: int) -> float:
    """`rows` rows of ~100 bytes, even ids 2..2*rows (odd ids are free for rows only the DR side has)."""
    return fill_from_sequence(
        source, DB, DDL,
        f"INSERT INTO `{DB}`.`{TABLE}` SELECT seq * 2, seq MOD 1000, "
        "CONCAT('customer-', LPAD(seq MOD 50000, 6, '0'), '-', LEFT(MD5(seq), 12)), "
        "(seq MOD 100000) / 100 + 0.01, '2024-01-01' + INTERVAL seq SECOND + INTERVAL (seq MOD 999983) MICROSECOND, "
        "IF(seq MOD 7 = 0, NULL, CONCAT('note ', LEFT(SHA1(seq), 24))), "
        "IF(seq MOD 5 = 0, NULL, UNHEX(MD5(seq * 3)))",
        rows,
    )  # fmt: skip


def table_facts(server: MariaDBServer) -> tuple[int, int]:
    count = server.sql(f"SELECT COUNT(*) FROM `{DB}`.`{TABLE}`")[0][0]
    checksum = server.sql(f"CHECKSUM TABLE `{DB}`.`{TABLE}`")[0][1]
    return int(count), int(checksum or 0)


@dataclass
class Injected:
    kind: str  # missing (only on the source), extra (only on the DR side), different
    key: int
    what: str


def inject(target: MariaDBServer, rows: int) -> list[Injected]:
    """Six differences made on the DR side as root (root is not held back by read_only)."""
    top = 2 * rows
    k_amount = 2 * (rows // 4)  # amount changed in its last decimal digit
    k_tag = 2 * (3 * rows // 4 + 1)  # tag changed in its last byte (seq not a multiple of 5: not NULL)
    k_gone_mid = 2 * (rows // 2 + 3)
    k_new_mid = 2 * (rows // 3) + 1  # an odd id between two rows of the source
    made = [
        Injected("different", k_amount, "DECIMAL(12,2) `amount`: last digit changed (±0.01)"),
        Injected("different", k_tag, "VARBINARY(16) `tag`: last byte XOR 0x01"),
        Injected("missing", 2, "first row of the table deleted on the DR side"),
        Injected("missing", k_gone_mid, "a middle row deleted on the DR side"),
        Injected("extra", k_new_mid, "a row added on the DR side between two source rows (odd id)"),
        Injected("extra", top + 2, "a row added on the DR side past the source's last id"),
    ]
    t = f"`{DB}`.`{TABLE}`"
    before = {k: target.sql(f"SELECT amount, HEX(tag) FROM {t} WHERE id = {k}")[0] for k in (k_amount, k_tag)}
    assert before[k_tag][1], f"row {k_tag} has a NULL tag"
    target.sql(
        "SET SESSION sql_log_bin = 0",
        f"UPDATE {t} SET amount = amount + IF(amount * 100 MOD 10 = 9, -0.01, 0.01) WHERE id = {k_amount}",
        f"UPDATE {t} SET tag = CONCAT(LEFT(tag, LENGTH(tag) - 1), CHAR(ASCII(RIGHT(tag, 1)) ^ 1)) WHERE id = {k_tag}",
        f"DELETE FROM {t} WHERE id IN (2, {k_gone_mid})",
        f"INSERT INTO {t} VALUES ({k_new_mid}, 7, 'added on the DR side', 12.34, '2025-05-05 05:05:05.000005', NULL, NULL), "
        f"({top + 2}, 8, 'added past the end', 0.01, '2025-06-06 06:06:06', 'note', x'00ff')",
    )
    after = {k: target.sql(f"SELECT amount, HEX(tag) FROM {t} WHERE id = {k}")[0] for k in (k_amount, k_tag)}
    a0, a1 = str(before[k_amount][0]), str(after[k_amount][0])
    assert a0 != a1 and a0[:-1] == a1[:-1], (a0, a1)  # only the last digit differs
    t0, t1 = before[k_tag][1], after[k_tag][1]
    assert t0 != t1 and t0[:-2] == t1[:-2] and len(t0) == len(t1), (t0, t1)  # only the last byte
    made[0].what += f" ({a0} → {a1})"
    made[1].what += f" (…{t0[-4:]} → …{t1[-4:]})"
    return made


# ---- the DRS side: task, CLI ------------------------------------------------------------------------


def drs_prefix() -> tuple[list[str], str]:
    """The `drs` console script of this venv when it runs this checkout's engine, else `python -m engine.cli`."""
    script = Path(sys.executable).parent / "drs"
    where = subprocess.run([sys.executable, "-c", "import engine; print(engine.__file__)"],
                           cwd="/", capture_output=True, text=True).stdout.strip()  # fmt: skip
    if script.exists() and Path(where).resolve().is_relative_to(ROOT):
        return [str(script)], f"{script.relative_to(ROOT) if script.is_relative_to(ROOT) else script}"
    return [sys.executable, "-m", "engine.cli"], "python -m engine.cli (the venv's drs runs another checkout)"


def drs_env() -> dict[str, str]:
    return {**os.environ, "DRS_SECRET_BACKEND": "file"}


@dataclass
class Drs:
    prefix: list[str]
    home: Path

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, "--home", str(self.home), *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(self.argv(*args), cwd=ROOT, env=drs_env(), capture_output=True, text=True)
        if check and done.returncode:
            raise RuntimeError(
                f"drs {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
            )
        return done

    def status(self) -> dict:
        return json.loads(self.run("task", "show", TASK, "--json").stdout)


def spec_dict(pair: BenchServers) -> dict:
    def side(server: MariaDBServer) -> dict:
        return {
            "host": "127.0.0.1",
            "port": server.port,
            "user": REPL_USER,
            "password": REPL_PASSWORD,
            "tls": "off",
        }

    return {"name": TASK, "description": "compare benchmark", "relationship": "standby", "network": "public",
            "source": side(pair.source), "target": side(pair.target), "databases": [DB], "flow_control": None,
            "migrate_definer": True, "start": "now", "tags": {}}  # fmt: skip


def make_dr_copy(pair: BenchServers, drs: Drs) -> float:
    """Task created, `drs run` until replicating (the initial copy), paused, runner stopped. Seconds of the run."""
    spec_file = drs.home / "spec.json"
    spec_file.write_text(json.dumps(spec_dict(pair)))
    drs.run("task", "create", "--spec", str(spec_file), "--skip-checks")
    began = time.monotonic()
    proc = subprocess.Popen(drs.argv("run", TASK, "--quiet"), cwd=ROOT, env=drs_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        while True:
            status = drs.status()
            if status["status"] == "replicating":
                break
            if proc.poll() is not None or status["status"] in ("failed", "creation_failed"):
                raise RuntimeError(f"drs run did not reach replicating: {status['status']} {status['last_error']} "
                                   f"{proc.stderr.read() if proc.stderr else ''}")  # fmt: skip
            if time.monotonic() - began > 900:
                raise RuntimeError("drs run did not reach replicating in 15 minutes")
            time.sleep(0.5)
        copied = time.monotonic() - began
        drs.run("task", "pause", TASK)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    final = drs.status()
    if final["status"] != "paused":
        raise RuntimeError(f"the task is {final['status']} after pause and stop, not paused")
    return copied


# ---- the contenders ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: float
    exit_code: int
    found: set[tuple[str, int]] = field(default_factory=set)
    unparsed: list[str] = field(default_factory=list)  # findings that name no row key
    statements: dict[str, int] = field(default_factory=dict)
    raw: object = None
    stderr: str = ""


def run_drs_compare(drs: Drs) -> Outcome:
    argv = drs.argv("compare", TASK, "--level", "values", "--json")
    began = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=drs_env(), capture_output=True, text=True)
    seconds = time.monotonic() - began
    out = Outcome(seconds, done.returncode, stderr=done.stderr.strip()[-2000:])
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        out.unparsed.append(f"stdout is not JSON: {done.stdout[:300]!r}")
        return out
    out.raw = data
    for d in data.get("differences", []):
        key = d.get("key")
        if d.get("table") == f"{DB}.{TABLE}" and isinstance(key, list) and len(key) == 1:
            try:
                out.found.add((d["kind"], int(key[0])))
                continue
            except (TypeError, ValueError):
                pass
        out.unparsed.append(json.dumps(d, ensure_ascii=False))
    out.statements = {"consistent": data.get("consistent")}  # type: ignore[dict-item]
    return out


def pt_dsn(server: MariaDBServer) -> str:
    return f"h=127.0.0.1,P={server.port},u={REPL_USER},p={REPL_PASSWORD},D={DB},t={TABLE}"


PT_FLAGS = [
    "--print",
    "--no-version-check",
    "--no-check-slave",
    "--no-check-triggers",
    "--no-check-child-tables",
]
_WHERE_ID = re.compile(r"WHERE `id`='?(-?\d+)'?")
_VALUES_ID = re.compile(r"\(`id`[^)]*\) VALUES \('?(-?\d+)'?")


def pt_argv(pair: BenchServers) -> list[str]:
    # source first, destination second: the statements printed would make the DR table like the source's
    return ["pt-table-sync", *PT_FLAGS, pt_dsn(pair.source), pt_dsn(pair.target)]


def run_pt_table_sync(pair: BenchServers) -> Outcome:
    began = time.monotonic()
    done = subprocess.run(pt_argv(pair), capture_output=True, text=True)
    seconds = time.monotonic() - began
    out = Outcome(seconds, done.returncode, stderr=done.stderr.strip()[-2000:], raw=done.stdout)
    kinds = {"DELETE": "extra", "INSERT": "missing", "UPDATE": "different", "REPLACE": "missing|different"}
    for line in done.stdout.splitlines():
        verb = line.split(" ", 1)[0].upper()
        if verb not in kinds:
            if line.strip():
                out.unparsed.append(line[:300])
            continue
        out.statements[verb] = out.statements.get(verb, 0) + 1
        m = _WHERE_ID.search(line) or _VALUES_ID.search(line)
        if m is None:
            out.unparsed.append(line[:300])
            continue
        out.found.add((kinds[verb], int(m.group(1))))
    return out


def judge(outcome: Outcome, injected: list[Injected]) -> dict:
    """Missed injected differences and false positives (REPLACE counts for missing or different)."""
    expected = {(i.kind, i.key) for i in injected}
    found = set()
    for kind, key in outcome.found:
        if kind == "missing|different":
            kind = next(
                (k for k, key2 in expected if key2 == key and k in ("missing", "different")), "missing"
            )
        found.add((kind, key))
    missed = sorted(expected - found, key=lambda x: x[1])
    false = sorted(found - expected, key=lambda x: x[1])
    return {"missed": missed, "false_positives": false, "other": outcome.unparsed,
            "correct": not missed and not false and not outcome.unparsed}  # fmt: skip


def checksum_floor(pair: BenchServers, rows: int) -> float:
    """Reference, from this process: the work any server-side checksum compare must have done.

    CRC32 of every row, BIT_XOR-ed per primary-key range of CHUNK_FLOOR source rows (the last range
    open-ended), one connection per server, both servers at once: no process start, no drill-down.
    """
    cols = "id, qty, name, amount, created_at, note, tag, ISNULL(note), ISNULL(tag)"
    step = 2 * CHUNK_FLOOR  # ids are even
    bounds = list(range(0, 2 * rows + 1, step))
    results: dict[str, list] = {}

    def one(server: MariaDBServer) -> None:
        conn = server.root(DB)
        try:
            with conn.cursor() as cur:
                got = []
                for lo in bounds:
                    upper = f"AND id < {lo + step}" if lo != bounds[-1] else ""
                    cur.execute(f"SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS('#', {cols}))) FROM `{TABLE}` "
                                f"WHERE id >= {lo} {upper}")  # fmt: skip
                    got.append(cur.fetchone())
                results[server.name] = got
        finally:
            conn.close()

    began = time.monotonic()
    threads = [threading.Thread(target=one, args=(s,)) for s in (pair.source, pair.target)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - began
    differ = sum(1 for a, b in zip(results["source"], results["target"], strict=True) if a != b)
    log(f"   reference: CRC32 chunk checksums by both servers in parallel {seconds:.2f} s "
        f"({len(bounds)} chunks, {differ} differ)")  # fmt: skip
    return seconds


def wait_for_quiet(threshold: float, limit_s: float = 1200) -> None:
    """Wait (at most `limit_s`) until the 1-minute load average is under `threshold`: the machine is shared."""
    began = time.monotonic()
    while os.getloadavg()[0] >= threshold and time.monotonic() - began < limit_s:
        if int(time.monotonic() - began) % 60 < 5:
            log(f"   waiting for a quiet machine: load {os.getloadavg()[0]:.2f} (want < {threshold:g})")
        time.sleep(5)


def startup_seconds(drs: Drs) -> float:
    """`drs compare --help`: interpreter start, imports and parser, without any work."""
    began = time.monotonic()
    drs.run("compare", "--help")
    return time.monotonic() - began


# ---- profile (py-spy, wall clock) -------------------------------------------------------------------

PROFILE_RATE = 500  # samples a second
NO_FRAME = "(no Python frame: interpreter start, exit, or C code)"
_FRAME_LINE = re.compile(r"\((engine/[\w/]+\.py):(\d+)\)$")
_THREAD = re.compile(r"thread \((\w+)\)(?::\s*(.*))?$")


def _leaf_category(frames: list[str]) -> str:
    """What one sample was doing, from its stack (root first)."""
    if any(f.startswith("_find_and_load ") for f in frames):
        return "importing modules"
    leaf = frames[-1]
    if leaf == NO_FRAME:
        return NO_FRAME
    if "socket.py" in leaf or "_read_bytes (pymysql" in leaf or "selectors.py" in leaf:
        return "waiting for a server (socket read)"
    if "_write_bytes (pymysql" in leaf:
        return "sending to a server (socket write)"
    if "pymysql/" in leaf:
        return "pymysql (protocol, result rows)"
    if "sqlalchemy/" in leaf or "sqlite" in leaf or "engine/store.py" in leaf:
        return "task store (SQLAlchemy/SQLite)"
    if "threading.py" in leaf or "queue.py" in leaf or "concurrent/futures" in leaf:
        return "waiting for another thread"
    if "engine/" in leaf:
        return f"engine code: {leaf.split('(', 1)[1].split(':', 1)[0]}"
    return "other Python"


_HELPERS = ("_Pool.", "_text ", "_hash_map", "<locals>.<")  # frames that are not a step of the compare


def _phase(frames: list[str]) -> str:
    """The deepest step of engine/compare.py (else engine/) in a sample, with its line: where the time went."""
    if frames == [NO_FRAME]:
        return NO_FRAME
    for wanted in ("engine/compare.py", "engine/"):
        for f in reversed(frames):
            if wanted in f and not f.startswith("<module>") and not any(h in f for h in _HELPERS):
                return f
    if any(f.startswith("_find_and_load ") for f in frames):
        return "(imports)"
    return "(outside engine/)"


_STAGES = (  # (stage, functions of engine/ whose samples belong to it), first match wins
    ("drill-down of mismatched chunks to rows", ("_rows_of_chunk", "_read_round", "_describe_rows", "full_rows",
                                                  "source_position", "wait_dr_past", "dr_position", "_has_meta")),
    ("plan: columns, key, chunk bounds", ("_plan", "_estimate_rows", "_walk_boundaries", "resolve_tables",
                                          "base_tables", "databases")),
    ("task store: task, passwords, run history", ("run_compare", "_result_rows", "cmd_compare", "TaskService",
                                                   "spec_with_passwords", "Store")),
)  # fmt: skip


def _stage(step: str, code: str) -> str:
    """A broad step of `drs compare` for one profile step (function and line)."""
    if step in ("(imports)", NO_FRAME) or step.startswith(("build_parser", "main (engine/cli.py")):
        return "process start and exit: interpreter, imports, parser"
    func = step.split(" (", 1)[0]
    if func.startswith("Comparer._compare_table"):
        return (
            "row counts again after the drill-down" if "COUNT(*)" in code else "chunk checksums (first pass)"
        )
    for stage, funcs in _STAGES:
        if any(f in func for f in funcs):
            return stage
    return "other"


def summarize_profile(raw: Path) -> dict:
    """Samples of a py-spy raw file by thread: seconds per step (deepest engine/ function and line) and doing."""
    threads: dict[str, dict] = {}
    names: dict[str, str] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        m = _THREAD.match(frames[0])
        if m:  # "thread (TID): NAME", the name missing in the first samples of a thread
            thread, body = m.group(1), frames[1:]
            if m.group(2):
                names[thread] = m.group(2)
        else:
            thread, body = "?", frames
        t = threads.setdefault(thread, {"samples": 0, "pairs": {}, "categories": {}})
        n = int(count)
        t["samples"] += n
        step, doing = _phase(body or [NO_FRAME]), _leaf_category(body or [NO_FRAME])
        t["pairs"][(step, doing)] = t["pairs"].get((step, doing), 0) + n
        t["categories"][doing] = t["categories"].get(doing, 0) + n
    code: dict[str, str] = {}
    for t in threads.values():  # the source line of each step, as it was when profiled
        for step, _ in t["pairs"]:
            m = _FRAME_LINE.search(step)
            if m and step not in code:
                lines = (ROOT / m.group(1)).read_text().splitlines()
                n = int(m.group(2))
                code[step] = lines[n - 1].strip()[:90] if 0 < n <= len(lines) else ""
    out: dict = {"threads": {}, "code": code}
    for tid, t in sorted(threads.items(), key=lambda kv: -kv[1]["samples"]):
        stages: dict[str, int] = {}
        for (step, _), n in t["pairs"].items():
            st = _stage(step, code.get(step, ""))
            stages[st] = stages.get(st, 0) + n
        out["threads"][f"{names.get(tid, '?')} ({tid})"] = {
            "seconds": t["samples"] / PROFILE_RATE,
            "stages": [(k, n / PROFILE_RATE) for k, n in sorted(stages.items(), key=lambda kv: -kv[1])],
            "categories": [(k, n / PROFILE_RATE) for k, n in sorted(t["categories"].items(), key=lambda kv: -kv[1])],
            "steps": [(step, doing, n / PROFILE_RATE)
                      for (step, doing), n in sorted(t["pairs"].items(), key=lambda kv: -kv[1])[:24]],
        }  # fmt: skip
    return out


def profile_compare(drs: Drs, out_dir: Path) -> dict:
    """One `drs compare` under py-spy (--idle: every sample, waiting included), summarized."""
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "drs-compare.pyspy.txt"
    spy = Path(sys.executable).parent / "py-spy"
    argv = [str(spy) if spy.exists() else "py-spy", "record", "--idle", "--threads", "--nonblocking",
            "--rate", str(PROFILE_RATE), "--format", "raw", "-o", str(raw), "--",
            *drs.argv("compare", TASK, "--level", "values", "--json")]  # fmt: skip
    began = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=drs_env(), capture_output=True, text=True)
    summary = {"wall_seconds": time.monotonic() - began, "exit": done.returncode, "file": str(raw)}
    summary.update(summarize_profile(raw))
    log(f"   py-spy: drs compare {summary['wall_seconds']:.2f} s under the profiler; raw stacks in {raw}")
    for name, t in summary["threads"].items():
        log(f"   thread {name}: {t['seconds']:.2f} s sampled: "
            + "; ".join(f"{k} {sec:.2f} s" for k, sec in t["stages"]))  # fmt: skip
    return summary


# ---- report ------------------------------------------------------------------------------------------


def machine_facts(pair: BenchServers) -> dict:
    def first(path: str, prefix: str) -> str:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
        return "?"

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    pt = subprocess.run(["pt-table-sync", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": f"{datetime.now():%Y-%m-%d %H:%M}",
        "nproc": os.cpu_count(),
        "cpu": first("/proc/cpuinfo", "model name"),
        "memory": f"{int(first('/proc/meminfo', 'MemTotal').split()[0]) / 1048576:.1f} GiB",
        "mariadb": pair.source.sql("SELECT VERSION()")[0][0],
        "python": platform.python_version(),
        "pt-table-sync": pt,
        "commit": git("rev-parse", "--short", "HEAD"),
        "engine_tree": "with uncommitted changes in engine/"
        if git("status", "--porcelain", "engine")
        else "clean",
        "load_before": os.getloadavg(),
    }


def _fmt_runs(runs: list[float]) -> str:
    return ", ".join(f"{s:.2f}" for s in runs)


def render(command: str, r: dict, notes: str) -> str:
    m = r["machine"]
    lines: list[str] = []
    add = lines.append
    drs_runs, pt_runs = r["drs"]["seconds"], r["pt"]["seconds"]
    best = min(pt_runs) / min(drs_runs)
    med = statistics.median(pt_runs) / statistics.median(drs_runs)
    add(SECTION_START)
    add("## Value compare vs pt-table-sync\n")
    add(f"Produced by one run of `{command}` on {m['date']} (commit `{m['commit']}`, engine/ {m['engine_tree']}; "
        f"{m['nproc']} × {m['cpu']}, MariaDB {m['mariadb']}, {m['pt-table-sync']}, Python {m['python']}; load average "
        f"{', '.join(f'{x:.1f}' for x in m['load_timed'])} when the timed runs began, {', '.join(f'{x:.1f}' for x in m['load_after'])} at their end). "
        "Two private `mariadbd` on loopback (bench/servers.py).\n")  # fmt: skip
    add(f"**The pair.** `{DB}.{TABLE}` on the source: BIGINT primary key (even ids), INT, VARCHAR(64), DECIMAL(12,2), "
        f"DATETIME(6), nullable TEXT, nullable VARBINARY(16); **{r['rows']:,} rows**, average row {r['avg_row_bytes']} "
        f"bytes, {r['data_mb']:.0f} MB. A DRS task made the DR copy (`drs run` until replicating: {r['copy_seconds']:.1f} s, "
        "CHECKSUM TABLE equal), was paused and its runner stopped; then these differences were made on the DR side as "
        "root:\n")  # fmt: skip
    add("| kind (DR side) | id | change |")
    add("|---|---:|---|")
    for i in r["injected"]:
        add(f"| {i['kind']} | {i['key']} | {i['what']} |")
    add("")
    add(
        f"**The contenders**, run alternately, {len(drs_runs)} times each, each a new process (its start counts):\n"
    )
    add(f"- DRS: `{r['drs_command']}`")
    add(f"- pt-table-sync: `{shlex.join(r['pt_argv_shown'])}` (source DSN first, DR second; its default "
        "Chunk algorithm, 1,000-row chunks; `--print` only, never `--execute`)\n")  # fmt: skip
    add("| contender | runs (s) | best | median | exit | all 6 found, nothing else |")
    add("|---|---|---:|---:|---:|:---:|")
    for label, key in (("`drs compare --level values --json`", "drs"), ("`pt-table-sync --print`", "pt")):
        c = r[key]
        ok = all(j["correct"] for j in c["judged"])
        add(f"| {label} | {_fmt_runs(c['seconds'])} | {min(c['seconds']):.2f} | {statistics.median(c['seconds']):.2f} "
            f"| {', '.join(sorted({str(x) for x in c['exit_codes']}))} | {'yes' if ok else '**NO**'} |")  # fmt: skip
    add("")
    verdict = (
        "goal met" if best >= GOAL else "floor met, goal not" if best >= FLOOR else "**below the floor**"
    )
    add(f"**Ratio pt-table-sync ÷ DRS: {best:.2f}× on the best runs, {med:.2f}× on the medians** "
        f"(goal {GOAL:g}×, floor {FLOOR:g}×: {verdict}).\n")  # fmt: skip
    add("For reference, in the same run: `drs compare --help` (interpreter start, imports, parser; no work) took "
        f"{r['startup_seconds']:.2f} s; the CRC32 of every row, BIT_XOR-ed per {CHUNK_FLOOR:,}-row primary-key range by both "
        f"servers at once (one connection each, from the bench process: no process start, no drill-down) took "
        f"{r['floor_seconds']:.2f} s.\n")  # fmt: skip
    add("**Findings.**")
    for label, key in (("drs compare", "drs"), ("pt-table-sync", "pt")):
        c = r[key]
        j = c["judged"][-1]
        if all(x["correct"] for x in c["judged"]):
            detail = (
                f"every run reported exactly the 6 injected keys with the right kind ({c['found_summary']})"
            )
        else:
            detail = f"last run: missed {j['missed']}, false positives {j['false_positives']}, other output {j['other'][:5]}"
        add(f"- {label}: {detail}.")
    add("")
    if r.get("profile"):
        add(render_profile(r["profile"]))
    add(NOTES_START)
    add(notes or "(No notes written for this run yet.)")
    add(NOTES_END)
    add(SECTION_END)
    return "\n".join(lines) + "\n"


def render_profile(prof: dict) -> str:
    lines: list[str] = []
    add = lines.append
    add(f"**Where `drs compare` spends its time**: one more run under `py-spy record --idle --nonblocking` "
        f"({PROFILE_RATE} samples/s of every thread, waiting included; {prof['wall_seconds']:.2f} s under the "
        "profiler, which slows it a little). The main thread's samples are its wall clock, by step:\n")  # fmt: skip
    threads = list(prof["threads"].items())
    main_name, main = next(((n, t) for n, t in threads if n.startswith("MainThread")), threads[0])
    add("| step of `drs compare` (main thread) | seconds | share |")
    add("|---|---:|---:|")
    for stage, sec in main["stages"]:
        add(f"| {stage} | {sec:.2f} | {100 * sec / max(main['seconds'], 1e-9):.0f}% |")
    add(f"| **all** | **{main['seconds']:.2f}** | |")
    add("")
    workers = [(n, t) for n, t in threads if n != main_name]
    if workers:
        parts = []
        for n, t in workers:
            cats = dict(t["categories"])
            server = cats.get("waiting for a server (socket read)", 0.0)
            parts.append(f"{n.split(' ')[0]} {server:.2f} s waiting for a server of {t['seconds']:.2f} s")
        add("Worker threads (the chunk checksums of both sides): " + "; ".join(parts) + ".\n")
    add(f"<details><summary>main thread ({main_name}) by function and line</summary>\n")
    add("| step | its line | doing | seconds |")
    add("|---|---|---|---:|")
    for step, doing, sec in main["steps"]:
        code = prof["code"].get(step, "")
        if sec >= 0.01:
            add(f"| `{cell(step)}` | {'`' + cell(code) + '`' if code else ''} | {doing} | {sec:.2f} |")
    add("\n</details>\n")
    return "\n".join(lines)


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def kept_notes(text: str) -> str:
    if NOTES_START in text and NOTES_END in text:
        return text.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0].strip()
    return ""


def write_section(out: Path, command: str, results: dict) -> None:
    text = out.read_text() if out.exists() else ""
    section = render(command, results, kept_notes(text))
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        text = head + section.rstrip("\n") + rest.split(SECTION_END, 1)[1]
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    out.write_text(text)


# ---- main ----------------------------------------------------------------------------------------------


def summarize_found(outcome: Outcome) -> str:
    by_kind: dict[str, int] = {}
    for kind, _ in outcome.found:
        by_kind[kind] = by_kind.get(kind, 0) + 1
    if outcome.statements and "consistent" not in outcome.statements:
        return ", ".join(f"{n} {verb}" for verb, n in sorted(outcome.statements.items()))
    return ", ".join(f"{n} {kind}" for kind, n in sorted(by_kind.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the table pair")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each contender")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 100,000 rows, no report unless --out"
    )
    parser.add_argument(
        "--out", help="Markdown report to update (default docs/benchmarks.md; none with --quick)"
    )
    parser.add_argument("--json", help="also write the raw figures here")
    parser.add_argument(
        "--setup-only",
        action="store_true",
        help="make the pair and time pt-table-sync only (while `drs compare` does not exist)",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="also run `drs compare` once under py-spy, stacks to DIR"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        metavar="LOAD",
        help="before the timed runs, wait (up to 20 min) for the 1-minute load average to drop under LOAD",
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers up at the end until Enter")
    args = parser.parse_args(argv)
    rows = 100_000 if args.quick and args.rows == 1_000_000 else args.rows
    out_name = args.out or (None if args.quick or args.setup_only else "docs/benchmarks.md")
    command = "python bench/compare_bench.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    ensure_tools(["mariadbd", "pt-table-sync"])
    prefix, drs_label = drs_prefix()
    results: dict = {"rows": rows}
    with bench_servers() as pair, tempfile.TemporaryDirectory(prefix="drs-bench-compare-") as home:
        results["machine"] = machine_facts(pair)
        log(
            f"servers up: source :{pair.source.port}, target :{pair.target.port}; {results['machine']['mariadb']}"
        )
        drs = Drs(prefix, Path(home))
        log(f"making {rows:,} rows on the source")
        results["made_seconds"] = make_table(pair.source, rows)
        pair.source.sql(f"ANALYZE TABLE `{DB}`.`{TABLE}`")
        size = pair.source.sql("SELECT DATA_LENGTH, AVG_ROW_LENGTH FROM information_schema.TABLES "
                               f"WHERE TABLE_SCHEMA='{DB}' AND TABLE_NAME='{TABLE}'")[0]  # fmt: skip
        results["data_mb"], results["avg_row_bytes"] = size[0] / 1048576, size[1]
        log(
            f"   {results['made_seconds']:.1f} s, {results['data_mb']:.0f} MB, {size[1]} bytes/row; DR copy by `drs run`"
        )
        results["copy_seconds"] = make_dr_copy(pair, drs)
        src, tgt = table_facts(pair.source), table_facts(pair.target)
        if src != tgt or src[0] != rows:
            raise RuntimeError(f"the DR copy is not identical: source {src}, DR {tgt}")
        log(
            f"   replicating after {results['copy_seconds']:.1f} s, identical ({src[0]:,} rows); paused, runner stopped"
        )
        injected = inject(pair.target, rows)
        results["injected"] = [i.__dict__ for i in injected]
        for i in injected:
            log(f"   injected {i.kind} id {i.key}: {i.what}")

        have_compare = not args.setup_only
        if have_compare:
            probe = drs.run("compare", "--help", check=False)
            if probe.returncode:
                log(f"`drs compare --help` exited {probe.returncode}: timing pt-table-sync only")
                have_compare = False
        if args.wait_quiet:
            wait_for_quiet(args.wait_quiet)
        results["machine"]["load_timed"] = os.getloadavg()
        results["startup_seconds"] = startup_seconds(drs) if have_compare else None
        results["floor_seconds"] = checksum_floor(pair, rows)
        drs_runs: list[Outcome] = []
        pt_runs: list[Outcome] = []
        for n in range(1, args.runs + 1):
            if have_compare:
                o = run_drs_compare(drs)
                drs_runs.append(o)
                j = judge(o, injected)
                log(f"   run {n}: drs compare {o.seconds:.2f} s, exit {o.exit_code}, {summarize_found(o)}; correct={j['correct']}"
                    + ("" if j["correct"] else f" {j} {o.stderr}"))  # fmt: skip
            o = run_pt_table_sync(pair)
            pt_runs.append(o)
            j = judge(o, injected)
            log(f"   run {n}: pt-table-sync {o.seconds:.2f} s, exit {o.exit_code}, {summarize_found(o)}; correct={j['correct']}"
                + ("" if j["correct"] else f" {j} {o.stderr}"))  # fmt: skip
        results["machine"]["load_after"] = os.getloadavg()
        results["drs_command"] = f"{drs_label} --home DIR compare {TASK} --level values --json"
        results["pt_argv_shown"] = [a.replace(f"p={REPL_PASSWORD}", "p=...") for a in pt_argv(pair)]
        for key, runs in (("drs", drs_runs), ("pt", pt_runs)):
            results[key] = {
                "seconds": [o.seconds for o in runs],
                "exit_codes": [o.exit_code for o in runs],
                "judged": [judge(o, injected) for o in runs],
                "found_summary": summarize_found(runs[-1]) if runs else "",
                "last_output": runs[-1].raw if runs else None,
                "stderr": runs[-1].stderr if runs else "",
            }
        if have_compare:
            d, p = results["drs"]["seconds"], results["pt"]["seconds"]
            results["ratio_best"] = min(p) / min(d)
            results["ratio_median"] = statistics.median(p) / statistics.median(d)
            log(f"ratio pt-table-sync / drs compare: best {results['ratio_best']:.2f}x, median "
                f"{results['ratio_median']:.2f}x (goal {GOAL:g}x, floor {FLOOR:g}x)")  # fmt: skip
        if args.profile and have_compare:
            results["profile"] = profile_compare(drs, Path(args.profile).resolve())
        if args.keep:
            print(f"source :{pair.source.port} socket {pair.source.socket_path}; target :{pair.target.port} "
                  f"socket {pair.target.socket_path}; DRS home {home}; Enter to stop", flush=True)  # fmt: skip
            sys.stdin.readline()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    if out_name and have_compare:
        out = Path(out_name) if Path(out_name).is_absolute() else ROOT / out_name
        write_section(out, command.strip(), results)
        log(f"section written to {out}")
    ok = all(j["correct"] for k in ("drs", "pt") for j in results[k]["judged"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
