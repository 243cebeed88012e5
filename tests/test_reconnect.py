"""Reconnects start over with a short wait; a bug fails the task at once with its trace in the DR log."""

from __future__ import annotations

import re
import struct

import pymysql
import pytest
from dr_helpers import wait_for
from test_incremental import RunnerThread, seed_incremental, task  # noqa: F401 - `task` is a fixture

from engine.apply import Applier
from engine.errors import ConnectionRefused, ReplicationError
from engine.feed import ReaderLost
from engine.runner import _transient, programming_error
from engine.status import Status
from engine.stream import StreamDropped


@pytest.mark.parametrize(
    "exc",
    [AttributeError("'NoneType' object has no attribute 'x'"), struct.error("unpack requires a buffer of 4 bytes"),
     TypeError("bad operand"), KeyError("col"), IndexError("list index out of range"), AssertionError()],
)  # fmt: skip
def test_programming_errors_are_not_taken_for_a_lost_connection(exc):
    assert programming_error(exc) and not _transient(exc)


@pytest.mark.parametrize(
    "exc",
    [ConnectionResetError(), OSError("network unreachable"), EOFError(), TimeoutError(), ReaderLost("reader ended"),
     StreamDropped("dropped mid-packet"), pymysql.err.OperationalError(2013, "Lost connection"),
     pymysql.err.InterfaceError(0, ""), ConnectionRefused("db:3306", "refused")],
)  # fmt: skip
def test_network_errors_stay_transient(exc):
    assert _transient(exc) and not programming_error(exc)


def test_data_errors_are_neither():
    for exc in (ReplicationError("DDL failed"), pymysql.err.IntegrityError(1062, "Duplicate entry"), ValueError("bad")):
        assert not _transient(exc) and not programming_error(exc)


def messages(svc, name: str, text: str) -> list[str]:
    return [e.message for e in svc.store.logs(name, limit=1000) if text in e.message]


def test_a_bug_in_the_apply_path_fails_the_task_at_once_with_its_trace(dbs, task, monkeypatch):  # noqa: F811
    svc = task
    for server in (dbs.source, dbs.target):
        server.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    seed_incremental(svc, dbs, "inc-task")

    def broken(self, txns):
        raise AttributeError("'TableShape' object has no attribute 'nope'")

    monkeypatch.setattr(Applier, "apply_batch", broken)
    with RunnerThread(svc, "inc-task") as rt:
        wait_for(lambda: svc.get("inc-task").status is Status.REPLICATING, what="replicating")
        dbs.source.sql("INSERT INTO shop.t VALUES (1)")
        rt.thread.join(60)
        assert rt.result is Status.FAILED
    record = svc.get("inc-task")
    assert record.status is Status.FAILED
    assert record.last_error.startswith("internal error (AttributeError: 'TableShape' object has no attribute 'nope'): please report it with the DR log")
    assert "--event " in record.last_error  # and which source transaction it was on
    errors = [e for e in svc.store.logs("inc-task", level="error")]
    assert errors and "Traceback (most recent call last)" in errors[-1].message and "in broken" in errors[-1].message
    # no retries, no "connection lost"
    assert not messages(svc, "inc-task", "automatic retry") and not messages(svc, "inc-task", "connection lost")


def test_backoff_starts_over_after_a_successful_reconnect(dbs, task):  # noqa: F811
    svc = task
    for server in (dbs.source, dbs.target):
        server.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    seed_incremental(svc, dbs, "inc-task")
    applied = lambda n: lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.t")[0][0] == n  # noqa: E731
    try:
        with RunnerThread(svc, "inc-task"):
            wait_for(lambda: svc.get("inc-task").status is Status.REPLICATING, what="replicating")
            for outage in (1, 2):
                dbs.target.stop()
                dbs.source.sql(f"INSERT INTO shop.t VALUES ({outage})")  # the runner finds the DR server gone
                # stay down until the backoff has grown (a second attempt failed)
                wait_for(lambda n=outage: messages(svc, "inc-task", "reconnecting in 2s")[n - 1 :], 60, 0.2, "backoff to grow")
                dbs.target.start(dbs.base)
                wait_for(applied(outage), 120, 0.3, f"applied after outage {outage}")
                wait_for(lambda n=outage: len(messages(svc, "inc-task", "reconnected;")) >= n, 60, 0.2, "reconnected")
            assert svc.get("inc-task").status is Status.REPLICATING
        waits = [int(m) for m in re.findall(r"reconnecting in (\d+)s", "\n".join(messages(svc, "inc-task", "reconnecting in")))]
        # each outage starts at 1 s and grows from there: the first outage's 2 s (or more) is forgotten
        second = len(waits) - waits[::-1].index(1) - 1  # the last "1s": the start of the second outage
        assert waits[0] == 1 and waits[second] == 1 and max(waits[:second], default=0) >= 2, waits
        assert waits[second:] == sorted(waits[second:]), waits
    finally:
        if dbs.target.proc is None:
            dbs.target.start(dbs.base)
