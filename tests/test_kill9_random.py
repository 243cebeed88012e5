"""kill -9 of `drs run` at random points of the initial copy and the incremental phase (issue 11, 3a).

A seed makes the plan: which phase each kill lands in, when, and how long the runner stays dead while
a writer goes on. After every kill the task is run again and the DR side must catch up with ZERO
differences (`drs compare --level values --json` exits 0, and the byte-exact oracle agrees).

Kill points:
- copy:       during the initial copy (a fresh task each time), once a random share of the rows is in
- copy-end:   the moment the copy hands over to the incremental phase
- stream:     while streaming a steady OLTP load, after a random number of source transactions
- big-txn:    while a 25,000-row transaction is applied in pieces (engine.stream.PARTIAL_ROWS)
- ddl:        right after a DDL statement (a DDL is bracketed by checkpoints on the DR side)

The test id carries the seed and the number of points: a failure is re-run with the same plan by its
id (the timing within a point is the machine's, so a rare race may need a few runs). The default suite
kills at 3 points; DRS_FAULTS_LONG=1 adds 20 points (DRS_KILL9_SEED=N picks the long run's seed).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from dr_helpers import wait_for
from test_faults import (
    LONG,
    Writer,
    converged,
    count_logs,
    create_task,
    drs,
    kill9,
    oltp_schema,
    record,
    running,  # noqa: F401 - a fixture
    start_run,
    status,
    stop_run,
    wait_replicating,
)

DEFAULT_SEED = 20251
LONG_SEED = int(os.environ.get("DRS_KILL9_SEED", "7919"))
COPY_ROWS = 20000
CASES = [(DEFAULT_SEED, 3)] + ([(LONG_SEED, 20)] if LONG else [])


@dataclass(frozen=True)
class Point:
    kind: str  # copy | copy-end | stream | big-txn | ddl
    at: float  # copy: share of the rows copied; stream: source transactions; big-txn/ddl: seconds after
    dead: float  # seconds the runner stays dead (the writer goes on)

    def __str__(self) -> str:
        return f"{self.kind}@{self.at:g} dead {self.dead:.2f}s"


def plan(seed: int, points: int) -> list[Point]:
    """The kill points of one run: the first lands in the initial copy; then about one in four needs a
    fresh initial copy, the rest land in the incremental phase."""
    rng = random.Random(seed)
    out = [Point("copy", round(rng.uniform(0.05, 0.9), 2), round(rng.uniform(0, 1.5), 2))]
    while len(out) < points:
        kind = rng.choices(["copy", "copy-end", "stream", "big-txn", "ddl"], weights=[2, 1, 4, 2, 2])[0]
        if kind == "copy":
            at = round(rng.uniform(0.02, 0.98), 2)
        elif kind == "stream":
            at = float(rng.randint(10, 400))
        elif kind == "big-txn":
            at = round(rng.uniform(0.0, 0.35), 2)  # it takes about that long to apply here
        elif kind == "ddl":
            at = round(rng.uniform(0.0, 0.3), 2)
        else:
            at = 1.0
        out.append(Point(kind, at, round(rng.uniform(0, 1.5), 2)))
    if points >= 3 and not any(p.kind in ("stream", "big-txn", "ddl") for p in out[1:]):
        out[-1] = Point("stream", float(rng.randint(10, 400)), out[-1].dead)  # both phases, always
    return out


@pytest.mark.parametrize("seed,points", CASES, ids=[f"seed={s}-points={n}" for s, n in CASES])
def test_kill9_at_random_points_then_restart_converges(dbs, home, tmp_path: Path, running, seed: int, points: int):  # noqa: F811
    kills = plan(seed, points)
    print(f"kill -9 plan (seed {seed}): " + "; ".join(f"{i + 1}. {p}" for i, p in enumerate(kills)))
    rng = random.Random(seed * 7 + 1)  # the writer's pauses, apart from the plan
    oltp_schema(dbs.source, rows=COPY_ROWS)
    dbs.source.sql("CREATE TABLE oltp.bulk (id INT PRIMARY KEY, v VARCHAR(30), n INT)")
    writer = Writer(dbs.source, gap=0.003).start()
    task, tasks, bulk, ddl_no = "", 0, 0, 0
    try:
        for i, point in enumerate(kills):
            where = f"kill {i + 1} of {points} ({point}), seed {seed}"
            try:
                if point.kind in ("copy", "copy-end") or not task:
                    if task:  # a fresh initial copy: a new task in place of the old one
                        code, _out, err = stop_run(running[-1])
                        assert code == 0, err
                        drs(home, "task", "delete", task, "--yes", check=True)
                    tasks += 1
                    task = f"kill9-{tasks}"
                    # the copy is slowed down (flow control) so that a kill can land anywhere in it
                    create_task(home, dbs, task, tmp_path, databases=["oltp"], flow_control={"max_mb_s": 4, "windows": []})
                    running.append(start_run(home, task))
                    if point.kind == "copy":
                        wait_for(lambda t=task: record(home, t)[0].rows_total > 0, 120, 0.02, "the copy to start")
                        total = record(home, task)[0].rows_total
                        wait_for(
                            lambda t=task, n=point.at * total: record(home, t)[0].rows_copied >= n or status(home, t) == "replicating",
                            180, 0.02, "the copy to get that far",
                        )  # fmt: skip
                    else:
                        wait_replicating(home, task)
                elif point.kind == "stream":
                    writer.wait_commits(int(point.at))
                elif point.kind == "big-txn":
                    bulk += 1
                    dbs.source.sql(
                        "BEGIN",
                        "DELETE FROM oltp.bulk",
                        f"INSERT INTO oltp.bulk (id, v, n) SELECT seq, CONCAT('r{bulk}-', seq), seq % 101 FROM seq_1_to_25000",
                        "COMMIT",
                        database="oltp",
                    )
                    time.sleep(point.at)
                elif point.kind == "ddl":
                    ddl_no += 1
                    statement = (
                        f"ALTER TABLE oltp.bulk ADD COLUMN c{ddl_no} INT NOT NULL DEFAULT {ddl_no}"
                        if ddl_no % 2
                        else f"ALTER TABLE oltp.bulk DROP COLUMN c{ddl_no - 1}, ADD INDEX n{ddl_no} (n)"
                    )
                    dbs.source.sql(statement)
                    time.sleep(point.at)
                seen = _at_kill(home, dbs, task, point, bulk)
                kill9(running[-1])  # ---- the kill
                time.sleep(point.dead)  # the writer goes on
                writer.wait_commits(rng.randint(1, 30))
                running.append(start_run(home, task))
                wait_replicating(home, task)
                converged(home, dbs, task, ["oltp"], writer)
                assert running[-1].poll() is None, running[-1].communicate()
                assert count_logs(home, task, "automatic retry") == 0 and not _errors(home, task)
                print(f"{where}: killed {seen}; converged, zero differences")
            except AssertionError as exc:
                raise AssertionError(f"{where}: {exc}") from exc
        assert writer.committed > 100
    finally:
        writer.stop()
    code, _out, err = stop_run(running[-1])
    assert code == 0, err


def _at_kill(home: Path, dbs, task: str, point: Point, bulk: int) -> str:
    """Where the runner stood when it was killed (for the report; the kill does not wait for it)."""
    rec = record(home, task)[0]
    if rec.status.value != "replicating":
        return f"while {rec.status.value}, {rec.rows_copied} of {rec.rows_total} rows copied"
    if point.kind == "big-txn":
        applied = dbs.target.sql(f"SELECT COUNT(*) FROM oltp.bulk WHERE v LIKE 'r{bulk}-%'")[0][0]
        return f"streaming, the 25,000-row transaction {'applied' if applied else 'not yet committed on the DR side'}"
    if point.kind == "ddl":
        shape = "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='oltp' AND TABLE_NAME='bulk'"
        done = dbs.target.sql(shape) == dbs.source.sql(shape)
        return f"streaming, the DDL {'applied' if done else 'not yet applied'} on the DR side"
    return f"streaming, {rec.delay_seconds or 0:.0f} s behind"


def _errors(home: Path, task: str) -> list[str]:
    from engine.store import Store

    store = Store(home)
    try:
        return [e.message for e in store.logs(task, level="error", limit=None)]
    finally:
        store.close()
