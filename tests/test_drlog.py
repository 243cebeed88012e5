"""The DR log as a DBA analyses it: filters by level, time range and text in the store, CSV export, the
retention bound, and `drs task logs --since/--until/--grep/--csv` from a shell.

Everything runs on a real SQLite task store; entries are back-dated with an UPDATE where a test needs
old entries (add_log always stamps "now").
"""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import engine.store as store_module
from engine.drlog import CSV_HEADER, export_logs_csv, parse_when
from engine.spec import parse_spec
from engine.store import LOG_KEEP_DAYS, LOG_KEEP_ENTRIES, STORE_FILE, DrLogRow, Store
from tests.test_cli import drs, spec_dict, write_spec

NOW = datetime.now()


def make_store(home: Path, *names: str) -> Store:
    store = Store(home)
    for name in names or ("orders-dr",):
        store.create_task(parse_spec(spec_dict(name)))
    return store


def backdate(store: Store, message: str, when: datetime) -> None:
    with store.session_scope() as s:
        s.execute(update(DrLogRow).where(DrLogRow.message == message).values(time=when))


@pytest.fixture
def log_store(tmp_path: Path):
    """orders-dr with entries over a week; other-dr with one entry that must never show up."""
    store = make_store(tmp_path / "home", "orders-dr", "other-dr")
    entries = [
        (timedelta(days=6), "info", "runner", "initial full DR started"),
        (timedelta(hours=20), "warning", "apply", "table audit_log has no primary key"),
        (timedelta(hours=2), "error", "runner", "Connection LOST to 10.0.0.1:3306; reconnecting"),
        (timedelta(minutes=30), "alarm", "health", "delay above 300 s"),
        (timedelta(minutes=5), "info", "apply", "progress: 50% of rows_100_% done"),
        (timedelta(minutes=1), "info", "runner", "reconnected"),
    ]
    for age, level, component, message in entries:
        store.add_log("orders-dr", level, component, message)
        backdate(store, message, NOW - age)
    store.add_log("other-dr", "error", "runner", "connection lost elsewhere")
    yield store
    store.close()


def messages(entries) -> list[str]:
    return [e.message for e in entries]


# ---- store filters -----------------------------------------------------------------------------
def test_logs_filter_by_level_time_range_and_text(log_store):
    assert len(log_store.logs("orders-dr")) == 6
    assert messages(log_store.logs("orders-dr", level="error")) == ["Connection LOST to 10.0.0.1:3306; reconnecting"]
    assert messages(log_store.logs("orders-dr", since=NOW - timedelta(hours=1))) == [
        "delay above 300 s", "progress: 50% of rows_100_% done", "reconnected",
    ]  # fmt: skip
    assert messages(log_store.logs("orders-dr", since=NOW - timedelta(days=1), until=NOW - timedelta(hours=1))) == [
        "table audit_log has no primary key", "Connection LOST to 10.0.0.1:3306; reconnecting",
    ]  # fmt: skip
    # text: any case, in the message or the component; only entries of this task
    assert messages(log_store.logs("orders-dr", text="connection lost")) == [
        "Connection LOST to 10.0.0.1:3306; reconnecting"
    ]
    assert messages(log_store.logs("orders-dr", text="HEALTH")) == ["delay above 300 s"]
    # % and _ are literal characters, not LIKE wildcards
    assert messages(log_store.logs("orders-dr", text="50%")) == ["progress: 50% of rows_100_% done"]
    assert messages(log_store.logs("orders-dr", text="rows_100_%")) == ["progress: 50% of rows_100_% done"]
    assert log_store.logs("orders-dr", text="10.0.0_1") == []  # a wildcard "_" would match "10.0.0.1"
    assert messages(log_store.logs("orders-dr", text="%")) == ["progress: 50% of rows_100_% done"]
    # filters combine; limit keeps the newest, returned oldest first
    assert messages(log_store.logs("orders-dr", level="info", text="runner", since=NOW - timedelta(days=3))) == [
        "reconnected"
    ]
    assert messages(log_store.logs("orders-dr", limit=2)) == ["progress: 50% of rows_100_% done", "reconnected"]
    assert len(log_store.logs("orders-dr", limit=None)) == 6


