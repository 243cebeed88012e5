"""A task row in the window has one source, the store: a change made by another process shows after a
refresh; a running worker's progress reaches the row through the runner's store writes (its signals only
ask for a refresh); a refresh of an unchanged store reads no row; the sort order holds over refreshes;
a paused task's delay grows as the details say; a promoted row says which side is primary and how."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from PySide6.QtCore import Qt

from drs_desktop.main_window import MainWindow
from drs_desktop.task_model import Column
from engine.health import effective_delay
from engine.spec import parse_spec
from engine.status import Status
from engine.store import STORE_FILE
from engine.tasks import TaskService
from tests.conftest import make_spec
from tests.gui_helpers import LONG_MS, open_windows, refreshed, seed
from tests.test_cli import REPO, cli_env

WAIT_MS = 20_000


@pytest.fixture
def open_window(qtbot, service):
    """Main windows over `service` without replication workers, each shown once its first refresh is in."""
    yield from open_windows(qtbot, service, autostart=False)


def add(svc: TaskService, servers, name: str, status: Status, **fields) -> None:
    svc.create(parse_spec(make_spec(servers, name)), status=Status.CONFIGURATION)
    if status is not Status.CONFIGURATION or fields:
        svc.store.set_status(name, status, **fields)


def cell(window: MainWindow, name: str, column: Column, role=Qt.ItemDataRole.DisplayRole):
    row = window.model.row_of(name)
    assert row is not None, f"{name} is not in the table"
    return window.model.index(row, column).data(role)


def set_in_store(home, name: str, **columns) -> None:
    """A write by another program straight into the file (as `drs` in another process would)."""
    conn = sqlite3.connect(home / STORE_FILE)
    assignments = ", ".join(f"{column} = ?" for column in columns)
    conn.execute(f"UPDATE tasks SET {assignments} WHERE name = ?", (*columns.values(), name))
    conn.commit()
    conn.close()


def test_a_change_written_by_another_process_shows_after_a_refresh(
    qtbot, open_window, service, servers, home
):
    add(service, servers, "other-dr", Status.REPLICATING, phase="incremental", delay_seconds=2.0)
    add(service, servers, "quiet-dr", Status.CONFIGURATION)
    window = open_window(refresh_ms=600_000)  # only the refreshes this test asks for
    refreshed(qtbot, window)
    assert cell(window, "other-dr", Column.STATUS) == "Disaster recovery in progress"
    read_before = window.store_rows.rows_read
    paused = subprocess.run([sys.executable, "-m", "engine.cli", "task", "pause", "other-dr"],
                            env=cli_env(home), cwd=REPO, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert paused.returncode == 0, paused.stderr
    refreshed(qtbot, window)
    assert cell(window, "other-dr", Column.STATUS) == "Paused"
    assert window.store_rows.rows_read == read_before + 1  # that row, and only it
    assert "paused" in cell(window, "other-dr", Column.STATUS, Qt.ItemDataRole.ToolTipRole)
    window.select_task("other-dr")
    qtbot.waitUntil(
        lambda: window.current_record() is not None and window.current_record().name == "other-dr"
    )
    assert window.current_record().status is Status.PAUSED


def test_a_refresh_of_an_unchanged_store_reads_no_row(qtbot, open_window, service, servers):
    for i in range(4):
        add(service, servers, f"still-{i}-dr", Status.PAUSED, phase="incremental", delay_seconds=1.0 + i)
    window = open_window(refresh_ms=600_000)
    refreshed(qtbot, window)
    read = window.store_rows.rows_read
    assert read >= 4
    for _ in range(3):
        refreshed(qtbot, window)
    assert window.store_rows.rows_read == read  # nothing changed: nothing read (health still evaluated)
    assert window.model.health_state("still-0-dr") == "warning"  # paused: warned, from memory
    service.store.update_task("still-2-dr", delay_seconds=40.0)
    service.store.add_log("still-3-dr", "info", "test", "a log line is not a change of the row")
    refreshed(qtbot, window)
    assert window.store_rows.rows_read == read + 1
    assert cell(window, "still-2-dr", Column.DELAY).startswith("4")  # 40 s and growing while paused
    service.delete("still-1-dr")
    refreshed(qtbot, window)
    assert window.model.row_of("still-1-dr") is None and window.store_rows.rows_read == read + 1


def test_the_sort_order_holds_over_refreshes(qtbot, qtmodeltester, open_window, service, servers):
    delays = {"aa-dr": 5.0, "bb-dr": 50.0, "cc-dr": 20.0, "dd-dr": 1.0}
    for name, delay in delays.items():
        add(service, servers, name, Status.REPLICATING, phase="incremental", delay_seconds=delay,
            runner_pid=None)  # fmt: skip
    window = open_window(refresh_ms=600_000)
    window.table.sortByColumn(Column.DELAY, Qt.SortOrder.DescendingOrder)
    names = window.visible_names()
    assert names[:4] == ["bb-dr", "cc-dr", "aa-dr", "dd-dr"]
    window.select_task("cc-dr")
    qtbot.waitUntil(lambda: window.current_record() is not None and window.current_record().name == "cc-dr")
    # the store changes: dd-dr falls far behind, bb-dr catches up
    service.store.update_task("dd-dr", delay_seconds=500.0)
    service.store.update_task("bb-dr", delay_seconds=0.0)
    refreshed(qtbot, window)
    assert window.visible_names() == ["dd-dr", "cc-dr", "aa-dr", "bb-dr"]
    assert window.current_record().name == "cc-dr"  # the selection follows its row
    # a new task takes its place in the order, and a search keeps it
    add(service, servers, "ee-dr", Status.REPLICATING, phase="incremental", delay_seconds=30.0)
    refreshed(qtbot, window)
    assert window.visible_names() == ["dd-dr", "ee-dr", "cc-dr", "aa-dr", "bb-dr"]
    window.table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)
    assert window.visible_names() == sorted(window.visible_names())
    qtbot.keyClicks(window.search_edit, "e-dr")
    assert window.visible_names() == ["ee-dr"]
    qtmodeltester.check(window.model)
    qtmodeltester.check(window.proxy)


@pytest.fixture
def live_windows(qtbot, service):
    """Main windows that run their tasks (workers on), closed after the test."""
    yield from open_windows(qtbot, service)


def test_a_running_workers_progress_reaches_the_row_through_the_store(qtbot, dbs, service, live_windows):
    """With the periodic refresh out of the way, only the worker's signals (which ask for a re-read of
    the store) can bring the copy's progress and the status to the row."""
    seed(dbs.source, "rows_db", rows=50)
    service.create(parse_spec(make_spec(dbs, "live-dr", databases=["rows_db"])))
    window = live_windows(refresh_ms=600_000)
    qtbot.waitUntil(
        lambda: cell(window, "live-dr", Column.STATUS) == Status.REPLICATING.label, timeout=LONG_MS
    )
    assert cell(window, "live-dr", Column.PROGRESS) == "100%"
    record, stored = window.model.record("live-dr"), service.get("live-dr")
    assert (record.status, record.phase, record.rows_copied) == (
        stored.status,
        stored.phase,
        stored.rows_copied,
    )
    assert record.rows_copied == 50
    # the stream's progress too: a change on the service side, and the row's delay comes from the store
    dbs.source.sql("INSERT INTO kv VALUES (51, 'row 51')", database="rows_db")
    qtbot.waitUntil(lambda: dbs.target.sql("SELECT COUNT(*) FROM rows_db.kv") == [(51,)], timeout=LONG_MS)
    qtbot.waitUntil(lambda: cell(window, "live-dr", Column.DELAY).endswith(" s"), timeout=LONG_MS)


