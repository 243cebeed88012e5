"""Table ids start over when the service server restarts: a backlog read across the restart must map
each row to its own table (the reader forgets its table maps at every rotate and new binlog file)."""

from __future__ import annotations

import pytest
from conftest import make_spec
from dr_helpers import assert_databases_identical, wait_for
from test_incremental import RunnerThread

from engine.spec import parse_spec
from engine.status import Status
from engine.tasks import TaskService


@pytest.fixture
def task(dbs, home, memory_keyring):
    svc = TaskService(home)
    dbs.source.sql(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.a (id INT PRIMARY KEY, v VARCHAR(20))",
        "CREATE TABLE shop.b (id INT PRIMARY KEY, x BIGINT, y DOUBLE, z VARCHAR(5))",
        "CREATE TABLE shop.c (id INT PRIMARY KEY, d DATE)",
    )
    svc.create(parse_spec(make_spec(dbs, "restart-dr", databases=["shop"])))
    with RunnerThread(svc, "restart-dr"):
        wait_for(lambda: svc.store.get_task("restart-dr").status is Status.REPLICATING, 120, 0.2, "replicating")
    return svc


def test_backlog_across_a_service_server_restart_keeps_rows_in_their_tables(dbs, task):
    # before the restart: a, then b, then c get their table ids
    dbs.source.sql(
        "INSERT INTO shop.a VALUES (1, 'before')",
        "INSERT INTO shop.b VALUES (1, 10, 1.5, 'x')",
        "INSERT INTO shop.c VALUES (1, '2024-01-01')",
    )
    dbs.source.restart(dbs.base)
    # after it, in the opposite order: the same ids now name other tables
    dbs.source.sql(
        "INSERT INTO shop.c VALUES (2, '2025-02-02')",
        "INSERT INTO shop.b VALUES (2, 20, 2.5, 'y')",
        "INSERT INTO shop.a VALUES (2, 'after')",
        "UPDATE shop.a SET v = 'after!' WHERE id = 1",
        "DELETE FROM shop.b WHERE id = 1",
    )
    with RunnerThread(task, "restart-dr"):
        wait_for(lambda: dbs.target.sql("SELECT v FROM shop.a WHERE id = 2") == [("after",)], 60, 0.2, "the backlog applied")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.b") == [(1,)], 30, 0.2, "the delete applied")
    assert task.store.get_task("restart-dr").status is Status.REPLICATING
    assert_databases_identical(dbs.source, dbs.target, ["shop"])