def test_csv_export_has_the_header_and_one_row_per_entry(log_store, tmp_path):
    path = tmp_path / "log.csv"
    entries = log_store.logs("orders-dr", level="error") + log_store.logs("orders-dr", text="primary key")
    assert export_logs_csv(entries, path) == 2
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(CSV_HEADER) == ["time", "level", "component", "message"]
    assert rows[1] == [
        f"{entries[0].time:%Y-%m-%d %H:%M:%S}", "error", "runner", "Connection LOST to 10.0.0.1:3306; reconnecting"
    ]
    assert rows[2][1:] == ["warning", "apply", "table audit_log has no primary key"]
    # commas, quotes, newlines and non-ASCII survive the round trip
    log_store.add_log("orders-dr", "info", "apply", 'row "1,2"\nnext line — ünïcode')
    export_logs_csv(log_store.logs("orders-dr", limit=1), path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        assert list(csv.reader(f))[1][3] == 'row "1,2"\nnext line — ünïcode'


# ---- retention -----------------------------------------------------------------------------------
def test_retention_keeps_each_task_log_bounded_while_it_grows(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "LOG_KEEP_ENTRIES", 50)
    monkeypatch.setattr(store_module, "LOG_PRUNE_EVERY", 10)
    store = make_store(tmp_path / "home", "orders-dr", "other-dr")
    store.add_log("other-dr", "info", "task", "other task's entry")
    sizes = []
    for i in range(300):
        store.add_log("orders-dr", "info", "apply", f"entry {i}")
        sizes.append(len(store.logs("orders-dr", limit=None)))
    assert max(sizes) <= 50 + 10  # the bound plus the inserts between two prunes
    kept = messages(store.logs("orders-dr", limit=None))
    assert kept[-1] == "entry 299" and "entry 0" not in kept  # the newest stay, the oldest go
    assert messages(store.logs("other-dr")) == ["other task's entry"]  # per task
    store.close()


def test_retention_with_the_real_numbers_drops_entries_beyond_the_bound_and_too_old(tmp_path):
    """20,000+ entries written straight into SQLite (fast), then one add_log from a fresh process's Store."""
    home = tmp_path / "home"
    make_store(home).close()
    old = NOW - timedelta(days=LOG_KEEP_DAYS + 1)
    with sqlite3.connect(home / STORE_FILE) as conn:
        task_id = conn.execute("SELECT id FROM tasks WHERE name = 'orders-dr'").fetchone()[0]
        conn.executemany(
            "INSERT INTO dr_log (task_id, time, level, component, message) VALUES (?, ?, 'info', 'bulk', ?)",
            [(task_id, str(old if i < 100 else NOW - timedelta(minutes=1)), f"bulk {i}")
             for i in range(LOG_KEEP_ENTRIES + 500)],
        )  # fmt: skip
    store = Store(home)
    store.add_log("orders-dr", "info", "task", "newest")
    entries = store.logs("orders-dr", limit=None)
    assert len(entries) == LOG_KEEP_ENTRIES
    assert entries[-1].message == "newest"
    assert all(e.time > NOW - timedelta(days=LOG_KEEP_DAYS) for e in entries)
    # an old entry alone is dropped for its age, not only beyond the count
    store.add_log("orders-dr", "info", "task", "will be old")
    backdate(store, "will be old", old)
    assert store.prune_logs("orders-dr") == 2  # the old one, and the oldest beyond 20,000
    remaining = messages(store.logs("orders-dr", limit=None))
    assert "will be old" not in remaining and len(remaining) == LOG_KEEP_ENTRIES - 1
    store.close()


# ---- time parsing ----------------------------------------------------------------------------------
def test_parse_when_takes_durations_ago_and_iso_times():
    now = datetime(2025, 3, 1, 12, 0, 0)
    assert parse_when("15m", now) == datetime(2025, 3, 1, 11, 45)
    assert parse_when("1h", now) == datetime(2025, 3, 1, 11, 0)
    assert parse_when("7d", now) == datetime(2025, 2, 22, 12, 0)
    assert parse_when(" 30s ", now) == datetime(2025, 3, 1, 11, 59, 30)
    assert parse_when("2025-02-28 08:30", now) == datetime(2025, 2, 28, 8, 30)
    assert parse_when("2025-02-28", now) == datetime(2025, 2, 28)
    for bad in ("yesterday", "15x", "-1h", ""):
        with pytest.raises(ValueError, match="neither a duration"):
            parse_when(bad, now)


# ---- the CLI ---------------------------------------------------------------------------------------
def test_cli_task_logs_grep_since_until_csv_and_bad_values(tmp_path):
    home = tmp_path / "home"
    spec_file = write_spec(tmp_path / "spec.json", spec_dict())
    assert drs(home, "task", "create", "--spec", spec_file, "--skip-checks").returncode == 0
    store = Store(home)
    store.add_log("orders-dr", "error", "runner", "Connection lost; reconnecting")
    store.add_log("orders-dr", "warning", "apply", "table audit has no primary key")
    store.add_log("orders-dr", "info", "runner", "old news")
    backdate(store, "old news", NOW - timedelta(days=2))
    store.close()

    grep = drs(home, "task", "logs", "orders-dr", "--grep", "CONNECTION")
    assert grep.returncode == 0, grep.stderr
    assert grep.stdout.count("\n") == 1 and "ERROR" in grep.stdout and "Connection lost" in grep.stdout

    recent = json.loads(drs(home, "task", "logs", "orders-dr", "--since", "1h", "--json").stdout)
    assert [e["message"] for e in recent] == [
        "task created (Starting)", "Connection lost; reconnecting", "table audit has no primary key",
    ]  # fmt: skip
    older = json.loads(drs(home, "task", "logs", "orders-dr", "--until", "1d", "--json").stdout)
    assert [e["message"] for e in older] == ["old news"]
    since_iso = (NOW - timedelta(days=3)).isoformat(sep=" ", timespec="minutes")
    until_iso = (NOW - timedelta(days=1)).isoformat(timespec="seconds")
    window = json.loads(drs(home, "task", "logs", "orders-dr", "--since", since_iso, "--until", until_iso,
                            "--json").stdout)  # fmt: skip
    assert [e["message"] for e in window] == ["old news"]

    out = tmp_path / "export.csv"
    exported = drs(home, "task", "logs", "orders-dr", "--level", "warning", "--csv", str(out))
    assert exported.returncode == 0, exported.stderr
    assert f"1 log entries written to {out}" in exported.stdout
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time", "level", "component", "message"]
    assert rows[1][1:] == ["warning", "apply", "table audit has no primary key"]

    for flag, value in (("--since", "yesterday"), ("--until", "3 parsecs"), ("--limit", "0")):
        bad = drs(home, "task", "logs", "orders-dr", flag, value)
        assert bad.returncode == 2
        assert flag in bad.stderr and bad.stdout == ""
    unwritable = drs(home, "task", "logs", "orders-dr", "--csv", str(tmp_path / "no-such-dir" / "x.csv"))
    assert unwritable.returncode == 2 and "--csv" in unwritable.stderr