def test_a_paused_task_shows_its_delay_growing_as_the_details_do(qtbot, open_window, service, servers, home):
    add(service, servers, "slow-dr", Status.PAUSED, phase="incremental", delay_seconds=12.0)
    set_in_store(
        home, "slow-dr", status_changed_at=(datetime.now() - timedelta(minutes=10)).isoformat(sep=" ")
    )
    window = open_window(refresh_ms=500)
    qtbot.waitUntil(lambda: cell(window, "slow-dr", Column.DELAY).startswith("10 min"), timeout=WAIT_MS)
    assert cell(window, "slow-dr", Column.DELAY) in ("10 min 12 s", "10 min 13 s")
    record = window.model.record("slow-dr")
    assert effective_delay(record) == pytest.approx(612, abs=2)  # the engine's number, as the details show
    # nothing changes in the store; the shown delay still grows with the clock
    add(service, servers, "fresh-dr", Status.PAUSED, phase="incremental", delay_seconds=3.0)
    # add() creates the task, then pauses it: a refresh in between shows it without a delay yet
    qtbot.waitUntil(
        lambda: window.model.row_of("fresh-dr") is not None
        and window.model.record("fresh-dr").status is Status.PAUSED,
        timeout=WAIT_MS,
    )
    first = cell(window, "fresh-dr", Column.DELAY)
    assert first.endswith(" s"), first
    qtbot.waitUntil(lambda: cell(window, "fresh-dr", Column.DELAY) != first, timeout=WAIT_MS)
    assert int(cell(window, "fresh-dr", Column.DELAY).split()[0]) > int(first.split()[0])


def test_a_promoted_row_says_which_side_is_primary_and_how(open_window, service, servers):
    add(service, servers, "switched-dr", Status.PROMOTED, phase="done")
    service.store.merge_extra("switched-dr", promote={"mode": "switchover", "at": "2026-11-30T04:00:00"})
    add(service, servers, "failed-over-dr", Status.PROMOTED, phase="done")
    service.store.merge_extra("failed-over-dr", promote={"mode": "failover", "at": "2026-11-30T05:00:00"})
    window = open_window()
    assert cell(window, "switched-dr", Column.STATUS) == "Promoted \u2014 DR is primary (switchover)"
    assert cell(window, "failed-over-dr", Column.STATUS) == "Promoted \u2014 DR is primary (failover)"
    tip = cell(window, "switched-dr", Column.STATUS, Qt.ItemDataRole.ToolTipRole)
    tgt = servers.target.endpoint
    assert f"the DR database {tgt.host}:{tgt.port} is the primary now" in tip and "switchover" in tip
    assert "2026-11-30T04:00:00" in tip
    assert "unreachable" in cell(window, "failed-over-dr", Column.STATUS, Qt.ItemDataRole.ToolTipRole)
