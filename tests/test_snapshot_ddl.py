"""DDL on the service side racing the initial copy (issue 10): the schema copied is the snapshot's,
the copy does not fail, the DDL reaches the DR side exactly once through the stream, and the DBA's
DML is never held up while a DDL waits for the copy.

The copy is paused deterministically mid-way by a throttle that waits for the test (no timing), and
the DDL is issued while it is paused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from conftest import make_spec
from dr_helpers import assert_databases_identical, wait_for
from test_incremental import RunnerThread

from engine import schema as sch
from engine import snapshot
from engine.errors import ReplicationError
from engine.snapshot import CopyInterrupted, run_initial_copy
from engine.spec import parse_spec
from engine.status import Status
from engine.tasks import TaskService
from engine.throttle import Throttle

BIG_ROWS = 300_000
WAITING_STATES = ("Waiting for backup lock",)


class GateThrottle(Throttle):
    """No flow limit; the first reader to pass `pause_after` bytes waits until the test resumes it."""

    def __init__(self, pause_after: int = 256 * 1024):
        super().__init__(None)
        self.pause_after = pause_after
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.stop: threading.Event | None = None

    def consume(self, nbytes: int) -> None:
        super().consume(nbytes)
        if self.bytes_consumed >= self.pause_after and not self.paused.is_set():
            self.paused.set()
            while not self.resume.wait(0.1):  # a stop (or a failed test) must not hang the copy
                if self.stop is not None and self.stop.is_set():
                    return


def make_shop(src) -> None:
    src.sql(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.big (id INT PRIMARY KEY, pad VARCHAR(40))",
        f"INSERT INTO shop.big SELECT seq, CONCAT('row ', seq) FROM mysql.seq_1_to_{BIG_ROWS}",
        "CREATE TABLE shop.small (id INT PRIMARY KEY, v INT, w VARCHAR(10))",
        "INSERT INTO shop.small SELECT seq, seq * 10, 'w' FROM mysql.seq_1_to_1000",
        "ANALYZE TABLE shop.big, shop.small",
    )


class DdlThread:
    """Runs DDL statements on the service server in the background (they may wait for the copy)."""

    def __init__(self, src, statements: list[str]):
        self.conn = src.root()
        self.statements = statements
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.conn.cursor() as cur:
                for st in self.statements:
                    cur.execute(st)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def state(self, src) -> str | None:
        rows = src.sql(f"SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = {self.conn.thread_id()}")
        return rows[0][0] if rows else None

    def waiting_or_done(self, src) -> bool:
        return self.done or self.state(src) in WAITING_STATES

    def join(self) -> None:
        self.thread.join(120)
        assert self.done, "the DDL never finished"
        self.conn.close()
        assert self.error is None, self.error


def dml(src, *statements: str) -> None:
    """Fails (1205) rather than waits if a metadata or row lock holds it up."""
    conn = src.root()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 10, innodb_lock_wait_timeout = 10")
            for st in statements:
                cur.execute(st)
    finally:
        conn.close()


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator[GateThrottle]:
    """The runner's initial copy goes serially through a GateThrottle."""
    gate = GateThrottle()
    real = snapshot.run_initial_copy

    def copy(spec, **kwargs):
        gate.stop = kwargs.get("stop")
        return real(spec, **{**kwargs, "parallel": 1, "throttle": gate})

    monkeypatch.setattr(snapshot, "run_initial_copy", copy)
    yield gate
    gate.resume.set()


DDL_CASES = {
    "add_column": ["ALTER TABLE shop.small ADD COLUMN c INT DEFAULT 7"],
    "drop_column": ["ALTER TABLE shop.small DROP COLUMN w"],
    "rename_table": ["RENAME TABLE shop.small TO shop.small_renamed"],
    "create_index": ["CREATE INDEX by_v ON shop.small (v)"],
    "rebuild": ["ALTER TABLE shop.small ENGINE=InnoDB, ALGORITHM=COPY"],
}


def ddl_logs(svc: TaskService, name: str) -> list[str]:
    return [e.message for e in svc.store.logs(name) if e.component == "apply" and "DDL applied" in e.message]


