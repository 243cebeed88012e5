"""Server and network faults under a running `drs run` (issue 11, part 2) and DDL under write load.

Every case ends one of two ways, never in a silent stall nor a traceback:
- it recovers by itself and the DR side catches up with ZERO differences (a full value comparison:
  `drs compare NAME --level values --json` exits 0, and the tests' own byte-exact oracle agrees), and
  while the outage lasts `drs task show NAME --json` says which side is unreachable;
- or the task goes to `failed` with an error that names the cause, the side and the fix.

The faults: the service server restarted mid-stream; the DR server stopped for a while (15 s; 60 s in
the long mode) while changes keep coming; a TCP proxy (tests/tcp_proxy.py) between the task and each
server that drops every connection and stalls (during the initial copy and while streaming);
credentials revoked on the service side (password changed, REPLICATION SLAVE revoked); the DR copy of
a database dropped on the DR side; the binlog needed for resume purged.

Long mode (DRS_FAULTS_LONG=1; see docs/reliability.md): a 60 s DR outage, stalls longer than the
runner's dead-stream limit (engine.runner.STREAM_SILENCE), a binlog connection whose path goes dead for
good while new connections work, three rounds of DDL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from conftest import MariaDBServer, make_spec
from dr_helpers import assert_databases_identical, wait_for
from tcp_proxy import TcpProxy
from test_runner_e2e import drs, show, start_run

from engine import health
from engine.runner import STREAM_SILENCE
from engine.store import Store

LONG = os.environ.get("DRS_FAULTS_LONG") == "1"

SERVICE, DR = "the service database", "the DR database"  # as engine.health names the sides


# ---- the CLI ------------------------------------------------------------------------------------


def stop_run(proc: subprocess.Popen) -> tuple[int, str, str]:
    """SIGTERM (the runner stops at a checkpoint) and the exit code; no traceback either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def kill9(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.communicate(timeout=60)


def create_task(home: Path, dbs, name: str, tmp_path: Path, *, source: dict | None = None, target: dict | None = None, **overrides) -> None:
    """A task from a spec file, through `drs task create`; `source`/`target` patch the endpoints
    (e.g. {"port": proxy.port} to go through a proxy, or another user)."""
    spec = make_spec(dbs, name, **overrides)
    spec["source"].update(source or {})
    spec["target"].update(target or {})
    spec_file = tmp_path / f"{name}.json"
    spec_file.write_text(json.dumps(spec))
    drs(home, "task", "create", "--spec", str(spec_file), "--skip-checks", check=True)


def record(home: Path, name: str):
    store = Store(home)
    try:
        return store.get_task(name), health.evaluate(store, store.get_task(name))
    finally:
        store.close()


def status(home: Path, name: str) -> str:
    return record(home, name)[0].status.value


def logs(home: Path, name: str) -> list[dict]:
    return json.loads(drs(home, "task", "logs", name, "--json", check=True).stdout)


def count_logs(home: Path, name: str, text: str) -> int:
    store = Store(home)
    try:
        return len(store.logs(name, text=text, limit=None))
    finally:
        store.close()


def wait_replicating(home: Path, name: str, timeout: float = 180) -> None:
    wait_for(lambda: status(home, name) == "replicating", timeout, 0.2, f"{name} replicating")


def reported_unreachable(home: Path, name: str, side: str, timeout: float = 90) -> dict:
    """Wait until the task says `side` is unreachable, then check `drs task show --json` says it too:
    health warning/alarm with the reason, while the status stays running (it reconnects by itself)."""
    text = f"{side} has been unreachable"
    wait_for(lambda: any(text in r for r in record(home, name)[1].reasons), timeout, 0.3, f"the task to report {side} unreachable")
    data = show(home, name)
    reasons = data["health"]["reasons"]
    assert data["health"]["state"] in ("warning", "alarm") and any(text in r for r in reasons), data["health"]
    assert data["status"] in ("replicating", "initializing", "starting"), data["status"]
    return data


def reported_reachable(home: Path, name: str, timeout: float = 90) -> None:
    wait_for(lambda: not any("unreachable" in r for r in record(home, name)[1].reasons), timeout, 0.3, "the unreachable reason to clear")


# ---- the load -----------------------------------------------------------------------------------


def oltp_schema(server: MariaDBServer, rows: int = 2000) -> None:
    server.sql(
        "CREATE DATABASE oltp",
        "CREATE TABLE oltp.kv (id INT PRIMARY KEY, v VARCHAR(40), n INT NOT NULL DEFAULT 0, KEY (n))",
        "CREATE TABLE oltp.nokey (n INT, v VARCHAR(40))",
        "CREATE TABLE oltp.big (id INT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(200), d DATETIME(6), x DECIMAL(12,2), b BLOB)",
    )
    if rows:
        server.sql(
            "INSERT INTO oltp.big (pad, d, x, b) SELECT REPEAT(CHAR(65 + seq % 26), 150), '2024-01-01' + INTERVAL seq SECOND, "
            f"seq / 7, IF(seq % 3 = 0, NULL, UNHEX(SHA2(seq, 256))) FROM seq_1_to_{rows}",
            database="oltp",
        )


class Writer:
    """Small OLTP transactions on the service side, in a thread: inserts, updates, deletes, a keyless
    table. Survives the server going away (reconnects, and moves on to the next id: a transaction
    whose COMMIT was cut may or may not be there, the service side is the truth either way).
    `pause()` returns once no transaction is open: the service side is still, for a comparison."""

    def __init__(self, server: MariaDBServer, db: str = "oltp", *, first: int = 1, gap: float = 0.004):
        self.server, self.db, self.gap = server, db, gap
        self.i = first - 1
        self.committed = 0
        self.failed = 0
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._idle = threading.Event()
        self.thread = threading.Thread(target=self._run, name="writer", daemon=True)

    def start(self) -> Writer:
        self.thread.start()
        return self

    def pause(self) -> None:
        self._go.clear()
        assert self._idle.wait(120), "the writer did not pause"

    def resume(self) -> None:
        self._idle.clear()
        self._go.set()

    def stop(self) -> None:
        self._stop.set()
        self._go.set()
        self.thread.join(60)

    def wait_attempts(self, n: int, timeout: float = 120) -> None:
        """n more transactions tried, committed or failed."""
        target = self.committed + self.failed + n
        wait_for(lambda: self.committed + self.failed >= target, timeout, 0.05, f"{n} more writer transactions")

    def wait_commits(self, n: int, timeout: float = 120) -> None:
        target = self.committed + n
        wait_for(lambda: self.committed >= target, timeout, 0.05, f"{n} more writer commits")

    def transaction(self, cur, i: int) -> None:
        cur.execute("INSERT INTO kv (id, v, n) VALUES (%s, %s, %s)", (i, f"v{i}", i % 13))
        cur.execute("INSERT INTO nokey (n, v) VALUES (%s, %s)", (i % 7, f"n{i}"))
        if i % 3 == 0:
            cur.execute("UPDATE kv SET v = CONCAT(v, '+'), n = n + 1 WHERE id = %s", (i - 1,))
        if i % 5 == 0:
            cur.execute("DELETE FROM kv WHERE id = %s", (i - 2,))
            cur.execute("DELETE FROM nokey WHERE n = %s AND v = %s LIMIT 1", ((i - 2) % 7, f"n{i - 2}"))
        if i % 11 == 0:
            cur.execute("UPDATE big SET x = x + 1, d = d + INTERVAL 1 SECOND WHERE id %% 97 = %s", (i % 97,))
        if i % 17 == 0:
            cur.execute("INSERT INTO big (pad, d, x, b) VALUES (REPEAT('w', %s), NOW(6), %s, RANDOM_BYTES(64))", (i % 200, i))

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            if not self._go.is_set():
                self._idle.set()
                self._go.wait(0.1)
                continue
            try:
                if conn is None:
                    conn = self.server.root(self.db)
                self.i += 1
                with conn.cursor() as cur:
                    cur.execute("BEGIN")
                    self.transaction(cur, self.i)
                    cur.execute("COMMIT")
                self.committed += 1
            except (pymysql.err.MySQLError, OSError) as exc:
                self.failed += 1
                self.last_error = exc
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # already broken
                        pass
                conn = None
                self._stop.wait(0.2)
                continue
            if self.gap:
                self._stop.wait(self.gap)
        if conn is not None:
            conn.close()
        self._idle.set()


def identical(dbs, databases: list[str]) -> bool:
    try:
        assert_databases_identical(dbs.source, dbs.target, databases)
    except AssertionError:
        return False
    return True


def converged(home: Path, dbs, name: str, databases: list[str], writer: Writer | None = None, timeout: float = 180) -> dict:
    """Still the service side, wait for the DR side to catch up, then the full value comparison:
    `drs compare --level values --json` exits 0 with no difference, and the byte-exact oracle agrees."""
    if writer is not None:
        writer.pause()
    wait_for(lambda: identical(dbs, databases), timeout, 0.5, f"{name}: the DR side to catch up")
    result = drs(home, "compare", name, "--level", "values", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["consistent"] and report["differences"] == [], report["differences"][:5]
    assert_databases_identical(dbs.source, dbs.target, databases)
    if writer is not None:
        writer.resume()
    return report


@pytest.fixture
def running(home: Path) -> Iterator[list[subprocess.Popen]]:
    """`drs run` processes a test started; whatever is still running at the end is stopped."""
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.communicate(timeout=60)


@pytest.fixture
def servers_back(dbs) -> Iterator[None]:
    """Both servers are running again after the test, whatever it stopped."""
    yield
    for server in (dbs.source, dbs.target):
        if server.proc is None:
            server.start(dbs.base)


# ---- service and DR servers restarted / stopped ---------------------------------------------------


@pytest.mark.parametrize("outage", [15] + ([60] if LONG else []), ids=lambda s: f"dr-down-{s}s")
def test_service_server_restarted_then_dr_server_down_while_changes_keep_coming(dbs, home, tmp_path, running, servers_back, outage):
    oltp_schema(dbs.source)
    create_task(home, dbs, "srv-dr", tmp_path, databases=["oltp"])
    running.append(start_run(home, "srv-dr"))
    writer = Writer(dbs.source).start()
    try:
        wait_replicating(home, "srv-dr")
        # 1. the service server restarts mid-stream (a clean shutdown, a new binlog file after it); the
        # writer keeps trying and goes on when it is back
        writer.wait_commits(60)
        dbs.source.stop()
        reported_unreachable(home, "srv-dr", SERVICE)
        dbs.source.start(dbs.base)
        writer.wait_commits(100)
        reported_reachable(home, "srv-dr")
        converged(home, dbs, "srv-dr", ["oltp"], writer)
        assert count_logs(home, "srv-dr", "connection lost") >= 1 and count_logs(home, "srv-dr", "reconnected;") >= 1
        # 2. the DR server is down for `outage` seconds while changes keep coming
        writer.wait_commits(50)
        dbs.target.stop()
        down_at = time.monotonic()
        before = writer.committed
        data = reported_unreachable(home, "srv-dr", DR)
        time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
        if outage > 2 * health.UNREACHABLE_ALARM_SECONDS:
            data = show(home, "srv-dr")
            assert data["health"]["state"] == "alarm", data["health"]
        assert data["status"] == "replicating"
        assert writer.committed > before + 50  # changes kept coming meanwhile
        dbs.target.start(dbs.base)  # it comes back writable; the runner makes it read-only again
        reported_reachable(home, "srv-dr")
        converged(home, dbs, "srv-dr", ["oltp"], writer)
        assert dbs.target.sql("SELECT @@GLOBAL.read_only")[0][0] == 1
        assert status(home, "srv-dr") == "replicating" and running[0].poll() is None
    finally:
        writer.stop()
    assert count_logs(home, "srv-dr", "automatic retry") == 0  # lost connections only, never a failure
    code, _out, err = stop_run(running[0])
    assert code == 0, err


# ---- the network: a proxy between the task and each server ---------------------------------------


def test_connections_dropped_and_stalled_through_proxies(dbs, home, tmp_path, running):
    """A proxy in front of each server: every connection dropped during the initial copy and while
    streaming, then each side stalled (no data, nothing closed) until the task reports it. Long mode:
    40 s stalls, and the binlog connection's path frozen for good while new connections work."""
    oltp_schema(dbs.source, rows=10000)
    with TcpProxy(dbs.source.port) as src_proxy, TcpProxy(dbs.target.port) as tgt_proxy:
        # the copy is slowed (flow control) so that the drop lands in the middle of it
        create_task(home, dbs, "net-dr", tmp_path, databases=["oltp"], source={"port": src_proxy.port},
                    target={"port": tgt_proxy.port}, flow_control={"max_mb_s": 2, "windows": []})  # fmt: skip
        running.append(start_run(home, "net-dr"))
        writer = Writer(dbs.source).start()
        try:
            wait_for(lambda: 500 < record(home, "net-dr")[0].rows_copied < 8000, 120, 0.02, "the initial copy under way")
            assert status(home, "net-dr") == "initializing"
            assert src_proxy.drop_all() > 0  # the copy's connections to the service side go
            wait_replicating(home, "net-dr")  # it starts over and completes
            # a lost connection while copying is a reconnect, not one of the few retries a data error gets
            assert count_logs(home, "net-dr", "automatic retry") == 0, logs(home, "net-dr")
            for proxy in (src_proxy, tgt_proxy):
                writer.wait_commits(100)
                reconnects = count_logs(home, "net-dr", "reconnected;")
                assert proxy.drop_all() > 0
                wait_for(lambda n=reconnects: count_logs(home, "net-dr", "reconnected;") > n, 120, 0.2, "the runner to reconnect")
            writer.wait_commits(100)
            converged(home, dbs, "net-dr", ["oltp"], writer)
            # stalls: one side at a time in the long mode, past the runner's dead-stream limit (it gives
            # the stream up and reconnects); in the default suite both paths at once, until reported
            stalls = [[(src_proxy, SERVICE)], [(tgt_proxy, DR)]] if LONG else [[(src_proxy, SERVICE), (tgt_proxy, DR)]]
            for stall in stalls:
                writer.wait_commits(50)
                for proxy, _side in stall:
                    proxy.stall()
                for _proxy, side in stall:
                    reported_unreachable(home, "net-dr", side)
                if LONG:
                    silent = count_logs(home, "net-dr", "no event or heartbeat")
                    time.sleep(STREAM_SILENCE + 10)
                    assert show(home, "net-dr")["health"]["state"] == "alarm"
                    if stall[0][1] == SERVICE:  # the runner gave the silent stream up (and reconnects)
                        assert count_logs(home, "net-dr", "no event or heartbeat") > silent
                for proxy, _side in stall:
                    proxy.resume()
                reported_reachable(home, "net-dr")
                writer.wait_commits(50)
            if LONG:
                # the binlog connection's path goes dead for good (no reset) while new connections work:
                # the runner gives the silent stream up after STREAM_SILENCE and reconnects
                silent, reconnects = count_logs(home, "net-dr", "no event or heartbeat"), count_logs(home, "net-dr", "reconnected;")
                writer.wait_commits(50)
                assert src_proxy.freeze_existing() > 0
                wait_for(lambda: count_logs(home, "net-dr", "reconnected;") > reconnects, STREAM_SILENCE + 60, 0.5, "a reconnect")
                assert count_logs(home, "net-dr", "no event or heartbeat") > silent
            converged(home, dbs, "net-dr", ["oltp"], writer)
            assert status(home, "net-dr") == "replicating" and running[0].poll() is None
        finally:
            writer.stop()
            src_proxy.resume()
            tgt_proxy.resume()
        code, _out, err = stop_run(running[0])
        assert code == 0, err
    messages = [e["message"] for e in logs(home, "net-dr")]
    assert sum("connection lost" in m for m in messages) >= 3, messages  # the copy's, then one per side
    assert sum("initial full DR started" in m for m in messages) == 2, messages  # the dropped copy started over
    assert not any("automatic retry" in m for m in messages), messages  # network errors only, never a failure


def test_closing_a_binlog_reader_whose_network_went_silent_does_not_hang(dbs):
    """The runner gives a silent stream up (STREAM_SILENCE) and closes its feed: that close must not
    wait for the reader thread's blocked read, which may never end (it used to, so the runner never
    reconnected after a path went dead without a reset)."""
    from conftest import REPL_PASSWORD, REPL_USER

    from engine.connect import BinlogPosition
    from engine.feed import open_feed
    from engine.spec import Endpoint, Secret
    from engine.stream import Heartbeat

    file, pos = dbs.source.sql("SHOW MASTER STATUS")[0][:2]
    with TcpProxy(dbs.source.port) as proxy:
        endpoint = Endpoint("127.0.0.1", proxy.port, REPL_USER, Secret(REPL_PASSWORD))
        feed = open_feed(endpoint, BinlogPosition(file, int(pos)), server_id=0x4ABCDEF, databases=None)
        wait_for(lambda: isinstance(feed.get(timeout=5), Heartbeat), 60, 0, "a heartbeat through the proxy")
        assert proxy.freeze_existing() > 0
        time.sleep(1.5)  # the reader is blocked reading the frozen connection (heartbeats come every second)
        closer = threading.Thread(target=feed.close, daemon=True)
        closer.start()
        closer.join(60)
        assert not closer.is_alive(), "closing the feed hung on the reader's blocked read"


# ---- failures that need the DBA -----------------------------------------------------------------

FAULT_USER, FAULT_PW = "drs_t_fault", "Fault-pw-1"


def test_credentials_revoked_on_the_service_side(dbs, home, tmp_path, running):
    """Mid-stream, the task's user gets a new password and loses REPLICATION SLAVE on the service side.
    The task fails with an access-denied error that names the service database and the fix (a new
    password); the DBA restores the password and runs the task again, which fails on the other refusal
    (the binlog may not be read) with its own fix (the GRANT); once that is fixed too, the next run
    catches up from the checkpoint, exactly and without a new copy."""
    oltp_schema(dbs.source, rows=200)
    account = f"'{FAULT_USER}'@'%'"
    dbs.source.sql(f"CREATE USER {account} IDENTIFIED BY '{FAULT_PW}'", f"GRANT ALL PRIVILEGES ON *.* TO {account}")
    create_task(home, dbs, "creds-dr", tmp_path, databases=["oltp"], source={"user": FAULT_USER, "password": FAULT_PW})
    running.append(start_run(home, "creds-dr"))
    wait_replicating(home, "creds-dr")
    dbs.source.sql("INSERT INTO oltp.kv VALUES (1, 'before', 0)")
    wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM oltp.kv") == [(1,)], 60, 0.2, "streamed")
    dbs.source.sql(f"ALTER USER {account} IDENTIFIED BY 'Changed-pw-2'", f"REVOKE REPLICATION SLAVE ON *.* FROM {account}")
    # passwords and global privileges apply to new sessions: end the task's sessions (as a network blip would)
    for (pid,) in dbs.source.sql(f"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{FAULT_USER}'"):
        try:
            dbs.source.sql(f"KILL CONNECTION {pid}")
        except pymysql.err.OperationalError:
            pass  # already gone
    fixes = [
        ("password", f"ALTER USER {account} IDENTIFIED BY '{FAULT_PW}'"),
        ("REPLICATION SLAVE", f"GRANT REPLICATION SLAVE ON *.* TO {account}"),
    ]
    for n, (what, fix) in enumerate(fixes, start=2):
        dbs.source.sql(f"INSERT INTO oltp.kv VALUES ({n}, 'while refused: {what}', 0)")
        code, _out, err = stop_run_when_exited(running[-1])
        data = show(home, "creds-dr")
        assert code == 1 and data["status"] == "failed", (code, err, data["status"], data["last_error"])
        error = data["last_error"]
        assert error in err  # `drs run` printed it
        assert error.startswith(f"{SERVICE} refused the task's user (access denied)"), error
        if what == "password":
            assert "password" in error and "Modify Connection" in error, error
        else:
            assert "needs the REPLICATION SLAVE privilege" in error and "GRANT REPLICATION SLAVE ON *.* TO" in error, error
        assert "drs run creds-dr" in error and "drs task skip" not in error  # no transaction is at fault
        assert data["health"]["state"] == "alarm" and any("the task failed" in r for r in data["health"]["reasons"])
        # the DBA fixes what the error says and runs the task again: it goes on from its checkpoint
        dbs.source.sql(fix)
        running.append(start_run(home, "creds-dr"))
    wait_replicating(home, "creds-dr")
    converged(home, dbs, "creds-dr", ["oltp"])  # the rows written while refused included
    assert dbs.target.sql("SELECT COUNT(*) FROM oltp.kv") == [(3,)]
    # never copied again once the copy had completed (a copy attempt retried under load before that is fine)
    messages = [e["message"] for e in logs(home, "creds-dr")]  # oldest first
    completed = [i for i, m in enumerate(messages) if m.startswith("initial full DR completed")]
    assert len(completed) == 1, messages
    assert not any("initial full DR started" in m for m in messages[completed[0]:]), messages
    code, _out, err = stop_run(running[-1])
    assert code == 0, err


def stop_run_when_exited(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str, str]:
    """A runner that must end on its own (its task failed)."""
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def test_dr_copy_of_a_database_dropped_while_streaming(dbs, home, tmp_path, running):
    oltp_schema(dbs.source, rows=200)
    create_task(home, dbs, "dropped-dr", tmp_path, databases=["oltp"])
    running.append(start_run(home, "dropped-dr"))
    wait_replicating(home, "dropped-dr")
    dbs.source.sql("INSERT INTO oltp.kv VALUES (1, 'streamed', 0)")
    wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM oltp.kv") == [(1,)], 60, 0.2, "streamed")
    dbs.target.sql("DROP DATABASE oltp")  # someone with SUPER on the DR side
    dbs.source.sql("INSERT INTO oltp.kv VALUES (2, 'after the drop', 0)")
    code, _out, err = stop_run_when_exited(running[0])
    data = show(home, "dropped-dr")
    assert code == 1 and data["status"] == "failed", (code, err)
    error = data["last_error"]
    assert "`oltp` no longer exists on the DR database" in error, error
    assert "create it again" in error or "new initial copy" in error, error  # the fix
    assert data["health"]["state"] == "alarm"


def test_purged_binlog_fails_the_cli_run_with_what_to_do(dbs, home, tmp_path, running):
    oltp_schema(dbs.source, rows=100)
    create_task(home, dbs, "purged-dr", tmp_path, databases=["oltp"])
    running.append(start_run(home, "purged-dr"))
    wait_replicating(home, "purged-dr")
    code, _out, err = stop_run(running[0])
    assert code == 0, err
    first = show(home, "purged-dr")["checkpoint"]["binlog_file"]
    dbs.source.sql("INSERT INTO oltp.kv VALUES (1, 'lost to replication', 0)")

    def purged() -> bool:
        dbs.source.sql("FLUSH BINARY LOGS")
        current = dbs.source.sql("SHOW MASTER STATUS")[0][0]
        dbs.source.sql(f"PURGE BINARY LOGS TO '{current}'")
        return first not in [r[0] for r in dbs.source.sql("SHOW BINARY LOGS")]

    wait_for(purged, 30, 0.3, "the binlog to be purged")
    result = drs(home, "run", "purged-dr", "--quiet")
    assert result.returncode == 1
    assert "no longer has the binlog" in result.stderr and "create it again" in result.stderr, result.stderr
    data = show(home, "purged-dr")
    assert data["status"] == "failed" and "no longer has the binlog" in data["last_error"]
    assert data["health"]["state"] == "alarm"
    assert not any("automatic retry" in e["message"] for e in logs(home, "purged-dr"))


# ---- DDL under write load -------------------------------------------------------------------------


class DdlWriter(Writer):
    """Writes to tables whose definitions change under it: statements that meet a table renamed away
    or a column not there (yet) fail and are counted, the next transaction goes on."""

    def transaction(self, cur, i: int) -> None:
        cur.execute("INSERT INTO t1 (id, a, b) VALUES (%s, %s, %s)", (i, i % 10, f"b{i}"))
        cur.execute("UPDATE t1 SET a = a + 1 WHERE id = %s", (i - 3,))
        if i % 4 == 0:
            cur.execute("DELETE FROM t1 WHERE id = %s", (i - 5,))
        cur.execute("INSERT INTO t2 (v) VALUES (%s)", (f"t2-{i}",))
        if i % 6 == 0:
            cur.execute("UPDATE t2 SET v = CONCAT(v, '!') WHERE id %% 50 = %s", (i % 50,))


# one round; {r} is the round number (the long mode runs three)
DDL_SCRIPT = [
    "ALTER TABLE t1 ADD COLUMN c INT NOT NULL DEFAULT 7",
    "ALTER TABLE t1 MODIFY COLUMN b VARCHAR(200) CHARACTER SET utf8mb4",
    "CREATE INDEX t1_ab ON t1 (a, b)",
    "ALTER TABLE t2 ADD COLUMN w DECIMAL(10,2) DEFAULT 1.5 AFTER id",
    "CREATE TABLE side{r} (id INT PRIMARY KEY, note TEXT)",
    "INSERT INTO side{r} SELECT id, b FROM t1 WHERE id % 10 = 0",
    "ALTER TABLE t1 DROP COLUMN c",
    "DROP INDEX t1_ab ON t1",
    "RENAME TABLE t2 TO t2_old",
    "CREATE TABLE t2 LIKE t2_old",
    "INSERT INTO t2 SELECT id + {r}0000000, w, v FROM t2_old WHERE id % 2 = 0",
    "ALTER TABLE t1 MODIFY COLUMN a BIGINT, ADD COLUMN d{r} DATETIME(3) DEFAULT '2024-01-01 00:00:00.000'",
    "DROP TABLE t2_old",
    "ALTER TABLE t2 DROP COLUMN w",
    "CREATE TABLE gone{r} (id INT PRIMARY KEY)",
    "INSERT INTO gone{r} VALUES (1), (2)",
    "DROP TABLE gone{r}",
    "RENAME TABLE side{r} TO side_renamed{r}",
    "ALTER TABLE t1 ADD UNIQUE INDEX t1_b (b)",
    "ALTER TABLE t1 DROP INDEX t1_b, MODIFY COLUMN b VARCHAR(250)",
]


def test_ddl_under_write_load(dbs, home, tmp_path, running):
    """ADD/DROP/MODIFY COLUMN, CREATE/DROP INDEX, RENAME, CREATE/DROP TABLE while a writer writes to
    the very tables: the DR side ends identical, schema and rows."""
    dbs.source.sql(
        "CREATE DATABASE ddl",
        "CREATE TABLE ddl.t1 (id INT PRIMARY KEY, a INT, b VARCHAR(100))",
        "CREATE TABLE ddl.t2 (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(60))",
    )
    rounds = 3 if LONG else 1
    create_task(home, dbs, "ddl-dr", tmp_path, databases=["ddl"])
    running.append(start_run(home, "ddl-dr"))
    writer = DdlWriter(dbs.source, "ddl", gap=0.002).start()
    try:
        wait_replicating(home, "ddl-dr")
        conn = dbs.source.root("ddl")
        for r in range(1, rounds + 1):
            for statement in DDL_SCRIPT:
                writer.wait_attempts(15)
                with conn.cursor() as cur:
                    cur.execute(statement.format(r=r))
        conn.close()
        writer.wait_commits(50)
        converged(home, dbs, "ddl-dr", ["ddl"], writer)
        assert writer.committed > 300
        # the definitions too (but the AUTO_INCREMENT counter: rolled-back inserts use values up on the
        # service side only, as on a native replica)
        definition = lambda server, t: re.sub(r" AUTO_INCREMENT=\d+", "", server.sql(f"SHOW CREATE TABLE ddl.`{t}`")[0][1])  # noqa: E731
        tables = [t for (t,) in dbs.source.sql("SHOW TABLES FROM ddl")]
        assert sorted(tables) == [*(f"side_renamed{r}" for r in range(1, rounds + 1)), "t1", "t2"]
        for table in tables:
            assert definition(dbs.target, table) == definition(dbs.source, table)
        assert status(home, "ddl-dr") == "replicating"
    finally:
        writer.stop()
    code, _out, err = stop_run(running[0])
    assert code == 0, err


def test_refusals_name_the_side_and_the_fix():
    """The two ways a server refuses the task's user, on either side (no servers needed)."""
    from types import SimpleNamespace

    from engine.errors import AccessDenied
    from engine.runner import _access_denied_message
    from engine.spec import Endpoint
    from engine.stream import _access_denied

    source, target = Endpoint("10.0.0.1", 3306, "repl"), Endpoint("10.0.0.2", 3306, "apply")
    spec = SimpleNamespace(source=source, target=target)
    wrong_pw = AccessDenied("apply@10.0.0.2:3306", "access denied for user 'apply' (check the user name and password)")
    text = _access_denied_message(wrong_pw, spec, "t1")
    assert text.startswith("the DR database refused the task's user (access denied)") and "Modify Connection" in text
    assert "drs run t1" in text
    no_dump = _access_denied(source, pymysql.err.OperationalError(1227, "Access denied; you need (at least one of) the REPLICATION SLAVE privilege(s)"))
    text = _access_denied_message(no_dump, spec, "t1")
    assert text.startswith("the service database refused") and "GRANT REPLICATION SLAVE ON *.* TO 'repl'@" in text
    # an endpoint that is neither side (cannot happen) keeps the plain message
    assert _access_denied_message(AccessDenied("x@y:1", "no"), spec, "t1") == "x@y:1: no"
