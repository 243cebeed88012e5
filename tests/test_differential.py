"""Differential harness: DRS against native replication, the oracle.

Each case is a statement script (tests/differential/*.sql) run on the service server while two
copies follow it: a native MariaDB replica (a third mariadbd, tests/native_replica.py) and a DRS
task (incremental only, seeded at the service server's binlog end, databases=[diffdb]) whose target
is the suite's DR server. Both start from the same empty database. Once both have everything, the
DRS target must hold exactly what the replica holds: every table's SHOW CREATE and rows (the raw
bytes each server prints; history rows of system-versioned tables with ROW_START/ROW_END), every
view, routine and event as SHOW CREATE prints it (sql_mode, time_zone and character set columns
included; DRS's definer rewrite read back as the scripts' root@localhost), NEXTVAL of every
sequence. Triggers: DRS holds them back on the standby (engine/apply.py keeps them in
drs_desktop_meta.deferred_object), so the standby must have none active and hold each of the
replica's; then the task is promoted (engine.promote, which creates them) and they are compared as
SHOW CREATE TRIGGER prints them. Events run DISABLE ON SLAVE on both copies.

A case passes when the copies are identical, or, for a case whose `refused` fragments are listed
in CASES, when the DRS task failed and its error names them. DRS replicating into different data
is never a pass. A failure message lists every difference: kind, object, column, both values.

Scripts: plain SQL, `;`-separated, `DELIMITER x` for compound statements, and between statements
`--@connect NAME [charset=X]` (a new connection of the service server, now current),
`--@connection NAME`, `--@disconnect NAME` (back to `default`), `--@error CODE` (the next statement
must fail on the service server with that code), `--@sync` (wait until both copies caught up: what
follows reaches DRS in batches of its own; within one batch DRS applies a net effect per key, which
can hide a step it gets wrong).

Run:
    cd /work/main && QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest tests/test_differential.py -q
Your own scripts, beside the table's (for triage): DRS_DIFF_SCRIPT=/path/a.sql[:/path/b.sql] ... -k script-
Long mode (a randomized mix of the same classes, DRS_DIFF_STATEMENTS statements per seed, one case
per seed; without DRS_DIFF_LONG=1 these cases do not exist, they are not skipped):
    DRS_DIFF_LONG=1 [DRS_DIFF_SEEDS=5] [DRS_DIFF_SEED=1] [DRS_DIFF_STATEMENTS=400] \\
    [DRS_DIFF_CLASSES=binary,xa,versioned,sequence,partition,charset,timezone,sqlmode,dml,routines,bigrow] \\
    QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest tests/test_differential.py -q -k random
(by default every class but those whose case in CASES DRS may refuse; a failing seed is reproduced
with DRS_DIFF_SEED=<it> DRS_DIFF_SEEDS=1.)
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MemoryKeyring, ServerPair, make_spec
from dr_helpers import wait_for
from native_replica import (
    Directive,
    NativeReplica,
    Snapshot,
    Statement,
    Step,
    binlog_end,
    differences,
    ident,
    lit,
    parse_script,
    position_key,
    run_script,
    snapshot,
)
from test_incremental import RunnerThread, seed_incremental

from engine.connect import META_DATABASE
from engine.promote import promote
from engine.runner import TaskRunner
from engine.spec import parse_spec
from engine.status import Status
from engine.tasks import TaskService

NAME = "diff-task"
DB = "diffdb"
SCRIPTS = Path(__file__).parent / "differential"
DRS_WAIT = 45.0  # seconds for DRS to catch up or fail, at most
STALL = 12.0  # seconds without checkpoint progress (the replica done) that count as DRS being stuck


@dataclass(frozen=True)
class Case:
    script: str  # a file of tests/differential
    # DRS may refuse the class instead: the task FAILED, its error holding every fragment
    refused: tuple[str, ...] = ()


CASES = [
    Case("01_binary_trailing_zeros.sql"),
    Case("02_set_statement_ddl.sql"),
    Case("03_xa_transactions.sql"),
    Case("04_client_charset_ddl.sql"),
    Case("05_time_zone_timestamp_ddl.sql"),
    # by design (engine/ddl_apply.py, pre-check storage_engines): history the DR server would stamp itself
    Case("06_system_versioning.sql", refused=("system-versioned table diffdb.v", "WITH SYSTEM VERSIONING")),
    Case("07_sequences.sql"),
    Case("08_exchange_partition.sql"),
    Case("09_big_rows.sql"),
    Case("10_stored_sql_mode.sql"),
    Case("11_dml_forms.sql"),
    Case("12_ddl_forms.sql"),
    Case("13_types.sql"),
    Case("14_foreign_keys.sql"),
    Case("15_session_ddl.sql"),
    # by design (engine/apply.py ddl_database): a DDL touching the task's databases and others
    Case("16_cross_database_ddl.sql", refused=("touches databases of this task", "and others")),
    Case("17_trigger_order.sql"),
]


# ---- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def native(servers: ServerPair) -> Iterator[NativeReplica]:
    replica = NativeReplica.start(servers.base, servers.source)
    yield replica
    replica.stop()


@dataclass
class Env:
    dbs: ServerPair
    native: NativeReplica
    svc: TaskService


@pytest.fixture
def env(dbs: ServerPair, native: NativeReplica, home: Path, memory_keyring: MemoryKeyring) -> Iterator[Env]:
    """The same empty database on all three servers; the replica and a DRS task both following the
    service server from its binlog end on."""
    native.reset()
    for server in (dbs.source, dbs.target, native.server):
        server.sql(f"CREATE DATABASE {DB}")
    native.attach(binlog_end(dbs.source))
    svc = TaskService(home)
    svc.create(parse_spec(make_spec(dbs, NAME, databases=[DB])))
    seed_incremental(svc, dbs, NAME)  # at the same binlog end: nothing was written since
    yield Env(dbs, native, svc)
    svc.close()
    dbs.source.sql("SET GLOBAL read_only = OFF")  # a promote leaves the service server read-only


# ---- the run ----------------------------------------------------------------------------------------


def drs_checkpoint(env: Env) -> tuple[str, int] | None:
    rows = env.dbs.target.sql(
        f"SELECT binlog_file, binlog_pos FROM {ident(META_DATABASE)}.`checkpoint` WHERE task = {lit(NAME)}"
    )
    return (rows[0][0], int(rows[0][1])) if rows and rows[0][0] else None


def wait_for_drs(
    env: Env, end: tuple[str, int], *, refusable: bool, patience: float = DRS_WAIT
) -> tuple[str, str]:
    """("caught up", "") | ("failed", error) | ("retrying", alarm) | ("stalled", where): what DRS did
    with the script. An alarm (automatic retry, reconnect) ends the wait at once unless the case may be
    refused (then the task is expected to fail after its retries)."""
    deadline = time.monotonic() + patience
    last, moved = None, time.monotonic()
    while True:
        record = env.svc.get(NAME)
        if record.status is Status.FAILED:
            return "failed", record.last_error or ""
        if not refusable:
            alarms = [e for e in env.svc.store.logs(NAME, limit=50) if e.level in ("alarm", "error")]
            if alarms:
                return "retrying", f"{alarms[0].component}: {alarms[0].message}"
        pos = drs_checkpoint(env)
        if pos and position_key(*pos) >= position_key(*end):
            return "caught up", ""
        now = time.monotonic()
        if pos != last:
            last, moved = pos, now
        elif now - moved > (3 * STALL if refusable else STALL) or now > deadline:
            return "stalled", f"its checkpoint stays at {pos}; the service server's binlog ends at {end}"
        time.sleep(0.1)


def unstick(env: Env, runner: TaskRunner) -> str:
    """DRS statements hanging on the DR side (say, a lock wait on itself) would keep the runner from
    stopping until their lock wait timeout: the runner is asked to stop and their sessions are
    killed; a server thread that does not end even so (a lock wait ignores KILL) is ended with its
    server, which is started again at once (conftest's crash path). Returns what they were doing."""
    runner.stop()
    target = env.dbs.target
    user = lit(target.endpoint.user)
    where = f"WHERE USER = {user} AND COMMAND NOT IN ('Sleep', 'Binlog Dump') AND TIME >= 2"
    stuck = target.sql(f"SELECT ID, TIME, STATE, LEFT(INFO, 200) FROM information_schema.PROCESSLIST {where}")
    for thread, *_ in stuck:
        target.sql(f"KILL CONNECTION {int(thread)}")
    note = "".join(f"; on the DR side for {t}s in state {st!r}: {info}" for _, t, st, info in stuck)
    ids = ",".join(str(int(r[0])) for r in stuck)
    deadline = time.monotonic() + 3
    while (
        ids and target.sql(f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN ({ids})")[0][0]
    ):
        if time.monotonic() > deadline:
            target.kill()
            target.start(env.dbs.base)
            return note + " (it ignored KILL: the DR server was restarted to end it)"
        time.sleep(0.2)
    return note


def drs_definer(env: Env) -> tuple[str, str]:
    """The definer DRS writes (migrate_definer: the task's own account, 'drs'@'%')."""
    user, host = env.dbs.target.sql(
        f"SELECT User, Host FROM mysql.user WHERE User = {lit(env.dbs.target.endpoint.user)}"
    )[0]
    return user, host


def compare_standby(env: Env, native: Snapshot) -> list[str]:
    drs = snapshot(env.dbs.target, DB, definer_from=drs_definer(env), triggers=False)
    standby = Snapshot(
        {k: v for k, v in native.items.items() if k[0] != "trigger"}, native.tables, native.triggers
    )
    problems = differences(standby, drs)
    for name in drs.triggers:
        problems.append(f"trigger {name}: active on the DRS standby (it fires on every applied row)")
    held = {
        r[0]
        for r in env.dbs.target.sql(
            f"SELECT name FROM {ident(META_DATABASE)}.deferred_object WHERE task = {lit(NAME)} AND kind = 'trigger' AND db = {lit(DB)}"
        )
    }
    for name in sorted(set(native.triggers) - held):
        problems.append(f"trigger {name}: not held for promote on the DRS target")
    for name in sorted(held - set(native.triggers)):
        problems.append(f"trigger {name}: held for promote on the DRS target, gone on the native replica")
    return problems


def compare_promoted_triggers(env: Env, native: Snapshot) -> list[str]:
    """Promote (as a DBA would: it creates the held triggers) and compare the triggers it made."""
    try:
        promote(env.svc, NAME)
    except Exception as exc:  # noqa: BLE001 - reported as a difference, with the others
        return [f"promote failed: {exc}"]
    drs = snapshot(env.dbs.target, DB, definer_from=drs_definer(env))
    mine = Snapshot({k: v for k, v in native.items.items() if k[0] == "trigger"})
    theirs = Snapshot({k: v for k, v in drs.items.items() if k[0] == "trigger"})
    return [f"after promote: {d}" for d in differences(mine, theirs)]


def compare_sequences(env: Env, native: Snapshot) -> list[str]:
    """NEXTVAL continues alike (last: it moves both copies' sequences)."""
    problems = []
    for (kind, name), value in native.items.items():
        if kind != "table type" or value != "SEQUENCE":
            continue
        got = []
        for server in (env.native.server, env.dbs.target):
            try:
                got.append([server.sql(f"SELECT NEXTVAL({ident(DB)}.{ident(name)})")[0][0] for _ in range(3)])
            except Exception as exc:  # noqa: BLE001 - a copy where NEXTVAL fails is a difference
                got.append([f"error: {exc}"])
        if got[0] != got[1]:
            problems.append(f"sequence {name}: NEXTVAL x3 native {got[0]} | DRS {got[1]}")
    return problems


def run_case(env: Env, steps: list[Step], refused: tuple[str, ...]) -> None:
    svc = env.svc
    with RunnerThread(svc, NAME) as rt:
        wait_for(lambda: svc.get(NAME).status is Status.REPLICATING, what="the task to replicate")

        behind: list[str] = []  # DRS did not catch up at a sync: later syncs do not wait for it

        def sync() -> None:
            # both copies take what came so far, so what follows reaches DRS in batches of its own
            # (within one batch DRS applies a net effect per key, which can hide a wrong step)
            now = binlog_end(env.dbs.source)
            env.native.wait_caught_up(now)
            if not behind:
                state, _ = wait_for_drs(env, now, refusable=bool(refused), patience=STALL)
                if state != "caught up":
                    behind.append(state)

        run_script(env.dbs.source, DB, steps, sync)
        end = binlog_end(env.dbs.source)
        env.native.wait_caught_up(end)
        state, detail = wait_for_drs(env, end, refusable=bool(refused))
        if state not in ("caught up", "failed"):
            detail += unstick(env, rt.runner)
    if state == "failed" and refused:
        missing = [f for f in refused if f not in detail]
        assert not missing, f"DRS refused the script but its error does not name {missing}: {detail}"
        return
    native = snapshot(env.native.server, DB)
    problems = compare_standby(env, native)
    if state != "caught up":
        lead = f"DRS {state}: {detail}"
        raise AssertionError(
            "\n".join([lead, "the DRS target at that moment, against the native replica:", *problems])
        )
    if native.triggers:
        problems += compare_promoted_triggers(env, native)
    problems += compare_sequences(env, native)
    assert not problems, f"{len(problems)} difference(s), native replica | DRS target:\n" + "\n".join(
        problems
    )


# ---- cases --------------------------------------------------------------------------------------------


def _random_ids() -> list[int]:
    if os.environ.get("DRS_DIFF_LONG") != "1":
        return []  # long mode off: no such cases at all (nothing is collected, nothing skipped)
    first = int(os.environ.get("DRS_DIFF_SEED", "1"))
    return list(range(first, first + int(os.environ.get("DRS_DIFF_SEEDS", "5"))))


def _extra_scripts() -> list[Case]:
    """DRS_DIFF_SCRIPT=a.sql[:b.sql]: scripts of your own, run like the table's (for triage)."""
    paths = [p for p in os.environ.get("DRS_DIFF_SCRIPT", "").split(":") if p]
    return [Case(str(Path(p).resolve())) for p in paths]


PARAMS = (
    [pytest.param(c, id=c.script.removesuffix(".sql")) for c in CASES]
    + [pytest.param(c, id=f"script-{Path(c.script).stem}") for c in _extra_scripts()]
    + [pytest.param(seed, id=f"random-seed{seed}") for seed in _random_ids()]
)


@pytest.mark.parametrize("case", PARAMS)
def test_differential(env: Env, case: Case | int) -> None:
    if isinstance(case, Case):
        run_case(env, parse_script((SCRIPTS / case.script).read_text(encoding="utf-8")), case.refused)
        return
    classes = os.environ.get("DRS_DIFF_CLASSES")
    steps = random_workload(
        case,
        int(os.environ.get("DRS_DIFF_STATEMENTS", "400")),
        set(classes.split(",")) if classes else default_random_classes(),
    )
    run_case(env, steps, ())


def test_every_script_is_a_case_and_parses() -> None:
    files = sorted(p.name for p in SCRIPTS.glob("*.sql"))
    assert files == sorted(c.script for c in CASES)
    for name in files:
        steps = parse_script((SCRIPTS / name).read_text(encoding="utf-8"))
        assert any(isinstance(s, Statement) for s in steps), name


def test_the_comparison_sees_what_it_must(dbs: ServerPair) -> None:
    """The oracle's own check: equal copies compare equal; a trailing zero byte, a history row's time,
    a routine's or trigger's sql_mode, a view's definition, an event's schedule each show."""
    common = (
        "CREATE TABLE b (k BINARY(4) PRIMARY KEY, v VARCHAR(5))",
        "INSERT INTO b VALUES (X'01000000', 'a')",
        "SET timestamp = 1700000000",
        "CREATE TABLE h (id INT PRIMARY KEY, n INT) WITH SYSTEM VERSIONING",
        "INSERT INTO h VALUES (1, 1)",
        "CREATE VIEW w AS SELECT k FROM b",
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE ON SLAVE DO DELETE FROM b WHERE v IS NULL",
        "SET sql_mode = 'ANSI'",
        "CREATE PROCEDURE p() SELECT 1",
        "CREATE TRIGGER t BEFORE INSERT ON b FOR EACH ROW SET NEW.v = NEW.v || 'x'",
    )
    for server in (dbs.source, dbs.target):
        server.sql(f"CREATE DATABASE {DB}")
        server.sql(*common, database=DB)
    assert differences(snapshot(dbs.source, DB), snapshot(dbs.target, DB)) == []
    dbs.target.sql(
        "UPDATE b SET k = X'01000001'",
        "SET timestamp = 1700000001",
        "UPDATE h SET n = 2",
        "CREATE OR REPLACE VIEW w AS SELECT v FROM b",
        "ALTER EVENT e ON SCHEDULE EVERY 2 DAY",
        "DROP PROCEDURE p",
        "CREATE PROCEDURE p() SELECT 1",
        "DROP TRIGGER t",
        "CREATE TRIGGER t BEFORE INSERT ON b FOR EACH ROW SET NEW.v = NEW.v || 'x'",
        database=DB,
    )
    found = "\n".join(differences(snapshot(dbs.source, DB), snapshot(dbs.target, DB)))
    for expected in ("k=0x01000000) only on the native replica", "row (id='1', ROW_END=", "view w: Create View",
                     "event e: Create Event", "procedure p: sql_mode", "trigger t: sql_mode"):  # fmt: skip
        assert expected in found, found


def test_the_script_splitter() -> None:
    steps = parse_script(
        "-- a comment; not a statement\nSELECT 'a;b', \"c;d\", `e;f`; SELECT 2 -- trailing; comment\n;\n"
        "/* block; */ SELECT 3;\n--@connect c2 charset=latin1\n--@error 1146\nSELECT * FROM nope;\n"
        "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 'x\\';'; END//\nDELIMITER ;\nSELECT 4;\n"
    )
    assert steps == [
        Statement("SELECT 'a;b', \"c;d\", `e;f`", 2),
        Statement("SELECT 2 -- trailing; comment", 2),
        Statement("/* block; */ SELECT 3", 4),
        Directive("connect", ("c2", "charset=latin1"), 5),
        Statement("SELECT * FROM nope", 7, 1146),
        Statement("CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 'x\\';'; END", 9),
        Statement("SELECT 4", 11),
    ]


# ---- long mode: a randomized mix of the classes --------------------------------------------------------

RANDOM_CLASSES = ("binary", "xa", "versioned", "sequence", "partition", "charset", "timezone", "sqlmode", "dml",
                  "routines", "bigrow")  # fmt: skip
# the script of each class: a class whose case DRS may refuse is left out of the default mix
_CLASS_SCRIPT = {"binary": "01", "xa": "03", "versioned": "06", "sequence": "07", "partition": "08", "charset": "04",
                 "timezone": "05", "sqlmode": "02", "dml": "11", "routines": "10", "bigrow": "09"}  # fmt: skip


def default_random_classes() -> set[str]:
    refused = {c.script[:2] for c in CASES if c.refused}
    return {k for k in RANDOM_CLASSES if _CLASS_SCRIPT[k] not in refused}


_SETUP = {
    "binary": ["CREATE TABLE rb (k BINARY(4) NOT NULL PRIMARY KEY, u UUID, ip INET6, v BINARY(6), n INT)",
               "CREATE TABLE rbu (id INT PRIMARY KEY, code BINARY(3) NOT NULL UNIQUE, tag CHAR(4) CHARACTER SET binary)"],
    "xa": ["CREATE TABLE rxa (id INT PRIMARY KEY, v VARCHAR(20))"],
    "versioned": ["CREATE TABLE rv (id INT PRIMARY KEY, val INT) WITH SYSTEM VERSIONING"],
    "sequence": ["CREATE SEQUENCE rsq START WITH 1 INCREMENT BY 3 MAXVALUE 1000000 CACHE 5 CYCLE",
                 "CREATE TABLE rsqt (id INT NOT NULL DEFAULT NEXTVAL(rsq) PRIMARY KEY, v INT)"],
    "partition": ["CREATE TABLE rp (id INT NOT NULL PRIMARY KEY, v VARCHAR(20)) PARTITION BY RANGE (id) "
                  "(PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN (1000), PARTITION pm VALUES LESS THAN MAXVALUE)",
                  "CREATE TABLE rx (id INT NOT NULL PRIMARY KEY, v VARCHAR(20))"],
    "charset": ["CREATE TABLE rc (id INT PRIMARY KEY, v VARCHAR(20)) DEFAULT CHARSET=utf8mb4"],
    "timezone": ["CREATE TABLE rtz (id INT PRIMARY KEY, ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, "
                 "d DATETIME DEFAULT NOW())"],
    "sqlmode": ["CREATE TABLE rsm (id INT PRIMARY KEY, v VARCHAR(30))"],
    "dml": ["CREATE TABLE ra (id INT PRIMARY KEY, v INT, note VARCHAR(20), e ENUM('a','b','c'), s SET('x','y'), "
            "bt BIT(9), emo VARCHAR(10), g INT AS (v * 2) VIRTUAL, gs VARCHAR(30) AS (CONCAT(note, emo)) STORED) "
            "DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE rbb (id INT PRIMARY KEY, a_id INT, w INT, KEY (a_id))",
            "CREATE TABLE rpar (id INT PRIMARY KEY)",
            "CREATE TABLE rch (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES rpar (id) ON DELETE CASCADE ON UPDATE CASCADE)"],
    "routines": ["CREATE TABLE rr (id INT PRIMARY KEY, v VARCHAR(30))"],
    "bigrow": ["CREATE TABLE rbig (id INT PRIMARY KEY, b LONGBLOB, n INT)"],
}  # fmt: skip

_MODES = ["", "ANSI,NO_BACKSLASH_ESCAPES", "TRADITIONAL", "PIPES_AS_CONCAT", "EMPTY_STRING_IS_NULL",
          "STRICT_ALL_TABLES,NO_ZERO_DATE", "ORACLE", "DEFAULT"]  # fmt: skip


class _Mix:
    """State of one randomized workload: which keys exist, so statements are valid on the service side."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.steps: list[Step] = []
        self.keys: dict[str, set] = {}
        self.ts = 1_700_000_000  # every session clock is pinned and only moves forward (history rows)
        self.xa_pending: list[str] = []
        self.xa_n = 0
        self.cols: dict[str, int] = {}
        self.big = 0

    def sql(self, *statements: str) -> None:
        self.steps.extend(Statement(s, 0) for s in statements)

    def on(self, conn: str, *statements: str) -> None:
        self.steps.append(Directive("connection", (conn,), 0))
        self.sql(*statements)
        self.steps.append(Directive("connection", ("default",), 0))

    def fresh(self, table: str, make) -> object:
        keys = self.keys.setdefault(table, set())
        while True:
            k = make()
            if k not in keys:
                keys.add(k)
                return k

    def existing(self, table: str) -> object | None:
        keys = self.keys.get(table)
        return self.rng.choice(sorted(keys)) if keys else None

    def tick(self) -> None:
        self.ts += self.rng.randint(1, 100)
        self.sql(f"SET timestamp = {self.ts}.{self.rng.randint(0, 999999):06d}")

    def binary(self, size: int) -> str:
        r = self.rng
        head = bytes(r.randrange(256) for _ in range(r.randint(0, size)))
        return "X'" + (head + b"\0" * (size - len(head))).hex() + "'"  # mostly ending in zero bytes

    def uuid(self) -> str:
        r = self.rng
        # version nibbles 0-5 only: newer servers refuse others
        parts = [f"{r.choice([0, 1, r.randrange(1 << 32)]):08x}", f"{r.choice([0, r.randrange(1 << 16)]):04x}",
                 r.choice(["0000", "1026", "3333", "4abc"]), r.choice(["0000", "9564", "4444", "8000"]),
                 f"{r.choice([0, 1, r.randrange(1 << 48)]):012x}"]  # fmt: skip
        return "'" + "-".join(parts) + "'"

    def inet6(self) -> str:
        return (
            "'"
            + self.rng.choice(
                ["::", "1::", "::1", "2001:db8::", "fe80::1:0", "::ffff:10.0.0.0", "ab:cd::ef00"]
            )
            + "'"
        )


def random_workload(seed: int, statements: int, classes: set[str]) -> list[Step]:
    """About `statements` statements of the chosen classes, interleaved at random (reproducible by seed)."""
    unknown = classes - set(RANDOM_CLASSES)
    assert not unknown, f"DRS_DIFF_CLASSES: unknown {sorted(unknown)}; known: {', '.join(RANDOM_CLASSES)}"
    rng = random.Random(seed)
    mix = _Mix(rng)
    chosen = sorted(classes)
    mix.tick()
    for cls in chosen:
        mix.sql(*_SETUP[cls])
    mix.steps += [Directive("connect", ("xa",), 0), Directive("connect", ("l1", "charset=latin1"), 0),
                  Directive("connect", ("cyr", "charset=cp1251"), 0), Directive("connection", ("default",), 0)]  # fmt: skip
    mix.on("xa", f"SET timestamp = {mix.ts}")
    while len([s for s in mix.steps if isinstance(s, Statement)]) < statements:
        _GENERATORS[rng.choice(chosen)](mix)
        if not mix.xa_pending and rng.random() < 0.08:
            # now and then DRS gets what follows in a batch of its own (no net effect across it);
            # not while an XA transaction is prepared: neither copy can pass it until it ends
            mix.steps.append(Directive("sync", (), 0))
    for xid in mix.xa_pending:  # nothing left prepared: both copies must know how each ended
        mix.sql(f"XA {rng.choice(['COMMIT', 'ROLLBACK'])} '{xid}'")
    mix.sql("SET timestamp = DEFAULT")
    return mix.steps


def _gen_binary(m: _Mix) -> None:
    r = m.rng
    op = r.random()
    if op < 0.4 or not m.keys.get("rb"):
        k = m.fresh("rb", lambda: m.binary(4))
        m.sql(f"INSERT INTO rb VALUES ({k}, {m.uuid()}, {m.inet6()}, {m.binary(6)}, {r.randint(0, 99)})")
        code = m.fresh("rbu", lambda: m.binary(3))
        m.sql(f"INSERT INTO rbu VALUES ({len(m.keys['rbu'])}, {code}, {m.binary(4)})")
    elif op < 0.7:
        m.sql(f"UPDATE rb SET n = n + 1, v = {m.binary(6)}, u = {m.uuid()}, ip = {m.inet6()} WHERE k = {m.existing('rb')}",
              f"UPDATE rbu SET tag = {m.binary(4)} WHERE id = {r.randint(1, len(m.keys['rbu']))}")  # fmt: skip
    elif op < 0.85:
        k = m.existing("rb")
        m.keys["rb"].discard(k)
        m.sql(f"DELETE FROM rb WHERE k = {k}")
    else:
        old = m.existing("rb")
        m.keys["rb"].discard(old)
        m.sql(f"UPDATE rb SET k = {m.fresh('rb', lambda: m.binary(4))} WHERE k = {old}")


def _gen_xa(m: _Mix) -> None:
    r = m.rng
    if m.xa_pending and r.random() < 0.3:
        xid = m.xa_pending.pop(r.randrange(len(m.xa_pending)))
        m.sql(f"XA {r.choice(['COMMIT', 'ROLLBACK'])} '{xid}'")  # from another connection than the preparer's
        return
    m.xa_n += 1
    xid = f"x{m.xa_n}"
    ids = [m.fresh("rxa", lambda: r.randint(1, 10**6)) for _ in range(r.randint(1, 3))]
    body = [f"INSERT INTO rxa VALUES ({i}, 'xa {xid}')" for i in ids] + [
        f"UPDATE rxa SET v = 'upd {xid}' WHERE id = {ids[0]}"
    ]
    end = r.choice(["commit", "rollback", "one phase", "later", "rollback unprepared"])
    if end == "one phase":
        m.on("xa", f"XA START '{xid}'", *body, f"XA END '{xid}'", f"XA COMMIT '{xid}' ONE PHASE")
    elif end == "rollback unprepared":
        m.on("xa", f"XA START '{xid}'", *body, f"XA END '{xid}'", f"XA ROLLBACK '{xid}'")
    elif end == "later":
        # a prepared transaction outlives its connection (10.5+); others commit meanwhile
        m.on("xa", f"XA START '{xid}'", *body, f"XA END '{xid}'", f"XA PREPARE '{xid}'")
        m.steps += [
            Directive("disconnect", ("xa",), 0),
            Directive("connect", ("xa",), 0),
            Directive("connection", ("default",), 0),
        ]
        m.on("xa", f"SET timestamp = {m.ts}")
        m.xa_pending.append(xid)
    else:
        m.on(
            "xa",
            f"XA START '{xid}'",
            *body,
            f"XA END '{xid}'",
            f"XA PREPARE '{xid}'",
            f"XA {end.upper()} '{xid}'",
        )


def _gen_versioned(m: _Mix) -> None:
    r = m.rng
    m.tick()
    op = r.random()
    if op < 0.4 or not m.keys.get("rv"):
        m.sql(f"INSERT INTO rv VALUES ({m.fresh('rv', lambda: r.randint(1, 10**6))}, {r.randint(0, 99)})")
    elif op < 0.8:
        m.sql(f"UPDATE rv SET val = val + 1 WHERE id = {m.existing('rv')}")
    else:
        k = m.existing("rv")
        m.keys["rv"].discard(k)
        m.sql(f"DELETE FROM rv WHERE id = {k}")


def _gen_sequence(m: _Mix) -> None:
    r = m.rng
    op = r.random()
    if op < 0.4:
        m.sql("SELECT NEXTVAL(rsq)")
    elif op < 0.7:
        m.sql(f"INSERT IGNORE INTO rsqt (v) VALUES ({r.randint(0, 9)})")
    elif op < 0.85:
        m.sql(f"SELECT SETVAL(rsq, {r.randint(1, 10**5)})")
    else:
        m.sql(r.choice([f"ALTER SEQUENCE rsq RESTART WITH {r.randint(1, 1000)}", f"ALTER SEQUENCE rsq INCREMENT BY {r.randint(1, 9)}",
                        f"ALTER SEQUENCE rsq CACHE {r.choice([0, 1, 5, 100])}"]))  # fmt: skip


def _gen_partition(m: _Mix) -> None:
    r = m.rng
    op = r.random()
    if op < 0.35:
        m.sql(f"INSERT IGNORE INTO rp VALUES ({r.randint(0, 2000)}, 'p{r.randint(0, 99)}')")
    elif op < 0.6:
        m.sql(f"INSERT IGNORE INTO rx VALUES ({r.randint(0, 99)}, 'x{r.randint(0, 99)}')")  # fits p0
    elif op < 0.75:
        m.sql(f"UPDATE rp SET v = CONCAT(v, '+') WHERE id BETWEEN {(a := r.randint(0, 2000))} AND {a + 50}",
              f"DELETE FROM rx WHERE id = {r.randint(0, 99)}")  # fmt: skip
    elif op < 0.95:
        m.sql("ALTER TABLE rp EXCHANGE PARTITION p0 WITH TABLE rx")
    else:
        m.sql("ALTER TABLE rp TRUNCATE PARTITION p1")


_LATIN = ["café", "Grüße", "naïve", "Ærø", "ÿ€"]
_CYRILLIC = ["Привет", "мир", "ёж"]


def _gen_charset(m: _Mix) -> None:
    r = m.rng
    n = m.cols.get("rc", 0)
    op = r.random()
    if op < 0.25 and n < 12:
        m.cols["rc"] = n + 1
        conn, words = r.choice([("l1", _LATIN), ("cyr", _CYRILLIC)])
        m.on(conn, f"ALTER TABLE rc ADD COLUMN `c{n}_{r.choice(words)}` VARCHAR(20) DEFAULT '{r.choice(words)}' "
                   f"COMMENT '{r.choice(words)}'")  # fmt: skip
    else:
        conn, words = r.choice([("l1", _LATIN), ("cyr", _CYRILLIC)])
        m.on(
            conn,
            f"INSERT INTO rc (id, v) VALUES ({m.fresh('rc', lambda: r.randint(1, 10**6))}, '{r.choice(words)}')",
        )


def _gen_timezone(m: _Mix) -> None:
    r = m.rng
    m.sql(f"SET time_zone = '{r.choice(['+00:00', '+05:00', '-03:30', '+13:00', 'SYSTEM'])}'")
    m.tick()
    n = m.cols.get("rtz", 0)
    if r.random() < 0.15 and n < 8:
        m.cols["rtz"] = n + 1
        m.sql(
            f"ALTER TABLE rtz ADD COLUMN t{n} TIMESTAMP NOT NULL DEFAULT {r.choice(['CURRENT_TIMESTAMP', repr('2024-03-01 10:00:00')])}"
        )
    else:
        m.sql(f"INSERT INTO rtz (id) VALUES ({m.fresh('rtz', lambda: r.randint(1, 10**6))})")


def _gen_sqlmode(m: _Mix) -> None:
    r = m.rng
    mode = r.choice(_MODES[:-1])
    n = m.cols.get("rsm", 0)
    if r.random() < 0.3 and n < 10:
        m.cols["rsm"] = n + 1
        m.sql(
            f"SET STATEMENT sql_mode='{mode}' FOR ALTER TABLE rsm ADD COLUMN s{n} VARCHAR(10) DEFAULT 'd{n}'"
        )
    elif r.random() < 0.3:
        m.sql(
            f"SET STATEMENT sql_mode='{mode}' FOR CREATE OR REPLACE TABLE rsm_{r.randint(0, 3)} (id INT PRIMARY KEY, d DATE, v VARCHAR(5) DEFAULT '')"
        )
    else:
        m.sql(f"INSERT INTO rsm (id, v) VALUES ({m.fresh('rsm', lambda: r.randint(1, 10**6))}, 'v')")


def _gen_dml(m: _Mix) -> None:
    r = m.rng
    op = r.random()
    if op < 0.3 or not m.keys.get("ra"):
        i = m.fresh("ra", lambda: r.randint(1, 10**4))
        m.sql(f"INSERT INTO ra (id, v, note, e, s, bt, emo) VALUES ({i}, {r.randint(0, 99)}, 'n{i}', '{r.choice('abc')}', "
              f"'{r.choice(['', 'x', 'x,y'])}', b'{r.randint(0, 511):b}', '{r.choice(['😀', '🚀', 'ä', ''])}')",
              f"INSERT INTO rbb VALUES ({i}, {r.randint(1, 10**4)}, {r.randint(0, 9)})",
              f"INSERT IGNORE INTO rpar VALUES ({i % 50})", f"INSERT IGNORE INTO rch VALUES ({i}, {i % 50})")  # fmt: skip
    elif op < 0.45:
        m.sql("UPDATE ra JOIN rbb ON rbb.a_id = ra.id SET ra.v = ra.v + rbb.w, rbb.w = rbb.w + 1")
    elif op < 0.55:
        m.sql(f"REPLACE INTO ra (id, v, note) VALUES ({m.existing('ra')}, {r.randint(0, 9)}, 'replaced')")
    elif op < 0.65:
        m.sql(
            f"INSERT INTO ra (id, v) VALUES ({m.existing('ra')}, 1) ON DUPLICATE KEY UPDATE v = v + 1, note = CONCAT(IFNULL(note, ''), '+')"
        )
    elif op < 0.75:
        p = r.randint(0, 49)
        m.sql(
            f"UPDATE IGNORE rpar SET id = id + 50 WHERE id = {p}"
            if r.random() < 0.5
            else f"DELETE FROM rpar WHERE id = {p}"
        )
    elif op < 0.85:
        k = m.existing("ra")
        m.keys["ra"].discard(k)
        m.sql(f"DELETE ra, rbb FROM ra LEFT JOIN rbb ON rbb.id = ra.id WHERE ra.id = {k}")
    else:
        k = m.existing("ra")
        m.sql("BEGIN", f"UPDATE ra SET e = 'b', s = 'y', bt = bt + 1 WHERE id = {k}", "SAVEPOINT s1",
              "UPDATE rbb SET w = 0", r.choice(["ROLLBACK TO SAVEPOINT s1", "RELEASE SAVEPOINT s1"]), r.choice(["COMMIT", "ROLLBACK"]))  # fmt: skip


def _gen_routines(m: _Mix) -> None:
    r = m.rng
    mode = r.choice(_MODES)
    m.sql(f"SET sql_mode = {'DEFAULT' if mode == 'DEFAULT' else repr(mode)}")
    n = r.randint(0, 3)
    op = r.random()
    if mode == "ORACLE":
        m.sql(f"CREATE OR REPLACE PROCEDURE p{n}(a IN NUMBER) AS BEGIN INSERT INTO rr VALUES (a, 'ora'); END")
    elif op < 0.3:
        m.sql(f"CREATE OR REPLACE PROCEDURE p{n}(IN a INT) INSERT INTO rr VALUES (a, CONCAT('p', a))")
    elif op < 0.5:
        m.sql(
            f"CREATE OR REPLACE FUNCTION f{n}(a INT) RETURNS VARCHAR(30) DETERMINISTIC RETURN CONCAT('f', a, '')"
        )
    elif op < 0.7:
        m.sql(
            f"CREATE OR REPLACE TRIGGER tr{n} BEFORE INSERT ON rr FOR EACH ROW SET NEW.v = CONCAT(NEW.v, '-t{n}')"
        )
    elif op < 0.85:
        m.sql(
            f"CREATE OR REPLACE EVENT ev{n} ON SCHEDULE EVERY {r.randint(1, 9)} HOUR DO DELETE FROM rr WHERE id < 0"
        )
    else:
        kind, prefix = r.choice([("PROCEDURE", "p"), ("FUNCTION", "f"), ("TRIGGER", "tr"), ("EVENT", "ev")])
        m.sql(f"DROP {kind} IF EXISTS {prefix}{n}")
    m.sql(
        "SET sql_mode = DEFAULT",
        f"INSERT INTO rr VALUES ({m.fresh('rr', lambda: r.randint(1, 10**6))}, 'row')",
    )


def _gen_bigrow(m: _Mix) -> None:
    r = m.rng
    m.big += 1
    if m.big > 4:  # a few rows of ~9 MB are enough (an update of one is an 18 MB event); then small ones
        m.sql(f"INSERT INTO rbig VALUES ({m.big}, X'00', 0)")
    elif m.big % 2:
        m.sql(
            f"INSERT INTO rbig VALUES ({m.big}, REPEAT(UNHEX(SHA2('{r.random()}', 512)), {r.randint(130_000, 160_000)}), 0)"
        )
    else:
        m.sql(f"UPDATE rbig SET n = n + 1 WHERE id = {m.big - 1}")


_GENERATORS = {
    "binary": _gen_binary, "xa": _gen_xa, "versioned": _gen_versioned, "sequence": _gen_sequence,
    "partition": _gen_partition, "charset": _gen_charset, "timezone": _gen_timezone, "sqlmode": _gen_sqlmode,
    "dml": _gen_dml, "routines": _gen_routines, "bigrow": _gen_bigrow,
}  # fmt: skip
