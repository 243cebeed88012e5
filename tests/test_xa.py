"""XA transactions on the service side: prepared rows reach the DR side only when the source commits
them, never when it rolls them back, across other transactions, a runner restart in between, and a big
XA transaction; a commit whose prepare the task never read fails the task instead of losing rows.
"""

from __future__ import annotations

import pytest
from conftest import make_spec
from dr_helpers import assert_databases_identical, wait_for
from test_incremental import RunnerThread, seed_incremental

from engine import xa
from engine.connect import connect
from engine.spec import parse_spec
from engine.status import Status
from engine.stream import xid_text
from engine.tasks import TaskService

NAME = "xa-task"


@pytest.fixture
def svc(dbs, home, memory_keyring):
    service = TaskService(home)
    service.create(parse_spec(make_spec(dbs, NAME, databases=["shop"])))
    for server in (dbs.source, dbs.target):
        server.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    yield service
    service.close()


def xa_prepare(dbs, xid: str, *statements: str):
    """Prepare an XA transaction on the source; the connection stays open (returned) to decide later."""
    conn = dbs.source.root("shop")
    with conn.cursor() as cur:
        cur.execute(f"XA START '{xid}'")
        for statement in statements:
            cur.execute(statement)
        cur.execute(f"XA END '{xid}'")
        cur.execute(f"XA PREPARE '{xid}'")
    return conn


def caught_up(dbs) -> None:
    """A marker row written after everything else has arrived: the task applied all before it."""
    dbs.source.sql("REPLACE INTO shop.t VALUES (-1, 'marker')")
    wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.t WHERE id = -1") == [(1,)], what="the marker")
    dbs.source.sql("DELETE FROM shop.t WHERE id = -1")
    wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.t WHERE id = -1") == [(0,)], what="the marker's delete")


def held(svc) -> list[str]:
    conn = connect(svc.spec_with_passwords(NAME).target)
    try:
        return [x for x, _ in xa.pending(conn, NAME)]
    finally:
        conn.close()


def test_prepared_rows_wait_for_the_decision(dbs, svc):
    seed_incremental(svc, dbs, NAME)
    with RunnerThread(svc, NAME):
        wait_for(lambda: svc.get(NAME).status is Status.REPLICATING, what="replicating")
        rolled = xa_prepare(dbs, "rolled", "INSERT INTO t VALUES (1, 'rolled back')", "UPDATE t SET v = 'x' WHERE id = 1")
        kept = xa_prepare(dbs, "kept", "INSERT INTO t VALUES (2, 'committed')")
        dbs.source.sql("INSERT INTO shop.t VALUES (3, 'plain')")  # commits while both are prepared
        caught_up(dbs)
        # prepared is not committed: neither is visible on the DR side yet, both are held
        assert dbs.target.sql("SELECT id FROM shop.t ORDER BY id") == [(3,)]
        assert sorted(held(svc)) == sorted([xid_text(b"rolled", b"", 1), xid_text(b"kept", b"", 1)])
        with rolled.cursor() as cur:
            cur.execute("XA ROLLBACK 'rolled'")
        with kept.cursor() as cur:
            cur.execute("XA COMMIT 'kept'")
        # one phase: an ordinary commit in the binlog
        with kept.cursor() as cur:
            cur.execute("XA START 'one'")
            cur.execute("INSERT INTO t VALUES (4, 'one phase')")
            cur.execute("XA END 'one'")
            cur.execute("XA COMMIT 'one' ONE PHASE")
        caught_up(dbs)
        assert dbs.target.sql("SELECT id, v FROM shop.t ORDER BY id") == [(2, "committed"), (3, "plain"), (4, "one phase")]
        assert_databases_identical(dbs.source, dbs.target, ["shop"])
        assert held(svc) == []
    rolled.close()
    kept.close()


def test_a_restart_between_prepare_and_commit_loses_nothing(dbs, svc):
    seed_incremental(svc, dbs, NAME)
    rows = ", ".join(f"({i}, 'big {i}')" for i in range(10, 30010))  # more than one piece's worth
    with RunnerThread(svc, NAME):
        wait_for(lambda: svc.get(NAME).status is Status.REPLICATING, what="replicating")
        pending = xa_prepare(dbs, "across", f"INSERT INTO t VALUES {rows}", "DELETE FROM t WHERE id = 11")
        wait_for(lambda: held(svc) != [], what="the prepared transaction to be held")
        assert dbs.target.sql("SELECT COUNT(*) FROM shop.t") == [(0,)]
    # the runner stopped with the transaction still prepared; the decision comes while it is down
    with pending.cursor() as cur:
        cur.execute("XA COMMIT 'across'")
    pending.close()
    with RunnerThread(svc, NAME):
        wait_for(lambda: svc.get(NAME).status is Status.REPLICATING, what="replicating again")
        caught_up(dbs)
        assert dbs.source.sql("SELECT COUNT(*) FROM shop.t") == [(29999,)]
        assert dbs.target.sql("SELECT COUNT(*) FROM shop.t") == [(29999,)]
        assert_databases_identical(dbs.source, dbs.target, ["shop"])
        assert held(svc) == []


def test_a_commit_whose_prepare_came_before_the_task_fails_it(dbs, svc):
    early = xa_prepare(dbs, "early", "INSERT INTO t VALUES (5, 'before the task')")
    seed_incremental(svc, dbs, NAME)  # the task starts after the PREPARE: it never sees those rows
    with RunnerThread(svc, NAME):
        wait_for(lambda: svc.get(NAME).status is Status.REPLICATING, what="replicating")
        with early.cursor() as cur:
            cur.execute("XA COMMIT 'early'")
        wait_for(lambda: svc.get(NAME).status is Status.FAILED, what="the task to fail")
    early.close()
    error = svc.get(NAME).last_error
    assert "XA transaction X'6561726c79',X'',1" in error and "never read" in error, error