def run_ddl_during_copy(dbs, service: TaskService, gate: GateThrottle, statements: list[str],
                        before: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Create and run the task; issue `statements` while the copy is paused; check the DR side ends
    identical with every DDL applied once and the task never failing."""
    src = dbs.source
    service.create(parse_spec(make_spec(dbs, "ddl-dr", databases=["shop"])))
    with RunnerThread(service, "ddl-dr") as rt:
        wait_for(gate.paused.is_set, 120, 0.05, "the copy to reach the gate")
        ddl = DdlThread(src, statements)
        wait_for(lambda: ddl.waiting_or_done(src), 60, 0.05, "the DDL to run or wait")
        assert ddl.state(src) == "Waiting for backup lock"  # held back until the copy's reads are done
        # the DBA's writes go on while the DDL waits
        dml(
            src,
            "INSERT INTO shop.big VALUES (0, 'during the copy')",
            "UPDATE shop.big SET pad = 'upd' WHERE id = 7",
        )
        if before:
            before()
        gate.resume.set()
        ddl.join()
        wait_for(lambda: service.get("ddl-dr").status is Status.REPLICATING, 180, 0.1, "replicating")
        small = "small_renamed" if any("RENAME" in s for s in statements) else "small"
        dml(src, f"INSERT INTO shop.{small} (id, v) VALUES (5000, 1)", "DELETE FROM shop.big WHERE id = 9")
        wait_for(lambda: dbs.target.sql(f"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop' "
                                         f"AND TABLE_NAME = '{small}'") == [(1,)]
                 and dbs.target.sql(f"SELECT COUNT(*) FROM shop.{small} WHERE id = 5000") == [(1,)], 60, 0.1, "the stream")  # fmt: skip
        assert_databases_identical(src, dbs.target, ["shop"])
        assert_same_columns(dbs, "shop")
        assert rt.thread.is_alive()
    logs = service.store.logs("ddl-dr")
    assert not [e.message for e in logs if e.level in ("error", "alarm")]
    applied = ddl_logs(service, "ddl-dr")
    assert len(applied) == len(statements), applied


def assert_same_columns(dbs, db: str) -> None:
    q = (f"SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, COLUMN_DEFAULT FROM information_schema.COLUMNS "
         f"WHERE TABLE_SCHEMA = '{db}' ORDER BY 1, ORDINAL_POSITION")  # fmt: skip
    assert dbs.source.sql(q) == dbs.target.sql(q)
    q = (f"SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = '{db}' "
         "ORDER BY 1, 2, SEQ_IN_INDEX")  # fmt: skip
    assert dbs.source.sql(q) == dbs.target.sql(q)


@pytest.mark.parametrize("case", sorted(DDL_CASES))
def test_ddl_on_one_table_while_another_copies(dbs, service, gated, case):
    make_shop(dbs.source)
    run_ddl_during_copy(dbs, service, gated, DDL_CASES[case])


def test_ddl_between_the_snapshot_and_the_schema_read(dbs, service, monkeypatch):
    """The worst moment: DDL right after the snapshot lock is released, before the schema is read."""
    src = dbs.source
    make_shop(src)
    real = sch.read_schema
    issued: list[DdlThread] = []

    def read_schema(conn, db):
        if not issued:
            issued.append(DdlThread(src, ["ALTER TABLE shop.small ADD COLUMN c INT DEFAULT 7"]))
            wait_for(lambda: issued[0].waiting_or_done(src), 60, 0.05, "the DDL to run or wait")
            assert issued[0].state(src) == "Waiting for backup lock"
        return real(conn, db)

    monkeypatch.setattr(sch, "read_schema", read_schema)
    service.create(parse_spec(make_spec(dbs, "ddl-dr", databases=["shop"])))
    with RunnerThread(service, "ddl-dr") as rt:
        wait_for(lambda: service.get("ddl-dr").status is Status.REPLICATING, 180, 0.1, "replicating")
        issued[0].join()
        dml(src, "INSERT INTO shop.small (id, v) VALUES (5000, 1)")
        wait_for(
            lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.small WHERE id = 5000") == [(1,)],
            60,
            0.1,
            "stream",
        )
        assert_databases_identical(src, dbs.target, ["shop"])
        assert_same_columns(dbs, "shop")
        assert rt.thread.is_alive()
    assert not [e.message for e in service.store.logs("ddl-dr") if e.level in ("error", "alarm")]
    assert len(ddl_logs(service, "ddl-dr")) == 1


# ---- the lock itself, on the real server ------------------------------------------------------


def copy_in_thread(spec, gate: GateThrottle, stop: threading.Event | None = None):
    out: dict[str, object] = {}
    logs: list[tuple[str, str, str]] = []

    def run() -> None:
        try:
            out["result"] = run_initial_copy(
                spec, parallel=1, throttle=gate, stop=stop, log=lambda *a: logs.append(a)
            )
        except BaseException as exc:  # noqa: BLE001 - checked by the test
            out["error"] = exc

    gate.stop = stop
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out, logs


def test_ddl_waits_for_the_copy_while_dml_goes_on(dbs):
    """While the copy reads, an ALTER waits for it (it is applied later by the stream), and the DBA's
    INSERT/UPDATE/DELETE on the very table the ALTER waits for are not held up."""
    src, tgt = dbs.source, dbs.target
    make_shop(src)
    gate = GateThrottle()
    thread, out, logs = copy_in_thread(parse_spec(make_spec(dbs, databases=["shop"])), gate)
    wait_for(gate.paused.is_set, 120, 0.05, "the copy to reach the gate")
    ddl = DdlThread(src, ["ALTER TABLE shop.small ADD COLUMN c INT DEFAULT 7"])
    wait_for(lambda: ddl.waiting_or_done(src), 60, 0.05, "the DDL to wait")
    assert ddl.state(src) == "Waiting for backup lock"
    # every statement below fails with 1205 if a lock queued behind the waiting ALTER holds it up
    dml(
        src,
        "INSERT INTO shop.small (id, v) VALUES (2000, 1)",
        "UPDATE shop.small SET v = v + 1 WHERE id < 50",
        "DELETE FROM shop.small WHERE id = 3",
        "INSERT INTO shop.big VALUES (0, 'x')",
        "SELECT COUNT(*) FROM shop.small",
    )
    assert not ddl.done
    gate.resume.set()
    thread.join(120)
    ddl.join()
    result = out["result"]
    assert isinstance(result, snapshot.SnapshotResult)
    # the DR side has the snapshot's schema; the ALTER comes after the position in the binlog, once
    assert [r[0] for r in tgt.sql("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'shop' "
                                  "AND TABLE_NAME = 'small' ORDER BY ORDINAL_POSITION")] == ["id", "v", "w"]  # fmt: skip
    assert tgt.sql("SELECT COUNT(*) FROM shop.small") == [(1000,)]
    after = src.sql(f"SHOW BINLOG EVENTS IN '{result.position.file}' FROM {result.position.pos}")
    assert sum("ADD COLUMN c" in (r[5] or "") for r in after) == 1
    assert any(level == "info" and "BACKUP STAGE BLOCK_DDL" in m for level, _c, m in logs)


def test_ddl_goes_on_as_soon_as_the_reads_are_done(dbs, monkeypatch):
    """After the last read (indexes, views and routines still to build on the DR side) neither the
    backup lock nor the readers' table locks hold an ALTER, or the DML queued behind it."""
    src = dbs.source
    make_shop(src)
    src.sql("CREATE PROCEDURE shop.p() SELECT 1")
    seen: list[str] = []
    real = sch.create_routines

    def create_routines(*args, **kwargs):
        if not seen:  # fails with 1205 if anything still holds it
            dml(
                src,
                "ALTER TABLE shop.small ADD COLUMN late INT",
                "INSERT INTO shop.small (id, v) VALUES (3000, 3)",
            )
            seen.append("altered")
        return real(*args, **kwargs)

    monkeypatch.setattr(sch, "create_routines", create_routines)
    logs: list[tuple[str, str, str]] = []
    result = run_initial_copy(parse_spec(make_spec(dbs, databases=["shop"])), log=lambda *a: logs.append(a))
    assert seen == ["altered"]
    after = src.sql(f"SHOW BINLOG EVENTS IN '{result.position.file}' FROM {result.position.pos}")
    assert sum("ADD COLUMN late" in (r[5] or "") for r in after) == 1
    messages = [m for _level, _c, m in logs]
    assert any("goes on again" in m for m in messages)


def test_stop_releases_the_ddl_block(dbs):
    src = dbs.source
    make_shop(src)
    gate, stop = GateThrottle(), threading.Event()
    thread, out, _logs = copy_in_thread(parse_spec(make_spec(dbs, databases=["shop"])), gate, stop)
    wait_for(gate.paused.is_set, 120, 0.05, "the copy to reach the gate")
    ddl = DdlThread(src, ["ALTER TABLE shop.small ADD COLUMN c INT DEFAULT 7"])
    wait_for(lambda: ddl.waiting_or_done(src), 60, 0.05, "the DDL to wait")
    stop.set()
    thread.join(120)
    assert isinstance(out.get("error"), CopyInterrupted)
    ddl.join()  # the block went with the copy


def test_a_failed_copy_releases_the_ddl_block(dbs):
    src, tgt = dbs.source, dbs.target
    make_shop(src)
    src.sql(
        "CREATE TABLE shop.wide (id INT PRIMARY KEY, doc BLOB)",
        "INSERT INTO shop.wide VALUES (1, REPEAT('b', 65000))",  # over the packet even as binary
    )
    old = tgt.sql("SELECT @@GLOBAL.max_allowed_packet")[0][0]
    gate = GateThrottle()
    try:
        tgt.sql("SET GLOBAL max_allowed_packet = 65536")  # shop.wide cannot be written: the copy fails
        thread, out, _logs = copy_in_thread(parse_spec(make_spec(dbs, databases=["shop"])), gate)
        wait_for(gate.paused.is_set, 120, 0.05, "the copy to reach the gate")
        ddl = DdlThread(src, ["ALTER TABLE shop.small ADD COLUMN c INT DEFAULT 7"])
        wait_for(lambda: ddl.waiting_or_done(src), 60, 0.05, "the DDL to wait")
        gate.resume.set()
        thread.join(120)
    finally:
        tgt.sql(f"SET GLOBAL max_allowed_packet = {old}")
    assert isinstance(out.get("error"), ReplicationError)
    ddl.join()


def test_non_transactional_tables_keep_ddl_unblocked(dbs):
    """BLOCK_DDL would also hold up writes to MyISAM tables (anywhere on the server): then DDL is not
    blocked, and the DR log says so."""
    src, tgt = dbs.source, dbs.target
    src.sql(
        "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)", "INSERT INTO shop.t VALUES (1)",
        "CREATE DATABASE legacy", "CREATE TABLE legacy.hits (id INT PRIMARY KEY) ENGINE=MyISAM",
    )  # fmt: skip
    gate = GateThrottle(pause_after=1)
    thread, out, logs = copy_in_thread(parse_spec(make_spec(dbs, databases=["shop"])), gate)
    wait_for(gate.paused.is_set, 120, 0.05, "the copy to reach the gate")
    dml(src, "INSERT INTO legacy.hits VALUES (1)")  # 1205 if the copy held MyISAM writes up
    gate.resume.set()
    thread.join(120)
    assert "result" in out, out
    warnings = [m for level, _c, m in logs if level == "warning" and "DDL" in m]
    assert len(warnings) == 1 and "legacy.hits" in warnings[0]
    assert tgt.sql("SELECT id FROM shop.t") == [(1,)]


def test_without_reload_the_dr_log_warns_about_ddl(dbs):
    src = dbs.source
    src.sql(
        "CREATE DATABASE inv", "CREATE TABLE inv.items (id INT PRIMARY KEY)", "INSERT INTO inv.items VALUES (1)",
        "CREATE USER 'drs_t_noreload'@'%' IDENTIFIED BY 'Pw-noreload-1'",
        "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, BINLOG MONITOR ON *.* TO 'drs_t_noreload'@'%'",
    )  # fmt: skip
    raw = make_spec(dbs, databases=["inv"])
    raw["source"] = {**raw["source"], "user": "drs_t_noreload", "password": "Pw-noreload-1"}
    logs: list[tuple[str, str, str]] = []
    run_initial_copy(parse_spec(raw), log=lambda *a: logs.append(a))
    assert any(level == "warning" and "DDL" in m and "RELOAD" in m for level, _c, m in logs)
