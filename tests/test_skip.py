"""The DBA's escape hatch: `drs task skip NAME --event FILE:POS` after a failure handled by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dr_helpers import assert_databases_identical, wait_for
from test_runner_e2e import create_task, drs, show, start_run, stop

from engine.skip import parse_event


def logs(home: Path, name: str) -> list[dict]:
    return json.loads(drs(home, "task", "logs", name, "--json", check=True).stdout)


def test_skip_a_ddl_handled_by_hand_then_continue(dbs, home, tmp_path):
    dbs.source.sql("CREATE DATABASE shop", "CREATE TABLE shop.a (id INT PRIMARY KEY, v INT)", "INSERT INTO shop.a VALUES (1, 1)")
    create_task(home, dbs, "skip-dr", tmp_path, databases=["shop"])
    proc = start_run(home, "skip-dr")
    try:
        wait_for(lambda: show(home, "skip-dr")["status"] == "replicating", 120, 0.3, "replicating")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.a")[0][0] == 1, 60, 0.3, "initial copy")
        # a rogue write on the DR side (root is not stopped by read_only) breaks the next DDL there
        dbs.target.sql("INSERT INTO shop.a VALUES (99, 1)")
        dbs.source.sql(
            "INSERT INTO shop.a VALUES (2, 2)",
            "ALTER TABLE shop.a ADD UNIQUE KEY uv (v)",
            "INSERT INTO shop.a VALUES (3, 3)",
        )
        _out, err = proc.communicate(timeout=240)
        code = proc.returncode
    finally:
        if proc.poll() is None:
            stop(proc)
    assert code == 1, err
    record = show(home, "skip-dr")
    assert record["status"] == "failed" and "1062" in record["last_error"], record["last_error"]
    event = re.search(r"--event (\S+:\d+)", record["last_error"]).group(1)
    assert event in err  # what `drs run` printed names it too
    assert dbs.target.sql("SELECT id FROM shop.a ORDER BY id") == [(1,), (2,), (99,)]  # applied up to the DDL
    # the DBA handles it by hand: the rogue row goes, the DDL is run on the DR side
    dbs.target.sql("DELETE FROM shop.a WHERE id = 99", "ALTER TABLE shop.a ADD UNIQUE KEY uv (v)")

    # a malformed position: exit 2 naming the flag
    bad = drs(home, "task", "skip", "skip-dr", "--event", "binlog.000001")
    assert bad.returncode == 2 and "--event" in bad.stderr
    # not the next transaction (one past it): refused, saying which one is next
    file, pos = event.rsplit(":", 1)
    wrong = drs(home, "task", "skip", "skip-dr", "--event", f"{file}:{int(pos) + 1}", "--yes")
    assert wrong.returncode == 2 and f"the next one is at {event}" in wrong.stderr and "ALTER TABLE" in wrong.stderr, wrong.stderr
    # without --yes: the description, and nothing done
    ask = drs(home, "task", "skip", "skip-dr", "--event", event)
    assert ask.returncode == 2 and "--yes" in ask.stderr
    assert "DDL in shop" in ask.stdout and "ALTER TABLE shop.a ADD UNIQUE KEY uv (v)" in ask.stdout, ask.stdout
    assert show(home, "skip-dr")["checkpoint"]["binlog_pos"] == int(pos)

    done = drs(home, "task", "skip", "skip-dr", "--event", event, "--yes", check=True)
    assert "skipped" in done.stdout
    after = show(home, "skip-dr")
    assert after["status"] == "failed"  # the DBA retries when ready
    assert after["checkpoint"]["binlog_file"] == file and after["checkpoint"]["binlog_pos"] > int(pos)
    entry = [e for e in logs(home, "skip-dr") if e["message"].startswith("DBA skipped event")]
    assert entry and entry[-1]["level"] == "warning" and event in entry[-1]["message"] and "ALTER TABLE" in entry[-1]["message"]
    # a second skip of the same event is refused: it is behind the checkpoint now
    assert drs(home, "task", "skip", "skip-dr", "--event", event, "--yes").returncode == 2

    drs(home, "task", "resume", "skip-dr", check=True)
    proc = start_run(home, "skip-dr")
    try:
        dbs.source.sql("INSERT INTO shop.a VALUES (4, 4)")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.a")[0][0] == 4, 60, 0.3, "later changes")
        assert_databases_identical(dbs.source, dbs.target, ["shop"])
        assert show(home, "skip-dr")["status"] == "replicating"
    finally:
        code, _out, err = stop(proc)
        assert code == 0, err


def test_skip_a_row_change_in_a_batch_keeps_the_ones_before_it(dbs, home, tmp_path):
    """A failing transaction among others applied together: those before it are committed, the error
    names it, and skipping it loses nothing else."""
    dbs.source.sql(
        "CREATE DATABASE shop", "CREATE TABLE shop.a (id INT PRIMARY KEY)", "CREATE TABLE shop.gone (id INT PRIMARY KEY)"
    )
    create_task(home, dbs, "rows-dr", tmp_path, databases=["shop"])
    proc = start_run(home, "rows-dr")
    try:
        wait_for(lambda: show(home, "rows-dr")["status"] == "replicating", 120, 0.3, "replicating")
        dbs.target.sql("DROP TABLE shop.gone")  # the DR side lost a table
        # one round trip: these reach the runner together and are applied as one batch
        conn = dbs.source.root("shop", client_flag=1 << 16)  # CLIENT_MULTI_STATEMENTS
        with conn.cursor() as cur:
            cur.execute("INSERT INTO a VALUES (1); INSERT INTO a VALUES (2); INSERT INTO gone VALUES (1); INSERT INTO a VALUES (3)")
            while cur.nextset():
                pass
        conn.close()
        proc.communicate(timeout=240)
        code = proc.returncode
    finally:
        if proc.poll() is None:
            stop(proc)
    assert code == 1
    record = show(home, "rows-dr")
    assert "gone" in record["last_error"], record["last_error"]
    event = re.search(r"--event (\S+:\d+)", record["last_error"]).group(1)
    # the two transactions before the failing one are on the DR side, and the checkpoint stands right before it
    assert dbs.target.sql("SELECT id FROM shop.a ORDER BY id") == [(1,), (2,)]
    assert parse_event(event).pos == record["checkpoint"]["binlog_pos"]
    ask = drs(home, "task", "skip", "rows-dr", "--event", event)
    assert ask.returncode == 2 and "insert 1 row into shop.gone" in ask.stdout, ask.stdout
    # the DBA re-creates the table (and the row) by hand, then skips the event
    dbs.target.sql("CREATE TABLE shop.gone (id INT PRIMARY KEY)", "INSERT INTO shop.gone VALUES (1)")
    drs(home, "task", "skip", "rows-dr", "--event", event, "--yes", check=True)
    drs(home, "task", "resume", "rows-dr", check=True)
    proc = start_run(home, "rows-dr")
    try:
        dbs.source.sql("INSERT INTO shop.gone VALUES (2)")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.gone")[0][0] == 2, 60, 0.3, "later changes")
        assert_databases_identical(dbs.source, dbs.target, ["shop"])
    finally:
        code, _out, err = stop(proc)
        assert code == 0, err


def test_skip_is_refused_unless_the_task_failed(dbs, home, tmp_path):
    create_task(home, dbs, "idle-dr", tmp_path)
    result = drs(home, "task", "skip", "idle-dr", "--event", "binlog.000001:400", "--yes")
    assert result.returncode == 2 and "Skip Failed Event is not available" in result.stderr
    missing = drs(home, "task", "skip", "no-such-task", "--event", "binlog.000001:400")
    assert missing.returncode == 2 and "no-such-task" in missing.stderr
    flag = drs(home, "task", "skip", "idle-dr")
    assert flag.returncode == 2 and "--event" in flag.stderr


def test_parse_event():
    assert parse_event(" binlog.000012:4567 ").pos == 4567
    for text in ("", "binlog.000012", "binlog.000012:x", ":45", "binlog.000012:3"):
        try:
            parse_event(text)
        except ValueError as exc:
            assert "FILE:POS" in str(exc)
        else:
            raise AssertionError(f"{text!r} accepted")


def test_a_ddl_that_failed_for_real_is_not_taken_for_applied_on_retry(dbs, home, tmp_path):
    dbs.source.sql("CREATE DATABASE shop", "CREATE TABLE shop.a (id INT PRIMARY KEY)")
    create_task(home, dbs, "clash-dr", tmp_path, databases=["shop"])
    proc = start_run(home, "clash-dr")
    try:
        wait_for(lambda: show(home, "clash-dr")["status"] == "replicating", 120, 0.3, "replicating")
        # a different table of the same name on the DR side: the source's CREATE TABLE fails there (1050)
        dbs.target.sql("CREATE TABLE shop.clash (other VARCHAR(5))")
        dbs.source.sql("CREATE TABLE shop.clash (id INT PRIMARY KEY, note VARCHAR(10))", "INSERT INTO shop.a VALUES (1)")
        wait_for(lambda: show(home, "clash-dr")["status"] == "failed" or dbs.target.sql("SELECT COUNT(*) FROM shop.a")[0][0] == 1,
                 120, 0.3, "failed, or went on")  # fmt: skip
        assert show(home, "clash-dr")["status"] == "failed"
    finally:
        if proc.poll() is None:
            stop(proc)
