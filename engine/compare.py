"""Compare DR items: objects, row counts and values of the service and DR sides, computed by the servers.

Values are checked as primary-key chunks whose checksums both servers compute in parallel; only a
chunk that differs is split down to its rows, and only what still differs after the DR side has passed
the source position read at the check is reported (so a compare works while the task streams).
"""

from __future__ import annotations

import csv
import html
import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pymysql

from engine.connect import META_DATABASE, BinlogPosition, binlog_position, connect, qualified, quote_ident
from engine.errors import ActionNotAllowed, DrsError, FieldError, SpecInvalid
from engine.objects import ObjectItem, fix_statements
from engine.spec import SYSTEM_DATABASES, Endpoint, TaskSpec
from engine.sqlexpr import float_as_double_sql
from engine.status import Action, Status, why_not

LEVELS = ("objects", "rows", "values")
KINDS = ("missing", "extra", "different", "count", "object")

# Kept light on the DR side (a standby that may be serving reads): at most PARALLEL_MAX connections
# per side, each checksumming one chunk of CHUNK_ROWS rows at a time.
CHUNK_ROWS = 10_000
PARALLEL_DEFAULT, PARALLEL_MAX = 2, 4
RECHECKS = 5  # rounds for a difference that might be a change still in flight
DR_WAIT_SECONDS = 30.0  # how long a recheck waits for the DR side to pass the source position
DETAIL_ROWS = 200  # rows per table whose differing columns are spelled out (all keys are listed)
MAX_DIFFERENCES_PER_TABLE = 10_000
NARROW_KEYS = 100  # keys per slice when a mismatched chunk is narrowed before its rows are listed
VALUE_PREVIEW = 60


class CompareCancelled(DrsError):
    pass


# ---- what a compare reports ----------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One difference, in the CLI contract's terms (`table`, `kind`, `key`, `detail`)."""

    table: str  # "db.table" (or "db.name" of a view, routine, trigger, event; "db" for a database)
    kind: str  # missing (on the DR side) | extra (only on the DR side) | different | count | object
    key: list[Any] | None
    detail: str
    object_type: str = "table"
    fix: tuple[str, ...] = ()  # statements that would make the DR side match, for review

    @property
    def fix_sql(self) -> str:
        return "".join(s.rstrip().rstrip(";") + ";\n" for s in self.fix)

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "kind": self.kind, "key": self.key, "detail": self.detail,
                "object_type": self.object_type}  # fmt: skip


@dataclass(frozen=True)
class TableResult:
    table: str
    source_rows: int | None
    target_rows: int | None
    chunks: int = 0
    differences: int = 0
    status: str = "consistent"  # consistent | inconsistent | skipped
    note: str = ""


@dataclass(frozen=True)
class CompareProgress:
    done: int
    total: int
    current: str

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0


@dataclass
class CompareReport:
    task: str
    level: str
    scope: list[str]
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "finished"  # finished | cancelled | failed
    run_id: int | None = None
    differences: list[Difference] = field(default_factory=list)
    objects: list[ObjectItem] = field(default_factory=list)
    tables: list[TableResult] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)  # changed during every recheck
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def consistent(self) -> bool:
        return not self.differences and self.status == "finished"

    def fix_statements(self) -> list[str]:
        return [s for d in self.differences for s in d.fix]

    def summary(self) -> dict[str, Any]:
        counts = {k: 0 for k in KINDS}
        for d in self.differences:
            counts[d.kind] = counts.get(d.kind, 0) + 1
        return {
            "consistent": self.consistent, "level": self.level, "scope": self.scope,
            "differences": len(self.differences), "by_kind": counts, "tables": len(self.tables),
            "objects": len(self.objects), "unverified": len(self.unverified), "notes": self.notes,
            "error": self.error,
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "run_id": self.run_id,
            "level": self.level,
            "scope": self.scope,
            "status": self.status,
            "consistent": self.consistent,
            "differences": [d.to_json() for d in self.differences],
            "objects": [asdict(o) for o in self.objects],
            "tables": [asdict(t) for t in self.tables],
            "unverified": self.unverified,
            "notes": self.notes,
            "error": self.error,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": self.finished_at.isoformat(timespec="seconds") if self.finished_at else None,
            "seconds": round((self.finished_at - self.started_at).total_seconds(), 3) if self.finished_at else None,
        }


# ---- connections ---------------------------------------------------------------------------------


class _Pool:
    """A few connections to one server, handed to one thread at a time."""

    def __init__(self, endpoint: Endpoint, size: int):
        self.endpoint = endpoint
        self._free: queue.SimpleQueue[pymysql.connections.Connection] = queue.SimpleQueue()
        self._all: list[pymysql.connections.Connection] = []
        self._size = size
        self._lock = threading.Lock()

    @contextmanager
    def conn(self) -> Iterator[pymysql.connections.Connection]:
        try:
            c = self._free.get_nowait()
        except queue.Empty:
            c = connect(self.endpoint)
            with self._lock:
                self._all.append(c)
        try:
            yield c
        except BaseException:
            with self._lock:
                self._all.remove(c)
            c.close()
            raise
        self._free.put(c)

    def rows(self, sql: str, args: Any = None) -> list[tuple]:
        with self.conn() as c, c.cursor() as cur:
            cur.execute(sql, args)
            return [tuple(_text(v) for v in row) for row in cur.fetchall()]

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - closing a dead connection
                    pass
            self._all.clear()


def _text(v: Any) -> Any:
    return v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else v


# ---- the comparer ------------------------------------------------------------------------------------


