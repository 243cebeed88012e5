"""The initial copy's data mover: reader threads read key-ordered chunks from the snapshot, writer
threads load them on the DR side as multi-row INSERTs; bounded queues keep memory flat.

Workers never log themselves: their messages go through a queue to the caller's thread.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pymysql
import pymysql.cursors

from engine import infile, literals
from engine import schema as sch
from engine.chunks import TableState, key_compare, load_row_sql, split_tuples, tuple_sql
from engine.connect import connect, qualified, quote_ident
from engine.errors import ReplicationError, Unreplicable
from engine.progress import CopyProgress, LogFn, TableProgress
from engine.schema import server_error
from engine.snapshot_lock import SnapshotLock
from engine.spec import TaskSpec
from engine.throttle import Throttle

# SQL text per chunk read from the source (and per INSERT batch); 2 MB keeps a 1M-row copy's peak RSS
# near 145 MB with 4 readers, where 4 MB took ~205 MB for no measurable speed
CHUNK_BYTES = 2 * 1024 * 1024
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 100, 200_000
PROGRESS_INTERVAL = 0.25
QUEUE_PER_WRITER = 2
# A chunk whose statement InnoDB rolled back (deadlock victim, lock wait timeout) is sent again this often
LOCK_RETRIES = 5
ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK = 1205, 1213


@dataclass(frozen=True)
class Batch:
    table: TableState
    sql: bytes  # an INSERT, or with `load` the LOAD DATA chunk (table.load_sql says how to read it)
    rows: int
    load: bool = False


class _Abort(Exception):
    """Another worker failed or stop was asked: leave quietly."""


# ---- reading and writing --------------------------------------------------------------------------


class Copier:
    """Copies the planned tables from the snapshot's readers to the DR side (one writer per reader)."""

    def __init__(
        self,
        spec: TaskSpec,
        snap: SnapshotLock,
        tables: list[TableState],
        throttle: Throttle,
        stop: threading.Event,
        log: LogFn,
        target_packet: int,
        load_data: bool = False,
    ):
        self.spec = spec
        self.snap = snap
        self.tables = tables
        self.throttle = throttle
        self.stop = stop
        self.log = log
        self.abort = threading.Event()
        self.wake = threading.Event()  # a worker ended: the coordinator looks at once
        # Workers never call `log` themselves: the caller's log (the task store) is called from the
        # caller's thread only, when the coordinator flushes these.
        self.messages: queue.SimpleQueue[tuple[str, str, str]] = queue.SimpleQueue()
        self.errors: list[BaseException] = []
        self.n_writers = max(1, len(snap.readers))
        self.batches: queue.Queue[Batch | None] = queue.Queue(maxsize=QUEUE_PER_WRITER * self.n_writers)
        self.work: queue.Queue[tuple[TableState, int | None, int | None]] = queue.Queue()
        flow_cap = max(64 * 1024, throttle.flow.max_mb_s * 1024 * 1024 // 4) if throttle.flow else CHUNK_BYTES
        # An INSERT batch must fit the DR side's packet; a chunk must fit the source's (GROUP_CONCAT).
        self.batch_limit = min(2 * CHUNK_BYTES, target_packet - min(4096, target_packet // 8))
        self.chunk_bytes = max(1024, min(CHUNK_BYTES, flow_cap, self.batch_limit, snap.max_packet // 4))
        self.target_packet = target_packet
        # LOAD DATA LOCAL INFILE where the DR server allows it (local_infile): ~30 % less of its CPU
        # than parsing the same rows as INSERT literals
        self.load_data = load_data
        for t in sorted(tables, key=lambda t: -t.bytes_estimate):
            for lo, hi in t.ranges:
                self.work.put((t, lo, hi))

    # -- threads ------------------------------------------------------------------------------

    def run(self, on_tick: Callable[[], None]) -> None:
        readers = [threading.Thread(target=self._reader, args=(c,), name=f"drs-read-{i}", daemon=True)
                   for i, c in enumerate(self.snap.readers)]  # fmt: skip
        writers = [
            threading.Thread(target=self._writer, name=f"drs-write-{i}", daemon=True)
            for i in range(self.n_writers)
        ]
        for t in readers + writers:
            t.start()
        try:
            self._coordinate(readers, writers, on_tick)
        except BaseException:
            self.abort.set()  # e.g. the progress callback failed: stop the workers before leaving
            self._finish(readers, writers)
            raise
        self.flush_log()

    def _finish(self, readers: list[threading.Thread], writers: list[threading.Thread]) -> None:
        for t in readers:
            t.join()
        for _ in writers:
            self._put(None, force=True)
        for t in writers:
            t.join()

    def flush_log(self) -> None:
        while True:
            try:
                entry = self.messages.get_nowait()
            except queue.Empty:
                return
            self.log(*entry)

    def _coordinate(
        self, readers: list[threading.Thread], writers: list[threading.Thread], on_tick: Callable[[], None]
    ) -> None:
        sentinels_sent = False
        while True:
            if self.stop.is_set():
                self.abort.set()
            self.flush_log()
            on_tick()
            self.snap.keep_ddl_block()
            if not sentinels_sent and not any(t.is_alive() for t in readers):
                self.snap.end_reads()
                for _ in writers:
                    self._put(None, force=True)
                sentinels_sent = True
            if not any(t.is_alive() for t in writers):
                break
            self.wake.wait(PROGRESS_INTERVAL)
            self.wake.clear()
        for t in readers:
            t.join()

    def _fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.abort.set()

    def _put(self, batch: Batch | None, force: bool = False) -> None:
        while True:
            if self.abort.is_set() and not force:
                raise _Abort
            try:
                self.batches.put(batch, timeout=0.2)
                return
            except queue.Full:
                if force and self.abort.is_set():
                    # writers are leaving: drop queued work so every writer sees a sentinel
                    with contextlib.suppress(queue.Empty):
                        self.batches.get_nowait()

    def _reader(self, conn: pymysql.connections.Connection) -> None:
        try:
            self._read_all(conn)
        finally:
            self.wake.set()

    def _read_all(self, conn: pymysql.connections.Connection) -> None:
        while not self.abort.is_set():
            try:
                table, lo, hi = self.work.get_nowait()
            except queue.Empty:
                return
            try:
                with table.lock:
                    table.started = table.started or time.monotonic()
                if table.key:
                    self._read_keyset(conn, table, lo, hi)
                else:
                    self._read_stream(conn, table)
                self._range_done(table)
            except _Abort:
                return
            except pymysql.err.MySQLError as exc:
                self._fail(
                    _caused_by(
                        exc,
                        ReplicationError(
                            f"copying table {table.label} failed reading the service database: {server_error(exc)}"
                        ),
                    )
                )
                return
            except BaseException as exc:  # noqa: BLE001 - reported to the caller by run_initial_copy
                self._fail(exc)
                return

    def _emit(self, table: TableState, rows: list[bytes], nrows: int, source_bytes: int) -> None:
        """Hand rows (SQL tuples) to the writers as INSERT batches under the target's packet size."""
        self.throttle.consume(source_bytes)
        with table.lock:
            table.bytes_done += source_bytes
        prefix = table.insert_prefix
        start, size = 0, len(prefix)
        for i, r in enumerate(rows):
            if size + len(r) + 1 > self.batch_limit and i > start:
                self._send(table, prefix + b",".join(rows[start:i]), i - start)
                start, size = i, len(prefix)
            size += len(r) + 1
        if len(rows) > start:
            self._send(table, prefix + b",".join(rows[start:]), len(rows) - start)

    def _lines_fit(self, data: bytes) -> bool:
        """Every line well within the DR side's max_allowed_packet, which also bounds the values the
        server unhexes there; a chunk with a bigger row goes as INSERTs (binary literals if need be)."""
        limit = self.target_packet // 2
        return len(data) < limit or max(map(len, data.split(b"\n"))) < limit

    def _emit_load(self, table: TableState, data: bytes, nrows: int) -> None:
        """Hand one chunk of LOAD DATA lines to the writers (LOCAL INFILE data has no packet limit)."""
        self.throttle.consume(len(data))
        with table.lock:
            table.bytes_done += len(data)
            table.batches_pending += 1
        self._put(Batch(table, data, nrows, load=True))

    def _send(self, table: TableState, sql: bytes, nrows: int) -> None:
        # one row may take the whole packet (batches stay at batch_limit), its big values as binary
        # literals when their hex would not fit
        row_limit = self.target_packet - min(4096, self.target_packet // 8)
        if len(sql) > row_limit:
            sql = literals.compact(sql)
        if len(sql) > (self.batch_limit if nrows > 1 else row_limit):
            raise Unreplicable(
                f"copying table {table.label}: a row of {len(sql):,} bytes (as SQL, its large values as binary) "
                f"does not fit max_allowed_packet on the DR database ({self.target_packet:,} bytes); raise it there: "
                f"SET GLOBAL max_allowed_packet={_packet_for(len(sql))}; (and under [mysqld] in my.cnf), then "
                "start the task again"
            )
        with table.lock:
            table.batches_pending += 1
        self._put(Batch(table, sql, nrows))

    def _read_keyset(
        self, conn: pymysql.connections.Connection, table: TableState, lo: int | None, hi: int | None
    ) -> None:
        """One key range, chunk by chunk: find the chunk's last key by walking the index, then let the
        server format the rows up to it as one string (no temporary table on the source)."""
        k0 = quote_ident(table.key[0])
        bounds = ([f"{k0} >= {lo}"] if lo is not None else []) + ([f"{k0} < {hi}"] if hi is not None else [])
        order = ", ".join(quote_ident(k) for k in table.key)
        source = f"{qualified(table.db, table.name)} FORCE INDEX ({quote_ident(table.key_index)})"
        key_literal = "CONCAT(" + ",',',".join(c.literal_sql for c in table.key_columns) + ")"
        row_sql = tuple_sql(table.columns)
        load_sql = load_row_sql(table.columns)
        # information_schema's sizes can be far off (fresh tables): a small first chunk, then the
        # chunks adapt to the row size actually read.
        n = MIN_CHUNK_ROWS
        last: list[bytes] | None = None
        while True:
            if self.stop.is_set() or self.abort.is_set():
                raise _Abort
            where = " AND ".join(bounds + ([key_compare(table.key, last, ">")] if last else [])) or "1"
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT {key_literal} FROM {source} WHERE {where} ORDER BY {order} LIMIT 1 OFFSET {n - 1}"
                )
                found = cur.fetchone()
            upper = found[0].split(b",") if found else None
            chunk_where = where + (f" AND {key_compare(table.key, upper, '<=')}" if upper else "")
            rows: list[bytes] | None = None
            if self.load_data and table.loadable:
                with conn.cursor() as cur:
                    cur.execute(
                        f"SELECT GROUP_CONCAT({load_sql} SEPARATOR ''), COUNT(*) FROM {source} WHERE {chunk_where}"
                    )
                    data, count = cur.fetchone()
                count = int(count)
                if count == 0:
                    return
                # as for tuples below: a row over the packet or a truncated result miscounts
                if (
                    data is not None
                    and data.endswith(b"\n")
                    and data.count(b"\n") == count
                    and self._lines_fit(data)
                ):
                    self._emit_load(table, data, count)
                    rows, nbytes = [], len(data)
            if rows is None and table.server_format:
                with conn.cursor() as cur:
                    cur.execute(
                        f"SELECT GROUP_CONCAT({row_sql} SEPARATOR ','), COUNT(*) FROM {source} WHERE {chunk_where}"
                    )
                    data, count = cur.fetchone()
                count = int(count)
                if count == 0:
                    return
                # A row over the packet (NULL, skipped by GROUP_CONCAT) or a truncated result shows
                # as a tuple count that does not match.
                if data is not None and data.endswith(b")") and data.count(b"),(") + 1 == count:
                    rows = split_tuples(data, self.batch_limit - len(table.insert_prefix))
                    nbytes = len(data)
            if rows is None:
                # Some value made a row bigger than the source's packet: this chunk read raw and
                # formatted here.
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT " + ", ".join(c.raw_sql for c in table.columns)
                        + f" FROM {source} WHERE {chunk_where} ORDER BY {order}"
                    )  # fmt: skip
                    raw = cur.fetchall()
                if not raw:
                    return
                count = len(raw)
                rows = [
                    b"(" + b",".join(c.py_literal(v) for c, v in zip(table.columns, r, strict=True)) + b")"
                    for r in raw
                ]
                nbytes = sum(len(v) for r in raw for v in r if v is not None)
            if rows:
                self._emit(table, rows, count, nbytes)
            # counted once the flow control let the chunk through, as its bytes are (in _emit): rows
            # counted ahead of their bytes made a table's byte estimate (bytes per row x rows) collapse
            with table.lock:
                table.rows_done += count
            if upper is None:  # fewer than n rows were left: the range is done
                return
            last = upper
            per_row = max(1, nbytes // count)
            n = max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, self.chunk_bytes // per_row))

    def _read_stream(self, conn: pymysql.connections.Connection, table: TableState) -> None:
        """A table without a usable key: one unordered scan, batched as it arrives."""
        if table.server_format:
            select = tuple_sql(table.columns)
        else:
            select = ", ".join(c.raw_sql for c in table.columns)
        cur = conn.cursor(pymysql.cursors.SSCursor)
        try:
            cur.execute(f"SELECT {select} FROM {qualified(table.db, table.name)}")
            pending: list[bytes] = []
            size = 0
            while True:
                if self.stop.is_set() or self.abort.is_set():
                    raise _Abort
                got = cur.fetchmany(1000)
                if got:
                    if table.server_format:
                        if any(r[0] is None for r in got):
                            raise ReplicationError(
                                f"copying table {table.label}: a row exceeds max_allowed_packet on the service database"
                            )
                        new = [r[0] for r in got]
                        nbytes = sum(len(r) for r in new)
                    else:
                        new = [
                            b"("
                            + b",".join(c.py_literal(v) for c, v in zip(table.columns, r, strict=True))
                            + b")"
                            for r in got
                        ]
                        nbytes = sum(len(v) for r in got for v in r if v is not None)
                    pending.extend(new)
                    size += sum(len(r) for r in new)
                    self.throttle.consume(nbytes)
                    with table.lock:  # rows and bytes counted together (see _read_keyset)
                        table.rows_done += len(got)
                        table.bytes_done += nbytes
                if pending and (size >= self.chunk_bytes or not got):
                    self._emit(table, pending, len(pending), 0)
                    pending, size = [], 0
                if not got:
                    return
        finally:
            if not self.abort.is_set() and not self.stop.is_set():
                cur.close()

    def _range_done(self, table: TableState) -> None:
        with table.lock:
            table.ranges_left -= 1
            done = table.ranges_left == 0 and table.batches_pending == 0
        if done:
            self.table_done(table)

    def table_done(self, table: TableState) -> None:
        with table.lock:
            if table.finished is not None:
                return
            table.finished = time.monotonic()
            seconds = table.finished - (table.started or table.finished)
        self.messages.put(
            ("info", "snapshot", f"table {table.label} copied: {table.rows_done} rows in {seconds:.1f} s")
        )

    def _writer(self) -> None:
        try:
            self._write_all()
        finally:
            self.wake.set()

    def _write_all(self) -> None:
        try:
            conn = connect(
                self.spec.target, max_allowed_packet=self.target_packet, local_infile=self.load_data
            )
            if self.load_data:
                infile.mark(conn)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
            self._drain()
            return
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
                cur.execute(literals.WITHOUT_NO_BACKSLASH_ESCAPES)  # binary literals of big rows
                _skip_statement_annotations(cur)
            while True:
                batch = self.batches.get()
                if batch is None:
                    return
                if self.abort.is_set():
                    continue
                table = batch.table
                try:
                    self._write_batch(conn, batch)
                    warnings = conn._result.warning_count if conn._result else 0  # noqa: SLF001 - pymysql keeps it there
                    if warnings and not table.warned:
                        table.warned = True
                        first = sch.fetch(conn, "SHOW WARNINGS LIMIT 1")
                        self.messages.put(("warning", "snapshot", f"table {table.label}: the DR database warned while loading: "
                                 f"{first[0][2] if first else ''} (error {first[0][1] if first else '?'})"))  # fmt: skip
                except pymysql.err.MySQLError as exc:
                    self._fail(
                        _caused_by(
                            exc,
                            ReplicationError(
                                f"copying table {table.label} failed writing to the DR database: {server_error(exc)}"
                            ),
                        )
                    )
                    continue
                except BaseException as exc:  # noqa: BLE001
                    self._fail(exc)
                    continue
                with table.lock:
                    table.batches_pending -= 1
                    done = table.ranges_left == 0 and table.batches_pending == 0
                if done:
                    self.table_done(table)
        finally:
            conn.close()

    def _write_batch(self, conn: Any, batch: Any) -> None:
        """One chunk, in its own autocommitted statement. Several writers fill one table at once, so InnoDB
        may pick one of them as a deadlock victim (or time out a lock wait): the server then rolled the
        whole statement back, and sending it again is exact."""
        table = batch.table
        for attempt in range(1, LOCK_RETRIES + 1):
            try:
                if batch.load:
                    taken = infile.load(conn, table.load_sql, batch.sql)
                    if taken != batch.rows:  # LOCAL skips a duplicate key instead of failing
                        raise ReplicationError(
                            f"copying table {table.label}: the DR database took {taken} of {batch.rows} rows "
                            "of a chunk (a duplicate key?)"
                        )
                else:
                    conn.query(batch.sql)
                return
            except pymysql.err.MySQLError as exc:
                code = exc.args[0] if exc.args else None
                if code not in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT) or attempt == LOCK_RETRIES or self.abort.is_set():
                    raise
                time.sleep(0.05 * attempt)

    def _drain(self) -> None:
        while True:
            if self.batches.get() is None:
                return


# ---- progress ----------------------------------------------------------------------------------


class ProgressReporter:
    """Sums the tables' progress into a CopyProgress for the caller, at most every PROGRESS_INTERVAL."""

    def __init__(self, tables: list[TableState], on_progress: Callable[[CopyProgress], None] | None):
        self.tables = tables
        self.on_progress = on_progress
        self.started = time.monotonic()
        self.last_emit = 0.0
        self.last_rows = -1

    def snapshot(self) -> CopyProgress:
        per = []
        rows = nbytes = rows_est = bytes_est = 0
        for t in self.tables:
            with t.lock:
                done = t.finished is not None
                r, b = t.rows_done, t.bytes_done
            # Estimates are corrected as tables go: a finished table counts what it really had, a
            # running one extrapolates from the bytes per row seen so far.
            r_est = r if done else max(r, t.rows_estimate)
            if done:
                b_est = b
            elif r and b:
                b_est = max(b, int(b / r * r_est))
            else:
                b_est = t.bytes_estimate
            per.append(TableProgress(t.db, t.name, r, r_est, b, done))
            rows, nbytes, rows_est, bytes_est = rows + r, nbytes + b, rows_est + r_est, bytes_est + b_est
        elapsed = max(1e-6, time.monotonic() - self.started)
        bps = nbytes / elapsed
        eta = (bytes_est - nbytes) / bps if bps > 0 else None
        return CopyProgress(rows, rows_est, nbytes, bytes_est, rows / elapsed, bps, eta, tuple(per))

    def tick(self, final: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if not final and now - self.last_emit < PROGRESS_INTERVAL:
            return
        p = self.snapshot()
        if final:
            p = replace(p, rows_estimated=p.rows_done, bytes_estimated=p.bytes_done, eta_seconds=0.0)
        self.last_emit = now
        self.on_progress(p)


def _skip_statement_annotations(cur: pymysql.cursors.Cursor) -> None:
    """MariaDB writes each statement's text beside its row events in the DR side's binlog (an
    Annotate_rows event): for the copy's multi-MB INSERTs of hex literals that is ~40 % more binlog,
    copied through the binlog cache twice, for no reader (the row events carry every value). MySQL has
    no such variable, and a server that refuses it keeps its annotations: the copy is the same."""
    with contextlib.suppress(pymysql.err.MySQLError):
        cur.execute("SET SESSION binlog_annotate_row_events = 0")


def _packet_for(size: int) -> int:
    """A max_allowed_packet that takes a statement of `size` bytes (MB-rounded, at most 1 GB)."""
    return min(1 << 30, ((size + 4096) // (1 << 20) + 1) << 20)


def _caused_by(cause: BaseException, error: ReplicationError) -> ReplicationError:
    """`error` with the server error behind it, so the runner can tell a lost connection (reconnect
    and copy again, as often as it takes) from a data error (a few retries, then failed)."""
    error.__cause__ = cause
    return error