class Comparer:
    """One compare run of one task. `cancel` (an Event) stops it between chunks."""

    def __init__(
        self,
        spec: TaskSpec,
        task: str,
        *,
        promoted: bool = False,
        on_progress: Callable[[CompareProgress], None] | None = None,
        cancel: threading.Event | None = None,
        parallel: int = PARALLEL_DEFAULT,
        chunk_rows: int = CHUNK_ROWS,
        runner_alive: Callable[[], bool] | None = None,
    ):
        self.spec = spec
        self.task = task
        self.promoted = promoted
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        self.parallel = max(1, min(PARALLEL_MAX, parallel))
        self.chunk_rows = max(100, chunk_rows)
        self.runner_alive = runner_alive or (lambda: False)
        self.src = _Pool(spec.source, self.parallel + 1)
        self.dr = _Pool(spec.target, self.parallel + 1)
        self._pool = ThreadPoolExecutor(2 * self.parallel, thread_name_prefix="compare")
        self._done = 0
        self._total = 1
        self._meta_known: bool | None = None
        self._progress_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.src.close()
        self.dr.close()

    # -- scope -----------------------------------------------------------------------------------
    def databases(self) -> list[str]:
        if self.spec.databases is not None:
            return [d for d in self.spec.databases if d.lower() not in SYSTEM_DATABASES]
        return [
            r[0]
            for r in self.src.rows("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
            if r[0].lower() not in SYSTEM_DATABASES and r[0] != META_DATABASE
        ]

    def base_tables(self, pool: _Pool, databases: Sequence[str]) -> list[tuple[str, str]]:
        if not databases:
            return []
        marks = ",".join(["%s"] * len(databases))
        return [
            (r[0], r[1])
            for r in pool.rows(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE IN "
                f"('BASE TABLE', 'SYSTEM VERSIONED') AND TABLE_SCHEMA IN ({marks}) ORDER BY 1, 2",
                list(databases),
            )
        ]

    def resolve_tables(self, names: Sequence[str] | None) -> list[tuple[str, str]]:
        """The tables in scope; `names` ("db.t") must each be a table of the task on the service side."""
        dbs = self.databases()
        tables = self.base_tables(self.src, dbs)
        if not names:
            return tables
        known = {f"{d}.{t}": (d, t) for d, t in tables}
        chosen, unknown = [], []
        for n in names:
            if n in known:
                chosen.append(known[n])
            else:
                unknown.append(n)
        if unknown:
            raise SpecInvalid(
                [FieldError("--tables", f"{', '.join(unknown)}: not a table of this task on the service side "
                                        "(write db.table; the task covers: " + ", ".join(dbs) + ")")]  # fmt: skip
            )
        return chosen

    # -- progress ----------------------------------------------------------------------------------
    def _tick(self, current: str, n: int = 1) -> None:
        if self.cancel.is_set():
            raise CompareCancelled("compare cancelled")
        with self._progress_lock:
            self._done += n
            done, total = self._done, max(self._total, self._done)
        if self.on_progress:
            self.on_progress(CompareProgress(done, total, current))

    # -- positions (online compare) ----------------------------------------------------------------
    def source_position(self) -> BinlogPosition:
        with self.src.conn() as c:
            return binlog_position(c)

    def dr_position(self) -> BinlogPosition | None:
        rows = self.dr.rows(
            f"SELECT binlog_file, binlog_pos FROM {quote_ident(META_DATABASE)}.`checkpoint` WHERE task = %s",
            (self.task,),
        ) if self._has_meta() else []  # fmt: skip
        if not rows or rows[0][0] is None:
            return None
        return BinlogPosition(rows[0][0], int(rows[0][1]))

    def _has_meta(self) -> bool:
        if self._meta_known is None:  # asked at every recheck; the answer does not change during a run
            self._meta_known = self._read_has_meta()
        return self._meta_known

    def _read_has_meta(self) -> bool:
        return bool(
            self.dr.rows(
                "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'checkpoint'",
                (META_DATABASE,),
            )
        )

    def wait_dr_past(self, position: BinlogPosition) -> bool:
        """Wait until the DR side has applied up to `position` of the source; False if it never gets there."""
        from engine.runner import position_key

        if self.promoted:
            return True
        deadline = time.monotonic() + DR_WAIT_SECONDS
        last: BinlogPosition | None = None
        still_since = time.monotonic()
        while True:
            current = self.dr_position()
            if current is None:
                return False
            if position_key(current) >= position_key(position):
                return True
            if current != last:
                last, still_since = current, time.monotonic()
            # a task nobody runs will not move: do not wait for it
            if not self.runner_alive() and time.monotonic() - still_since > 2.0:
                return False
            if time.monotonic() > deadline or self.cancel.is_set():
                return False
            time.sleep(0.2)

    # ---- object level ------------------------------------------------------------------------------
    def compare_objects(self, report: CompareReport, tables: Sequence[tuple[str, str]] | None) -> None:
        from engine import objects

        dbs = self.databases() if tables is None else sorted({d for d, _ in tables})
        self._total = max(1, len(dbs))
        def read(tick: bool) -> list[ObjectItem]:
            with self.src.conn() as s, self.dr.conn() as d:
                return objects.compare_databases(
                    s, d, dbs, task=self.task, promoted=self.promoted, tables=tables,
                    migrate_definer=self.spec.migrate_definer,
                    on_database=(lambda db: self._tick(db)) if tick else None,
                )  # fmt: skip

        items = read(True)
        # a DDL may be in flight: look again once the DR side has passed where the source is now
        if any(i.status != "consistent" for i in items) and self.wait_dr_past(self.source_position()):
            items = read(False)
        report.objects.extend(items)
        for item in items:
            if item.status != "consistent":
                report.differences.append(
                    Difference(item.name, "object", None, f"{item.object_type} {item.status}: {item.detail}".rstrip(": "),
                               object_type=item.object_type, fix=fix_statements(item))  # fmt: skip
                )

    # ---- row counts --------------------------------------------------------------------------------
    def compare_counts(self, report: CompareReport, tables: Sequence[tuple[str, str]]) -> None:
        dr_tables = set(self.base_tables(self.dr, sorted({d for d, _ in tables})))
        self._total = max(1, len(tables))

        def count(pool: _Pool, db: str, t: str) -> int:
            return int(pool.rows(f"SELECT COUNT(*) FROM {qualified(db, t)}")[0][0])

        for db, t in tables:
            name = f"{db}.{t}"
            if (db, t) not in dr_tables:
                report.tables.append(TableResult(name, count(self.src, db, t), None, status="inconsistent",
                                                 note="missing on the DR side"))  # fmt: skip
                report.differences.append(Difference(name, "object", None, "table missing on the DR side"))
                self._tick(name)
                continue
            fs, fd = self._pool.submit(count, self.src, db, t), self._pool.submit(count, self.dr, db, t)
            src_n, dr_n = fs.result(), fd.result()
            if src_n != dr_n:
                src_n, dr_n, stable = self._recheck(lambda db=db, t=t: count(self.src, db, t),
                                                    lambda db=db, t=t: count(self.dr, db, t))  # fmt: skip
                if not stable:  # the source kept changing: not a finding, but not a proof either
                    report.unverified.append(f"{name}: row count changed during every recheck")
                    report.tables.append(TableResult(name, src_n, dr_n, status="unverified",
                                                     note="row count changed during every recheck"))  # fmt: skip
                    self._tick(name)
                    continue
            ok = src_n == dr_n
            report.tables.append(TableResult(name, src_n, dr_n, status="consistent" if ok else "inconsistent",
                                             differences=0 if ok else 1))  # fmt: skip
            if not ok:
                report.differences.append(
                    Difference(name, "count", None, f"service side {src_n} rows, DR side {dr_n} rows")
                )
            self._tick(name)

    def _recheck(self, read_src: Callable[[], Any], read_dr: Callable[[], Any]) -> tuple[Any, Any, bool]:
        """A difference is real when the source stood still during a round, or two rounds in a row saw
        it with the source unchanged across the DR read (see _rows_of_chunk). Returns (source, dr, settled)."""
        seen = None
        src = dr = None
        for _ in range(RECHECKS):
            before, dr, src, still_source = self._read_round(read_src, read_dr)
            if src == dr or still_source:
                return src, dr, True
            if before == src and seen == (src, dr):
                return src, dr, True
            seen = (src, dr) if before == src else None
        return src, dr, False

    # ---- values ---------------------------------------------------------------------------------------
    def compare_values(self, report: CompareReport, tables: Sequence[tuple[str, str]]) -> None:
        dr_tables = set(self.base_tables(self.dr, sorted({d for d, _ in tables})))
        plans: list[_TablePlan] = []
        for db, t in tables:
            name = f"{db}.{t}"
            if (db, t) not in dr_tables:
                report.tables.append(TableResult(name, None, None, status="inconsistent", note="missing on the DR side"))
                report.differences.append(Difference(name, "object", None, "table missing on the DR side"))
                continue
            plan = self._plan(db, t)
            if plan.mismatch:
                report.tables.append(TableResult(name, None, None, status="skipped", note=plan.mismatch))
                report.differences.append(Difference(name, "object", None, plan.mismatch))
                continue
            plans.append(plan)
        self._total = max(1, sum(len(p.chunks) for p in plans))
        for plan in plans:
            report.tables.append(self._compare_table(plan, report))

    def _plan(self, db: str, t: str) -> _TablePlan:
        from engine.chunks import INT_TYPES, chunk_key, table_columns

        with self.src.conn() as c:
            columns = table_columns(c, db, t)
            _, key = chunk_key(c, db, t, columns)
        with self.dr.conn() as c:
            dr_columns = table_columns(c, db, t)
        src_shape = [(col.name, col.data_type, col.charset) for col in columns]
        dr_shape = [(col.name, col.data_type, col.charset) for col in dr_columns]
        plan = _TablePlan(db, t, tuple(columns), tuple(key))
        if src_shape != dr_shape:
            missing = [n for n, *_ in src_shape if n not in {m for m, *_ in dr_shape}]
            extra = [n for n, *_ in dr_shape if n not in {m for m, *_ in src_shape}]
            what = []
            if missing:
                what.append("columns missing on the DR side: " + ", ".join(missing))
            if extra:
                what.append("columns only on the DR side: " + ", ".join(extra))
            if not what:
                what.append("column types or order differ")
            plan.mismatch = "; ".join(what) + " (values not compared; see the object-level compare)"
            return plan
        stored = [col for col in columns if not col.generated]
        plan.columns = tuple(stored)
        plan.nullable = tuple(
            r[0]
            for r in self.src.rows(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                "AND IS_NULLABLE = 'YES'",
                (db, t),
            )
        )
        if not key:
            buckets = 1
            est = self._estimate_rows(db, t)
            while buckets < 1024 and buckets * self.chunk_rows < est:
                buckets *= 2
            plan.buckets = buckets
            plan.chunks = [_Chunk(bucket=-1, buckets=buckets)]  # one grouped pass over every bucket
            return plan
        key_cols = [next(c for c in columns if c.name == k) for k in key]
        plan.key_columns = tuple(key_cols)
        if len(key) == 1 and key_cols[0].data_type in INT_TYPES:
            plan.int_key = True
            lo, hi = self.src.rows(f"SELECT MIN({quote_ident(key[0])}), MAX({quote_ident(key[0])}) FROM {qualified(db, t)}")[0]
            dlo, dhi = self.dr.rows(f"SELECT MIN({quote_ident(key[0])}), MAX({quote_ident(key[0])}) FROM {qualified(db, t)}")[0]
            ends = [int(v) for v in (lo, hi, dlo, dhi) if v is not None]
            if not ends:
                plan.chunks = [_Chunk()]
                return plan
            lo_i, hi_i = min(ends), max(ends)
            est = max(self._estimate_rows(db, t), 1)
            n = max(1, min((hi_i - lo_i + 1), -(-est // self.chunk_rows)))
            step = max(1, -(-(hi_i - lo_i + 1) // n))
            edges = list(range(lo_i + step - 1, hi_i, step))
            plan.chunks = []
            prev: str | None = None
            for e in edges:
                plan.chunks.append(_Chunk(lower=(str(prev),) if prev is not None else None, upper=(str(e),)))
                prev = str(e)
            plan.chunks.append(_Chunk(lower=(str(prev),) if prev is not None else None, upper=None))
            return plan
        plan.chunks = self._walk_boundaries(plan)
        return plan

    def _estimate_rows(self, db: str, t: str) -> int:
        rows = self.src.rows(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (db, t)
        )
        return int(rows[0][0] or 0) if rows else 0

    def _walk_boundaries(self, plan: _TablePlan) -> list[_Chunk]:
        """Chunk upper bounds every `chunk_rows` keys, read from the source's key index (never the rows)."""
        from engine.chunks import key_compare

        keys = [quote_ident(k) for k in plan.key]
        lits = ",".join(c.literal_sql for c in plan.key_columns)
        chunks: list[_Chunk] = []
        last: tuple[str, ...] | None = None
        while True:
            where = f"WHERE {key_compare(plan.key, [v.encode() for v in last], '>')}" if last else ""
            rows = self.src.rows(
                f"SELECT CONCAT_WS(0x01,{lits}) FROM {qualified(plan.db, plan.name)} {where} "
                f"ORDER BY {','.join(keys)} LIMIT 1 OFFSET {self.chunk_rows - 1}"
            )
            if not rows:
                chunks.append(_Chunk(lower=last, upper=None))
                return chunks
            upper = tuple(rows[0][0].split("\x01"))
            chunks.append(_Chunk(lower=last, upper=upper))
            last = upper

    def _compare_table(self, plan: _TablePlan, report: CompareReport) -> TableResult:
        name = f"{plan.db}.{plan.name}"
        futures: list[tuple[_Chunk, Future, Future]] = []
        for chunk in plan.chunks:
            sql = plan.checksum_sql(chunk)
            futures.append((chunk, self._pool.submit(self.src.rows, sql), self._pool.submit(self.dr.rows, sql)))
        src_rows = dr_rows = 0
        # a mismatched chunk is drilled into as soon as it is seen, beside the rest of the first pass
        drills = ThreadPoolExecutor(self.parallel, thread_name_prefix="compare-drill")
        drilled: list[Future] = []

        def drill(chunk: _Chunk) -> None:
            drilled.append(drills.submit(self._rows_of_chunk, plan, chunk, report))

        try:
            for chunk, fs, fd in futures:
                if chunk.bucket == -1:  # keyless: per-bucket (count, sums) from one GROUP BY on each side
                    a_b = {r[0]: r[1:] for r in fs.result()}
                    d_b = {r[0]: r[1:] for r in fd.result()}
                    src_rows += sum(int(v[0]) for v in a_b.values())
                    dr_rows += sum(int(v[0]) for v in d_b.values())
                    for b in sorted(set(a_b) | set(d_b), key=int):
                        if a_b.get(b) != d_b.get(b):
                            drill(_Chunk(bucket=int(b), buckets=chunk.buckets))
                    self._tick(name)
                    continue
                a, b = fs.result()[0], fd.result()[0]
                src_rows += int(a[0])
                dr_rows += int(b[0])
                if a != b:
                    drill(chunk)
                self._tick(name)
            found: list[Difference] = []
            for future in drilled:
                found.extend(future.result())
                if self.cancel.is_set():
                    raise CompareCancelled("compare cancelled")
        finally:
            for _, fs, fd in futures:
                fs.cancel()
                fd.cancel()
            drills.shutdown(wait=True, cancel_futures=True)
        if len(found) > MAX_DIFFERENCES_PER_TABLE:
            report.notes.append(f"{name}: {len(found)} differences; the first {MAX_DIFFERENCES_PER_TABLE} are listed")
            found = found[:MAX_DIFFERENCES_PER_TABLE]
        report.differences.extend(found)
        return TableResult(name, src_rows, dr_rows, chunks=len(plan.chunks), differences=len(found),
                           status="inconsistent" if found else "consistent",
                           note="" if plan.key else "no primary key: compared as a multiset of whole rows")  # fmt: skip

    def _rows_of_chunk(self, plan: _TablePlan, chunk: _Chunk, report: CompareReport) -> list[Difference]:
        """Split a mismatched chunk down to rows, rechecking what may still be in flight.

        A row counts as different when the source did not move at all during a round (its binlog
        position unchanged), or when two rounds in a row saw the same difference with the source row
        unchanged across the DR read: a row born and gone between two source reads (seen only on the
        DR side, still applying) then never passes for a difference.
        """
        name = f"{plan.db}.{plan.name}"
        sql = plan.row_hash_sql(chunk, where=self._narrow(plan, chunk))
        confirmed: dict[str, tuple[Any, Any]] = {}
        seen: dict[str, tuple[Any, Any]] = {}
        pending: set[str] | None = None
        for _ in range(RECHECKS):
            if pending is not None and plan.key and len(pending) <= 1000:
                sql = plan.row_hash_sql(chunk, keys=sorted(pending))
            before, dr, after, still_source = self._read_round(
                lambda q=sql: _hash_map(self.src.rows(q)), lambda q=sql: _hash_map(self.dr.rows(q))
            )
            keys = (set(after) | set(dr) | set(before)) if pending is None else pending
            still: set[str] = set()
            for k in keys:
                if after.get(k) == dr.get(k):
                    continue
                observed = (after.get(k), dr.get(k))
                if still_source or (before.get(k) == after.get(k) and seen.get(k) == observed):
                    confirmed[k] = observed
                    continue
                seen[k] = observed if before.get(k) == after.get(k) else (None, "in flux")
                still.add(k)
            if not still:
                break
            pending = still
        else:
            report.unverified.extend(f"{name} {k}" for k in sorted(pending or ()))
        return self._describe_rows(plan, confirmed)

    def _narrow(self, plan: _TablePlan, chunk: _Chunk) -> str | None:
        """For integer keys: checksum ~100-key slices of the chunk on both sides at once and keep only
        the slices that differ, so rows are listed for a few hundred keys, not the whole chunk."""
        if not plan.int_key or chunk.bucket is not None:
            return None
        width = max(1, min(NARROW_KEYS, self.chunk_rows // 10))
        sql = plan.narrow_sql(chunk, width)
        with ThreadPoolExecutor(1) as beside:  # not the first pass's pool: it may still be busy
            fd = beside.submit(self.dr.rows, sql)
            a = {int(r[0]): r[1:] for r in self.src.rows(sql)}
            d = {int(r[0]): r[1:] for r in fd.result()}
        slices = sorted(g for g in set(a) | set(d) if a.get(g) != d.get(g))
        if not slices or len(slices) > 50:
            return None  # nothing left (in flight) or spread wide: list the whole chunk
        return plan.slices_where(chunk, slices, width)

    def _read_round(self, read_src: Callable[[], Any], read_dr: Callable[[], Any]) -> tuple[Any, Any, Any, bool]:
        """Source, then DR once it has passed the source's position, then source again; and whether the
        source's binlog stayed put meanwhile (then nothing changed there and what differs, differs)."""
        start = self.source_position()
        before = read_src()
        self.wait_dr_past(start)
        dr = read_dr()
        after = read_src()
        return before, dr, after, self.source_position() == start

    def _describe_rows(self, plan: _TablePlan, confirmed: dict[str, tuple[Any, Any]]) -> list[Difference]:
        name = f"{plan.db}.{plan.name}"
        out: list[Difference] = []
        if not plan.key:
            for row_literal, (src_n, dr_n) in sorted(confirmed.items()):
                s, d = (src_n or 0), (dr_n or 0)
                values = row_literal
                if s > d:
                    fix = (f"INSERT INTO {qualified(plan.db, plan.name)} ({plan.column_list}) VALUES ({values})",) * (s - d)
                    out.append(Difference(name, "missing", None, f"row ({_preview_row(values)}) appears {s}x on the service side, {d}x on the DR side", fix=fix))
                else:
                    fix = (f"DELETE FROM {qualified(plan.db, plan.name)} WHERE {plan.whole_row_where(values)} LIMIT {d - s}",)
                    out.append(Difference(name, "extra", None, f"row ({_preview_row(values)}) appears {d}x on the DR side, {s}x on the service side", fix=fix))  # fmt: skip
            return out
        keys = sorted(confirmed, key=lambda k: _sort_key(k))
        detail_keys = [k for k in keys if confirmed[k][0] is not None][:DETAIL_ROWS]
        src_full = plan.full_rows(self.src, detail_keys) if detail_keys else {}
        dr_full = plan.full_rows(self.dr, [k for k in detail_keys if confirmed[k][1] is not None]) if detail_keys else {}
        for k in keys:
            src_h, dr_h = confirmed[k]
            key_values = plan.key_values(k)
            where = plan.key_where(k)
            table_sql = qualified(plan.db, plan.name)
            if src_h is not None and dr_h is None:
                row = src_full.get(k)
                fix = (f"REPLACE INTO {table_sql} ({plan.column_list}) VALUES ({','.join(row)})",) if row else ()
                out.append(Difference(name, "missing", key_values, "row missing on the DR side", fix=fix))
            elif src_h is None and dr_h is not None:
                out.append(Difference(name, "extra", key_values, "row only on the DR side", fix=(f"DELETE FROM {table_sql} WHERE {where}",)))
            else:
                srow, drow = src_full.get(k), dr_full.get(k)
                if srow and drow:
                    cols = [
                        f"{c.name}: service {_preview(a)}, DR {_preview(b)}"
                        for c, a, b in zip(plan.columns, srow, drow, strict=True)
                        if a != b
                    ]
                    detail = "; ".join(cols) or "values differ"
                else:
                    detail = "values differ"
                fix = (f"REPLACE INTO {table_sql} ({plan.column_list}) VALUES ({','.join(srow)})",) if srow else ()
                out.append(Difference(name, "different", key_values, detail, fix=fix))
        return out

    # ---- one run ---------------------------------------------------------------------------------------
    def run(self, level: str, tables: Sequence[str] | None = None) -> CompareReport:
        report = CompareReport(self.task, level, list(tables or []), datetime.now())
        try:
            chosen = self.resolve_tables(tables) if (tables or level != "objects") else None
            if not report.scope:
                report.scope = self.databases()
            if level == "objects":
                self.compare_objects(report, chosen if tables else None)
            elif level == "rows":
                self.compare_counts(report, chosen or [])
            else:
                self.compare_values(report, chosen or [])
        except CompareCancelled:
            report.status = "cancelled"
        finally:
            report.finished_at = datetime.now()
        report.differences.sort(key=lambda d: (d.table, KINDS.index(d.kind), _key_order(d.key)))
        return report


@dataclass(frozen=True)
class _Chunk:
    lower: tuple[str, ...] | None = None  # exclusive, as SQL literals
    upper: tuple[str, ...] | None = None  # inclusive
    bucket: int | None = None  # keyless tables: CRC32(row) mod buckets
    buckets: int = 1


@dataclass
class _TablePlan:
    db: str
    name: str
    all_columns: tuple[Any, ...]
    key: tuple[str, ...]
    columns: tuple[Any, ...] = ()
    key_columns: tuple[Any, ...] = ()
    chunks: list[_Chunk] = field(default_factory=list)
    mismatch: str = ""
    buckets: int = 1
    nullable: tuple[str, ...] = ()
    int_key: bool = False  # one integer key column: a chunk narrows by key arithmetic

    @property
    def table_sql(self) -> str:
        return qualified(self.db, self.name)

    @property
    def column_list(self) -> str:
        return ",".join(quote_ident(c.name) for c in self.columns)

    def _fast_expr(self) -> str:
        """The first pass's row hash input: the values joined by 0x23, cheap for the servers.

        CONCAT_WS skips NULLs, so a NULL and an empty string differ by one separator, and with two
        nullable columns or more a bitmap says which are NULL; FLOAT goes through DOUBLE (its text form
        keeps only 6 digits). Row-level checks use the exact form.
        """
        parts = []
        for c in self.columns:
            q = quote_ident(c.name)
            if c.kind == "float":
                parts.append(float_as_double_sql(q, None))  # one spelling on both sides, any version
            elif c.kind == "geometry":
                parts.append(f"ST_AsWKB({q})")
            elif c.kind == "bit":
                parts.append(f"{q}+0")
            else:
                parts.append(q)
        nullable = [c for c in self.columns if c.name in self.nullable]
        if len(nullable) >= 2:  # which one is NULL: (1, NULL, 'x') must not hash as (1, 'x', NULL)
            parts.append("CONCAT(" + ",".join(f"ISNULL({quote_ident(c.name)})" for c in nullable) + ")")
        return "CONCAT_WS(0x23," + ",".join(parts) + ")"

    def _exact_expr(self) -> str:
        """Every value as its exact SQL literal ('NULL' for NULL), comma-joined: injective."""
        return "CONCAT_WS(',', " + ",".join(c.literal_sql for c in self.columns) + ")"

    def _key_literal_expr(self) -> str:
        return "CONCAT_WS(0x01," + ",".join(c.literal_sql for c in self.key_columns) + ")"

    def where(self, chunk: _Chunk) -> str:
        from engine.chunks import key_compare

        if chunk.bucket is not None:
            return f"CRC32({self._exact_expr()}) & {chunk.buckets - 1} = {chunk.bucket}" if chunk.buckets > 1 else "1"
        parts = []
        if chunk.lower is not None:
            parts.append(key_compare(self.key, [v.encode() for v in chunk.lower], ">"))
        if chunk.upper is not None:
            parts.append(key_compare(self.key, [v.encode() for v in chunk.upper], "<="))
        return " AND ".join(parts) or "1"

    def checksum_sql(self, chunk: _Chunk) -> str:
        if chunk.bucket == -1:
            return (
                f"SELECT CRC32({self._exact_expr()}) & {chunk.buckets - 1} AS b, COUNT(*), "
                f"SUM(CRC32(CONCAT({self._exact_expr()}, '#'))), SUM(CONV(LEFT(MD5({self._exact_expr()}), 15), 16, 10)) "
                f"FROM {self.table_sql} GROUP BY b"
            )
        if chunk.bucket is not None:
            # a multiset: SUM, not XOR, so a duplicate row never cancels out
            return (
                f"SELECT COUNT(*), COALESCE(SUM(CRC32({self._exact_expr()})), 0), "
                f"COALESCE(SUM(CRC32(CONCAT({self._exact_expr()}, '#'))), 0) FROM {self.table_sql} WHERE {self.where(chunk)}"
            )
        # SUM, not BIT_XOR: CRC32 is linear over XOR, so two rows swapping equal-length values would
        # cancel out in an XOR; in a sum they only do for one pattern in 2^(bits flipped)
        return (
            f"SELECT COUNT(*), COALESCE(SUM(CRC32({self._fast_expr()})), 0) "
            f"FROM {self.table_sql} WHERE {self.where(chunk)}"
        )

    def narrow_sql(self, chunk: _Chunk, width: int) -> str:
        """Checksums of `width`-key slices of one chunk (integer keys): which slices hold the difference."""
        k = quote_ident(self.key[0])
        return (
            f"SELECT FLOOR({k} / {width}) AS g, COUNT(*), SUM(CRC32({self._fast_expr()})) "
            f"FROM {self.table_sql} WHERE {self.where(chunk)} GROUP BY g"
        )

    def slices_where(self, chunk: _Chunk, slices: Sequence[int], width: int) -> str:
        k = quote_ident(self.key[0])
        ranges = " OR ".join(f"{k} BETWEEN {g * width} AND {g * width + width - 1}" for g in slices)
        return f"({self.where(chunk)}) AND ({ranges or '0'})"

    def row_hash_sql(self, chunk: _Chunk, keys: Sequence[str] | None = None, where: str | None = None) -> str:
        if not self.key:
            # keyless: the row itself (as literals) is its identity; count its copies
            return (
                f"SELECT {self._exact_expr()} AS r, COUNT(*) FROM {self.table_sql} WHERE {self.where(chunk)} "
                "GROUP BY r"
            )
        if keys is not None:
            where = " OR ".join(self.key_where(k) for k in keys) or "0"
        return (
            f"SELECT {self._key_literal_expr()}, MD5({self._exact_expr()}) FROM {self.table_sql} "
            f"WHERE {where or self.where(chunk)}"
        )

    def key_where(self, key_literal: str) -> str:
        values = key_literal.split("\x01")
        return " AND ".join(f"{quote_ident(k)} = {v}" for k, v in zip(self.key, values, strict=True))

    def key_values(self, key_literal: str) -> list[Any]:
        return [_literal_value(v) for v in key_literal.split("\x01")]

    def whole_row_where(self, row_literal: str) -> str:
        values = _split_literals(row_literal)
        return " AND ".join(f"{quote_ident(c.name)} <=> {v}" for c, v in zip(self.columns, values, strict=True))

    def full_rows(self, pool: _Pool, keys: Sequence[str]) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            lits = ",".join(c.literal_sql for c in self.columns)
            rows = pool.rows(
                f"SELECT {self._key_literal_expr()}, {lits} FROM {self.table_sql} WHERE "
                + " OR ".join(self.key_where(k) for k in part)
            )
            for r in rows:
                out[r[0]] = tuple(r[1:])
        return out


def _hash_map(rows: Iterable[tuple]) -> dict[str, Any]:
    return {r[0]: r[1] for r in rows}


_NUMBER = re.compile(r"^-?\d+$")


def _literal_value(lit: str) -> Any:
    """A key literal as a JSON-friendly value: ints as ints, quoted text unquoted, hex text decoded."""
    if _NUMBER.match(lit):
        return int(lit)
    if lit.startswith("'") and lit.endswith("'"):
        return lit[1:-1]
    m = re.match(r"^(?:_(\w+) )?X'([0-9A-Fa-f]*)'$", lit)
    if m:
        raw = bytes.fromhex(m.group(2))
        charset = m.group(1)
        if charset:
            try:
                return raw.decode("latin-1" if charset == "latin1" else "utf-8")
            except UnicodeDecodeError:
                return raw.hex()
        return raw.hex()
    try:
        return float(lit) if "." in lit or "e" in lit.lower() else lit
    except ValueError:
        return lit


def _split_literals(row: str) -> list[str]:
    """Split 'a,b,...' of SQL literals (no literal holds a bare comma outside quotes or parentheses)."""
    out, depth, quote, cur = [], 0, False, []
    for ch in row:
        if ch == "'" :
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "," and not quote and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def _preview(value: str | None) -> str:
    if value is None:
        return "(absent)"
    v = _literal_value(value) if value != "NULL" else None
    text = "NULL" if v is None else (repr(v) if isinstance(v, str) else str(v))
    return text if len(text) <= VALUE_PREVIEW else text[: VALUE_PREVIEW - 1] + "…"


def _preview_row(row_literal: str) -> str:
    return ", ".join(_preview(v) for v in _split_literals(row_literal))


def _key_order(key: list[Any] | None) -> tuple:
    """Numbers as numbers, before text: [2] before [1000006]."""
    if key is None:
        return ()
    return tuple((0, v, "") if isinstance(v, int | float) else (1, 0, str(v)) for v in key)


def _sort_key(key_literal: str) -> tuple:
    parts = key_literal.split("\x01")
    return tuple((0, int(p), "") if _NUMBER.match(p) else (1, 0, p) for p in parts)


# ---- the task-level entry points (CLI and GUI) --------------------------------------------------------


def run_compare(
    svc: Any,
    name: str,
    level: str,
    tables: Sequence[str] | None = None,
    *,
    on_progress: Callable[[CompareProgress], None] | None = None,
    cancel: threading.Event | None = None,
    parallel: int = PARALLEL_DEFAULT,
    chunk_rows: int = CHUNK_ROWS,
    store_result: bool = True,
) -> CompareReport:
    """Compare one task's service and DR sides at `level`; the run is kept in the task's history."""
    from engine.lifecycle import pid_alive

    if level not in LEVELS:
        raise SpecInvalid([FieldError("--level", f"{level!r} is not a compare level; use one of: {', '.join(LEVELS)}")])
    record = svc.store.get_task(name)
    reason = why_not(Action.COMPARE, record.status)
    if reason:
        raise ActionNotAllowed(reason)
    spec = svc.spec_with_passwords(name)

    def runner_alive() -> bool:
        current = svc.store.get_task(name)
        if current.status not in (Status.REPLICATING, Status.INITIALIZING, Status.STARTING):
            return False
        import os

        return current.runner_pid == os.getpid() or pid_alive(current.runner_pid)

    run_id = svc.store.start_compare_run(name, level) if store_result else None
    comparer = Comparer(
        spec, name, promoted=record.status is Status.PROMOTED, on_progress=on_progress, cancel=cancel,
        parallel=parallel, chunk_rows=chunk_rows, runner_alive=runner_alive,
    )  # fmt: skip
    report = CompareReport(name, level, list(tables or []), datetime.now())
    try:
        report = comparer.run(level, tables)
    except DrsError as exc:
        report.status, report.error, report.finished_at = "failed", str(exc), datetime.now()
        if run_id is not None:
            svc.store.finish_compare_run(run_id, "failed", report.summary(), [])
        raise
    except pymysql.err.MySQLError as exc:
        report.status, report.finished_at = "failed", datetime.now()
        report.error = f"MySQL error {exc.args[0]}: {exc.args[1]}" if len(exc.args) > 1 else str(exc)
        if run_id is not None:
            svc.store.finish_compare_run(run_id, "failed", report.summary(), [])
        raise DrsError(f"compare failed: {report.error}") from None
    finally:
        comparer.close()
    report.run_id = run_id
    if run_id is not None:
        svc.store.finish_compare_run(run_id, report.status, report.summary(), _result_rows(report))
        verdict = "consistent" if report.consistent else f"{len(report.differences)} difference(s)"
        level_word = {"objects": "object", "rows": "row count", "values": "value"}[level]
        svc.store.add_log(
            name, "info" if report.consistent or report.status != "finished" else "warning", "compare",
            f"{level_word} compare #{run_id} {report.status}: {verdict}",
        )  # fmt: skip
    return report


def _result_rows(report: CompareReport) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for o in report.objects:
        rows.append({"object_type": o.object_type, "object_name": o.name, "source_value": o.source_value,
                     "target_value": o.target_value, "consistent": o.status == "consistent",
                     "detail": f"{o.status}: {o.detail}" if o.detail else o.status, "kind": "item"})  # fmt: skip
    for t in report.tables:
        rows.append({"object_type": "table", "object_name": t.table,
                     "source_value": None if t.source_rows is None else str(t.source_rows),
                     "target_value": None if t.target_rows is None else str(t.target_rows),
                     "consistent": t.status == "consistent", "detail": t.note or t.status, "kind": "table",
                     "key_json": json.dumps({"chunks": t.chunks, "differences": t.differences, "status": t.status})})  # fmt: skip
    for d in report.differences:
        rows.append({"object_type": d.object_type, "object_name": d.table, "source_value": None, "target_value": None,
                     "consistent": False, "detail": d.detail, "kind": d.kind,
                     "key_json": None if d.key is None else json.dumps(d.key, default=str),
                     "fix_sql": json.dumps(list(d.fix)) if d.fix else None})  # fmt: skip
    for u in report.unverified:
        rows.append({"object_type": "row", "object_name": u, "consistent": True, "detail": "changed during every recheck",
                     "kind": "unverified"})  # fmt: skip
    return rows


def load_report(svc: Any, name: str, run_id: int) -> CompareReport:
    """A stored run, as a report (drill-down and export of the history)."""
    runs = {r["id"]: r for r in svc.store.compare_runs(name)}
    run = runs.get(run_id)
    if run is None:
        raise SpecInvalid([FieldError("--run", f"task {name} has no compare run {run_id}; see drs compare {name} --list")])
    summary = run["summary"] or {}
    report = CompareReport(
        name, run["kind"], list(summary.get("scope") or []), datetime.fromisoformat(run["started_at"]),
        datetime.fromisoformat(run["finished_at"]) if run["finished_at"] else None, run["status"], run_id,
    )  # fmt: skip
    report.notes = list(summary.get("notes") or [])
    report.error = summary.get("error")
    for r in svc.store.compare_results(run_id):
        kind = r.get("kind")
        if kind == "item":
            status, _, detail = (r["detail"] or "").partition(": ")
            report.objects.append(ObjectItem(r["object_type"], r["object_name"], status, detail, r["source_value"], r["target_value"]))
        elif kind == "table":
            extra = json.loads(r.get("key_json") or "{}")
            report.tables.append(TableResult(
                r["object_name"], None if r["source_value"] is None else int(r["source_value"]),
                None if r["target_value"] is None else int(r["target_value"]), extra.get("chunks", 0),
                extra.get("differences", 0), extra.get("status", "consistent"),
                "" if r["detail"] in ("consistent", "inconsistent", "skipped") else (r["detail"] or ""),
            ))  # fmt: skip
        elif kind == "unverified":
            report.unverified.append(r["object_name"])
        elif kind in KINDS:
            key = json.loads(r["key_json"]) if r.get("key_json") else None
            fix = tuple(json.loads(r["fix_sql"])) if r.get("fix_sql") else ()
            report.differences.append(Difference(r["object_name"], kind, key, r["detail"] or "", r["object_type"], fix))
    return report


def list_runs(svc: Any, name: str) -> list[dict[str, Any]]:
    return svc.store.compare_runs(name)


def apply_fix(svc: Any, name: str, statements: Sequence[str]) -> int:
    """Run reviewed fix statements on the DR side (only when the DBA asks); returns how many ran."""
    record = svc.store.get_task(name)
    reason = why_not(Action.COMPARE, record.status)
    if reason:
        raise ActionNotAllowed(reason)
    spec = svc.spec_with_passwords(name)
    conn = connect(spec.target, autocommit=False)
    done = 0
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")
            for statement in statements:
                cur.execute(statement)
                done += 1
        conn.commit()
    except pymysql.err.MySQLError as exc:
        conn.rollback()
        raise DrsError(f"fix SQL failed on the DR side after {done} statement(s), all rolled back: {exc.args[-1]}") from None
    finally:
        conn.close()
    svc.store.add_log(name, "warning", "compare", f"{done} fix statement(s) applied to the DR side by the user")
    return done


# ---- export ---------------------------------------------------------------------------------------------


def write_fix_sql(report: CompareReport, path: str | Path) -> int:
    statements = report.fix_statements()
    header = (
        f"-- DRS Desktop: statements that make the DR side of task {report.task} equal to the service side\n"
        f"-- compare run {report.run_id} ({report.level}) at {report.started_at:%Y-%m-%d %H:%M:%S}; review before running\n"
    )
    Path(path).write_text(header + "".join(fix_sql_text(s) for s in statements), encoding="utf-8")
    return len(statements)


def fix_sql_text(statement: str) -> str:
    """One statement for the mysql client: compound bodies (routines, triggers, events) under DELIMITER."""
    body = statement.rstrip().rstrip(";")
    if ";" in body and re.match(r"(?is)\s*CREATE\b.*\b(PROCEDURE|FUNCTION|TRIGGER|EVENT)\b", body):
        return f"DELIMITER $$\n{body}$$\nDELIMITER ;\n"
    return body + ";\n"


def export_csv(report: CompareReport, path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["table", "kind", "key", "detail", "object_type"])
        for d in report.differences:
            w.writerow([d.table, d.kind, "" if d.key is None else json.dumps(d.key, default=str, ensure_ascii=False), d.detail, d.object_type])
        for o in report.objects:
            if o.status == "consistent":
                w.writerow([o.name, "consistent", "", o.detail, o.object_type])


def export_html(report: CompareReport, path: str | Path) -> None:
    e = html.escape
    verdict = "Consistent" if report.consistent else f"{len(report.differences)} difference(s)"
    rows = "".join(
        f"<tr><td>{e(d.table)}</td><td>{e(d.kind)}</td><td>{e('' if d.key is None else json.dumps(d.key, default=str, ensure_ascii=False))}</td>"
        f"<td>{e(d.detail)}</td></tr>"
        for d in report.differences
    )
    tables = "".join(
        f"<tr><td>{e(t.table)}</td><td>{'' if t.source_rows is None else t.source_rows}</td>"
        f"<td>{'' if t.target_rows is None else t.target_rows}</td><td>{e(t.status)}</td><td>{e(t.note)}</td></tr>"
        for t in report.tables
    )
    objects = "".join(
        f"<tr><td>{e(o.object_type)}</td><td>{e(o.name)}</td><td>{e(o.status)}</td><td>{e(o.detail)}</td></tr>"
        for o in report.objects
    )
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>Compare {e(report.task)} #{report.run_id}</title>
<style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:2px 6px}}</style></head>
<body><h1>DR compare of task {e(report.task)}</h1>
<p>Run {report.run_id}, level {e(report.level)}, scope {e(', '.join(report.scope))}, started {report.started_at:%Y-%m-%d %H:%M:%S},
status {e(report.status)}: <b>{e(verdict)}</b></p>
<h2>Differences</h2><table><tr><th>Table</th><th>Kind</th><th>Key</th><th>Detail</th></tr>{rows}</table>
<h2>Tables</h2><table><tr><th>Table</th><th>Service rows</th><th>DR rows</th><th>Status</th><th>Note</th></tr>{tables}</table>
<h2>Objects</h2><table><tr><th>Type</th><th>Name</th><th>Status</th><th>Detail</th></tr>{objects}</table>
</body></html>
"""
    Path(path).write_text(doc, encoding="utf-8")


# ---- CLI -------------------------------------------------------------------------------------------------

EXIT_CONSISTENT, EXIT_DIFFERENT = 0, 3


def cmd_compare(args: Any) -> int:
    import sys

    from engine.store import dumps
    from engine.tasks import TaskService

    svc = TaskService(args.home)
    svc.store.get_task(args.name)  # unknown task: exit 2 before anything else
    if args.list:
        runs = list_runs(svc, args.name)
        if args.json:
            print(dumps(runs))
        else:
            for r in runs:
                s = r["summary"] or {}
                verdict = "consistent" if s.get("consistent") else f"{s.get('differences', '?')} difference(s)"
                print(f"#{r['id']:<5} {r['started_at']}  {r['kind']:<8} {r['status']:<9} {verdict}")
            if not runs:
                print(f"no compare runs for task {args.name}")
        return 0
    if args.run is not None:
        report = load_report(svc, args.name, args.run)
    else:
        if not args.level:
            raise SpecInvalid([FieldError("--level", "required: objects, rows or values (or --list / --run ID)")])
        if args.apply_fix:
            raise SpecInvalid([FieldError("--apply-fix", "applies the fix of a stored run: use it with --run ID")])
        tables = [t.strip() for t in (args.tables or "").split(",") if t.strip()] or None
        for t in tables or []:
            if t.count(".") < 1 or t.startswith(".") or t.endswith("."):
                raise SpecInvalid([FieldError("--tables", f"{t!r}: write each table as db.table, comma-separated")])
        if args.parallel < 1 or args.parallel > PARALLEL_MAX:
            raise SpecInvalid([FieldError("--parallel", f"must be 1 to {PARALLEL_MAX}")])
        if args.chunk_rows < 100 or args.chunk_rows > 1_000_000:
            raise SpecInvalid([FieldError("--chunk-rows", "must be 100 to 1000000")])
        report = run_compare(svc, args.name, args.level, tables, parallel=args.parallel, chunk_rows=args.chunk_rows)
    if args.fix_sql:
        n = write_fix_sql(report, args.fix_sql)
        print(f"{n} fix statement(s) written to {args.fix_sql} (not run)", file=sys.stderr)
    if args.csv:
        export_csv(report, args.csv)
    if args.html:
        export_html(report, args.html)
    if args.apply_fix:
        if not args.yes:
            raise SpecInvalid([FieldError("--apply-fix", "changes the DR side: add --yes to confirm")])
        n = apply_fix(svc, args.name, report.fix_statements())
        print(f"{n} fix statement(s) applied to the DR side", file=sys.stderr)
    if args.json:
        print(dumps(report.to_json()))
    else:
        _print_report(report)
    if report.status == "failed":
        return 1
    return EXIT_CONSISTENT if report.consistent else EXIT_DIFFERENT


def _print_report(report: CompareReport) -> None:
    verdict = "consistent" if report.consistent else f"{len(report.differences)} difference(s)"
    if report.status != "finished":
        verdict = report.status
    print(f"compare #{report.run_id} of {report.task} ({report.level}, {', '.join(report.scope)}): {verdict}")
    for t in report.tables:
        counts = "" if t.source_rows is None else f"service {t.source_rows} rows, DR {t.target_rows} rows"
        print(f"  {t.table:<40} {t.status:<12} {counts} {t.note}".rstrip())
    for o in report.objects:
        if o.status != "consistent":
            print(f"  {o.object_type:<9} {o.name:<40} {o.status}: {o.detail}")
    for d in report.differences:
        if d.kind != "object":
            key = "" if d.key is None else json.dumps(d.key, default=str, ensure_ascii=False)
            print(f"  {d.kind:<9} {d.table} {key} {d.detail}")
    for u in report.unverified:
        print(f"  unverified {u} (changed during every recheck)")
    for n in report.notes:
        print(f"  note: {n}")


def register_cli(top: Any, task_sub: Any) -> None:
    p = top.add_parser(
        "compare",
        help="compare the service and DR sides of a task (objects, row counts or values)",
        description="Exit codes: 0 consistent, 3 differences found, 2 invalid input, 1 other failures.",
    )
    p.add_argument("name")
    p.add_argument("--level", choices=LEVELS, help="objects, rows (counts) or values (checksums down to rows)")
    p.add_argument("--tables", metavar="DB.T,...", help="only these tables (default: every table of the task)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--fix-sql", metavar="FILE", help="write the statements that would make the DR side equal (not run)")
    p.add_argument("--csv", metavar="FILE", help="export the differences as CSV")
    p.add_argument("--html", metavar="FILE", help="export the report as HTML")
    p.add_argument("--list", action="store_true", help="list the task's compare runs (history)")
    p.add_argument("--run", type=int, metavar="ID", help="show (and export) a stored run instead of running one")
    p.add_argument("--apply-fix", action="store_true", help="with --run ID: run that run's fix SQL on the DR side")
    p.add_argument("--yes", action="store_true", help="confirm --apply-fix")
    p.add_argument("--parallel", type=int, default=PARALLEL_DEFAULT, help=f"connections per side (1-{PARALLEL_MAX})")
    p.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows per checksum chunk")
    p.set_defaults(func=cmd_compare)
